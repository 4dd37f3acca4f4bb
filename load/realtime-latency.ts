// Usage: npx tsx load/realtime-latency.ts [--turns N] [--concurrency C] [--session-turns K] [--fast] [--json] [--setup JSON] [--until audio|text|transcribed|sent] [--pcm FILE] [--url ws://HOST:PORT/v1/realtime?model=local/realtime]
/**
 * Voice latency of the realtime door: for each turn, a spoken utterance
 * (made with local/tts) is streamed in 20 ms frames at real-time pace
 * (`--fast`: as fast as the socket takes it) into a fresh session with
 * server VAD; the benchmark prints the time from `speech_stopped` to the
 * first `response.output_audio.delta` — what a caller hears as the gateway's
 * response delay — with the steps in between (transcription done, response
 * created, first text). Without `--url` it starts a gateway in this process
 * on a free loopback port (local engines: espeak-ng, pocketsphinx, local/echo).
 * `--concurrency C` runs C callers at once, each doing `--turns` turns;
 * `--json` ends the output with a `RESULT {...}` line for `npm run bench`.
 * `--session-turns K` (default 1) speaks K turns in each session, as in a
 * call, instead of a fresh session per turn: after each turn's first audio
 * the client sends `response.cancel` and waits for `response.done` (the
 * turn's work stays what it is with a fresh session), then speaks again.
 */
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import WebSocket from "ws";
import { parseConfig } from "../src/config/load.js";
import { AudioEncoding } from "../src/gen/spillway/v1/chunk.js";
import { startGateway, type Gateway } from "../src/gateway.js";
import { summarize, type Summary } from "./stats.js";

const { values } = parseArgs({
  options: {
    turns: { type: "string", default: "5" },
    concurrency: { type: "string", default: "1" },
    fast: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    url: { type: "string" },
    text: { type: "string", default: "Hello there. What is the weather like today?" },
    "session-turns": { type: "string", default: "1" },
    setup: { type: "string" },
    until: { type: "string", default: "audio" },
    pcm: { type: "string" },
  },
});

/** `--setup JSON`: a client event (a `session.update`) sent at `session.created`, before the audio. */
const SETUP = values.setup;
/**
 * `--until`: what ends a turn (fresh sessions only). `audio` (default): the first
 * audio delta, which also stops the audio loop (the bench). `text` (first text
 * delta), `transcribed` (the transcript), `sent` (nothing): the session closes
 * once that came and the whole utterance was sent (load/voice-ladder.ts).
 */
const UNTIL = values.until;
/** `REALTIME_EVENTS=1` (debugging a harness): server event types received, counted, printed to stderr at the end. */
const eventCounts = process.env["REALTIME_EVENTS"] ? new Map<string, number>() : undefined;
/** Appends sent, all turns. */
let appendsSent = 0;

const RATE = 24_000;
const FRAME_BYTES = (RATE / 50) * 2;

interface Turn {
  transcribed: number;
  created: number;
  firstText: number;
  firstAudio: number;
  transcript: string;
}

async function speech(gateway: Gateway | undefined, url: string, text: string): Promise<Buffer> {
  if (gateway) {
    const stream = await gateway.engine.synthesize({
      model: "local/tts",
      input: text,
      voice: "alloy",
      encoding: AudioEncoding.AUDIO_ENCODING_PCM_S16LE,
      speed: 1,
      sampleRate: RATE,
      instructions: "",
    });
    const parts: Buffer[] = [];
    for await (const c of stream) if (c.payload?.$case === "audio") parts.push(Buffer.from(c.payload.value.data));
    return Buffer.concat(parts);
  }
  const http = url.replace(/^ws/, "http").replace(/\/v1\/realtime.*$/, "/v1/audio/speech");
  const r = await fetch(http, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "local/tts", input: text, voice: "alloy", response_format: "pcm" }),
  });
  if (!r.ok) throw new Error(`speech: HTTP ${r.status} ${await r.text()}`);
  return Buffer.from(await r.arrayBuffer());
}

function oneTurn(url: string, pcm: Buffer, fast: boolean): Promise<Turn> {
  return oneSession(url, pcm, fast, 1).then((t) => t[0]!);
}

/** One session of `count` turns (see `--session-turns`). */
function oneSession(url: string, pcm: Buffer, fast: boolean, count: number): Promise<Turn[]> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    let stopped = 0;
    const done: Turn[] = [];
    let t: Partial<Turn> = {};
    let streaming = false;
    /** The turn's first audio came and its response was cancelled: the next turn starts at its `response.done`. */
    let cancelled = false;
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error("session timed out"));
    }, 60_000 * count);
    ws.on("error", reject);
    ws.on("message", (data: Buffer) => {
      const e = JSON.parse(data.toString("utf8")) as Record<string, any>;
      const now = performance.now();
      eventCounts?.set(String(e["type"]), (eventCounts.get(String(e["type"])) ?? 0) + 1);
      switch (e["type"]) {
        case "session.created":
          if (SETUP) ws.send(SETUP);
          void stream();
          break;
        case "input_audio_buffer.speech_stopped":
          stopped = now;
          break;
        case "conversation.item.input_audio_transcription.completed":
          t.transcribed = now - stopped;
          t.transcript = String(e["transcript"]);
          if (UNTIL === "transcribed") ended(now);
          break;
        case "response.created":
          t.created = now - stopped;
          break;
        case "response.output_audio_transcript.delta":
        case "response.output_text.delta":
          t.firstText ??= now - stopped;
          if (UNTIL === "text") ended(now);
          break;
        case "response.output_audio.delta":
          // Only the first audio of this turn's response (not a cancelled one's last deltas).
          if (UNTIL === "audio" && t.firstAudio === undefined && !cancelled && (count === 1 || t.created !== undefined)) {
            t.firstAudio = now - stopped;
            done.push(t as Turn);
            t = {};
            if (done.length === count) {
              clearTimeout(timer);
              ws.close();
              resolve(done);
            } else {
              cancelled = true;
              ws.send(JSON.stringify({ type: "response.cancel" }));
            }
          }
          break;
        case "response.done":
          if (cancelled) {
            cancelled = false;
            void next();
          }
          break;
        case "error":
          if (e["error"]?.code === "response_cancel_not_active") break;
          reject(new Error(`server error: ${JSON.stringify(e["error"])}`));
          break;
      }
    });
    /** `--until` other than `audio`: the turn's event came (`at`), or the audio was all sent (`at` undefined). */
    let until: number | undefined;
    let sentAll = false;
    function ended(at: number | undefined): void {
      if (at !== undefined) until ??= at;
      else sentAll = true;
      if ((until === undefined && UNTIL !== "sent") || !sentAll || done.length > 0) return;
      t.firstAudio = (until ?? performance.now()) - stopped;
      t.transcript ??= "";
      done.push(t as Turn);
      clearTimeout(timer);
      ws.close();
      resolve(done);
    }
    /** The next turn, once the last one's audio loop has stopped. */
    async function next(): Promise<void> {
      while (streaming) await sleep(5);
      await stream();
    }
    async function stream(): Promise<void> {
      streaming = true;
      const audio = Buffer.concat([Buffer.alloc(RATE / 5 * 2), pcm, Buffer.alloc(RATE * 2)]);
      const start = performance.now();
      const turn = done.length;
      for (let i = 0, n = 0; i < audio.length && ws.readyState === WebSocket.OPEN && done.length === turn; i += FRAME_BYTES, n++) {
        ws.send(JSON.stringify({ type: "input_audio_buffer.append", audio: audio.subarray(i, i + FRAME_BYTES).toString("base64") }));
        appendsSent++;
        if (!fast) {
          const due = start + (n + 1) * 20 - performance.now();
          if (due > 0) await sleep(due);
        }
      }
      streaming = false;
      if (UNTIL !== "audio") ended(undefined);
    }
  });
}

function line(name: string, s: Summary): string {
  const f = (x: number | undefined): string => (x === undefined ? "-" : x.toFixed(1).padStart(8));
  return `${name.padEnd(44)} p50 ${f(s.p50)}  p90 ${f(s.p90)}  max ${f(s.max)}  mean ${f(s.mean)} ms`;
}

async function main(): Promise<void> {
  let gateway: Gateway | undefined;
  let url = values.url;
  if (!url) {
    gateway = await startGateway(
      parseConfig({ http: { host: "127.0.0.1", port: 0 }, grpc: { enabled: false }, providers: { local: { type: "local", tokenDelayMs: 0 } } }),
    );
    url = `ws://127.0.0.1:${gateway.httpPort}/v1/realtime?model=local/realtime`;
  }
  try {
    const pcm = values.pcm ? readFileSync(values.pcm) : await speech(gateway, url, values.text);
    // The utterance is made: what the gateway does from here on is the turns' work.
    if (values.json) console.log("READY");
    const turns: Turn[] = [];
    const errors: string[] = [];
    const n = Math.max(1, Number(values.turns));
    const callers = Math.max(1, Number(values.concurrency));
    const target = url;
    console.log(
      `realtime latency: ${callers} caller(s) × ${n} turns, utterance ${(pcm.length / 2 / RATE).toFixed(2)} s, ${values.fast ? "fast" : "real-time"} pace, ${target}`,
    );
    const perSession = Math.max(1, Number(values["session-turns"]));
    await Promise.all(
      Array.from({ length: callers }, async (_, c) => {
        for (let i = 0; i < n; i += perSession) {
          try {
            const ts = perSession === 1 ? [await oneTurn(target, pcm, values.fast)] : await oneSession(target, pcm, values.fast, Math.min(perSession, n - i));
            for (const [k, t] of ts.entries()) {
              turns.push(t);
              console.log(`  caller ${c + 1} turn ${i + k + 1}: first audio ${t.firstAudio.toFixed(1)} ms after speech_stopped (heard: "${t.transcript}")`);
            }
          } catch (e) {
            errors.push((e as Error).message);
            console.log(`  caller ${c + 1} turns ${i + 1}…: failed: ${(e as Error).message}`);
          }
        }
      }),
    );
    const transcribed = summarize(turns.map((t) => t.transcribed));
    const created = summarize(turns.map((t) => t.created));
    const firstText = summarize(turns.map((t) => t.firstText));
    const firstAudio = summarize(turns.map((t) => t.firstAudio));
    console.log(line("speech_stopped → transcription completed", transcribed));
    console.log(line("speech_stopped → response.created", created));
    console.log(line("speech_stopped → first text delta", firstText));
    console.log(line("speech_stopped → first response.output_audio.delta", firstAudio));
    if (eventCounts) console.error(`events: ${JSON.stringify(Object.fromEntries(eventCounts))}`);
    if (values.json) {
      const utteranceS = pcm.length / 2 / RATE;
      console.log(`RESULT ${JSON.stringify({ callers, turns: turns.length, errors: errors.length, errorSamples: [...new Set(errors)].slice(0, 3), utteranceS, transcribed, created, firstText, firstAudio, appendsPerTurn: turns.length > 0 ? appendsSent / turns.length : undefined })}`);
    }
  } finally {
    await gateway?.close();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
