/**
 * The embedded stream log shared by every worker of one gateway: the
 * primary holds the {@link MemoryStreamLog} and serves it over the cluster
 * IPC channel; each worker's {@link IpcStreamLog} forwards to it. A retrieve
 * or resume that lands on another worker than the one generating therefore
 * sees the same log, live. Chunks travel base64-encoded in the JSON IPC
 * messages: every stream's appends of one event-loop turn go in one
 * unreplied `appendMany` message, their entries packed as in
 * `packed-entries.ts`. When a worker dies, the primary fails the streams it was still
 * writing (a failure chunk with reason `instance_lost`), so no follower hangs.
 */
import cluster, { type Worker } from "node:cluster";
import { Chunk } from "../gen/spillway/v1/chunk.js";
import { Code } from "../engine/code.js";
import { SpillwayError } from "../engine/errors.js";
import type { MemoryStreamLog } from "../engine/durable/memory-stream-log.js";
import type { LogEntry, StreamLog, StreamRecord, StreamStatus } from "../engine/durable/stream-log.js";
import { TERMINAL_STATUSES } from "../engine/durable/stream-log.js";
import { pack, unpack } from "../engine/durable/packed-entries.js";

type Op = "create" | "appendMany" | "setStatus" | "get" | "read" | "stopRead" | "delete" | "requestCancel";

interface Request {
  readonly type: "spillway:log";
  readonly rid: number;
  readonly op: Op;
  readonly args: unknown[];
}
interface Reply {
  readonly type: "spillway:log-reply";
  readonly rid: number;
  readonly value?: unknown;
  readonly error?: { code: number; message: string; reason?: string | undefined; httpStatus?: number | undefined };
}
interface WireEntry {
  readonly seq: number;
  readonly at: number;
  readonly chunk: string;
  readonly last?: boolean | undefined;
}
interface EntryMessage {
  readonly type: "spillway:log-entry";
  readonly rid: number;
  readonly entry: WireEntry;
}
interface CancelMessage {
  readonly type: "spillway:log-cancel";
  readonly id: string;
}

const toWire = (e: LogEntry): WireEntry => ({ seq: e.seq, at: e.at, chunk: Buffer.from(e.chunk).toString("base64"), last: e.last });
const fromWire = (e: WireEntry): LogEntry => ({ seq: e.seq, at: e.at, chunk: new Uint8Array(Buffer.from(e.chunk, "base64")), ...(e.last ? { last: true } : {}) });

function is<T extends { type: string }>(m: unknown, type: T["type"]): m is T {
  return typeof m === "object" && m !== null && (m as { type?: unknown }).type === type;
}

/**
 * Primary side: serves `log` to every worker (present and future) and fails
 * a dead worker's unfinished streams.
 */
export function serveStreamLog(log: MemoryStreamLog): void {
  const writers = new Map<string, number>();
  const reads = new Map<string, AbortController>();
  const send = (w: Worker, m: Reply | EntryMessage | CancelMessage): void => {
    if (w.isConnected()) w.send(m);
  };
  cluster.on("message", (worker: Worker, m: unknown) => {
    if (!is<Request>(m, "spillway:log")) return;
    const reply = (value?: unknown): void => send(worker, { type: "spillway:log-reply", rid: m.rid, value });
    const fail = (e: unknown): void => {
      const err = SpillwayError.from(e);
      send(worker, { type: "spillway:log-reply", rid: m.rid, error: { code: err.code, message: err.message, reason: err.reason, httpStatus: err.httpStatus } });
    };
    const a = m.args;
    switch (m.op) {
      case "create":
        writers.set((a[0] as StreamRecord).id, worker.id);
        log.create(a[0] as StreamRecord, a[1] as number).then(reply, fail);
        return;
      case "appendMany":
        // [id, packed base64] per stream, in the order the worker logged them; no reply.
        for (const [id, b64] of a as Array<[string, string]>) log.append(id, unpack(Buffer.from(b64, "base64"))).catch(() => undefined);
        return;
      case "setStatus":
        if (TERMINAL_STATUSES.has(a[1] as StreamStatus)) writers.delete(a[0] as string);
        log.setStatus(a[0] as string, a[1] as StreamStatus, a[2] as string | undefined).then(reply, fail);
        return;
      case "get":
        log.get(a[0] as string).then(reply, fail);
        return;
      case "delete":
        log.delete(a[0] as string).then(reply, fail);
        return;
      case "requestCancel":
        for (const w of Object.values(cluster.workers ?? {})) if (w) send(w, { type: "spillway:log-cancel", id: a[0] as string });
        reply();
        return;
      case "stopRead":
        reads.get(`${worker.id}:${a[0] as number}`)?.abort();
        reply();
        return;
      case "read": {
        const key = `${worker.id}:${m.rid}`;
        const ac = new AbortController();
        reads.set(key, ac);
        void (async () => {
          for await (const e of log.read(a[0] as string, a[1] as number, ac.signal, a[2] as boolean)) send(worker, { type: "spillway:log-entry", rid: m.rid, entry: toWire(e) });
        })()
          .then(() => reply(), fail)
          .finally(() => reads.delete(key));
        return;
      }
    }
  });
  cluster.on("exit", (worker: Worker) => {
    for (const [key, ac] of reads) if (key.startsWith(`${worker.id}:`)) ac.abort();
    for (const [id, w] of writers) {
      if (w !== worker.id) continue;
      writers.delete(id);
      const tail = log.tail(id);
      if (!tail || tail.ended) continue;
      const err = new SpillwayError(
        Code.Unavailable,
        "The gateway worker running this response stopped before it finished; the output so far is kept. Create the response again to get a complete one.",
        { reason: "instance_lost", retryable: true },
      );
      const seq = tail.lastSeq + 1;
      const chunk = Chunk.encode({ streamId: id, seq, payload: { $case: "error", value: err.toChunkError() } }).finish();
      void log.append(id, [{ seq, at: Date.now(), chunk, last: true }]).then(() => log.setStatus(id, "failed"));
    }
  });
}

/** Worker side: the primary's log, over IPC. Rejects with `Unavailable` if the primary is gone. */
export class IpcStreamLog implements StreamLog {
  readonly kind = "embedded";
  private rid = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  private readonly readers = new Map<number, (e: LogEntry) => void>();
  /** Appends of this turn, sent as one message. */
  private outbox: Array<[string, string]> = [];
  private outboxQueued = false;
  private cancelHandler: ((id: string) => void) | undefined;

  constructor() {
    process.on("message", (m: unknown) => {
      if (is<Reply>(m, "spillway:log-reply")) {
        const p = this.pending.get(m.rid);
        if (!p) return;
        this.pending.delete(m.rid);
        if (m.error) p.reject(new SpillwayError(m.error.code, m.error.message, { reason: m.error.reason, httpStatus: m.error.httpStatus }));
        else p.resolve(m.value);
      } else if (is<EntryMessage>(m, "spillway:log-entry")) {
        this.readers.get(m.rid)?.(fromWire(m.entry));
      } else if (is<CancelMessage>(m, "spillway:log-cancel")) {
        this.cancelHandler?.(m.id);
      }
    });
  }

  private call(op: Op, args: unknown[], rid = ++this.rid): Promise<unknown> {
    if (!process.connected || !process.send) return Promise.reject(new SpillwayError(Code.Unavailable, "the primary process is gone"));
    this.sendOutbox(); // appends logged before this request reach the primary before it
    return new Promise((resolve, reject) => {
      this.pending.set(rid, { resolve, reject });
      const m: Request = { type: "spillway:log", rid, op, args };
      process.send!(m);
    });
  }

  async create(record: StreamRecord, ttlMs: number): Promise<void> {
    await this.call("create", [record, ttlMs]);
  }

  /**
   * Queues the batch (its entries packed, `packed-entries.ts`, base64 in the
   * JSON channel) for the turn's one `appendMany` message, which carries
   * every stream's batches of this event-loop turn, and asks no reply: the
   * embedded log cannot refuse an append, and the channel is ordered — any
   * request (a `setStatus`, awaited) first sends what is queued — so the
   * primary has every chunk before it answers. Rejects only when the
   * primary is gone.
   */
  append(id: string, entries: readonly LogEntry[]): Promise<void> {
    if (!process.connected || !process.send) return Promise.reject(new SpillwayError(Code.Unavailable, "the primary process is gone"));
    const packed = pack(entries);
    this.outbox.push([id, Buffer.from(packed.buffer, packed.byteOffset, packed.byteLength).toString("base64")]);
    if (!this.outboxQueued) {
      this.outboxQueued = true;
      // setImmediate, not nextTick: recorders flush in the check phase, and ticks run between its callbacks.
      setImmediate(this.sendOutbox);
    }
    return Promise.resolve();
  }

  private readonly sendOutbox = (): void => {
    this.outboxQueued = false;
    if (this.outbox.length === 0 || !process.connected || !process.send) return;
    const m: Request = { type: "spillway:log", rid: 0, op: "appendMany", args: this.outbox };
    this.outbox = [];
    process.send(m);
  };

  async setStatus(id: string, status: StreamStatus, request?: string): Promise<void> {
    await this.call("setStatus", request === undefined ? [id, status] : [id, status, request]);
  }

  async get(id: string): Promise<StreamRecord | undefined> {
    return ((await this.call("get", [id])) ?? undefined) as StreamRecord | undefined;
  }

  async *read(id: string, afterSeq: number, signal: AbortSignal, follow = true): AsyncIterable<LogEntry> {
    const rid = ++this.rid;
    const queue: LogEntry[] = [];
    let wake: (() => void) | undefined;
    let finished = false;
    let failure: Error | undefined;
    this.readers.set(rid, (e) => {
      queue.push(e);
      wake?.();
    });
    const onAbort = (): void => wake?.();
    signal.addEventListener("abort", onAbort, { once: true });
    this.call("read", [id, afterSeq, follow], rid).then(
      () => {
        finished = true;
        wake?.();
      },
      (e: unknown) => {
        finished = true;
        failure = e instanceof Error ? e : new Error(String(e));
        wake?.();
      },
    );
    try {
      for (;;) {
        while (queue.length > 0) {
          if (signal.aborted) return;
          yield queue.shift()!;
        }
        if (finished || signal.aborted) break;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
      if (failure && !signal.aborted) throw failure;
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.readers.delete(rid);
      if (!finished) void this.call("stopRead", [rid]).catch(() => undefined);
    }
  }

  async delete(id: string): Promise<boolean> {
    return (await this.call("delete", [id])) as boolean;
  }

  async requestCancel(id: string): Promise<void> {
    await this.call("requestCancel", [id]);
  }

  onCancel(handler: (id: string) => void): void {
    this.cancelHandler = handler;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
