import { createHash, timingSafeEqual } from "node:crypto";
import { Code } from "./code.js";
import { SpillwayError } from "./errors.js";
import { WindowCounter } from "./window-counter.js";

/** One gateway API key and its limits. */
export interface GatewayKey {
  readonly key: string;
  readonly name: string;
  readonly rpm?: number | undefined;
  readonly tpm?: number | undefined;
  readonly maxConcurrentStreams?: number | undefined;
  /** Model ids or `provider/*` patterns; all models when absent. */
  readonly models?: readonly string[] | undefined;
}

/** Who is calling: a gateway key's name, or `anonymous` when the gateway is open. */
export interface Principal {
  readonly name: string;
  /** Index into the configured keys; -1 for anonymous. */
  readonly index: number;
}

/** A granted stream slot; release it once, with the tokens the stream used. */
export interface Lease {
  release(tokens: number): void;
}

interface KeyState {
  readonly digest: Buffer;
  readonly cfg: GatewayKey;
  readonly requests: WindowCounter;
  readonly tokens: WindowCounter;
  streams: number;
}

const ANONYMOUS: Principal = { name: "anonymous", index: -1 };
const sha256 = (s: string): Buffer => createHash("sha256").update(s).digest();

/**
 * Gateway keys and limits, for every door: authenticates a bearer key
 * (compared in constant time against every configured key), and admits a
 * stream only within the key's model list, requests/min, tokens/min and
 * concurrent-stream cap, and the gateway's global stream cap. State is in
 * this process's memory (one instance, or per worker).
 */
export class Admission {
  private readonly keys: KeyState[];
  private streams = 0;

  constructor(
    keys: readonly GatewayKey[],
    private readonly maxConcurrentStreams: number,
    private readonly now: () => number = Date.now,
  ) {
    this.keys = keys.map((cfg) => ({ digest: sha256(cfg.key), cfg, requests: new WindowCounter(), tokens: new WindowCounter(), streams: 0 }));
  }

  /** Whether callers must present a key. */
  get required(): boolean {
    return this.keys.length > 0;
  }

  /** Streams open right now, across every key. */
  get openStreams(): number {
    return this.streams;
  }

  /**
   * Finds the key in an `Authorization: Bearer …` value (or a bare key).
   * Throws `Unauthenticated` (401) when keys are configured and none matches.
   */
  authenticate(authorization: string | undefined): Principal {
    if (!this.required) return ANONYMOUS;
    const presented = (authorization ?? "").replace(/^bearer\s+/i, "").trim();
    if (!presented) {
      throw new SpillwayError(Code.Unauthenticated, "You didn't provide an API key: send it as 'Authorization: Bearer <key>'.", {
        openAiCode: "missing_api_key",
      });
    }
    const digest = sha256(presented);
    let found = -1;
    for (let i = 0; i < this.keys.length; i++) {
      // Every key is compared, whatever matched, so timing says nothing.
      if (timingSafeEqual(digest, this.keys[i]!.digest) && found < 0) found = i;
    }
    if (found < 0) throw new SpillwayError(Code.Unauthenticated, "Incorrect API key provided.", { openAiCode: "invalid_api_key" });
    return { name: this.keys[found]!.cfg.name, index: found };
  }

  /**
   * Admits one stream of `models` (the model and any per-request fallbacks)
   * for `principal`, or throws 403 / 429 (with Retry-After) / 503.
   */
  admit(principal: Principal | undefined, models: readonly string[]): Lease {
    const p = principal ?? ANONYMOUS;
    if (this.required && p.index < 0) {
      throw new SpillwayError(Code.Unauthenticated, "You didn't provide an API key.", { openAiCode: "missing_api_key" });
    }
    if (this.streams >= this.maxConcurrentStreams) {
      throw new SpillwayError(Code.Unavailable, "The gateway is at its limit of concurrent streams; try again shortly.", {
        openAiCode: "server_overloaded",
        retryAfterMs: 1000,
        httpStatus: 503,
      });
    }
    const state = p.index >= 0 ? this.keys[p.index] : undefined;
    if (state) this.check(state, models);
    this.streams++;
    if (state) state.streams++;
    let released = false;
    return {
      release: (tokens) => {
        if (released) return;
        released = true;
        this.streams--;
        if (state) {
          state.streams--;
          if (tokens > 0) state.tokens.add(tokens, this.now());
        }
      },
    };
  }

  private check(s: KeyState, models: readonly string[]): void {
    const { cfg } = s;
    if (cfg.models) {
      for (const m of models) {
        if (!cfg.models.some((p) => p === m || (p.endsWith("/*") && m.startsWith(p.slice(0, -1))))) {
          throw new SpillwayError(Code.PermissionDenied, `The API key '${cfg.name}' may not use the model '${m}'.`, {
            param: "model",
            openAiCode: "model_not_allowed",
          });
        }
      }
    }
    const now = this.now();
    if (cfg.maxConcurrentStreams !== undefined && s.streams >= cfg.maxConcurrentStreams) {
      throw rateLimited(`The API key '${cfg.name}' has ${s.streams} streams open, its limit.`, 1000);
    }
    if (cfg.rpm !== undefined && s.requests.sum(now) >= cfg.rpm) {
      throw rateLimited(`Rate limit reached for '${cfg.name}': ${cfg.rpm} requests per minute.`, s.requests.msUntilRelief(now));
    }
    if (cfg.tpm !== undefined && s.tokens.sum(now) >= cfg.tpm) {
      throw rateLimited(`Rate limit reached for '${cfg.name}': ${cfg.tpm} tokens per minute.`, s.tokens.msUntilRelief(now));
    }
    s.requests.add(1, now);
  }
}

function rateLimited(message: string, retryAfterMs: number): SpillwayError {
  return new SpillwayError(Code.ResourceExhausted, message, { openAiCode: "rate_limit_exceeded", retryAfterMs, retryable: false });
}
