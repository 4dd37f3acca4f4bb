/**
 * `npx tsx load/voice-frames-bench.ts --before DIR`: CPU of the Silero
 * detector's own work per voice turn (resampling, 32 ms frames, the queue,
 * the speech state), this tree's `SileroVad` against another tree's (e.g.
 * main before its spare frames), over a stub model that answers every frame
 * of a batch at `setImmediate` (so only the detector's JavaScript and what
 * it allocates are measured, not onnxruntime). 20 detectors at once, as the
 * voice benchmark's callers, 4 s of non-silent audio each per turn in 20 ms
 * pieces; process CPU (every thread: the collector's helpers too) per turn,
 * 5 alternated rounds of 60 turns.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { SileroModel, SileroState } from "../src/audio/silero-model.js";
import { SileroVad } from "../src/doors/ws/silero-vad.js";

const { values } = parseArgs({ options: { before: { type: "string" }, rounds: { type: "string", default: "5" } } });
if (!values.before) throw new Error("--before DIR (another Spillway tree) is required");
const Before = ((await import(pathToFileURL(join(values.before, "src/doors/ws/silero-vad.ts")).href)) as { SileroVad: typeof SileroVad }).SileroVad;

/** A model whose every frame's answer comes at the next `setImmediate`, batched as the real one (a speech-like probability from the frame's energy). */
function stubModel(): SileroModel {
  let pending: Array<{ frame: Float32Array; resolve: (p: number) => void }> = [];
  const stats = { batches: 0, frames: 0 };
  return {
    stats,
    newState: () => ({}) as SileroState,
    attach: () => () => undefined,
    probability(frame) {
      return new Promise((resolve) => {
        if (pending.length === 0)
          setImmediate(() => {
            const batch = pending;
            pending = [];
            stats.batches++;
            for (const p of batch) {
              let e = 0;
              for (let i = 0; i < p.frame.length; i += 8) e += p.frame[i]! * p.frame[i]!;
              stats.frames++;
              p.resolve(e > 0.5 ? 0.9 : 0.1);
            }
          });
        pending.push({ frame, resolve });
      });
    },
  };
}

const x = new Int16Array(24_000 * 4);
for (let i = 0; i < x.length; i++) x[i] = Math.round(8000 * Math.sin(i / 7) * Math.sin(i / 900) + 300 * Math.sin(i * 1.3));
const pieces: Int16Array[] = [];
for (let i = 0; i < x.length; i += 480) pieces.push(x.slice(i, i + 480));
const CALLERS = 20;

async function turns(Vad: typeof SileroVad, n: number): Promise<number> {
  const model = stubModel();
  const c0 = process.cpuUsage();
  for (let t = 0; t < n; t += CALLERS) {
    const vads = Array.from({ length: CALLERS }, () => new Vad(Promise.resolve(model), { settings: { threshold: 0.5, prefixPaddingMs: 300, silenceDurationMs: 500 }, sampleRate: 24_000, startMs: 0, onEvent: () => undefined }));
    // The callers' pieces interleaved, a turn of the event loop between rounds of pieces (as paced appends would be).
    for (const p of pieces) {
      for (const v of vads) v.push(p);
      await new Promise((r) => setImmediate(r));
    }
    for (const v of vads) {
      await v.whenIdle();
      v.close();
    }
  }
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000 / n;
}

await turns(Before, 40);
await turns(SileroVad, 40);
for (let round = 1; round <= Number(values.rounds); round++) {
  const before = await turns(Before, 60);
  const after = await turns(SileroVad, 60);
  console.log(`round ${round}: before ${before.toFixed(2)} ms/turn, this tree ${after.toFixed(2)} ms/turn (${(before / after).toFixed(2)}×)`);
}
