/**
 * The few edits of an ONNX model (`onnx.proto`'s ModelProto, protobuf binary)
 * that the Silero loader makes before onnxruntime sees the file, done on the
 * wire with `@bufbuild/protobuf/wire` rather than through generated classes:
 * the model's 1.8 MB of weights are kept as the bytes they are, and only the
 * top-level graph's nodes, inputs, outputs and initializers are taken apart.
 * Field numbers are onnx.proto's (ModelProto.graph = 7; GraphProto.node = 1,
 * initializer = 5, input = 11, output = 12, value_info = 13; NodeProto.input
 * = 1, output = 2, name = 3, op_type = 4, attribute = 5; AttributeProto.name
 * = 1, i = 3, g = 6, ints = 8; TensorProto.dims = 1, data_type = 2,
 * float_data = 4, int64_data = 7, name = 8, raw_data = 9).
 *
 * Everything here throws an `Error` naming what it could not read or do; it
 * never half-edits: each function returns a new value and leaves its input
 * as it was.
 */
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

/** TensorProto.DataType values used here. */
export const ONNX_FLOAT = 1;
export const ONNX_INT64 = 7;
export const ONNX_BOOL = 9;

/** One attribute of a node, kept as its bytes plus what the edits read. */
export interface OnnxAttribute {
  readonly name: string;
  readonly bytes: Uint8Array;
  /** `s` (a string attribute), decoded. */
  readonly string?: string;
  /** `i` (an int attribute). */
  readonly int?: bigint;
  /** `ints`. */
  readonly ints?: readonly bigint[];
  /** `g` (a subgraph: an If branch), as GraphProto bytes. */
  readonly graph?: Uint8Array;
}

/** A node: its names and attributes read, the rest of its fields kept as bytes. */
export interface OnnxNode {
  readonly op: string;
  /** The operator's domain ("" for the default ai.onnx). */
  readonly domain: string;
  readonly name: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes: readonly OnnxAttribute[];
  /** The NodeProto as it was read (written back unchanged). */
  readonly bytes: Uint8Array;
}

/** A graph input or output (ValueInfoProto), by name. */
export interface OnnxValue {
  readonly name: string;
  readonly bytes: Uint8Array;
}

/** A graph taken apart; value_info (shape hints) is dropped on write, onnxruntime infers shapes itself. */
export interface OnnxGraph {
  readonly nodes: readonly OnnxNode[];
  /** TensorProto bytes by name. */
  readonly initializers: ReadonlyMap<string, Uint8Array>;
  readonly inputs: readonly OnnxValue[];
  readonly outputs: readonly OnnxValue[];
  /** Fields kept as they are (name, doc_string, …), as encoded fields. */
  readonly rest: readonly Uint8Array[];
}

/** A model: its graph taken apart, every other field of ModelProto kept as encoded. */
export interface OnnxModel {
  readonly graph: OnnxGraph;
  readonly rest: readonly Uint8Array[];
}

interface Field {
  readonly no: number;
  /** The whole encoded field (tag included). */
  readonly encoded: Uint8Array;
  /** The payload of a length-delimited field. */
  readonly value?: Uint8Array;
  /** A varint's value. */
  readonly varint?: bigint;
}

function readFields(bytes: Uint8Array, what: string): Field[] {
  const r = new BinaryReader(bytes);
  const out: Field[] = [];
  try {
    while (r.pos < r.len) {
      const start = r.pos;
      const [no, wt] = r.tag();
      if (wt === WireType.LengthDelimited) {
        const value = r.bytes();
        out.push({ no, encoded: bytes.subarray(start, r.pos), value });
      } else if (wt === WireType.Varint) {
        const v = BigInt(r.int64());
        out.push({ no, encoded: bytes.subarray(start, r.pos), varint: v });
      } else {
        r.skip(wt, no);
        out.push({ no, encoded: bytes.subarray(start, r.pos) });
      }
    }
  } catch (e) {
    throw new Error(`cannot read ONNX ${what}: ${(e as Error).message}`);
  }
  return out;
}

const text = new TextDecoder();
const str = (b: Uint8Array): string => text.decode(b);

/** Repeated int64 field `no` (packed or not) of a message's fields. */
function int64s(fields: Field[], no: number): bigint[] {
  const out: bigint[] = [];
  for (const f of fields) {
    if (f.no !== no) continue;
    if (f.varint !== undefined) out.push(f.varint);
    else if (f.value) {
      const r = new BinaryReader(f.value);
      while (r.pos < r.len) out.push(BigInt(r.int64()));
    }
  }
  return out;
}

function readAttribute(bytes: Uint8Array): OnnxAttribute {
  const f = readFields(bytes, "attribute");
  const name = f.find((x) => x.no === 1)?.value;
  const int = f.find((x) => x.no === 3)?.varint;
  const graph = f.find((x) => x.no === 6)?.value;
  const s = f.find((x) => x.no === 4)?.value;
  const ints = f.some((x) => x.no === 8) ? int64s(f, 8) : undefined;
  return {
    name: name ? str(name) : "",
    bytes,
    ...(s ? { string: str(s) } : {}),
    ...(int !== undefined ? { int } : {}),
    ...(ints ? { ints } : {}),
    ...(graph ? { graph } : {}),
  };
}

function readNode(bytes: Uint8Array): OnnxNode {
  const f = readFields(bytes, "node");
  const one = (no: number): string => {
    const v = f.find((x) => x.no === no)?.value;
    return v ? str(v) : "";
  };
  return {
    op: one(4),
    domain: one(7),
    name: one(3),
    inputs: f.filter((x) => x.no === 1).map((x) => str(x.value!)),
    outputs: f.filter((x) => x.no === 2).map((x) => str(x.value!)),
    attributes: f.filter((x) => x.no === 5).map((x) => readAttribute(x.value!)),
    bytes,
  };
}

function valueName(bytes: Uint8Array): string {
  const v = readFields(bytes, "value info").find((x) => x.no === 1)?.value;
  return v ? str(v) : "";
}

/** The name of a TensorProto. */
export function tensorName(bytes: Uint8Array): string {
  const v = readFields(bytes, "tensor").find((x) => x.no === 8)?.value;
  return v ? str(v) : "";
}

/** Takes a GraphProto apart. */
export function readGraph(bytes: Uint8Array): OnnxGraph {
  const nodes: OnnxNode[] = [];
  const initializers = new Map<string, Uint8Array>();
  const inputs: OnnxValue[] = [];
  const outputs: OnnxValue[] = [];
  const rest: Uint8Array[] = [];
  for (const f of readFields(bytes, "graph")) {
    if (f.no === 1) nodes.push(readNode(f.value!));
    else if (f.no === 5) initializers.set(tensorName(f.value!), f.value!);
    else if (f.no === 11) inputs.push({ name: valueName(f.value!), bytes: f.value! });
    else if (f.no === 12) outputs.push({ name: valueName(f.value!), bytes: f.value! });
    else if (f.no !== 13) rest.push(f.encoded);
  }
  return { nodes, initializers, inputs, outputs, rest };
}

/** Encodes a graph (nodes, initializers, inputs, outputs, then the kept fields). */
export function writeGraph(g: OnnxGraph): Uint8Array {
  const w = new BinaryWriter();
  for (const n of g.nodes) w.tag(1, WireType.LengthDelimited).bytes(n.bytes);
  for (const t of g.initializers.values()) w.tag(5, WireType.LengthDelimited).bytes(t);
  for (const v of g.inputs) w.tag(11, WireType.LengthDelimited).bytes(v.bytes);
  for (const v of g.outputs) w.tag(12, WireType.LengthDelimited).bytes(v.bytes);
  for (const r of g.rest) w.raw(r);
  return w.finish();
}

/** Takes a ModelProto apart (throws when it has no graph or cannot be read). */
export function readModel(bytes: Uint8Array): OnnxModel {
  let graph: OnnxGraph | undefined;
  const rest: Uint8Array[] = [];
  for (const f of readFields(bytes, "model")) {
    if (f.no === 7) graph = readGraph(f.value!);
    else rest.push(f.encoded);
  }
  if (!graph) throw new Error("ONNX model has no graph");
  return { graph, rest };
}

/** Encodes a model. */
export function writeModel(m: OnnxModel): Uint8Array {
  const w = new BinaryWriter();
  for (const r of m.rest) w.raw(r);
  w.tag(7, WireType.LengthDelimited).bytes(writeGraph(m.graph));
  return w.finish();
}

/** A TensorProto with `raw_data` (little-endian, as ONNX stores it). */
export function tensor(name: string, dims: readonly number[], data: Float32Array | BigInt64Array): Uint8Array {
  const w = new BinaryWriter();
  for (const d of dims) w.tag(1, WireType.Varint).int64(d);
  w.tag(2, WireType.Varint).int32(data instanceof Float32Array ? ONNX_FLOAT : ONNX_INT64);
  w.tag(8, WireType.LengthDelimited).string(name);
  w.tag(9, WireType.LengthDelimited).bytes(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return w.finish();
}

/** An int64 tensor. */
export const int64Tensor = (name: string, dims: readonly number[], values: readonly number[]): Uint8Array =>
  tensor(name, dims, BigInt64Array.from(values, (v) => BigInt(v)));

/** Dims and float values of a float TensorProto (`raw_data` or `float_data`; throws for other types and external data). */
export function floatTensor(bytes: Uint8Array): { dims: number[]; data: Float32Array } {
  const f = readFields(bytes, "tensor");
  const dims = int64s(f, 1).map(Number);
  const type = f.find((x) => x.no === 2)?.varint;
  if (type !== BigInt(ONNX_FLOAT)) throw new Error(`tensor ${tensorName(bytes)} is not float32`);
  const n = dims.reduce((a, b) => a * b, 1);
  const raw = f.find((x) => x.no === 9)?.value;
  let data: Float32Array;
  if (raw) {
    // Copied: the bytes may not be 4-aligned within the file.
    data = new Float32Array(new Uint8Array(raw).buffer);
  } else {
    const values: number[] = [];
    for (const x of f) {
      if (x.no !== 4) continue;
      if (x.value) {
        const r = new BinaryReader(x.value);
        while (r.pos < r.len) values.push(r.float());
      } else values.push(new BinaryReader(x.encoded.subarray(1)).float());
    }
    data = Float32Array.from(values);
  }
  if (data.length !== n) throw new Error(`tensor ${tensorName(bytes)} has ${data.length} values for dims [${dims.join(", ")}]`);
  return { dims, data };
}

/** An int attribute. */
export function intAttribute(name: string, value: number): Uint8Array {
  return new BinaryWriter().tag(1, WireType.LengthDelimited).string(name).tag(3, WireType.Varint).int64(value).tag(20, WireType.Varint).int32(2).finish();
}

/** An ints attribute. */
export function intsAttribute(name: string, values: readonly number[]): Uint8Array {
  const w = new BinaryWriter().tag(1, WireType.LengthDelimited).string(name);
  for (const v of values) w.tag(8, WireType.Varint).int64(v);
  return w.tag(20, WireType.Varint).int32(7).finish();
}

/** A new node (ai.onnx domain). */
export function node(op: string, name: string, inputs: readonly string[], outputs: readonly string[], attributes: readonly Uint8Array[] = []): OnnxNode {
  const w = new BinaryWriter();
  for (const i of inputs) w.tag(1, WireType.LengthDelimited).string(i);
  for (const o of outputs) w.tag(2, WireType.LengthDelimited).string(o);
  w.tag(3, WireType.LengthDelimited).string(name);
  w.tag(4, WireType.LengthDelimited).string(op);
  for (const a of attributes) w.tag(5, WireType.LengthDelimited).bytes(a);
  const bytes = w.finish();
  return readNode(bytes);
}

/** A graph output of `name` with element type `elemType` and no shape (for probing intermediate values). */
export function outputValue(name: string, elemType: number): OnnxValue {
  const bytes = new BinaryWriter()
    .tag(1, WireType.LengthDelimited).string(name)
    .tag(2, WireType.LengthDelimited).fork() // TypeProto
    .tag(1, WireType.LengthDelimited).fork() // .tensor_type
    .tag(1, WireType.Varint).int32(elemType) // .elem_type
    .join().join().finish();
  return { name, bytes };
}

/** `graph` with input `name` made a constant initializer (`value`, a TensorProto that must be named `name`). */
export function withConstantInput(graph: OnnxGraph, name: string, value: Uint8Array): OnnxGraph {
  if (!graph.inputs.some((v) => v.name === name)) throw new Error(`the graph has no input ${name}`);
  const initializers = new Map(graph.initializers);
  initializers.set(name, value);
  return { ...graph, inputs: graph.inputs.filter((v) => v.name !== name), initializers };
}

/**
 * `graph` with the If node at `index` replaced by the nodes of one of its
 * branches (`then_branch` when `cond`) and an Identity per output. Branch
 * initializers join the graph's; throws when a name the branch defines is
 * already defined outside it (the inlined graph would be ambiguous).
 */
export function inlineIf(graph: OnnxGraph, index: number, cond: boolean): OnnxGraph {
  const ifNode = graph.nodes[index];
  if (ifNode?.op !== "If") throw new Error(`node ${index} is not an If`);
  const attr = ifNode.attributes.find((a) => a.name === (cond ? "then_branch" : "else_branch"));
  if (!attr?.graph) throw new Error(`If ${ifNode.name} has no ${cond ? "then" : "else"} branch`);
  const branch = readGraph(attr.graph);
  if (branch.outputs.length !== ifNode.outputs.length) throw new Error(`If ${ifNode.name}: branch outputs do not match`);
  const defined = new Set<string>([...graph.initializers.keys(), ...graph.inputs.map((v) => v.name)]);
  for (const n of graph.nodes) for (const o of n.outputs) defined.add(o);
  const initializers = new Map(graph.initializers);
  for (const [name, t] of branch.initializers) {
    if (defined.has(name)) throw new Error(`If ${ifNode.name}: branch initializer ${name} is also defined outside it`);
    initializers.set(name, t);
  }
  for (const n of branch.nodes) for (const o of n.outputs) if (o && defined.has(o)) throw new Error(`If ${ifNode.name}: branch value ${o} is also defined outside it`);
  const joins = branch.outputs.map((o, i) => node("Identity", `${ifNode.name}/${o.name}`, [o.name], [ifNode.outputs[i]!]));
  const nodes = [...graph.nodes.slice(0, index), ...branch.nodes, ...joins, ...graph.nodes.slice(index + 1)];
  return { ...graph, nodes, initializers };
}

/**
 * `graph` without the nodes that no graph output depends on and the
 * initializers no node uses. Values used inside a subgraph (an If branch
 * reading an outer value) count as used.
 */
export function pruned(graph: OnnxGraph): OnnxGraph {
  const needed = new Set(graph.outputs.map((v) => v.name));
  const keep: boolean[] = new Array<boolean>(graph.nodes.length).fill(false);
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const n = graph.nodes[i]!;
    if (!n.outputs.some((o) => needed.has(o))) continue;
    keep[i] = true;
    for (const x of n.inputs) needed.add(x);
    for (const a of n.attributes) if (a.graph) for (const x of subgraphReads(a.graph)) needed.add(x);
  }
  const nodes = graph.nodes.filter((_, i) => keep[i]);
  const initializers = new Map([...graph.initializers].filter(([name]) => needed.has(name)));
  return { ...graph, nodes, initializers };
}

/** Every value name a subgraph's nodes read (its own and outer ones), recursively. */
function subgraphReads(bytes: Uint8Array): string[] {
  const g = readGraph(bytes);
  const out: string[] = [];
  for (const n of g.nodes) {
    out.push(...n.inputs);
    for (const a of n.attributes) if (a.graph) out.push(...subgraphReads(a.graph));
  }
  return out;
}

/** The model's opset version for `domain` ("" = ai.onnx), or undefined when it imports none. */
export function opsetVersion(model: OnnxModel, domain = ""): number | undefined {
  for (const r of model.rest) {
    const [f] = readFields(r, "model field");
    if (f?.no !== 8 || !f.value) continue;
    const set = readFields(f.value, "opset import");
    const d = set.find((x) => x.no === 1)?.value;
    if ((d ? str(d) : "") !== domain) continue;
    const v = set.find((x) => x.no === 2)?.varint;
    return v === undefined ? undefined : Number(v);
  }
  return undefined;
}
