// Usage: npx tsx clients/grpc-client.ts [--address HOST:PORT] [--key KEY] [--model ID] chat "PROMPT" | synthesize "TEXT" OUT.wav | transcribe IN.wav
/**
 * A runnable example of the Spillway gRPC door with the generated client
 * (src/gen, ts-proto): stream a chat, synthesize speech to a file, and
 * transcribe a file while it is being sent (bidi).
 *
 *   npx tsx clients/grpc-client.ts chat "the quick brown fox"                       # local/echo
 *   npx tsx clients/grpc-client.ts --model openai/gpt-4o-mini chat "Say hi"
 *   npx tsx clients/grpc-client.ts synthesize "Hello from Spillway" hello.wav       # local/tts
 *   npx tsx clients/grpc-client.ts transcribe hello.wav                             # local/stt
 *
 * `--address` defaults to 127.0.0.1:50051 (`GRPC_PORT` of the gateway);
 * `--key` is sent as `authorization: Bearer KEY` metadata.
 */
import { readFile, writeFile } from "node:fs/promises";
import { extname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { makeGenerateRequest, makeMessage } from "../src/engine/requests.js";
import { wavHeader } from "../src/audio/wav.js";
import { AudioEncoding, TranscriptDelta_Kind, type Chunk } from "../src/gen/spillway/v1/chunk.js";
import { SpillwayServiceClient } from "../src/gen/spillway/v1/service.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    address: { type: "string", default: "127.0.0.1:50051" },
    key: { type: "string" },
    model: { type: "string" },
  },
});
const [command, arg1, arg2] = positionals;
const client = new SpillwayServiceClient(values.address, credentials.createInsecure());
const metadata = new Metadata();
if (values.key) metadata.set("authorization", `Bearer ${values.key}`);

/** Prints what ends every stream: usage and finish, or the in-band error. */
function printTerminal(c: Chunk): void {
  const p = c.payload;
  if (p?.$case === "usage") console.error(`\n[usage] in=${p.value.inputTokens} out=${p.value.outputTokens}`);
  if (p?.$case === "finish") console.error(`[finish] reason=${p.value.reason}`);
  if (p?.$case === "error") console.error(`\n[error] ${p.value.message} (grpc code ${p.value.grpcCode})`);
}

/** Resolves when the stream ends OK; rejects with the status otherwise. */
function done(stream: NodeJS.EventEmitter): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.on("end", resolve);
    stream.on("error", (e: ServiceError) => reject(new Error(`${e.code} ${e.details}`)));
  });
}

/** Streams a chat answer to stdout as it is generated. */
async function chat(prompt: string): Promise<void> {
  const stream = client.generate(
    makeGenerateRequest({ model: values.model ?? "local/echo", messages: [makeMessage({ role: "user", content: prompt })] }),
    metadata,
    { deadline: Date.now() + 60_000 },
  );
  stream.on("data", (c: Chunk) => {
    if (c.payload?.$case === "text") process.stdout.write(c.payload.value.text);
    else printTerminal(c);
  });
  await done(stream);
}

/** Synthesizes `text` as 16-bit PCM, streamed, and saves it as a WAV file. */
async function synthesize(text: string, out: string): Promise<void> {
  const stream = client.synthesize(
    {
      model: values.model ?? "local/tts",
      input: text,
      voice: "",
      encoding: AudioEncoding.AUDIO_ENCODING_PCM_S16LE,
      speed: 0,
      sampleRate: 0,
      instructions: "",
    },
    metadata,
  );
  const parts: Buffer[] = [];
  let format = { encoding: AudioEncoding.AUDIO_ENCODING_PCM_S16LE, sampleRate: 24_000, channels: 1 };
  stream.on("data", (c: Chunk) => {
    if (c.payload?.$case === "audio") {
      const a = c.payload.value;
      format = { encoding: a.encoding, sampleRate: a.sampleRate || format.sampleRate, channels: a.channels || 1 };
      parts.push(Buffer.from(a.data));
      process.stderr.write(".");
    } else printTerminal(c);
  });
  await done(stream);
  const pcm = Buffer.concat(parts);
  const isPcm = format.encoding === AudioEncoding.AUDIO_ENCODING_PCM_S16LE;
  await writeFile(out, isPcm ? Buffer.concat([wavHeader(format.sampleRate, format.channels, pcm.length), pcm]) : pcm);
  console.error(`wrote ${out} (${pcm.length} bytes of audio, ${format.sampleRate} Hz)`);
}

/** The sample rate and PCM data of a 16-bit WAV file. */
function parseWav(buf: Buffer): { sampleRate: number; pcm: Buffer } {
  if (buf.toString("ascii", 0, 4) !== "RIFF" || buf.toString("ascii", 8, 12) !== "WAVE") throw new Error("not a WAV file");
  let sampleRate = 0;
  for (let at = 12; at + 8 <= buf.length; ) {
    const id = buf.toString("ascii", at, at + 4);
    const size = buf.readUInt32LE(at + 4);
    if (id === "fmt ") sampleRate = buf.readUInt32LE(at + 12);
    if (id === "data") return { sampleRate, pcm: buf.subarray(at + 8, Math.min(buf.length, at + 8 + size)) };
    at += 8 + size + (size % 2);
  }
  throw new Error("WAV file without a data chunk");
}

/** Sends a file in 100 ms pieces, at about real time, printing transcript deltas as they arrive. */
async function transcribe(file: string): Promise<void> {
  const bytes = await readFile(file);
  const wav = extname(file).toLowerCase() === ".wav" ? parseWav(bytes) : undefined;
  const call = client.transcribe(metadata);
  call.on("data", (c: Chunk) => {
    const p = c.payload;
    if (p?.$case !== "transcript") printTerminal(c);
    else if (p.value.kind === TranscriptDelta_Kind.KIND_FINAL) process.stdout.write(`\n[final] ${p.value.text}\n`);
    else if (p.value.kind !== TranscriptDelta_Kind.KIND_INTERIM) process.stdout.write(p.value.text); // deltas append
  });
  const ended = done(call);
  call.write({
    input: {
      $case: "config",
      value: {
        model: values.model ?? "local/stt",
        language: "",
        prompt: "",
        encoding: wav ? AudioEncoding.AUDIO_ENCODING_PCM_S16LE : AudioEncoding.AUDIO_ENCODING_UNSPECIFIED,
        sampleRate: wav?.sampleRate ?? 0,
        filename: file,
        mimeType: "",
        live: false,
      },
    },
  });
  const audio = wav?.pcm ?? bytes;
  const step = wav ? Math.max(2, Math.round(wav.sampleRate / 10) * 2) : 16 * 1024;
  for (let at = 0; at < audio.length; at += step) {
    call.write({ input: { $case: "audio", value: audio.subarray(at, at + step) } });
    if (wav) await sleep(100);
  }
  call.end();
  await ended;
}

async function main(): Promise<void> {
  if (command === "chat" && arg1) await chat(arg1);
  else if (command === "synthesize" && arg1 && arg2) await synthesize(arg1, arg2);
  else if (command === "transcribe" && arg1) await transcribe(arg1);
  else {
    console.error('usage: grpc-client.ts [--address HOST:PORT] [--key KEY] [--model ID] chat "PROMPT" | synthesize "TEXT" OUT.wav | transcribe IN.wav');
    process.exitCode = 2;
  }
}

main()
  .catch((e: unknown) => {
    console.error(`grpc-client: ${(e as Error).message}`);
    process.exitCode = 1;
  })
  .finally(() => client.close());
