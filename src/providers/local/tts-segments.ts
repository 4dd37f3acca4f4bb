/** Longest piece of text given to one synthesis run (characters). */
const MAX_SEGMENT = 400;
/** Sentences shorter than this are joined with the next one. */
const MIN_SEGMENT = 24;

/**
 * Splits text into the pieces the local speech engine synthesizes one after
 * the other: sentences (after `.`, `!`, `?`, `;` or a line break), short
 * ones joined to the next, long ones cut at a comma or space. The first
 * piece is never joined, so the first audio comes as early as possible.
 * Joining the pieces with spaces gives back the text, white space aside.
 */
export function splitSegments(text: string): string[] {
  const sentences = text
    .split(/(?<=[.!?;:])\s+|\n\s*\n|\r?\n/)
    .map((s) => s.replace(/\s+/g, " ").trim())
    .filter((s) => s.length > 0);
  const out: string[] = [];
  for (const s of sentences) {
    for (const piece of cut(s)) {
      const last = out.length > 1 ? out[out.length - 1]! : undefined;
      if (last !== undefined && last.length < MIN_SEGMENT && last.length + piece.length < MAX_SEGMENT) {
        out[out.length - 1] = `${last} ${piece}`;
      } else out.push(piece);
    }
  }
  return out;
}

/** Cuts a long sentence at commas or spaces into pieces of at most MAX_SEGMENT characters. */
function cut(s: string): string[] {
  const out: string[] = [];
  let rest = s;
  while (rest.length > MAX_SEGMENT) {
    const window = rest.slice(0, MAX_SEGMENT);
    let at = window.lastIndexOf(", ");
    if (at < MAX_SEGMENT / 2) at = window.lastIndexOf(" ");
    if (at <= 0) at = MAX_SEGMENT - 1;
    out.push(rest.slice(0, at + 1).trim());
    rest = rest.slice(at + 1).trim();
  }
  if (rest) out.push(rest);
  return out;
}
