/**
 * The input buffers' store pool (src/doors/ws/store-pool.ts): stores are
 * reused across buffers (sessions), and a reused store never changes audio
 * that an earlier holder still has — a peek/take view, a transcription's
 * queued pieces, a VAD's early input.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AudioEncoding } from "../src/gen/spillway/v1/chunk.js";
import type { SileroModel, SileroState } from "../src/audio/silero-model.js";
import type { StreamEngine } from "../src/engine/stream-engine.js";
import { InputAudioBuffer } from "../src/doors/ws/input-buffer.js";
import { SileroVad } from "../src/doors/ws/silero-vad.js";
import { MIN_STORE_BYTES, StorePool, storeSizeFor } from "../src/doors/ws/store-pool.js";
import { TurnTranscription } from "../src/doors/ws/transcription.js";
import type { Outbox } from "../src/doors/ws/outbox.js";

const b64 = (bytes: Buffer): string => bytes.toString("base64");
/** `n` bytes of a pattern that differs by `seed`. */
const pcm = (n: number, seed: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed * 7) & 0xff));

/** Appends `chunks` 20 ms base64 pieces (960 bytes) to `b`, each staged and added as the session does; returns the staged views. */
function speak(b: InputAudioBuffer, chunks: number, seed: number): Buffer[] {
  const staged: Buffer[] = [];
  for (let i = 0; i < chunks; i++) {
    const v = b.stageBase64(b64(pcm(960, seed + i)))!;
    b.append(v);
    staged.push(v);
  }
  return staged;
}

describe("store pool", () => {
  it("hands out power-of-two stores of at least 64 KiB and reuses released ones", () => {
    assert.equal(storeSizeFor(1), MIN_STORE_BYTES);
    assert.equal(storeSizeFor(MIN_STORE_BYTES + 1), 2 * MIN_STORE_BYTES);
    const pool = new StorePool();
    const a = pool.acquire(100_000);
    assert.equal(a.length, 128 * 1024);
    pool.release(a);
    assert.equal(pool.bytes, 128 * 1024);
    const b = pool.acquire(70_000);
    assert.equal(b.buffer, a.buffer);
    assert.equal(pool.reused, 1);
    assert.equal(pool.bytes, 0);
    // Another size class is not served from it.
    pool.release(b);
    assert.notEqual(pool.acquire(10).buffer, a.buffer);
  });

  it("keeps a store released twice only once, and refuses views, odd sizes and stores over its limits", () => {
    const pool = new StorePool(256 * 1024, 128 * 1024);
    const a = pool.acquire(1);
    pool.release(a);
    pool.release(a);
    assert.equal(pool.bytes, MIN_STORE_BYTES);
    assert.equal(pool.acquire(1).buffer, a.buffer);
    assert.notEqual(pool.acquire(1).buffer, a.buffer, "released twice, handed out once");
    pool.release(Buffer.allocUnsafeSlow(MIN_STORE_BYTES + 8));
    pool.release(Buffer.allocUnsafeSlow(2 * MIN_STORE_BYTES).subarray(0, MIN_STORE_BYTES));
    pool.release(Buffer.allocUnsafeSlow(4 * MIN_STORE_BYTES));
    assert.equal(pool.bytes, 0);
    for (let i = 0; i < 5; i++) pool.release(Buffer.allocUnsafeSlow(MIN_STORE_BYTES));
    assert.equal(pool.bytes, 256 * 1024, "at most maxBytes");
  });
});

describe("input buffer stores from the pool", () => {
  it("gives an outgrown store and a released buffer's store back, and a later buffer reuses them", () => {
    const pool = new StorePool();
    const a = new InputAudioBuffer(24_000, 2, pool);
    // 200 pieces of 960 bytes: 192,000 bytes, so the store grows at least twice.
    speak(a, 200, 1);
    assert.ok(pool.bytes > 0, "the outgrown stores went back");
    const held = pool.bytes;
    a.release();
    assert.ok(pool.bytes > held, "and the last one at release");
    assert.equal(a.length, 0);
    const b = new InputAudioBuffer(24_000, 2, pool);
    speak(b, 10, 500);
    assert.equal(pool.reused, 1);
    assert.ok(b.borrow().equals(Buffer.concat(Array.from({ length: 10 }, (_, i) => pcm(960, 500 + i)))));
  });

  it("never reuses a store a peek or take view points into", () => {
    const pool = new StorePool();
    const a = new InputAudioBuffer(24_000, 2, pool);
    speak(a, 20, 1);
    const peeked = a.peek();
    const copy = Buffer.from(peeked);
    speak(a, 100, 30);
    const taken = a.take();
    const takenCopy = Buffer.from(taken);
    a.release();
    // Buffers after it write through whatever the pool holds.
    for (let k = 0; k < 4; k++) {
      const b = new InputAudioBuffer(24_000, 2, pool);
      speak(b, 150, 1000 + k);
      b.release();
    }
    // (equals, not deepEqual: a failing deepEqual of 100 KB takes minutes to print its diff)
    assert.ok(peeked.equals(copy), "the peeked audio changed");
    assert.ok(taken.equals(takenCopy), "the taken audio changed");
  });

  it("a store reused by a later session never changes the audio an earlier session's transcription holds", async () => {
    const pool = new StorePool();
    // An engine whose provider keeps every piece it is given, as Deepgram keeps a turn's audio to send again after a reconnect.
    const held: Uint8Array[] = [];
    let finish!: () => void;
    const done = new Promise<void>((r) => (finish = r));
    const engine = {
      router: { resolve: () => ({ provider: { nativeTranscribeEncodings: [AudioEncoding.AUDIO_ENCODING_PCM_S16LE] } }) },
      transcribe: (_config: unknown, audio: AsyncIterable<Uint8Array>) => {
        void (async () => {
          for await (const piece of audio) held.push(piece);
          finish();
        })();
        return Promise.resolve({ [Symbol.asyncIterator]: () => ({ next: () => done.then(() => ({ done: true, value: undefined })) }), cancel: () => {} });
      },
    } as unknown as StreamEngine;
    const outbox = { send: () => {} } as unknown as Outbox;
    const abort = new AbortController();
    const t = new TurnTranscription({ engine, outbox, model: "x/y", language: "", prompt: "", itemId: "item_1", signal: abort.signal, principal: undefined });

    // Session 1: silence before the turn, then speech; the turn's transcription gets the buffered
    // audio at speech start (borrowed) and every append after it (staged views), as session.ts does.
    const a = new InputAudioBuffer(24_000, 2, pool);
    speak(a, 40, 1);
    a.dropBefore(500);
    const sent: Buffer[] = [Buffer.from(a.borrow())];
    t.push(a.borrow());
    for (const v of speak(a, 150, 100)) {
      sent.push(Buffer.from(v));
      t.push(v);
    }
    const expected = Buffer.concat(sent);
    t.end();
    await done;
    a.release();
    assert.ok(pool.bytes > 0);

    // Session 2 takes every store session 1 gave back and writes other audio through them.
    const reusedBefore = pool.reused;
    const b = new InputAudioBuffer(24_000, 2, pool);
    speak(b, 300, 7000);
    assert.ok(pool.reused > reusedBefore, "session 2 reused session 1's stores");
    assert.ok(Buffer.concat(held).equals(expected), "the transcription's audio changed");
    abort.abort();
  });

  it("the Silero detector keeps its own copy of what it is given before its model is loaded", async () => {
    const frames: Float32Array[] = [];
    const model: SileroModel = {
      stats: { batches: 0, frames: 0 },
      newState: (): SileroState => ({ h: new Float32Array(128), c: new Float32Array(128) }),
      attach: () => () => {},
      probability(f: Float32Array) {
        frames.push(f.slice());
        return Promise.resolve(0);
      },
    };
    const feed = async (overwrite: boolean): Promise<Float32Array[]> => {
      frames.length = 0;
      let load!: (m: SileroModel) => void;
      const vad = new SileroVad(new Promise<SileroModel>((r) => (load = r)), {
        settings: { threshold: 0.5, prefixPaddingMs: 300, silenceDurationMs: 500 },
        sampleRate: 24_000,
        startMs: 0,
        onEvent: () => {},
      });
      const bytes = pcm(9600, 3);
      const view = new Int16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);
      for (let i = 0; i < 10; i++) vad.push(view.subarray(i * 480, (i + 1) * 480));
      // The store is reused: what the views pointed at is something else now.
      if (overwrite) bytes.fill(0x55);
      load(model);
      await vad.whenIdle();
      vad.close();
      return frames.map((f) => f);
    };
    const clean = await feed(false);
    assert.ok(clean.length >= 5);
    const after = await feed(true);
    assert.equal(after.length, clean.length);
    assert.ok(after.every((f, i) => Buffer.from(f.buffer).equals(Buffer.from(clean[i]!.buffer))), "the frames the model saw changed");
  });
});
