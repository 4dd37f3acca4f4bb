/**
 * `npx tsx load/voice-queue-bench.ts --before DIR [--rounds 7] [--pieces 200000]`:
 * the realtime door's audio queue (src/doors/ws/async-queue.ts) as the
 * Deepgram feed reads it, this tree against `--before DIR`'s, alternated in
 * one process. Each piece is pushed while the reader waits (as a client's
 * 20 ms append wakes the feed), and the producer goes on once the reader has
 * taken it (a ping-pong both trees pay alike). Prints CPU µs per piece.
 */
import { pathToFileURL } from "node:url";
import { join } from "node:path";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { AsyncQueue } from "../src/doors/ws/async-queue.js";
import { tryNext } from "../src/engine/poll.js";

const { values } = parseArgs({ options: { before: { type: "string" }, rounds: { type: "string", default: "7" }, pieces: { type: "string", default: "200000" } } });
if (!values.before) throw new Error("--before DIR is required");
const BeforeQueue = ((await import(pathToFileURL(join(values.before, "src/doors/ws/async-queue.ts")).href)) as { AsyncQueue: typeof AsyncQueue }).AsyncQueue;

async function run(Q: typeof AsyncQueue, n: number): Promise<number> {
  const q = new Q<Uint8Array>();
  const it = q[Symbol.asyncIterator]();
  let taken: (() => void) | undefined;
  let got = 0;
  const reader = (async () => {
    for (;;) {
      const r = tryNext(it) ?? (await it.next());
      if (r.done) return;
      got += r.value.length;
      taken?.();
    }
  })();
  const bytes = new Uint8Array(960);
  const t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const took = new Promise<void>((r) => (taken = r));
    q.push(bytes);
    await took;
  }
  q.close();
  await reader;
  const t = process.cpuUsage(t0);
  if (got !== n * 960) throw new Error("lost pieces");
  return (t.user + t.system) / n;
}

const n = Number(values.pieces);
await run(AsyncQueue, n / 10);
await run(BeforeQueue, n / 10);
console.log(`load ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
for (let round = 1; round <= Number(values.rounds); round++) {
  const first = round % 2 === 1;
  const a = first ? await run(AsyncQueue, n) : undefined;
  const b = await run(BeforeQueue, n);
  const after = a ?? (await run(AsyncQueue, n));
  console.log(`round ${round}: before ${b.toFixed(3)} µs/piece, this tree ${after.toFixed(3)} (${(after / b).toFixed(2)}×)`);
}
console.log(`load ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
