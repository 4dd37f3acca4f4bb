/**
 * `npx tsx load/silero-pair-bench.ts [--streams 20] [--frames 120] [--rounds 5]`:
 * the gateway's two ways of running S streams' frames through the loader
 * (`SileroModel`, state gather/scatter included), as the realtime door does
 * at S callers: one frame of every stream per wake-up every 32 ms
 * (`probability`, the model asleep in between), against two frames of every
 * stream per wake-up every 64 ms (`pair`: two runs back to back, silero6).
 * Prints µs of process CPU per frame (the process is otherwise asleep), the
 * runs and wake-ups, rounds alternated, and the largest |Δp| between the two
 * (0: the same numbers).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { loadSileroModel, SILERO_FRAME, type SileroModel } from "../src/audio/silero-model.js";

const { values } = parseArgs({
  options: {
    streams: { type: "string", default: "20" },
    frames: { type: "string", default: "120" },
    rounds: { type: "string", default: "5" },
  },
});
const S = Number(values.streams);
const F = Number(values.frames) - (Number(values.frames) % 2);

// Speech-like frames: a few harmonics and noise, different per stream and frame.
const frames = Array.from({ length: S }, (_, s) =>
  Array.from({ length: F }, (_, f) => {
    let seed = s * 7919 + f * 104729 + 1;
    return new Float32Array(SILERO_FRAME).map((_, i) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return 0.2 * Math.sin((i * (120 + 10 * s)) / 2500 + f) * Math.sin(i / 90) + 0.02 * ((seed / 0x7fffffff) * 2 - 1);
    });
  }),
);

async function single(model: SileroModel): Promise<{ us: number; p: number[][] }> {
  const states = frames.map(() => model.newState());
  const p: number[][] = frames.map(() => []);
  let cpu = 0;
  for (let f = 0; f < F; f++) {
    await sleep(32);
    const c0 = process.cpuUsage();
    const ps = await Promise.all(frames.map((fs, s) => model.probability(fs[f]!, states[s]!)));
    const c = process.cpuUsage(c0);
    cpu += c.user + c.system;
    ps.forEach((x, s) => p[s]!.push(x));
  }
  return { us: cpu / (F * S), p };
}

async function paired(model: SileroModel): Promise<{ us: number; p: number[][] }> {
  const states = frames.map(() => model.newState());
  const p: number[][] = frames.map(() => []);
  let cpu = 0;
  for (let f = 0; f < F; f += 2) {
    await sleep(64);
    const c0 = process.cpuUsage();
    const ps = await Promise.all(frames.map((fs, s) => model.pair!(fs[f]!, fs[f + 1]!, states[s]!)));
    const c = process.cpuUsage(c0);
    cpu += c.user + c.system;
    ps.forEach((x, s) => p[s]!.push(...x));
  }
  return { us: cpu / (F * S), p };
}

const model = await loadSileroModel();
const detach = frames.map(() => model.attach());
console.log(`Silero pairs: ${S} streams × ${F} frames per round, ${model.graph?.specialized ? "specialized graph" : "file graph"}`);
const a: number[] = [];
const b: number[] = [];
for (let r = 0; r <= Number(values.rounds); r++) {
  const s0 = { ...model.stats };
  const x = await single(model);
  const s1 = { ...model.stats };
  const y = await paired(model);
  const s2 = { ...model.stats };
  const diff = Math.max(...x.p.map((ps, s) => Math.max(...ps.map((q, f) => Math.abs(q - y.p[s]![f]!)))));
  // Round 0 warms up.
  if (r > 0) {
    a.push(x.us);
    b.push(y.us);
  }
  console.log(
    `${r === 0 ? "warm-up" : `round ${r}`}: one frame per wake-up ${x.us.toFixed(1)} µs/frame (${s1.runs! - s0.runs!} runs, ${s1.batches - s0.batches} wake-ups) | pairs ${y.us.toFixed(1)} µs/frame (${s2.runs! - s1.runs!} runs, ${s2.batches - s1.batches} wake-ups) | ratio ${(y.us / x.us).toFixed(2)} | max |Δp| ${diff.toExponential(1)}`,
  );
}
const med = (v: number[]): number => [...v].sort((p, q) => p - q)[Math.floor(v.length / 2)]!;
console.log(`median: one frame per wake-up ${med(a).toFixed(1)} µs/frame, pairs ${med(b).toFixed(1)} (ratio ${(med(b) / med(a)).toFixed(2)})`);
for (const d of detach) d();
