/**
 * `npx tsx load/voice-store-pool-bench.ts --before DIR [--rounds 5] [--sessions 400]`:
 * the append path of realtime voice sessions outside the gateway, this tree
 * against `--before DIR`'s, alternated in one process — the two levers of
 * voicecpu6 measured alone:
 *
 * - **stores**: 20 sessions at a time, each appending 4 s of 20 ms base64
 *   pieces (200) into its input buffer, the last 3 s of them also handed to
 *   a "transcription" that keeps them until the session ends (as Deepgram
 *   keeps a turn's audio). Before: the buffer's views are kept (no copy),
 *   every store fresh. This tree: stores from the pool, the transcription
 *   copies each piece (`Buffer.from`, as `TurnTranscription.push` does),
 *   `release` at the session's end. CPU µs and minor page faults per session.
 * - **queue**: one reader awaiting a session's audio queue, a piece pushed
 *   per loop turn (setImmediate), as the Deepgram feed reads it. µs per piece.
 */
import { pathToFileURL } from "node:url";
import { join } from "node:path";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { InputAudioBuffer } from "../src/doors/ws/input-buffer.js";
import { AsyncQueue } from "../src/doors/ws/async-queue.js";
import { tryNext } from "../src/engine/poll.js";

const { values } = parseArgs({ options: { before: { type: "string" }, rounds: { type: "string", default: "5" }, sessions: { type: "string", default: "400" }, pieces: { type: "string", default: "20000" } } });
if (!values.before) throw new Error("--before DIR is required");
type BufferClass = new (rate: number, bytesPerSample?: number) => InputAudioBuffer;
const Before = (await import(pathToFileURL(join(values.before, "src/doors/ws/input-buffer.ts")).href) as { InputAudioBuffer: BufferClass }).InputAudioBuffer;
const BeforeQueue = (await import(pathToFileURL(join(values.before, "src/doors/ws/async-queue.ts")).href) as { AsyncQueue: typeof AsyncQueue }).AsyncQueue;

const PIECES = 200;
const HELD_FROM = 50;
const CONCURRENT = 20;
const piece = (i: number): string => Buffer.from(Array.from({ length: 960 }, (_, k) => (k * 13 + i) & 0xff)).toString("base64");
const b64 = Array.from({ length: 16 }, (_, i) => piece(i));

function faults(): number {
  return process.resourceUsage().minorPageFault;
}

/** Runs `total` sessions, CONCURRENT at a time, piece by piece round robin; returns µs and faults per session. */
function sessions(total: number, after: boolean): { us: number; faults: number } {
  const make = (): InputAudioBuffer => (after ? new InputAudioBuffer(24_000, 2) : new Before(24_000, 2));
  const f0 = faults();
  const t0 = process.cpuUsage();
  for (let done = 0; done < total; done += CONCURRENT) {
    const group = Array.from({ length: CONCURRENT }, () => ({ buf: make(), held: [] as Uint8Array[] }));
    for (let p = 0; p < PIECES; p++) {
      for (const s of group) {
        const v = s.buf.stageBase64(b64[p % b64.length]!)!;
        s.buf.append(v);
        if (p < HELD_FROM) s.buf.dropBefore((p - 15) * 20);
        else s.held.push(after ? Buffer.from(v) : v);
      }
    }
    for (const s of group) {
      s.buf.clear();
      if (after) s.buf.release();
      s.held.length = 0;
    }
  }
  const t = process.cpuUsage(t0);
  return { us: (t.user + t.system) / total, faults: (faults() - f0) / total };
}

async function queue(Q: typeof AsyncQueue, n: number, poll: boolean): Promise<number> {
  const q = new Q<Uint8Array>();
  const it = q[Symbol.asyncIterator]();
  let got = 0;
  const reader = (async () => {
    for (;;) {
      const r = (poll ? tryNext(it) : undefined) ?? (await it.next());
      if (r.done) return;
      got += r.value.length;
    }
  })();
  const bytes = new Uint8Array(960);
  const t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    q.push(bytes);
    await new Promise((r) => setImmediate(r));
  }
  q.close();
  await reader;
  const t = process.cpuUsage(t0);
  if (got !== n * 960) throw new Error("lost pieces");
  return (t.user + t.system) / n;
}

const total = Number(values.sessions);
const n = Number(values.pieces);
sessions(CONCURRENT * 2, true);
sessions(CONCURRENT * 2, false);
console.log(`load ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
for (let round = 1; round <= Number(values.rounds); round++) {
  const order = round % 2 === 1 ? [true, false] : [false, true];
  const res: Record<string, { us: number; faults: number }> = {};
  for (const after of order) res[after ? "after" : "before"] = sessions(total, after);
  const qb = await queue(BeforeQueue, n, false);
  const qa = await queue(AsyncQueue, n, true);
  console.log(
    `round ${round} stores: before ${res["before"]!.us.toFixed(1)} µs ${res["before"]!.faults.toFixed(1)} faults / session, after ${res["after"]!.us.toFixed(1)} µs ${res["after"]!.faults.toFixed(1)} faults | queue: before ${qb.toFixed(2)} µs/piece, after ${qa.toFixed(2)}`,
  );
}
console.log(`load ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
