/**
 * `npx tsx load/voice-deepgram-frames-bench.ts [--rounds 3]`: CPU of
 * sending a realtime turn's audio to Deepgram, `chunkMs` frames throughout
 * (100 ms: `speechChunkMs: 100`, main's framing) against frames of 250 ms
 * while the VAD hears speech (`speechChunkMs: 250`, the default), through
 * the real provider (`createDeepgramProvider`, the session's one socket) to
 * the voice benchmark's fake Deepgram in its own process (load/speech-fakes.ts).
 * 20 sessions at once, each a turn like the voice benchmark's: 3 s of speech
 * (two 64 ms pauses in it) then 500 ms of quiet, in 20 ms pieces at real-time
 * pace, the VAD's voice reports through the session's `SpeechActivity`, then
 * the end of input (`Finalize`) and its final result. This process's CPU
 * (every thread) per turn, the two framings alternated, `--rounds` times.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { AudioEncoding } from "../src/gen/spillway/v1/chunk.js";
import { SPEECH_ACTIVITY_KEY, SpeechActivity } from "../src/audio/speech-activity.js";
import { ProviderSessionStore } from "../src/engine/provider-session.js";
import { createDeepgramProvider } from "../src/providers/deepgram/deepgram-provider.js";
import { AsyncQueue } from "../src/doors/ws/async-queue.js";
import { ROOT, TSX } from "./procs.js";

const { values } = parseArgs({ options: { rounds: { type: "string", default: "3" } } });
const CALLERS = 20;
const PIECE = Buffer.alloc(960);
for (let i = 0; i < PIECE.length; i += 2) PIECE.writeInt16LE(Math.round(3000 * Math.sin(i / 9)), i);
/** Per 20 ms piece: voiced or not (3 s of speech with two 64 ms pauses, then 500 ms of quiet). */
const VOICE = Array.from({ length: 175 }, (_, i) => i < 150 && !(i >= 50 && i < 53) && !(i >= 100 && i < 103));

const child = spawn(process.execPath, [...TSX, join(ROOT, "load/speech-fakes.ts")], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, LOG_LEVEL: "silent" } });
const urls = await new Promise<{ deepgram: string }>((resolve) => {
  let out = "";
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
    const line = out.split("\n").find((l) => l.startsWith("{"));
    if (line) resolve(JSON.parse(line) as { deepgram: string });
  });
});
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function turn(speechChunkMs: number): Promise<void> {
  const provider = createDeepgramProvider({ name: "deepgram", baseUrl: urls.deepgram, apiKey: "dg-test-key", endpointingMs: false, speechChunkMs });
  const session = new ProviderSessionStore();
  const activity = new SpeechActivity();
  session.set(SPEECH_ACTIVITY_KEY, activity);
  const audio = new AsyncQueue<Uint8Array>();
  const ctx = { signal: new AbortController().signal, deadline: Date.now() + 60_000, streamId: "bench", labels: {}, session };
  const config = { model: "nova-3", language: "", prompt: "", encoding: AudioEncoding.AUDIO_ENCODING_PCM_S16LE, sampleRate: 24_000, filename: "", mimeType: "", live: true };
  const results = (async () => {
    for await (const p of provider.transcribe!("nova-3", config, audio, ctx)) void p;
  })();
  const start = performance.now();
  for (let i = 0; i < VOICE.length; i++) {
    audio.push(PIECE);
    activity.set(VOICE[i]!);
    const due = start + (i + 1) * 20 - performance.now();
    if (due > 0) await sleep(due);
  }
  audio.close();
  await results;
  session.close();
}

async function mode(speechChunkMs: number, turns: number): Promise<number> {
  const c0 = process.cpuUsage();
  for (let t = 0; t < turns; t += CALLERS) await Promise.all(Array.from({ length: CALLERS }, () => turn(speechChunkMs)));
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000 / turns;
}

try {
  await mode(100, 20);
  await mode(250, 20);
  for (let round = 1; round <= Number(values.rounds); round++) {
    const old = await mode(100, 60);
    const now = await mode(250, 60);
    console.log(`round ${round}: 100 ms frames ${old.toFixed(2)} ms/turn, 250 ms while speech ${now.toFixed(2)} ms/turn (${(old - now).toFixed(2)} ms less)`);
  }
} finally {
  child.kill("SIGTERM");
}
