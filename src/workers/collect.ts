/**
 * Asking every worker of `--workers N` for something (the console's
 * snapshot, the metrics registry): the worker that took the request asks the
 * primary, the primary asks every worker (the asker included) and hands back
 * all their answers. Without workers (one process) the local answer is the
 * only one.
 *
 * Only workers that can answer are asked: a worker announces each `what` it
 * answers (`spillway:collect-ready`) when it registers the answer, so a
 * worker still loading its modules at start-up, or one restarted after a
 * crash, is not waited for. A worker that exits while a request waits for it
 * is no longer waited for either. A ready worker that does not answer within
 * {@link COLLECT_TIMEOUT_MS} is left out and counted as missing.
 */
import cluster, { type Worker } from "node:cluster";
import { isMessageOf } from "./messages.js";

/** How long the primary waits for a ready worker's answer before leaving it out. */
export const COLLECT_TIMEOUT_MS = 3_000;

interface CollectReady {
  readonly type: "spillway:collect-ready";
  readonly what: string;
}
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
  readonly missing: number;
}

/** Every worker's answer, and how many ready workers did not answer in time. */
export interface Collected {
  /** The answers (a worker whose answer failed gives none). */
  readonly parts: unknown[];
  /** Ready workers that did not answer within {@link COLLECT_TIMEOUT_MS}. */
  readonly missing: number;
}

const answerers = new Map<string, () => Promise<unknown>>();
let workerListening = false;

/**
 * In a worker: how this process answers the primary's requests for `what`
 * (one gateway per worker); from now on the primary asks this worker too.
 */
export function answerCollect(what: string, answer: () => Promise<unknown>): void {
  answerers.set(what, answer);
  if (!cluster.isWorker) return;
  if (!workerListening) {
    workerListening = true;
    process.on("message", (m: unknown) => {
      if (!isMessageOf<Collect>(m, "spillway:collect")) return;
      const fn = answerers.get(m.what);
      const send = (data: unknown): void => void process.send?.({ type: "spillway:collect-answer", rid: m.rid, data } satisfies CollectAnswer);
      if (!fn) return send(null);
      fn().then(send, () => send(null));
    });
  }
  process.send?.({ type: "spillway:collect-ready", what } satisfies CollectReady);
}

let nextId = 0;

/**
 * Every ready worker's answer for `what` (`local()` alone without workers).
 * Resolves with no parts and one missing if the primary does not reply
 * within {@link COLLECT_TIMEOUT_MS} plus a second.
 */
export function collectAll(what: string, local: () => Promise<unknown>): Promise<Collected> {
  if (!cluster.isWorker) return local().then((d) => ({ parts: d === null ? [] : [d], missing: 0 }));
  return new Promise((resolve) => {
    const id = nextId++;
    const onReply = (m: unknown): void => {
      if (!isMessageOf<CollectReply>(m, "spillway:collect-reply") || m.id !== id) return;
      clearTimeout(timer);
      process.off("message", onReply);
      resolve({ parts: m.parts, missing: m.missing });
    };
    const timer = setTimeout(() => {
      process.off("message", onReply);
      resolve({ parts: [], missing: 1 });
    }, COLLECT_TIMEOUT_MS + 1_000);
    process.on("message", onReply);
    process.send?.({ type: "spillway:collect-request", id, what } satisfies CollectRequest);
  });
}

/** The primary's side of collecting: what {@link relayCollect} returns. */
export type CollectFromWorkers = (what: string) => Promise<Collected>;

/**
 * In the primary: relays workers' collect requests to every worker ready for
 * them and their answers back. Returns the same collection for the primary's
 * own use (its metrics port).
 */
export function relayCollect(): CollectFromWorkers {
  const ready = new Map<number, Set<string>>();
  let nextRid = 0;
  const pending = new Map<number, { parts: unknown[]; waiting: Set<number>; done: () => void }>();
  const answered = (rid: number, workerId: number, data: unknown): void => {
    const p = pending.get(rid);
    if (!p || !p.waiting.delete(workerId)) return;
    if (data !== null && data !== undefined) p.parts.push(data);
    if (p.waiting.size === 0) p.done();
  };
  const gone = (w: Worker): void => {
    ready.delete(w.id);
    for (const [rid] of pending) answered(rid, w.id, null);
  };
  cluster.on("exit", gone);
  cluster.on("disconnect", gone);

  const collect = (what: string): Promise<Collected> =>
    new Promise((resolve) => {
      const rid = nextRid++;
      const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && w.isConnected() && !!ready.get(w.id)?.has(what));
      const parts: unknown[] = [];
      const waiting = new Set(workers.map((w) => w.id));
      const timer = setTimeout(() => entry.done(), COLLECT_TIMEOUT_MS);
      const entry = {
        parts,
        waiting,
        done: (): void => {
          clearTimeout(timer);
          pending.delete(rid);
          resolve({ parts, missing: waiting.size });
        },
      };
      pending.set(rid, entry);
      if (workers.length === 0) return entry.done();
      for (const w of workers) w.send({ type: "spillway:collect", rid, what } satisfies Collect);
    });

  cluster.on("message", (worker, m: unknown) => {
    if (isMessageOf<CollectReady>(m, "spillway:collect-ready")) {
      let set = ready.get(worker.id);
      if (!set) ready.set(worker.id, (set = new Set()));
      set.add(m.what);
      return;
    }
    if (isMessageOf<CollectAnswer>(m, "spillway:collect-answer")) return answered(m.rid, worker.id, m.data);
    if (!isMessageOf<CollectRequest>(m, "spillway:collect-request")) return;
    void collect(m.what).then(({ parts, missing }) => {
      if (worker.isConnected()) worker.send({ type: "spillway:collect-reply", id: m.id, parts, missing } satisfies CollectReply);
    });
  });
  return collect;
}
