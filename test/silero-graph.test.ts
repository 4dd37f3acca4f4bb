/**
 * The Silero graph specialized at load time (`audio/silero-graph.ts`: `sr`
 * fixed at 16 kHz, `If` nodes inlined, depthwise convolutions rewritten)
 * against the model file's own graph, over real audio made at test time
 * (espeak-ng speech in sox noise, `-R` so every run hears the same track):
 * the same probabilities, bit for bit, one stream at a time and batched, and
 * so the same turn boundaries. Then what the loader does with files that are
 * not Silero v4 (the same error as before) and with a v4-shaped model it
 * cannot specialize (the file's graph runs).
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import * as ort from "onnxruntime-node";
import { readModel } from "../src/audio/onnx-graph.js";
import { RationalResampler } from "../src/audio/rational-resample.js";
import { specializeSileroGraph } from "../src/audio/silero-graph.js";
import { defaultSileroModelPath, loadSileroModel, SILERO_FRAME, SILERO_RATE, SILERO_SPECIALIZED_TOLERANCE, type SileroModel } from "../src/audio/silero-model.js";
import { SileroVad } from "../src/doors/ws/silero-vad.js";
import type { VadEvent, VadSettings } from "../src/doors/ws/vad.js";
import { noisySpeech, type NoisySpeech } from "./helpers/noisy-speech.js";

const SETTINGS: VadSettings = { threshold: 0.5, prefixPaddingMs: 300, silenceDurationMs: 500 };

let tracks: NoisySpeech[];
let fileGraph: SileroModel;
/** The default: exact rewrites plus the STFT as a MatMul (within {@link SILERO_SPECIALIZED_TOLERANCE}). */
let specialized: SileroModel;
/** `matMuls: false`: only the rewrites that keep every float. */
let exact: SileroModel;
let dir: string;

before(async () => {
  tracks = [
    await noisySpeech({ text: "Hello there. What is the weather like in Paris today?", burstAtMs: 1000, burstMs: 1200, burstAmplitude: 0.2, backgroundAmplitude: 0.02, speechAtMs: 3500, tailMs: 1500 }),
    await noisySpeech({ text: "Please book a table for two at eight, by the window.", burstAtMs: 300, burstMs: 600, burstAmplitude: 0.1, backgroundAmplitude: 0.08, speechAtMs: 1500, tailMs: 1200 }),
  ];
  fileGraph = await loadSileroModel(undefined, { specialize: false });
  specialized = await loadSileroModel();
  exact = await loadSileroModel(undefined, { matMuls: false });
  dir = mkdtempSync(join(tmpdir(), "spillway-silero-graph-"));
});

after(() => rmSync(dir, { recursive: true, force: true }));

/** The track as the detector feeds the model: 24 → 16 kHz, whole 512-sample frames. */
function frames(track: NoisySpeech): Float32Array[] {
  const pcm = new Int16Array(track.pcm.buffer.slice(track.pcm.byteOffset, track.pcm.byteOffset + track.pcm.length));
  const f16 = new RationalResampler(24_000, SILERO_RATE).push(pcm);
  const out: Float32Array[] = [];
  for (let at = 0; at + SILERO_FRAME <= f16.length; at += SILERO_FRAME) out.push(f16.slice(at, at + SILERO_FRAME));
  return out;
}

async function probabilities(model: SileroModel, fs: Float32Array[]): Promise<number[]> {
  const state = model.newState();
  const out: number[] = [];
  for (const f of fs) out.push(await model.probability(f, state));
  return out;
}

async function turns(model: SileroModel, track: NoisySpeech): Promise<VadEvent[]> {
  const events: VadEvent[] = [];
  const vad = new SileroVad(Promise.resolve(model), { settings: SETTINGS, sampleRate: 24_000, startMs: 0, onEvent: (e) => events.push(e) });
  const pcm = new Int16Array(track.pcm.buffer.slice(track.pcm.byteOffset, track.pcm.byteOffset + track.pcm.length));
  for (let i = 0; i < pcm.length; i += 480) vad.push(pcm.slice(i, i + 480));
  await vad.whenIdle();
  vad.close();
  return events;
}

describe("the specialized Silero graph", () => {
  it("is what the loader runs by default: no sr input, every If inlined, the four depthwise convolutions rewritten", async () => {
    assert.deepEqual(fileGraph.graph, { specialized: false, reason: "specialize: false", inlinedIfs: 0, depthwiseConvs: 0, stftMatMuls: 0, pointwiseMatMuls: 0 });
    assert.equal(specialized.graph?.specialized, true, JSON.stringify(specialized.graph));
    assert.equal(specialized.graph?.depthwiseConvs, 4);
    assert.equal(specialized.graph?.stftMatMuls, 1);
    // 12 1×1 convolutions: the encoder's 4 pointwise, 3 projections and 4 after them, and the decoder's.
    assert.equal(specialized.graph?.pointwiseMatMuls, 12, JSON.stringify(specialized.graph));
    assert.equal(exact.graph?.specialized, true, JSON.stringify(exact.graph));
    assert.equal(exact.graph?.stftMatMuls, 0);
    assert.equal(exact.graph?.pointwiseMatMuls, 0);
    assert.ok((specialized.graph?.inlinedIfs ?? 0) >= 5);
    const spec = await specializeSileroGraph(ort, readFileSync(defaultSileroModelPath()), SILERO_RATE, SILERO_FRAME);
    const g = readModel(spec.bytes).graph;
    assert.deepEqual(g.inputs.map((v) => v.name), ["input", "h", "c"]);
    assert.deepEqual(g.outputs.map((v) => v.name), ["output", "hn", "cn"]);
    assert.equal(g.nodes.filter((n) => n.op === "If").length, 0);
    assert.equal(spec.keptIfs, 0);
    const grouped = g.nodes.filter((n) => n.op === "Conv" && n.attributes.some((a) => a.name === "group" && (a.int ?? 1n) > 1n));
    assert.deepEqual(grouped.map((n) => n.name), []);
    // The STFT is a MatMul; no Conv is strided by more than 2 (the encoder's own stride-2 convs stay).
    const strided = g.nodes.filter((n) => n.op === "Conv" && n.attributes.some((a) => a.name === "strides" && (a.ints ?? []).some((v) => v > 2n)));
    assert.deepEqual(strided.map((n) => n.name), []);
    assert.equal(g.nodes.filter((n) => n.op === "MatMul" && n.name.startsWith("spillway_stft")).length, 1);
    // No Conv is left but the adaptive normalization's 7-tap filter over one channel.
    assert.deepEqual(g.nodes.filter((n) => n.op === "Conv").map((n) => n.inputs[1]), ["model.adaptive_normalization.filter_"]);
    // The depthwise rewrites read their windows without a Pad.
    assert.deepEqual(g.nodes.filter((n) => n.op === "Pad" && n.name.startsWith("spillway_dw")).map((n) => n.name), []);
    const exactGraph = readModel((await specializeSileroGraph(ort, readFileSync(defaultSileroModelPath()), SILERO_RATE, SILERO_FRAME, { matMuls: false })).bytes).graph;
    assert.equal(exactGraph.nodes.filter((n) => n.op === "MatMul").length, 0);
    // The 8 kHz half of the model is gone.
    assert.equal([...g.initializers.keys()].filter((k) => k.startsWith("model_8k.")).length, 0);
    const session = await ort.InferenceSession.create(spec.bytes);
    assert.deepEqual(session.inputNames, ["input", "h", "c"]);
    await session.release();
  });

  it("with matMuls: false, gives bit-identical speech probabilities over noisy espeak-ng speech, frame by frame", async (t) => {
    for (const track of tracks) {
      const fs = frames(track);
      const a = await probabilities(fileGraph, fs);
      const b = await probabilities(exact, fs);
      let differ = 0;
      for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) differ++;
      t.diagnostic(`${track.mixer}: ${fs.length} frames, ${a.filter((p) => p >= 0.5).length} at or above 0.5, ${differ} differ`);
      assert.ok(a.some((p) => p >= 0.9) && a.some((p) => p < 0.1), "the track has both speech and non-speech");
      assert.deepEqual(b, a);
    }
  });

  it("by default (the STFT and the 1×1 convolutions as MatMuls), gives probabilities within the tolerance of the file's over the whole tracks, state carried", async (t) => {
    for (const track of tracks) {
      const fs = frames(track);
      const a = await probabilities(fileGraph, fs);
      const b = await probabilities(specialized, fs);
      const diff = Math.max(...a.map((p, i) => Math.abs(p - b[i]!)));
      t.diagnostic(`${track.mixer}: ${fs.length} frames, max |Δp| ${diff.toExponential(2)}`);
      assert.equal(b.length, a.length);
      assert.ok(diff <= SILERO_SPECIALIZED_TOLERANCE, `max |Δp| ${diff}`);
      // It is a different computation, not the same graph under another name.
      assert.ok(a.some((p, i) => p !== b[i]), "some probability differs in its last bits");
    }
  });

  for (const [name, model] of [
    ["matMuls: false", (): SileroModel => exact],
    ["the default", (): SileroModel => specialized],
  ] as const) {
    it(`${name}: batched, three streams at once, each with its own state, gives the file's graph's probabilities one by one${name === "the default" ? " (within the tolerance)" : ""}`, async () => {
      const m = model();
      const fs = frames(tracks[0]!);
      const streams = [fs, fs.slice(37), frames(tracks[1]!)].map((s) => s.slice(0, 120));
      const alone = await Promise.all(streams.map((s) => probabilities(fileGraph, s)));
      const detach = streams.map(() => m.attach());
      const states = streams.map(() => m.newState());
      const together: number[][] = streams.map(() => []);
      const batches0 = m.stats.batches;
      for (let f = 0; f < 120; f++) {
        const ps = await Promise.all(streams.map((s, k) => m.probability(s[f]!, states[k]!)));
        ps.forEach((p, k) => together[k]!.push(p));
      }
      for (const d of detach) d();
      assert.equal(m.stats.batches - batches0, 120, "each step ran as one batch of three");
      if (m === exact) assert.deepEqual(together, alone);
      else for (let k = 0; k < 3; k++) for (let f = 0; f < 120; f++) assert.ok(Math.abs(together[k]![f]! - alone[k]![f]!) <= SILERO_SPECIALIZED_TOLERANCE, `stream ${k} frame ${f}`);
    });

    it(`${name}: finds the same turn boundaries as the file's graph`, async () => {
      for (const track of tracks) {
        const a = await turns(fileGraph, track);
        const b = await turns(model(), track);
        assert.ok(a.some((e) => e.type === "speech_started") && a.some((e) => e.type === "speech_stopped"), JSON.stringify(a));
        assert.deepEqual(b, a);
      }
    });
  }
});

/** A ValueInfoProto: name and tensor element type. */
function value(w: BinaryWriter, field: number, name: string, elemType: number): void {
  w.tag(field, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string(name);
  w.tag(2, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).fork().tag(1, WireType.Varint).int32(elemType).join().join().join();
}

/** A small ONNX model of the given nodes ([op, inputs, outputs, attribute bytes]) and typed inputs and outputs. */
function onnxModel(opset: number, nodes: Array<[string, string[], string[], Uint8Array[]]>, inputs: Array<[string, number]>, outputs: Array<[string, number]>): Uint8Array {
  const g = new BinaryWriter();
  nodes.forEach(([op, ins, outs, attrs], i) => {
    g.tag(1, WireType.LengthDelimited).fork();
    for (const x of ins) g.tag(1, WireType.LengthDelimited).string(x);
    for (const x of outs) g.tag(2, WireType.LengthDelimited).string(x);
    g.tag(3, WireType.LengthDelimited).string(`n${i}`).tag(4, WireType.LengthDelimited).string(op);
    for (const a of attrs) g.tag(5, WireType.LengthDelimited).bytes(a);
    g.join();
  });
  g.tag(2, WireType.LengthDelimited).string("toy");
  for (const [n, t] of inputs) value(g, 11, n, t);
  for (const [n, t] of outputs) value(g, 12, n, t);
  return new BinaryWriter()
    .tag(1, WireType.Varint).int64(7)
    .tag(8, WireType.LengthDelimited).fork().tag(2, WireType.Varint).int64(opset).join()
    .tag(7, WireType.LengthDelimited).bytes(g.finish())
    .finish();
}

describe("loading models that are not the one the specializer knows", () => {
  it("a model that is not Silero v4 is rejected with the same clear error, naming its inputs and outputs", async () => {
    const file = join(dir, "identity.onnx");
    writeFileSync(file, onnxModel(13, [["Identity", ["x"], ["y"], []]], [["x", 1]], [["y", 1]]));
    await assert.rejects(loadSileroModel(file), { message: `${file} is not a Silero VAD v4 model (inputs x; outputs y)` });
    await assert.rejects(loadSileroModel(file, { specialize: false }), { message: `${file} is not a Silero VAD v4 model (inputs x; outputs y)` });
  });

  it("a file that is not ONNX, or is missing, is a rejected load naming the file, not a crash", async () => {
    const file = join(dir, "noise.onnx");
    writeFileSync(file, Buffer.from("this is not a protobuf model at all"));
    await assert.rejects(loadSileroModel(file), (e: Error) => e.message.startsWith(`cannot load Silero model ${file}: `));
    await assert.rejects(loadSileroModel(join(dir, "missing.onnx")), /ENOENT.*missing\.onnx/);
  });

  it("a v4-shaped model the specializer cannot edit runs as it is: the file's graph, with the reason", async () => {
    // Silero's inputs and outputs, opset 11 (older than the rewrite's 13): output = mean of the frame, state passed through.
    const file = join(dir, "v4-shaped.onnx");
    const axes = new BinaryWriter().tag(1, WireType.LengthDelimited).string("axes").tag(8, WireType.Varint).int64(1).tag(20, WireType.Varint).int32(7).finish();
    writeFileSync(
      file,
      onnxModel(
        11,
        [["ReduceMean", ["input"], ["output"], [axes]], ["Identity", ["h"], ["hn"], []], ["Identity", ["c"], ["cn"], []]],
        [["input", 1], ["sr", 7], ["h", 1], ["c", 1]],
        [["output", 1], ["hn", 1], ["cn", 1]],
      ),
    );
    const model = await loadSileroModel(file);
    assert.equal(model.graph?.specialized, false);
    assert.match(model.graph?.reason ?? "", /opset 11 is older than 13/);
    const p = await model.probability(new Float32Array(SILERO_FRAME).fill(0.25), model.newState());
    assert.equal(p, 0.25);
  });
});
