/**
 * `npx tsx load/silero-cold-bench.ts [--root DIR] [--batches 1,2,5,10,20,32] [--seconds 1.5] [--gap-ms 8]`:
 * the CPU of one Silero run (µs, `process.cpuUsage` around the loader's
 * `probability()` calls of one batch) back to back ("hot") and with the
 * process asleep `--gap-ms` between runs ("cold", as in the gateway, which
 * does other work between batches). On this project's shared 2-core host a
 * cold run costs a fixed ~0.6–0.7 ms more than a hot one whatever the batch
 * size (thrashing 4 MB of data between hot runs does not do it; sleeping
 * does), which is why fewer, larger batches save most (docs/PERFORMANCE.md,
 * "voicecpu2").
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { ROOT } from "./procs.js";
import type * as SileroModelModule from "../src/audio/silero-model.js";

const { values } = parseArgs({
  options: {
    root: { type: "string" },
    batches: { type: "string", default: "1,2,5,10,20,32" },
    seconds: { type: "string", default: "1.5" },
    "gap-ms": { type: "string", default: "8" },
  },
});

const mod = (await import(pathToFileURL(join(values.root ?? ROOT, "src/audio/silero-model.ts")).href)) as typeof SileroModelModule;
const model = await mod.loadSileroModel();
const gap = Number(values["gap-ms"]);
for (const b of values.batches.split(",").map(Number)) {
  const frames = Array.from({ length: b }, (_, k) => new Float32Array(512).map((_, i) => 0.2 * Math.sin(i / (5 + k)) + 0.01 * Math.sin(i * 7.3 + k)));
  const states = frames.map(() => model.newState());
  // Every stream attached with a frame waiting: each batch runs at once.
  const detach = frames.map(() => model.attach());
  const out: string[] = [];
  for (const mode of ["hot", "cold"] as const) {
    let cpu = 0;
    let n = 0;
    const end = Date.now() + Number(values.seconds) * 1000;
    while (Date.now() < end) {
      const a = process.cpuUsage();
      await Promise.all(frames.map((f, k) => model.probability(f, states[k]!)));
      const d = process.cpuUsage(a);
      cpu += d.user + d.system;
      n++;
      if (mode === "cold") await new Promise((r) => setTimeout(r, gap));
    }
    out.push(`${mode} ${(cpu / n).toFixed(0)} µs/run (${(cpu / n / b).toFixed(0)} µs/frame, ${n} runs)`);
  }
  for (const d of detach) d();
  console.log(`batch ${String(b).padStart(2)}: ${out.join(" | ")}`);
}
