import { Redis } from "ioredis";
import { Chunk } from "../../gen/spillway/v1/chunk.js";
import { Code } from "../code.js";
import { SpillwayError } from "../errors.js";
import { pack, unpack } from "./packed-entries.js";
import { TERMINAL_STATUSES, type LogEntry, type StreamLog, type StreamRecord, type StreamStatus } from "./stream-log.js";

/** Settings of a {@link RedisStreamLog}. */
export interface RedisStreamLogOptions {
  /** `redis://host:port/db`. */
  readonly url: string;
  /** Prefix of every key Spillway writes. */
  readonly keyPrefix: string;
  /** How long one command may take before Redis counts as down (ms). */
  readonly commandTimeoutMs: number;
  /** Longest a running log lives before it expires anyway (ms). */
  readonly maxLifeMs: number;
  /** A stream whose writer has not said it is alive for this long is failed by its readers (ms). Default 3000. */
  readonly aliveTtlMs?: number;
  /** How long one blocking read waits before checking on the writer (ms). Default 500. */
  readonly blockMs?: number;
}

/**
 * The stream log in Redis, shared by every worker and instance:
 * `<prefix>:stream:{id}` is a hash (owner, request, status…),
 * `<prefix>:stream:{id}:log` a Redis Stream with one entry per append
 * (a batch of chunks: what the recorder logged while the previous batch was
 * in flight, at least one event-loop turn's worth) whose entry id is
 * `0-<last seq+1>` (so a duplicate append is refused by Redis, and the
 * entries holding anything after seq N are `XREAD … 0-<N+1>`; readers drop
 * the chunks at or before N), field `b` the chunks packed as in
 * `packed-entries.ts` (protobuf bytes with their seq and time) and `e` on
 * the batch that holds the terminal chunk. One `XADD` per batch instead of
 * one per chunk is what makes a stored stream on Redis cheap; the
 * `PEXPIRE` of the log rides on the first. Followers `XREAD BLOCK` on their own
 * connection. The writer refreshes `<prefix>:stream:{id}:alive` (PX) while it
 * runs; a reader that finds it gone on an unfinished stream appends a
 * failure entry and marks the stream failed, so a client never hangs on a
 * stream whose instance died. Cancels travel on the `<prefix>:stream-cancel`
 * channel. Keys expire `retention` after the end (`maxLifeMs` while running).
 * Commands fail fast (no offline queue, a command timeout) and are
 * auto-pipelined: what every stream of this process sends in one event-loop
 * turn goes out in one socket write (the syscalls were most of the cost).
 */
export class RedisStreamLog implements StreamLog {
  readonly kind = "redis";
  private readonly redis: Redis;
  private subscriber: Redis | undefined;
  private readonly aliveTtlMs: number;
  private readonly blockMs: number;
  private readonly ttl = new Map<string, number>();
  /** Streams created here whose log key has no expiry yet (set with the first append). */
  private readonly unexpired = new Set<string>();
  private ready: Promise<void> | undefined;

  constructor(private readonly opts: RedisStreamLogOptions) {
    // Auto-pipelining: the commands every stream issues in one event-loop turn go out in one write.
    this.redis = new Redis(opts.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: opts.commandTimeoutMs, enableAutoPipelining: true });
    this.redis.on("error", () => undefined);
    this.aliveTtlMs = opts.aliveTtlMs ?? 3000;
    this.blockMs = opts.blockMs ?? 500;
  }

  /** Waits (up to a few command timeouts) for the connection to be up: at start, or while it reconnects. */
  private connected(): Promise<void> {
    if (this.redis.status === "ready") return Promise.resolve();
    // One wait shared by every caller (not a listener each).
    this.ready ??= this.waitReady().finally(() => (this.ready = undefined));
    return this.ready;
  }

  private async waitReady(): Promise<void> {
    const redis = this.redis;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        redis.off("ready", onReady);
        reject(new Error("Redis is not connected"));
      }, this.opts.commandTimeoutMs * 4);
      const onReady = (): void => {
        clearTimeout(timer);
        resolve();
      };
      redis.once("ready", onReady);
    });
  }

  private key(id: string): string {
    return `${this.opts.keyPrefix}:stream:{${id}}`;
  }

  async create(record: StreamRecord, ttlMs: number): Promise<void> {
    await this.connected();
    const k = this.key(record.id);
    this.ttl.set(record.id, ttlMs);
    this.unexpired.add(record.id);
    // Plain commands (auto-pipelined with other streams'), not MULTI: one connection runs them in order.
    // The writer's `alive` key goes first: a reader (another instance) that finds the record
    // must find its writer alive too, or it would fail a stream that has only just started.
    await Promise.all([
      this.redis.set(`${k}:alive`, "1", "PX", this.aliveTtlMs),
      this.redis.hset(k, { owner: record.owner, createdAt: String(record.createdAt), background: record.background ? "1" : "0", request: record.request, status: record.status, ttl: String(ttlMs) }),
      this.redis.pexpire(k, this.opts.maxLifeMs),
    ]);
  }

  async append(id: string, entries: readonly LogEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const k = `${this.key(id)}:log`;
    const packed = pack(entries);
    const buf = Buffer.from(packed.buffer, packed.byteOffset, packed.byteLength);
    const entryId = `0-${entries[entries.length - 1]!.seq + 1}`;
    const last = entries.some((e) => e.last);
    const first = this.unexpired.delete(id);
    const added = last ? this.redis.xadd(k, entryId, "b", buf, "e", "1") : this.redis.xadd(k, entryId, "b", buf);
    await (first ? Promise.all([added, this.redis.pexpire(k, this.opts.maxLifeMs)]) : added);
  }

  async setStatus(id: string, status: StreamStatus, request?: string): Promise<void> {
    const k = this.key(id);
    if (!TERMINAL_STATUSES.has(status)) {
      await this.redis.hset(k, request === undefined ? { status } : { status, request });
      return;
    }
    const ttl = this.ttl.get(id) ?? Number((await this.redis.hget(k, "ttl")) ?? 600_000);
    this.ttl.delete(id);
    this.unexpired.delete(id);
    await Promise.all([
      this.redis.hset(k, request === undefined ? { status } : { status, request }),
      this.redis.pexpire(k, ttl),
      this.redis.pexpire(`${k}:log`, ttl),
      this.redis.del(`${k}:alive`),
    ]);
  }

  async get(id: string): Promise<StreamRecord | undefined> {
    await this.connected();
    const h = await this.redis.hgetall(this.key(id));
    if (!h["owner"]) return undefined;
    return { id, owner: h["owner"], createdAt: Number(h["createdAt"]), background: h["background"] === "1", request: h["request"] ?? "{}", status: (h["status"] ?? "in_progress") as StreamStatus };
  }

  async *read(id: string, afterSeq: number, signal: AbortSignal, follow = true): AsyncIterable<LogEntry> {
    const k = this.key(id);
    if (!follow) {
      yield* await this.snapshot(id, afterSeq);
      return;
    }
    const blocking = this.redis.duplicate({ commandTimeout: this.blockMs + this.opts.commandTimeoutMs + 1000, enableOfflineQueue: true, enableAutoPipelining: false });
    blocking.on("error", () => undefined);
    const stop = (): void => blocking.disconnect();
    signal.addEventListener("abort", stop, { once: true });
    let last = afterSeq;
    try {
      for (;;) {
        if (signal.aborted) return;
        const res = await blocking.xreadBuffer("COUNT", 256, "BLOCK", this.blockMs, "STREAMS", `${k}:log`, `0-${last + 1}`).catch((e: unknown) => {
          if (signal.aborted) return null;
          throw e;
        });
        if (signal.aborted) return;
        if (res) {
          for (const [, entries] of res) {
            for (const [, fields] of entries) {
              for (const entry of parseEntry(fields)) {
                if (entry.seq <= last) continue;
                last = entry.seq;
                yield entry;
                if (entry.last) return;
              }
            }
          }
          continue;
        }
        // Nothing new for a while: is the stream over, gone, or orphaned?
        const [status, alive] = await Promise.all([this.redis.hget(k, "status"), this.redis.exists(`${k}:alive`)]);
        if (status === null) return;
        if (TERMINAL_STATUSES.has(status as StreamStatus)) {
          // Its terminal entry may have landed just now; one last look.
          const tail = await this.redis.xrangeBuffer(`${k}:log`, `0-${last + 2}`, "+");
          for (const [, fields] of tail) for (const entry of parseEntry(fields)) if (entry.seq > last) yield entry;
          return;
        }
        if (alive === 0) await this.failOrphan(id);
      }
    } finally {
      signal.removeEventListener("abort", stop);
      blocking.disconnect();
    }
  }

  /** The entries logged so far; an unfinished stream whose writer is gone is failed first. */
  private async snapshot(id: string, afterSeq: number): Promise<LogEntry[]> {
    const k = this.key(id);
    const [status, alive] = await Promise.all([this.redis.hget(k, "status"), this.redis.exists(`${k}:alive`)]);
    if (status === null) return [];
    if (!TERMINAL_STATUSES.has(status as StreamStatus) && alive === 0) await this.failOrphan(id);
    const all = await this.redis.xrangeBuffer(`${k}:log`, `0-${afterSeq + 2}`, "+");
    return all.flatMap(([, fields]) => parseEntry(fields).filter((e) => e.seq > afterSeq));
  }

  /** The writer of `id` is gone: appends a failure chunk after the last entry and marks it failed. */
  private async failOrphan(id: string): Promise<void> {
    const k = this.key(id);
    const tail = await this.redis.xrevrangeBuffer(`${k}:log`, "+", "-", "COUNT", 1);
    const lastSeq = tail.length > 0 ? entrySeq(tail[0]![0].toString()) : -1;
    const err = new SpillwayError(
      Code.Unavailable,
      "The gateway instance running this response stopped before it finished; the output so far is kept. Create the response again to get a complete one.",
      { reason: "instance_lost", retryable: true },
    );
    const chunk = Chunk.encode({ streamId: id, seq: lastSeq + 1, payload: { $case: "error", value: err.toChunkError() } }).finish();
    try {
      await this.redis.xadd(`${k}:log`, `0-${lastSeq + 2}`, "b", Buffer.from(pack([{ seq: lastSeq + 1, at: Date.now(), chunk, last: true }])), "e", "1");
    } catch {
      // Another reader (or the writer) got there first.
    }
    await this.setStatus(id, "failed");
  }

  async delete(id: string): Promise<boolean> {
    const k = this.key(id);
    const [[, n]] = (await this.redis.multi().del(k).del(`${k}:log`, `${k}:alive`).exec()) as [[unknown, number]];
    return n > 0;
  }

  async requestCancel(id: string): Promise<void> {
    await this.redis.publish(`${this.opts.keyPrefix}:stream-cancel`, id);
  }

  onCancel(handler: (id: string) => void): void {
    const sub = (this.subscriber = this.redis.duplicate({ enableOfflineQueue: true, commandTimeout: undefined, enableAutoPipelining: false }));
    sub.on("error", () => undefined);
    sub.on("message", (_channel: string, id: string) => handler(id));
    void sub.subscribe(`${this.opts.keyPrefix}:stream-cancel`).catch(() => undefined);
  }

  async heartbeat(ids: readonly string[]): Promise<void> {
    const m = this.redis.multi();
    for (const id of ids) m.set(`${this.key(id)}:alive`, "1", "PX", this.aliveTtlMs);
    await m.exec();
  }

  async close(): Promise<void> {
    this.subscriber?.disconnect();
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

/** The last seq in a stream entry (its id is `0-<last seq+1>`). */
function entrySeq(rawId: string): number {
  return Number(rawId.slice(rawId.indexOf("-") + 1)) - 1;
}

/** The chunks of one stream entry (a packed batch). */
function parseEntry(fields: Buffer[]): LogEntry[] {
  for (let i = 0; i < fields.length; i += 2) if (fields[i]!.toString() === "b") return unpack(fields[i + 1]!);
  return [];
}
