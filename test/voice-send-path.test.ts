/**
 * The voice send path's copies: audio pieces that lie side by side go up as
 * one view, frames to a loopback upstream go with a zero mask key (ws
 * then sends the payload as it is), and the bench's sessions of several
 * turns round each row's turns up.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer, type Socket } from "node:net";
import { describe, it } from "node:test";
import { joinPieces } from "../src/audio/pcm.js";
import { SpillwayError } from "../src/engine/errors.js";
import { Code } from "../src/engine/code.js";
import { connectUpstreamSocket, zeroMaskAllowed } from "../src/providers/shared/upstream-socket.js";
import { sessionPlan } from "../load/voice.js";

describe("joinPieces", () => {
  it("is a view when the pieces lie one after the other in one memory, else a copy; the bytes are the concatenation", () => {
    const store = Buffer.allocUnsafeSlow(100);
    for (let i = 0; i < 100; i++) store[i] = i;
    const adjacent = [store.subarray(10, 20), store.subarray(20, 25), store.subarray(25, 60)];
    const joined = joinPieces(adjacent, 50);
    assert.equal(joined.buffer, store.buffer);
    assert.equal(joined.byteOffset, store.byteOffset + 10);
    assert.deepEqual(Buffer.from(joined), Buffer.concat(adjacent));

    const gap = [store.subarray(10, 20), store.subarray(21, 30)];
    const copied = joinPieces(gap, 19);
    assert.notEqual(copied.buffer, store.buffer);
    assert.deepEqual(Buffer.from(copied), Buffer.concat(gap));
    const repeated = [store.subarray(0, 10), store.subarray(0, 10)];
    assert.deepEqual(Buffer.from(joinPieces(repeated, 20)), Buffer.concat(repeated));
    const other = [store.subarray(0, 10), Buffer.from(store.subarray(10, 20))];
    assert.deepEqual(Buffer.from(joinPieces(other, 20)), store.subarray(0, 20));
    assert.equal(joinPieces([store], 100), store);
    assert.equal(joinPieces([], 0).length, 0);
  });
});

describe("zero mask key on upstream sockets", () => {
  it("is allowed on loopback only (a TLS-intercepting proxy reads wss:// frames, so a real provider gets random keys)", () => {
    for (const url of ["wss://127.0.0.1:8443/v1/listen", "ws://127.0.0.1:8080/x", "ws://localhost:1/x", "ws://[::1]:9/x", "ws://127.1.2.3/x"]) {
      assert.equal(zeroMaskAllowed(url), true, url);
    }
    for (const url of ["wss://api.deepgram.com/v1/listen", "wss://api.elevenlabs.io/v1/text-to-speech/v/stream-input", "ws://api.deepgram.com/v1/listen", "ws://10.0.0.1/x", "ws://127.example.com/x", "not a url"]) {
      assert.equal(zeroMaskAllowed(url), false, url);
    }
  });

  it("sends loopback frames masked with key 0, the payload as it is and the sender's bytes untouched", async () => {
    let resolveFrame: (b: Buffer) => void = () => undefined;
    const frame = new Promise<Buffer>((r) => (resolveFrame = r));
    const sockets: Socket[] = [];
    const server = createServer((s) => {
      sockets.push(s);
      let got = Buffer.alloc(0);
      let upgraded = false;
      s.on("data", (d: Buffer) => {
        got = Buffer.concat([got, d]);
        if (!upgraded) {
          const end = got.indexOf("\r\n\r\n");
          if (end < 0) return;
          const key = /sec-websocket-key: *(\S+)/i.exec(got.subarray(0, end).toString("latin1"))![1]!;
          const accept = createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
          s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
          upgraded = true;
          got = got.subarray(end + 4);
        }
        // One binary frame of 300 bytes: 2 header bytes, 2 of length, 4 of mask key, the payload.
        if (got.length >= 308) resolveFrame(got.subarray(0, 308));
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    const ac = new AbortController();
    try {
      const socket = await connectUpstreamSocket({
        provider: "test",
        url: `ws://127.0.0.1:${port}/`,
        headers: {},
        signal: ac.signal,
        refused: (status) => new SpillwayError(Code.Unavailable, `refused ${status}`),
      });
      const payload = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff));
      const before = Buffer.from(payload);
      assert.equal(socket.send(payload), true);
      const f = await frame;
      assert.equal(f[0], 0x82); // fin, binary
      assert.equal(f[1], 0x80 | 126); // masked, 16-bit length
      assert.equal(f.readUInt16BE(2), 300);
      assert.deepEqual([...f.subarray(4, 8)], [0, 0, 0, 0]);
      assert.deepEqual(f.subarray(8), before);
      assert.deepEqual(payload, before);
    } finally {
      ac.abort();
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });
});

describe("bench sessions of several turns", () => {
  it("rounds each row's turns per caller up to a multiple of the session's turns", () => {
    assert.deepEqual(sessionPlan([[1, 5], [20, 3]], 1), [[1, 5], [20, 3]]);
    assert.deepEqual(sessionPlan([[1, 5], [20, 3]], 5), [[1, 5], [20, 5]]);
    assert.deepEqual(sessionPlan([[4, 6]], 5), [[4, 10]]);
  });
});
