/**
 * `npx tsx load/silero-run-bench.ts [--before DIR] [--rounds 9] [--batches 1,5,20]`:
 * the CPU of one Silero inference (µs per run, all threads, `process.cpuUsage`)
 * at batch sizes 1, 5 and 20, the model file's graph against the graph
 * specialized at load (`src/audio/silero-graph.ts`), alternated round by
 * round in one process so both see the same host. Runs go through the
 * loader's own path (`probability()` with B attached streams, so each batch
 * runs at once): the gather/scatter of state and the tensors are included.
 * "file" is this tree's loader with `specialize: false`, or with `--before
 * DIR` the loader of the tree at DIR (e.g. a worktree of main before this
 * change). Prints the median and range of the rounds and new / old.
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { ROOT } from "./procs.js";
import type * as SileroModelModule from "../src/audio/silero-model.js";

const { values } = parseArgs({
  options: {
    before: { type: "string" },
    rounds: { type: "string", default: "9" },
    batches: { type: "string", default: "1,5,20" },
  },
});

type Model = SileroModelModule.SileroModel;
const here = (await import(pathToFileURL(join(ROOT, "src/audio/silero-model.ts")).href)) as typeof SileroModelModule;
const old: Model = values.before
  ? await ((await import(pathToFileURL(join(values.before, "src/audio/silero-model.ts")).href)) as typeof SileroModelModule).loadSileroModel()
  : await here.loadSileroModel(undefined, { specialize: false });
const fresh = await here.loadSileroModel();
if (!fresh.graph?.specialized) throw new Error(`the specialized graph did not load: ${JSON.stringify(fresh.graph)}`);
console.log(`Silero run bench: file graph from ${values.before ?? "this tree (specialize: false)"}; specialized: ${JSON.stringify(fresh.graph)}`);

/** B streams of a tone in noise, each its own state. */
function streams(model: Model, b: number): { frames: Float32Array[]; states: ReturnType<Model["newState"]>[] } {
  const frames = Array.from({ length: b }, (_, k) => new Float32Array(512).map((_, i) => 0.2 * Math.sin(i / (5 + k)) + 0.01 * Math.sin(i * 7.3 + k)));
  return { frames, states: frames.map(() => model.newState()) };
}

/** CPU µs per batch of `b` over `n` batches. */
async function perRun(model: Model, b: number, n: number): Promise<number> {
  const { frames, states } = streams(model, b);
  const detach = frames.map(() => model.attach());
  const batches0 = model.stats.batches;
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await Promise.all(frames.map((f, k) => model.probability(f, states[k]!)));
  const c = process.cpuUsage(c0);
  for (const d of detach) d();
  if (model.stats.batches - batches0 !== n) throw new Error(`expected ${n} batches of ${b}, ran ${model.stats.batches - batches0}`);
  return (c.user + c.system) / n;
}

const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
const rounds = Number(values.rounds);
for (const b of values.batches.split(",").map(Number)) {
  const n = Math.max(20, Math.round(20_000 / (60 + 45 * b)));
  await perRun(old, b, n);
  await perRun(fresh, b, n);
  const a: number[] = [];
  const z: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // Alternate which goes first.
    if (r % 2 === 0) {
      a.push(await perRun(old, b, n));
      z.push(await perRun(fresh, b, n));
    } else {
      z.push(await perRun(fresh, b, n));
      a.push(await perRun(old, b, n));
    }
  }
  const range = (x: number[]): string => `${Math.min(...x).toFixed(0)}–${Math.max(...x).toFixed(0)}`;
  console.log(
    `batch ${String(b).padStart(2)}: file graph ${median(a).toFixed(0)} µs/run (${range(a)}), specialized ${median(z).toFixed(0)} µs/run (${range(z)}), specialized/file ${(median(z) / median(a)).toFixed(2)} | ${rounds} rounds of ${n} runs`,
  );
}
