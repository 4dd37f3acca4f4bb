/**
 * `npx tsx load/voice-vad-cpu.ts [--root DIR] [--callers 20] [--turns 3] [--rounds 3] [--idle]`:
 * the realtime door's turn detection alone, in this process — the part of a
 * voice turn's CPU that the gateway spends on every 20 ms of input (24 →
 * 16 kHz conversion, 32 ms frames, batched Silero inference, the detector's
 * state) — for the tree at `--root` (default this one; e.g. a worktree of an
 * older commit, for before/after). C callers each push T turns of the voice
 * benchmark's audio (200 ms of silence, the espeak-ng utterance of
 * load/realtime-latency.ts at 24 kHz, 1 s of silence) in 20 ms pieces at
 * real-time pace, their starts spread over 20 ms; prints CPU time of the
 * process per turn (all threads, `process.cpuUsage`), the frames the model
 * ran and its mean batch. `--idle` paces the same pieces without pushing
 * them: the harness's own CPU (its timers wake the process every ~1 ms, 5–11
 * ms per turn here), to subtract. Noisy on a shared host: the mean batch, and
 * with it the inference's CPU, moves with the timing. Each round also prints
 * how late `speech_stopped` came after its audio was pushed (p50, p90: the
 * pacing's own lateness on a busy host is in it). `--noise A` adds white
 * noise of amplitude A (e.g. 0.01) to the whole turn, so that no frame is
 * digital silence and every frame, the stopping one too, is inferred. Also printed:
 * runs (`session.run` calls) and wake-ups (batches: one or, with silero6's
 * pairs, two runs back to back) per turn, the mean run ("mean batch"), when
 * `speech_started` and the turn's last `onVoice(false)` came after the turn's
 * first piece, and voice reports per turn. `--voice-heard` tells the detector
 * its voice reports are acted on (as when Deepgram's framing listens), so it
 * holds no frame after a voiced one. The first line says
 * which Silero graph runs (the file's, or the one specialized at load).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { ROOT } from "./procs.js";
import type * as SileroModelModule from "../src/audio/silero-model.js";
import type * as SileroVadModule from "../src/doors/ws/silero-vad.js";
import type * as ResampleModule from "../src/audio/resample.js";

const { values } = parseArgs({
  options: {
    root: { type: "string", default: ROOT },
    callers: { type: "string", default: "20" },
    turns: { type: "string", default: "3" },
    rounds: { type: "string", default: "3" },
    text: { type: "string", default: "Hello there. What is the weather like today?" },
    idle: { type: "boolean", default: false },
    noise: { type: "string", default: "0" },
    "voice-heard": { type: "boolean", default: false },
  },
});

const root = values.root;
const mod = async <T>(p: string): Promise<T> => (await import(pathToFileURL(join(root, p)).href)) as T;
const { loadSileroModel } = await mod<typeof SileroModelModule>("src/audio/silero-model.ts");
const { SileroVad } = await mod<typeof SileroVadModule>("src/doors/ws/silero-vad.ts");
const { Resampler } = await mod<typeof ResampleModule>("src/audio/resample.ts");

/** The utterance as espeak-ng speaks it, at 24 kHz (as local/tts makes it). */
function utterance(text: string): Int16Array {
  const dir = mkdtempSync(join(tmpdir(), "spillway-vadcpu-"));
  try {
    execFileSync("espeak-ng", ["-w", join(dir, "u.wav"), text]);
    const wav = readFileSync(join(dir, "u.wav"));
    const rate = wav.readUInt32LE(24);
    const at = wav.indexOf("data") + 8;
    const pcm = new Int16Array(wav.buffer.slice(wav.byteOffset + at, wav.byteOffset + wav.length - ((wav.length - at) % 2)));
    return new Resampler(rate, 24_000).push(pcm);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const speech = utterance(values.text);
const turnAudio = new Int16Array(4800 + speech.length + 24_000);
turnAudio.set(speech, 4800);
// --noise A: white noise of amplitude A (of full scale) over the whole turn, so no frame is digital silence (a phone line).
if (Number(values.noise) > 0) {
  let seed = 1;
  const amp = Number(values.noise) * 32767;
  for (let i = 0; i < turnAudio.length; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    turnAudio[i] = Math.max(-32768, Math.min(32767, turnAudio[i]! + Math.round(((seed / 0x7fffffff) * 2 - 1) * amp)));
  }
}
const model = await loadSileroModel();
const settings = { threshold: 0.5, prefixPaddingMs: 300, silenceDurationMs: 500 };

interface RoundEvents {
  n: number;
  stopLagMs: number[];
  /** speech_started: when it came, after the turn's first piece was pushed. */
  startAtMs: number[];
  /** The turn's last `onVoice(false)` (the end of speech: Deepgram's framing flushes at it), after the turn's first piece. */
  lastQuietAtMs: number[];
  voiceReports: number;
}

async function caller(offsetMs: number, turns: number, events: RoundEvents): Promise<void> {
  await sleep(offsetMs);
  for (let t = 0; t < turns; t++) {
    // A fresh detector per turn, as a fresh session per turn in the voice rows.
    let start = 0;
    // speech_stopped's lag: when it came, after the moment its audio (audioEndMs) had been pushed.
    let lastQuiet = -1;
    const onEvent = (e: { type: string; audioEndMs?: number }): void => {
      events.n++;
      if (e.type === "speech_started") events.startAtMs.push(performance.now() - start);
      if (e.type === "speech_stopped" && e.audioEndMs !== undefined) events.stopLagMs.push(performance.now() - (start + e.audioEndMs));
    };
    const onVoice = (voiced: boolean): void => {
      events.voiceReports++;
      if (!voiced) lastQuiet = performance.now() - start;
    };
    // --voice-heard: the reports are acted on (as Deepgram's framing does): from silero6 on, no frame after a voiced one is held.
    const voiceHeard = (): boolean => values["voice-heard"];
    const vad = new SileroVad(Promise.resolve(model), { settings, sampleRate: 24_000, startMs: 0, onEvent, onVoice, voiceHeard });
    start = performance.now();
    for (let i = 0, n = 0; i < turnAudio.length; i += 480, n++) {
      if (!values.idle) vad.push(turnAudio.slice(i, i + 480));
      const due = start + (n + 1) * 20 - performance.now();
      if (due > 0) await sleep(due);
    }
    await vad.whenIdle();
    vad.close();
    if (lastQuiet >= 0) events.lastQuietAtMs.push(lastQuiet);
  }
}

const lag = (a: number[], q: number): string => (a.length === 0 ? "-" : [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(a.length * q))]!.toFixed(1));
const callers = Number(values.callers);
const turns = Number(values.turns);
// `graph` (which Silero graph runs) exists from issue 17's wave 6 on; older trees print "file graph".
const graphInfo = (model as { graph?: { specialized: boolean } }).graph;
console.log(`VAD CPU: ${root}, ${callers} callers × ${turns} turns, utterance ${(speech.length / 24_000).toFixed(2)} s, ${graphInfo?.specialized ? "specialized graph" : "file graph"}`);
for (let round = 0; round <= Number(values.rounds); round++) {
  const events: RoundEvents = { n: 0, stopLagMs: [], startAtMs: [], lastQuietAtMs: [], voiceReports: 0 };
  const s0 = { ...model.stats };
  const c0 = process.cpuUsage();
  const f0 = process.resourceUsage().minorPageFault;
  await Promise.all(Array.from({ length: callers }, (_, i) => caller((i * 20) / callers, turns, events)));
  const c = process.cpuUsage(c0);
  const faults = process.resourceUsage().minorPageFault - f0;
  const frames = model.stats.frames - s0.frames;
  const batches = model.stats.batches - s0.batches;
  // `runs` (session.run calls) from silero6 on; before it one run per batch.
  const runs = ((model.stats as { runs?: number }).runs ?? model.stats.batches) - ((s0 as { runs?: number }).runs ?? s0.batches);
  const n = callers * turns;
  // Round 0 warms the JIT and the model.
  console.log(
    `${round === 0 ? "warm-up" : `round ${round}`}: CPU/turn ${((c.user + c.system) / 1000 / n).toFixed(2)} ms (user ${(c.user / 1000 / n).toFixed(2)}) | faults/turn ${(faults / n).toFixed(0)} | frames/turn ${(frames / n).toFixed(1)} | mean batch ${(frames / Math.max(1, runs)).toFixed(1)} | runs/turn ${(runs / n).toFixed(2)} | wake-ups/turn ${(batches / n).toFixed(2)} | events ${events.n} | speech_stopped lag p50 ${lag(events.stopLagMs, 0.5)} p90 ${lag(events.stopLagMs, 0.9)} ms | speech_started at p50 ${lag(events.startAtMs, 0.5)} p90 ${lag(events.startAtMs, 0.9)} | last quiet report at p50 ${lag(events.lastQuietAtMs, 0.5)} p90 ${lag(events.lastQuietAtMs, 0.9)} | voice reports/turn ${(events.voiceReports / n).toFixed(1)}`,
  );
}
