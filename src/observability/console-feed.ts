/**
 * What the console page at `/` shows, kept in memory: the last finished
 * requests (never prompts or keys: the gateway key's name only), one sample
 * a second of open streams and time to first chunk over the last minutes,
 * and — from the gateway — each provider's state and each key's use against
 * its limits. Under `--workers N` each worker keeps its own and the console
 * merges them ({@link mergeConsole}).
 */

/** One finished request as the console lists it. */
export interface ConsoleRequest {
  /** Epoch ms when it finished. */
  readonly at: number;
  readonly door: string;
  readonly route: string;
  readonly model: string;
  readonly provider: string;
  /** The gateway key's name (`anonymous` on an open gateway). */
  readonly key: string;
  readonly status: number | string;
  readonly outcome: string;
  readonly ttftMs: number | null;
  readonly durationMs: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
  /** `hit` / `miss` when the response cache took part. */
  readonly cache: string | null;
}

/** One second of the gateway. */
export interface ConsoleSample {
  /** Epoch seconds. */
  readonly t: number;
  /** Streams and sessions open at that second. */
  readonly active: number;
  /** Median time to first chunk of the requests that finished in that second (ms). */
  readonly ttftMs: number | null;
}

/** A provider's state. */
export interface ConsoleProvider {
  readonly name: string;
  /** `ok`, `circuit_open`, or `unavailable` (every model of it unavailable, e.g. an engine not installed). */
  readonly state: string;
  readonly unavailable: ReadonlyArray<{ readonly model: string; readonly reason: string }>;
}

/** A gateway key's use against its limits (this gateway's requests; limits as configured). */
export interface ConsoleKey {
  readonly name: string;
  readonly rpm: number | null;
  readonly tpm: number | null;
  readonly maxConcurrentStreams: number | null;
  readonly requestsLastMinute: number;
  readonly tokensLastMinute: number;
  readonly openStreams: number;
}

/** Everything the console shows. */
export interface ConsoleSnapshot {
  readonly requests: readonly ConsoleRequest[];
  readonly series: readonly ConsoleSample[];
  readonly providers: readonly ConsoleProvider[];
  readonly keys: readonly ConsoleKey[];
}

/** The live parts the gateway adds to a snapshot. */
export interface ConsoleContext {
  providers(): Promise<ConsoleProvider[]>;
  keys(): Array<Omit<ConsoleKey, "requestsLastMinute" | "tokensLastMinute">>;
}

const SERIES_SECONDS = 600;

/** The in-memory feed of one gateway (see the module comment). */
export class ConsoleFeed {
  private readonly requests: ConsoleRequest[] = [];
  private readonly series: ConsoleSample[] = [];
  private ttfts: number[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly capacity = 200,
    private readonly context?: ConsoleContext,
  ) {}

  /** Records a finished request. */
  add(r: ConsoleRequest): void {
    this.requests.push(r);
    if (this.requests.length > this.capacity) this.requests.shift();
    if (r.ttftMs !== null) this.ttfts.push(r.ttftMs);
  }

  /** Samples `active()` once a second from now on (the timer does not keep the process alive). */
  start(active: () => number): void {
    this.timer ??= setInterval(() => this.sample(active()), 1000).unref();
  }

  /** Stops sampling. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Takes one sample now (the timer's work; tests call it directly). */
  sample(active: number, now = Date.now()): void {
    const sorted = this.ttfts.sort((a, b) => a - b);
    const ttftMs = sorted.length > 0 ? sorted[Math.floor((sorted.length - 1) / 2)]! : null;
    this.ttfts = [];
    this.series.push({ t: Math.floor(now / 1000), active, ttftMs });
    if (this.series.length > SERIES_SECONDS) this.series.shift();
  }

  /** This gateway's snapshot. */
  async snapshot(now = Date.now()): Promise<ConsoleSnapshot> {
    const recent = this.requests.filter((r) => r.at > now - 60_000);
    const keys = (this.context?.keys() ?? []).map((k) => {
      const mine = recent.filter((r) => r.key === k.name);
      return { ...k, requestsLastMinute: mine.length, tokensLastMinute: mine.reduce((n, r) => n + r.inputTokens + r.outputTokens, 0) };
    });
    return { requests: [...this.requests].reverse(), series: [...this.series], providers: (await this.context?.providers()) ?? [], keys };
  }
}

/** One view of several workers' snapshots: requests newest first, samples summed by second, states and counts combined. */
export function mergeConsole(parts: readonly ConsoleSnapshot[], capacity = 200): ConsoleSnapshot {
  if (parts.length === 1) return parts[0]!;
  const requests = parts.flatMap((p) => p.requests).sort((a, b) => b.at - a.at).slice(0, capacity);
  const byT = new Map<number, { active: number; ttft: number[] }>();
  for (const p of parts) {
    for (const s of p.series) {
      const e = byT.get(s.t) ?? { active: 0, ttft: [] };
      e.active += s.active;
      if (s.ttftMs !== null) e.ttft.push(s.ttftMs);
      byT.set(s.t, e);
    }
  }
  const series = [...byT.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([t, e]) => ({ t, active: e.active, ttftMs: e.ttft.length > 0 ? e.ttft.reduce((x, y) => x + y, 0) / e.ttft.length : null }));
  const providers = new Map<string, ConsoleProvider>();
  for (const p of parts.flatMap((x) => x.providers)) {
    const had = providers.get(p.name);
    if (!had || (had.state === "ok" && p.state !== "ok")) providers.set(p.name, p);
  }
  const keys = new Map<string, ConsoleKey>();
  for (const k of parts.flatMap((x) => x.keys)) {
    const had = keys.get(k.name);
    keys.set(
      k.name,
      had
        ? { ...had, requestsLastMinute: had.requestsLastMinute + k.requestsLastMinute, tokensLastMinute: had.tokensLastMinute + k.tokensLastMinute, openStreams: had.openStreams + k.openStreams }
        : k,
    );
  }
  return { requests, series, providers: [...providers.values()], keys: [...keys.values()] };
}
