/**
 * `npx tsx load/silero-unroll-bench.ts [--streams 20] [--k 1,2,4] [--rounds 7] [--gap-ms 0,8]`:
 * would running k consecutive 32 ms frames of each stream in one inference
 * (the state carried inside the graph) cost less CPU per frame than k runs
 * of one frame each? The graph the loader runs (`specializeSileroGraph`) is
 * made k-step here: the input becomes [B, k, 512], the encoder (which has no
 * state) runs over all B·k frames as one batch, and the two LSTMs run a
 * sequence of k steps; `output` is [B, k]. Prints, per k, the CPU µs per
 * frame of one k-step run against k one-step runs of the same frames
 * (raw `session.run`, alternated, median of the rounds), back to back and
 * with the process asleep `--gap-ms` between runs (as in the gateway), and
 * the largest difference between the two's probabilities and state.
 */
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-node";
import { int64Tensor, intAttribute, intsAttribute, node, ONNX_FLOAT, outputValue, pruned, readModel, writeModel, type OnnxNode } from "../src/audio/onnx-graph.js";
import { specializeSileroGraph } from "../src/audio/silero-graph.js";
import { defaultSileroModelPath, SILERO_FRAME, SILERO_RATE } from "../src/audio/silero-model.js";

const { values } = parseArgs({
  options: {
    streams: { type: "string", default: "20" },
    k: { type: "string", default: "1,2,4" },
    rounds: { type: "string", default: "7" },
    "gap-ms": { type: "string", default: "0,8" },
  },
});

/** The specialized graph made k-step (see the module comment). */
function unrolled(bytes: Uint8Array): Uint8Array {
  const m = readModel(bytes);
  const g = m.graph;
  const lstm = g.nodes.findIndex((n) => n.op === "LSTM");
  const into = g.nodes.findIndex((n) => n.outputs[0] === g.nodes[lstm]!.inputs[0]);
  const out = g.nodes.findIndex((n) => n.outputs.includes("output"));
  const mean = g.nodes.findIndex((n) => n.op === "ReduceMean" && n.outputs[0] === g.nodes.find((x) => x.outputs.includes(g.nodes[out]!.inputs[0]!))?.inputs[0]);
  if (lstm < 0 || g.nodes[into]?.op !== "Transpose" || mean < 0) throw new Error("not the graph this bench knows");
  const rename = (n: OnnxNode): OnnxNode => (n.inputs.includes("input") ? node(n.op, n.name, n.inputs.map((i) => (i === "input" ? "k/input" : i)), n.outputs, n.attributes.map((a) => a.bytes)) : n);
  const initializers = new Map(g.initializers);
  initializers.set("k/flat", int64Tensor("k/flat", [2], [-1, SILERO_FRAME]));
  initializers.set("k/0", int64Tensor("k/0", [1], [0]));
  initializers.set("k/2", int64Tensor("k/2", [1], [2]));
  initializers.set("k/64", int64Tensor("k/64", [1], [64]));
  const head = [
    node("Reshape", "k/reshape", ["input", "k/flat"], ["k/input"]),
    node("Shape", "k/shape", ["input"], ["k/dims"]),
    node("Slice", "k/bk", ["k/dims", "k/0", "k/2"], ["k/bk"]),
    node("Concat", "k/seq_shape", ["k/bk", "k/64"], ["k/seq_shape"], [intAttribute("axis", 0)]),
  ];
  const seq = [
    node("Reshape", "k/rows", [g.nodes[into].inputs[0]!, "k/seq_shape"], ["k/rows"]),
    node("Transpose", "k/steps", ["k/rows"], [g.nodes[into].outputs[0]!], [intsAttribute("perm", [1, 0, 2])]),
  ];
  const nodes = g.nodes.flatMap((n, i) => {
    if (i === into) return seq;
    if (i === out) return [node("Identity", "k/output", [g.nodes[mean]!.inputs[0]!], ["output"])];
    return [rename(n)];
  });
  // Shapes left out: input is [B, k, 512] now, output [B, k].
  const inputs = g.inputs.map((v) => (v.name === "input" ? outputValue("input", ONNX_FLOAT) : v));
  const outputs = g.outputs.map((v) => (v.name === "output" ? outputValue("output", ONNX_FLOAT) : v));
  return writeModel({ ...m, graph: pruned({ ...g, initializers, inputs, outputs, nodes: [...head, ...nodes] }) });
}

const opts = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: "sequential" as const };
const spec = await specializeSileroGraph(ort, readFileSync(defaultSileroModelPath()), SILERO_RATE, SILERO_FRAME);
const one = await ort.InferenceSession.create(spec.bytes, opts);
const many = await ort.InferenceSession.create(unrolled(spec.bytes), opts);
const B = Number(values.streams);
const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
const signal = (k: number): Float32Array => new Float32Array(B * k * SILERO_FRAME).map((_, i) => 0.2 * Math.sin(i / (5 + (i % 7))) + 0.01 * Math.sin(i * 7.3));
const state = (): Float32Array => new Float32Array(B * 128).map((_, i) => 0.1 * Math.sin(i));
console.log(`Silero k-step bench: ${B} streams; one-step graph ${spec.bytes.length} bytes`);

for (const k of values.k.split(",").map(Number)) {
  const x = signal(k);
  /** k one-step runs, state carried; the last state and every probability. */
  const steps = async (): Promise<{ p: number[]; h: Float32Array }> => {
    let h = state();
    let c = state();
    const p: number[] = [];
    const rows = Array.from({ length: k }, (_, j) => {
      const f = new Float32Array(B * SILERO_FRAME);
      for (let b = 0; b < B; b++) f.set(x.subarray((b * k + j) * SILERO_FRAME, (b * k + j + 1) * SILERO_FRAME), b * SILERO_FRAME);
      return f;
    });
    for (let j = 0; j < k; j++) {
      const o = await one.run({ input: new ort.Tensor("float32", rows[j]!, [B, SILERO_FRAME]), h: new ort.Tensor("float32", h, [2, B, 64]), c: new ort.Tensor("float32", c, [2, B, 64]) });
      p.push(...(o["output"]!.data as Float32Array));
      h = o["hn"]!.data as Float32Array;
      c = o["cn"]!.data as Float32Array;
    }
    return { p, h };
  };
  const unrolledRun = async (): Promise<{ p: number[]; h: Float32Array }> => {
    const o = await many.run({ input: new ort.Tensor("float32", x, [B, k, SILERO_FRAME]), h: new ort.Tensor("float32", state(), [2, B, 64]), c: new ort.Tensor("float32", state(), [2, B, 64]) });
    const d = o["output"]!.data as Float32Array;
    // [B, k] → step-major as `steps` gives them.
    const p: number[] = [];
    for (let j = 0; j < k; j++) for (let b = 0; b < B; b++) p.push(d[b * k + j]!);
    return { p, h: o["hn"]!.data as Float32Array };
  };
  const a = await steps();
  const z = await unrolledRun();
  const diff = Math.max(...a.p.map((v, i) => Math.abs(v - z.p[i]!)), ...Array.from(a.h, (v, i) => Math.abs(v - z.h[i]!)));
  for (const gap of values["gap-ms"].split(",").map(Number)) {
    const cpu = async (f: () => Promise<unknown>): Promise<number> => {
      const n = gap > 0 ? 40 : 100;
      let t = 0;
      for (let i = 0; i < n; i++) {
        const c0 = process.cpuUsage();
        await f();
        const c = process.cpuUsage(c0);
        t += c.user + c.system;
        if (gap > 0) await sleep(gap);
      }
      return t / n / (B * k);
    };
    const s: number[] = [];
    const u: number[] = [];
    for (let r = 0; r < Number(values.rounds); r++) {
      if (r % 2 === 0) {
        s.push(await cpu(steps));
        u.push(await cpu(unrolledRun));
      } else {
        u.push(await cpu(unrolledRun));
        s.push(await cpu(steps));
      }
    }
    console.log(
      `k ${k}, gap ${gap} ms: ${k} one-step runs ${median(s).toFixed(1)} µs/frame, one ${k}-step run ${median(u).toFixed(1)} µs/frame, ratio ${(median(u) / median(s)).toFixed(2)} | max |Δ| ${diff.toExponential(2)}`,
    );
  }
}
