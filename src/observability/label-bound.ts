/** The label value every value past the bound is folded into. */
export const OTHER_LABEL = "other";

/**
 * Keeps a metric label's values bounded when clients choose them (a model
 * id that a pass-through provider accepts as it comes): the configured
 * values always count as themselves, then up to `limit` further distinct
 * values as they are first seen, and everything after that as
 * {@link OTHER_LABEL}. So however many names clients send, the label has at
 * most `known + limit + 1` values, and each scrape stays small.
 */
export class LabelBound {
  private readonly known: ReadonlySet<string>;
  private readonly seen = new Set<string>();

  constructor(
    known: Iterable<string>,
    private readonly limit: number,
  ) {
    this.known = new Set(known);
  }

  /** The value to record for `value`: itself, or {@link OTHER_LABEL} past the bound. */
  label(value: string): string {
    if (this.known.has(value) || this.seen.has(value)) return value;
    if (this.seen.size >= this.limit) return OTHER_LABEL;
    this.seen.add(value);
    return value;
  }
}
