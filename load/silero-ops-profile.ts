/**
 * `npx tsx load/silero-ops-profile.ts [--batch 20] [--runs 400] [--exact] [--model FILE]`:
 * onnxruntime's own op-level profile (`enableProfiling`) of the Silero graph
 * the loader runs (`specializeSileroGraph`; `--exact` = `matMuls: false`;
 * `--model` = an ONNX file as it is), at one batch size: the median kernel
 * time of each node over the runs after the first 50, summed by op type,
 * and the 25 dearest nodes. The profiler itself makes runs 2–3× slower
 * (its `model_run` median against ~0.5–0.7 ms unprofiled at batch 20), so
 * read the shares, not the sums.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-node";
import { specializeSileroGraph } from "../src/audio/silero-graph.js";
import { defaultSileroModelPath, SILERO_FRAME, SILERO_RATE } from "../src/audio/silero-model.js";

const { values } = parseArgs({
  options: { batch: { type: "string", default: "20" }, runs: { type: "string", default: "400" }, exact: { type: "boolean", default: false }, model: { type: "string" } },
});
const B = Number(values.batch);
const bytes = values.model
  ? readFileSync(values.model)
  : (await specializeSileroGraph(ort, readFileSync(defaultSileroModelPath()), SILERO_RATE, SILERO_FRAME, { matMuls: !values.exact })).bytes;
const dir = mkdtempSync(join(tmpdir(), "spillway-silero-prof-"));
const s = await ort.InferenceSession.create(bytes, {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: "sequential",
  enableProfiling: true,
  profileFilePrefix: join(dir, "p"),
  logSeverityLevel: 3,
});
const f: Record<string, ort.Tensor> = {
  input: new ort.Tensor("float32", new Float32Array(B * SILERO_FRAME).map((_, i) => 0.2 * Math.sin(i / 7) + 0.01 * Math.sin(i * 7.3)), [B, SILERO_FRAME]),
  h: new ort.Tensor("float32", new Float32Array(B * 128), [2, B, 64]),
  c: new ort.Tensor("float32", new Float32Array(B * 128), [2, B, 64]),
};
if (s.inputNames.includes("sr")) f["sr"] = new ort.Tensor("int64", BigInt64Array.from([BigInt(SILERO_RATE)]), []);
for (let i = 0; i < Number(values.runs); i++) await s.run(f);
s.endProfiling();
await s.release();
const file = readdirSync(dir).find((x) => x.endsWith(".json"));
if (!file) throw new Error("onnxruntime wrote no profile");
const events = JSON.parse(readFileSync(join(dir, file), "utf8")) as Array<{ cat: string; name: string; dur: number; args?: { op_name?: string } }>;
rmSync(dir, { recursive: true, force: true });
const byNode = new Map<string, { op: string; d: number[] }>();
const runs: number[] = [];
for (const e of events) {
  if (e.cat === "Session" && e.name === "model_run") runs.push(e.dur);
  if (e.cat !== "Node" || !e.name.endsWith("_kernel_time")) continue;
  const k = e.name.replace(/_kernel_time$/, "");
  const r = byNode.get(k) ?? { op: e.args?.op_name ?? "?", d: [] };
  r.d.push(e.dur);
  byNode.set(k, r);
}
const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] ?? 0;
const rows = [...byNode].map(([k, v]) => ({ k, op: v.op, med: median(v.d.slice(50)) })).sort((a, b) => b.med - a.med);
const byOp = new Map<string, number>();
for (const r of rows) byOp.set(r.op, (byOp.get(r.op) ?? 0) + r.med);
const total = rows.reduce((a, r) => a + r.med, 0);
console.log(`batch ${B}: model_run median ${median(runs.slice(50))} µs (profiled), node medians sum ${total.toFixed(0)} µs over ${rows.length} nodes`);
for (const [op, d] of [...byOp].sort((a, b) => b[1] - a[1])) console.log(`  ${op.padEnd(14)} ${d.toFixed(0).padStart(5)} µs  ${((100 * d) / total).toFixed(1)}%`);
for (const r of rows.slice(0, 25)) console.log(`  ${r.med.toFixed(0).padStart(5)} µs  ${r.op.padEnd(12)} ${r.k}`);
