/**
 * The runnable example clients in clients/ against a real gateway with the
 * local engines: each is run as its README shows (a child process through
 * tsx) and what it prints and writes is checked.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";

const run = promisify(execFile);

/** Runs `clients/<file>` with `args`; resolves with its stdout and stderr (rejects on a non-zero exit). */
function client(file: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, ["--import", "tsx", join("clients", file), ...args], { timeout: 60_000 });
}

describe("example clients (clients/)", () => {
  let gw: TestGateway;
  let dir: string;
  before(async () => {
    gw = await startTestGateway({ providers: { local: { type: "local", tokenDelayMs: 0 } } });
    dir = await mkdtemp(join(tmpdir(), "spillway-clients-"));
  });
  after(async () => {
    await gw.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("grpc-client.ts: chat streams the echo, then synthesize writes a WAV that transcribe reads back", async () => {
    const address = gw.grpcAddress!;
    const chat = await client("grpc-client.ts", ["--address", address, "chat", "the quick brown fox"]);
    assert.match(chat.stdout, /the quick brown fox/);
    assert.match(chat.stderr, /\[usage\] in=\d+ out=\d+/);
    assert.match(chat.stderr, /\[finish\] reason=/);

    const wav = join(dir, "hello.wav");
    const synth = await client("grpc-client.ts", ["--address", address, "synthesize", "Hello world, this is a test.", wav]);
    assert.match(synth.stderr, /wrote .*hello\.wav/);
    const bytes = await readFile(wav);
    assert.equal(bytes.toString("ascii", 0, 4), "RIFF");
    assert.equal(bytes.readUInt32LE(24), 24_000);
    assert.equal(bytes.readUInt32LE(40), bytes.length - 44);
    assert.ok(bytes.length > 44 + 24_000, "at least half a second of speech");

    const heard = await client("grpc-client.ts", ["--address", address, "transcribe", wav]);
    // pocketsphinx's words are not espeak-ng's: a final transcript with words in it is what the client owes.
    assert.match(heard.stdout, /\[final\] [a-z']+( [a-z']+)+/i);
  });

  it("grpc-client.ts: a gateway error is printed and the exit code is 1", async () => {
    await assert.rejects(client("grpc-client.ts", ["--address", gw.grpcAddress!, "--model", "nope/none", "chat", "hi"]), (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 1);
      assert.match(e.stderr, /grpc-client: .*nope\/none/);
      return true;
    });
  });

  it("voice-client.ts: a spoken question gets a transcript, a reply and the reply's audio", async () => {
    const wav = join(dir, "question.wav");
    await client("grpc-client.ts", ["--address", gw.grpcAddress!, "synthesize", "Hello there, how are you today?", wav]);
    const out = join(dir, "reply.wav");
    const r = await client("voice-client.ts", ["--url", `ws://127.0.0.1:${gw.gateway.httpPort}/v1/realtime`, "--fast", "--out", out, wav]);
    assert.match(r.stdout, /session \S+ on local\/realtime/);
    assert.match(r.stdout, /\[speech started at \d+ ms\]/);
    assert.match(r.stdout, /you: \S+/);
    assert.match(r.stdout, /\[response completed\]/);
    const m = /reply: ([\d.]+) s of audio/.exec(r.stdout);
    assert.ok(m && Number(m[1]) > 0.3, r.stdout);
    const bytes = await readFile(out);
    assert.equal(bytes.toString("ascii", 0, 4), "RIFF");
    assert.equal(bytes.readUInt32LE(40), bytes.length - 44);
  });
});
