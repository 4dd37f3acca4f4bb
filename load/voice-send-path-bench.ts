/**
 * `npx tsx load/voice-send-path-bench.ts [--before DIR]`: CPU per voice turn
 * of the copies on the audio's way from the client to Deepgram, this tree
 * against the tree in DIR (its `src/doors/ws/input-buffer.ts`), alternated in
 * one process, 5 rounds:
 *
 * - **append path**: one turn's base64 appends (20 ms each; 0.5 s before the
 *   speech trimmed to 300 ms as between turns, the speech-start `peek`, 3.5 s
 *   more, the commit's `take`) and the Deepgram frames made of them (about 12
 *   pieces each). Before: a decode per append into a new Buffer, a concat at
 *   peek/take and per frame; here (when the tree's buffer has `stageBase64`):
 *   decoded into the buffer's store, views, frames joined as views.
 * - **socket writes**: one turn's ~19 Deepgram frames (8.5 KB each) over a
 *   loopback WebSocket, masked with a random key (ws's default: each payload
 *   copied into a new masked buffer) against the all-zero key
 *   (`zeroMaskAllowed`), the receiving server in this process for both.
 */
import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import WebSocket, { WebSocketServer } from "ws";
import { joinPieces } from "../src/audio/pcm.js";
import { SpillwayError } from "../src/engine/errors.js";
import { Code } from "../src/engine/code.js";
import { connectUpstreamSocket } from "../src/providers/shared/upstream-socket.js";
import { InputAudioBuffer } from "../src/doors/ws/input-buffer.js";
import { decodeBase64Strict } from "../src/doors/ws/audio/base64.js";

const { values } = parseArgs({ options: { before: { type: "string" }, rounds: { type: "string", default: "5" } } });

/** The buffer API both trees have (`stageBase64` only in this one). */
interface Buffered {
  append(b: Uint8Array): void;
  dropBefore(ms: number): void;
  peek(): Buffer;
  take(): Buffer;
  readonly positionMs: number;
  stageBase64?(s: string): Buffer | undefined;
}
type BufferCtor = new (rate: number, bytesPerSample?: number) => Buffered;

const APPEND = Buffer.alloc(960);
for (let i = 0; i < APPEND.length; i++) APPEND[i] = (i * 37) & 0xff;
const B64 = APPEND.toString("base64");
const FRAME_PIECES = 12;

/** One turn through `Ctor`; `staged` decodes into the buffer (this tree) and joins frames as views. */
function appendTurn(Ctor: BufferCtor, staged: boolean): number {
  const b = new Ctor(24_000, 2);
  const add = (): Uint8Array => {
    const bytes = staged ? b.stageBase64!(B64)! : decodeBase64Strict(B64)!;
    b.append(bytes);
    return bytes;
  };
  for (let i = 0; i < 25; i++) {
    add();
    b.dropBefore(b.positionMs - 300);
  }
  const pieces: Uint8Array[] = [b.peek()];
  for (let i = 0; i < 175; i++) pieces.push(add());
  let sink = b.take().length;
  for (let i = 0; i < pieces.length; i += FRAME_PIECES) {
    const frame = pieces.slice(i, i + FRAME_PIECES);
    const total = frame.reduce((n, p) => n + p.length, 0);
    sink += (staged ? joinPieces(frame, total) : Buffer.concat(frame, total)).length;
  }
  return sink;
}

function cpuMsPerTurn(n: number, f: () => number): number {
  const c0 = process.cpuUsage();
  let sink = 0;
  for (let t = 0; t < n; t++) sink += f();
  const c = process.cpuUsage(c0);
  if (sink < 0) console.log(sink);
  return (c.user + c.system) / 1000 / n;
}

const before = values.before ? ((await import(join(resolve(values.before), "src/doors/ws/input-buffer.ts"))) as { InputAudioBuffer: BufferCtor }).InputAudioBuffer : undefined;
const rounds = Number(values.rounds);
const here = InputAudioBuffer as unknown as BufferCtor;
for (let i = 0; i < 200; i++) {
  appendTurn(here, true);
  if (before) appendTurn(before, false);
}
for (let round = 1; round <= rounds; round++) {
  const now = cpuMsPerTurn(2000, () => appendTurn(here, true));
  const was = before ? cpuMsPerTurn(2000, () => appendTurn(before, false)) : undefined;
  console.log(`append path round ${round}: this tree ${now.toFixed(3)} ms/turn${was === undefined ? "" : `, before ${was.toFixed(3)} ms/turn (${(was / now).toFixed(2)}×)`}`);
}

// Socket writes: the same frames, masked and with the zero key, to one loopback server.
const server = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
await new Promise((r) => server.once("listening", r));
let received = 0;
server.on("connection", (s) => s.on("message", (d: Buffer) => (received += d.length)));
const url = `ws://127.0.0.1:${(server.address() as { port: number }).port}/`;
const ac = new AbortController();
const zero = await connectUpstreamSocket({ provider: "bench", url, headers: {}, signal: ac.signal, refused: (s) => new SpillwayError(Code.Unavailable, `refused ${s}`) });
const masked = new WebSocket(url, { perMessageDeflate: false });
await new Promise((r) => masked.once("open", r));
const FRAME = Buffer.alloc(8544, 7);
const FRAMES = 19;

/** CPU ms per turn of `turns` turns of frames sent through `send`, received in full. */
async function socketTurns(turns: number, send: (b: Buffer) => void): Promise<number> {
  const target = received + turns * FRAMES * FRAME.length;
  const c0 = process.cpuUsage();
  for (let t = 0; t < turns; t++) {
    for (let i = 0; i < FRAMES; i++) send(FRAME.subarray(0));
    await new Promise((r) => setImmediate(r));
  }
  while (received < target) await new Promise((r) => setImmediate(r));
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000 / turns;
}
const viaZero = (b: Buffer): void => void zero.send(b);
const viaMasked = (b: Buffer): void => masked.send(b);
await socketTurns(200, viaZero);
await socketTurns(200, viaMasked);
for (let round = 1; round <= rounds; round++) {
  const z = await socketTurns(1000, viaZero);
  const m = await socketTurns(1000, viaMasked);
  console.log(`socket writes round ${round}: zero mask ${z.toFixed(3)} ms/turn, random mask ${m.toFixed(3)} ms/turn (${(m / z).toFixed(2)}×; sender and receiver)`);
}
ac.abort();
masked.terminate();
server.close();
