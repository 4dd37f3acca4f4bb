/**
 * Asking every worker of `--workers N` for something (the console's
 * snapshot): the worker that took the request asks the primary, the primary
 * asks every worker (the asker included) and hands back all their answers.
 * Without workers (one process) the local answer is the only one.
 */
import cluster from "node:cluster";
import { isMessageOf } from "./messages.js";

interface CollectRequest {
  readonly type: "spillway:collect-request";
  readonly id: number;
  readonly what: string;
}
interface Collect {
  readonly type: "spillway:collect";
  readonly rid: number;
  readonly what: string;
}
interface CollectAnswer {
  readonly type: "spillway:collect-answer";
  readonly rid: number;
  readonly data: unknown;
}
interface CollectReply {
  readonly type: "spillway:collect-reply";
  readonly id: number;
  readonly parts: unknown[];
}

const answerers = new Map<string, () => Promise<unknown>>();
let workerListening = false;

/** In a worker: how this process answers the primary's requests for `what` (one gateway per worker). */
export function answerCollect(what: string, answer: () => Promise<unknown>): void {
  answerers.set(what, answer);
  if (!cluster.isWorker || workerListening) return;
  workerListening = true;
  process.on("message", (m: unknown) => {
    if (!isMessageOf<Collect>(m, "spillway:collect")) return;
    const fn = answerers.get(m.what);
    const send = (data: unknown): void => void process.send?.({ type: "spillway:collect-answer", rid: m.rid, data } satisfies CollectAnswer);
    if (!fn) return send(null);
    fn().then(send, () => send(null));
  });
}

let nextId = 0;

/**
 * Every worker's answer for `what` (`local()` alone without workers);
 * workers that do not answer within 3 s are left out.
 */
export function collectAll(what: string, local: () => Promise<unknown>): Promise<unknown[]> {
  if (!cluster.isWorker) return local().then((d) => [d]);
  return new Promise((resolve) => {
    const id = nextId++;
    const onReply = (m: unknown): void => {
      if (!isMessageOf<CollectReply>(m, "spillway:collect-reply") || m.id !== id) return;
      clearTimeout(timer);
      process.off("message", onReply);
      resolve(m.parts.filter((p) => p !== null));
    };
    const timer = setTimeout(() => {
      process.off("message", onReply);
      resolve([]);
    }, 5_000);
    process.on("message", onReply);
    process.send?.({ type: "spillway:collect-request", id, what } satisfies CollectRequest);
  });
}

/** In the primary: relays workers' collect requests to every worker and their answers back. */
export function relayCollect(): void {
  let nextRid = 0;
  const pending = new Map<number, { parts: unknown[]; waiting: number; done: () => void }>();
  cluster.on("message", (worker, m: unknown) => {
    if (isMessageOf<CollectAnswer>(m, "spillway:collect-answer")) {
      const p = pending.get(m.rid);
      if (!p) return;
      p.parts.push(m.data);
      if (--p.waiting === 0) p.done();
      return;
    }
    if (!isMessageOf<CollectRequest>(m, "spillway:collect-request")) return;
    const rid = nextRid++;
    const workers = Object.values(cluster.workers ?? {}).filter((w) => w?.isConnected());
    const entry = { parts: [] as unknown[], waiting: workers.length, done: () => undefined as void };
    const timer = setTimeout(() => entry.done(), 3_000);
    entry.done = () => {
      clearTimeout(timer);
      pending.delete(rid);
      if (worker.isConnected()) worker.send({ type: "spillway:collect-reply", id: m.id, parts: entry.parts } satisfies CollectReply);
    };
    pending.set(rid, entry);
    if (workers.length === 0) return entry.done();
    for (const w of workers) w!.send({ type: "spillway:collect", rid, what: m.what } satisfies Collect);
  });
}
