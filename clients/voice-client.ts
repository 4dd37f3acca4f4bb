// Usage: npx tsx clients/voice-client.ts [--url URL] [--model ID] [--key KEY] [--ca CERT.pem] [--out reply.wav] [--fast] (IN.wav | -)
/**
 * A runnable voice client for Spillway's realtime door (OpenAI Realtime
 * protocol over WebSocket, with the `ws` package). It streams a WAV file —
 * or raw pcm16 24 kHz mono from stdin (`-`) — at real-time pace in 20 ms
 * frames, lets server VAD find the end of the turn, prints the transcript of
 * what it said and the reply's text as they arrive, and writes the spoken
 * reply to a WAV file.
 *
 *   npx tsx src/main.ts &                                          # the gateway, local engines
 *   espeak-ng -w hello.wav "Hello there, how are you?"
 *   npx tsx clients/voice-client.ts hello.wav                      # → reply.wav
 *   sox -d -t raw -r 24000 -e signed -b 16 -c 1 - | npx tsx clients/voice-client.ts -   # microphone
 *
 * `--url` defaults to ws://127.0.0.1:8080/v1/realtime; use wss://… with
 * `--ca` for a gateway serving TLS with a private certificate. `--key` is
 * sent as `Authorization: Bearer KEY`.
 */
import { readFile, writeFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import WebSocket from "ws";
import { toBytes } from "../src/audio/pcm.js";
import { Resampler } from "../src/audio/resample.js";
import { wavHeader, WavStreamParser } from "../src/audio/wav.js";

const RATE = 24_000;
const FRAME_BYTES = (RATE / 50) * 2;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    url: { type: "string", default: "ws://127.0.0.1:8080/v1/realtime" },
    model: { type: "string", default: "local/realtime" },
    key: { type: "string" },
    ca: { type: "string" },
    out: { type: "string", default: "reply.wav" },
    fast: { type: "boolean", default: false },
  },
});

/** The input as pcm16 24 kHz mono frames, as they become available. */
async function* input(path: string): AsyncGenerator<Buffer> {
  if (path === "-") {
    let carry = Buffer.alloc(0);
    for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
      carry = Buffer.concat([carry, chunk]);
      while (carry.length >= FRAME_BYTES) {
        yield carry.subarray(0, FRAME_BYTES);
        carry = carry.subarray(FRAME_BYTES);
      }
    }
    if (carry.length >= 2) yield carry.subarray(0, carry.length & ~1);
    return;
  }
  const parser = new WavStreamParser();
  const samples = parser.push(await readFile(path));
  const pcm = Buffer.from(toBytes(new Resampler(parser.format?.sampleRate ?? RATE, RATE).push(samples)));
  for (let i = 0; i < pcm.length; i += FRAME_BYTES) yield pcm.subarray(i, i + FRAME_BYTES);
}

async function main(): Promise<void> {
  const file = positionals[0];
  if (!file) {
    console.error("usage: voice-client.ts [--url URL] [--model ID] [--key KEY] [--ca CERT] [--out reply.wav] (IN.wav | -)");
    process.exit(2);
  }
  const url = new URL(values.url);
  url.searchParams.set("model", values.model);
  const ws = new WebSocket(url, {
    headers: values.key ? { Authorization: `Bearer ${values.key}` } : {},
    ...(values.ca ? { ca: await readFile(values.ca) } : {}),
  });
  const reply: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    ws.on("error", reject);
    ws.on("close", (code, reason) => (code === 1000 || code === 1005 ? resolve() : reject(new Error(`closed ${code} ${String(reason)}`))));
    ws.on("message", (data: Buffer) => {
      const e = JSON.parse(data.toString("utf8")) as Record<string, any>;
      switch (e["type"]) {
        case "session.created":
          console.log(`session ${e["session"].id} on ${e["session"].model}`);
          void stream();
          break;
        case "input_audio_buffer.speech_started":
          console.log(`[speech started at ${e["audio_start_ms"]} ms]`);
          break;
        case "input_audio_buffer.speech_stopped":
          console.log(`[speech stopped at ${e["audio_end_ms"]} ms]`);
          break;
        case "conversation.item.input_audio_transcription.completed":
          console.log(`you: ${e["transcript"]}`);
          break;
        case "response.output_audio_transcript.delta":
        case "response.output_text.delta":
          process.stdout.write(e["delta"]);
          break;
        case "response.output_audio.delta":
          reply.push(Buffer.from(e["delta"], "base64"));
          break;
        case "response.done":
          process.stdout.write("\n");
          console.log(`[response ${e["response"].status}]`);
          ws.close(1000);
          break;
        case "error":
          console.error(`error: ${e["error"].message}`);
          break;
      }
    });
  });
  async function stream(): Promise<void> {
    const start = Date.now();
    let n = 0;
    const send = async (frame: Buffer): Promise<void> => {
      if (ws.readyState !== WebSocket.OPEN) return;
      ws.send(JSON.stringify({ type: "input_audio_buffer.append", audio: frame.toString("base64") }));
      n++;
      if (!values.fast) {
        const due = start + n * 20 - Date.now();
        if (due > 0) await sleep(due);
      }
    };
    for await (const frame of input(file!)) await send(frame);
    // A second of silence so server VAD ends the turn.
    for (let i = 0; i < 50; i++) await send(Buffer.alloc(FRAME_BYTES));
  }
  await done;
  const pcm = Buffer.concat(reply);
  await writeFile(values.out, Buffer.concat([wavHeader(RATE, 1, pcm.length), pcm]));
  console.log(`reply: ${(pcm.length / 2 / RATE).toFixed(2)} s of audio in ${values.out}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
