import { SpillwayError } from "../../engine/errors.js";

/** One upstream key. */
export interface UpstreamKey {
  readonly key: string;
  /** Shown in headers and logs instead of the key. */
  readonly name: string;
  readonly weight: number;
}

/** How long a key refused by the upstream (401/403/429 without Retry-After) rests. */
const DEFAULT_REST_MS = 30_000;

/**
 * Several keys for one provider, picked at random by weight. A key the
 * upstream refuses (401, 403, 429) rests for a while (the upstream's
 * `Retry-After` for 429) and the others take its share.
 */
export class KeyPool {
  private readonly restUntil: number[];

  constructor(
    private readonly keys: readonly UpstreamKey[],
    private readonly now: () => number = Date.now,
  ) {
    this.restUntil = keys.map(() => 0);
  }

  /** Builds a pool from a provider's `apiKey` / `apiKeys` settings; empty when it has neither. */
  static from(apiKey: string | undefined, apiKeys: ReadonlyArray<{ key: string; name?: string | undefined; weight?: number | undefined }> | undefined): KeyPool {
    const keys: UpstreamKey[] = (apiKeys ?? []).map((k, i) => ({ key: k.key, name: k.name ?? `key-${i + 1}`, weight: k.weight ?? 1 }));
    if (apiKey) keys.unshift({ key: apiKey, name: "default", weight: 1 });
    return new KeyPool(keys);
  }

  /** How many keys the pool has. */
  get size(): number {
    return this.keys.length;
  }

  /** A key for the next request: by weight among those not resting, else the one that rests least. */
  pick(random = Math.random): UpstreamKey | undefined {
    if (this.keys.length <= 1) return this.keys[0];
    const now = this.now();
    let total = 0;
    for (let i = 0; i < this.keys.length; i++) if (this.restUntil[i]! <= now) total += this.keys[i]!.weight;
    if (total === 0) {
      let best = 0;
      for (let i = 1; i < this.keys.length; i++) if (this.restUntil[i]! < this.restUntil[best]!) best = i;
      return this.keys[best];
    }
    let r = random() * total;
    for (let i = 0; i < this.keys.length; i++) {
      if (this.restUntil[i]! > now) continue;
      r -= this.keys[i]!.weight;
      if (r < 0) return this.keys[i];
    }
    return this.keys.at(-1);
  }

  /**
   * Notes that the upstream refused `key`. Returns the error to throw: made
   * retryable when another key could serve the retry.
   */
  refused(key: UpstreamKey, err: SpillwayError): SpillwayError {
    const i = this.keys.indexOf(key);
    if (i < 0) return err;
    this.restUntil[i] = this.now() + (err.retryAfterMs ?? DEFAULT_REST_MS);
    const now = this.now();
    const another = this.restUntil.some((t, j) => j !== i && t <= now);
    if (!another || err.retryable) return err;
    return err.with({ retryable: true, fromUpstream: true, cause: err });
  }

  /**
   * Runs one upstream request with a key from the pool: `run` gets `headers`
   * plus the key's header (`authorization: Bearer …` unless `authHeader`
   * says otherwise); the key's name becomes the call's `key` label when the
   * pool has several; a 401/403/429 from the upstream rests the key (see
   * {@link KeyPool.refused}).
   */
  withKey<T>(
    labels: Record<string, string>,
    headers: Readonly<Record<string, string>>,
    run: (headers: Record<string, string>) => Promise<T>,
    authHeader: (key: string) => readonly [string, string] = bearer,
  ): Promise<T> {
    let key: UpstreamKey | undefined;
    let running: Promise<T>;
    try {
      key = this.pick();
      const h: Record<string, string> = { ...headers };
      if (key) {
        const [name, value] = authHeader(key.key);
        h[name] = value;
        if (this.size > 1) labels["key"] = key.name;
      }
      running = run(h);
    } catch (e) {
      return Promise.reject(key ? this.refusal(key, e) : (e as Error));
    }
    // One key or none: nothing to rest it for (`pick` has no other to turn to) and the error stays as it is (see
    // `refused`): the request's own promise, with no async frame or handler around it (per request on the hot path).
    if (!key || this.keys.length <= 1) return running;
    const k = key;
    return running.catch((e: unknown) => Promise.reject(this.refusal(k, e)));
  }

  /** What `withKey` rejects with when its request fails with `e`: a 401/403/429 rests `key` ({@link KeyPool.refused}). */
  private refusal(key: UpstreamKey, e: unknown): Error {
    const status = e instanceof SpillwayError ? e.httpStatus : undefined;
    if (e instanceof SpillwayError && (status === 401 || status === 403 || status === 429)) return this.refused(key, e);
    return e as Error;
  }
}

/** The default key header: `authorization: Bearer <key>`. */
function bearer(k: string): readonly [string, string] {
  return ["authorization", `Bearer ${k}`];
}
