/**
 * One Deepgram live socket per realtime session (src/providers/deepgram/
 * live-session.ts), driven with `ws` through the realtime door: N turns
 * over one socket (a `Finalize` at each turn's end, `CloseStream` when the
 * session ends), `KeepAlive` between turns keeping the socket past the fake's
 * idle timeout (Deepgram's NET-0001), a socket Deepgram closes between turns
 * or in the middle of a turn replaced without the client seeing it (the
 * turn's audio sent again, its transcript not repeated), and a reconnect
 * that fails reported as the turn's transcription failure.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DEEPGRAM_KEY, startFakeDeepgram, type FakeDeepgram, type LiveSession } from "./helpers/fake-deepgram.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { appendAudio, RealtimeTestClient, realtimeUrl, silence, tone } from "./helpers/realtime.js";

let deepgram: FakeDeepgram;
let tg: TestGateway;
/** A gateway whose KeepAlive comes later than the fake's idle timeout. */
let lateKeepAlive: TestGateway;

function config(keepAliveMs: number): Record<string, any> {
  return {
    grpc: { enabled: false },
    providers: {
      deepgram: { type: "deepgram", baseUrl: deepgram.baseUrl, apiKey: DEEPGRAM_KEY, keepAliveMs },
      fake: { type: "local" },
    },
    realtime: {
      // Tones stand in for speech: the energy VAD hears them.
      vad: { engine: "energy" },
      profiles: { "phone/stt": { stt: "deepgram/nova-3", text: "fake/echo", tts: "fake/tts" } },
    },
  };
}

before(async () => {
  deepgram = await startFakeDeepgram();
  tg = await startTestGateway(config(150));
  lateKeepAlive = await startTestGateway(config(9000));
});
after(async () => {
  await Promise.all([tg.close(), lateKeepAlive.close()]);
  await deepgram.close();
});

/** A session with server VAD that transcribes turns without answering them. */
async function open(gw: TestGateway): Promise<RealtimeTestClient> {
  const c = await RealtimeTestClient.connect(realtimeUrl(gw.origin, "phone/stt"));
  await c.next("session.created");
  c.send({ type: "session.update", session: { type: "realtime", audio: { input: { turn_detection: { type: "server_vad", create_response: false, silence_duration_ms: 300 } } } } });
  await c.next("session.updated");
  return c;
}

/** One spoken turn; resolves with its completed transcription event. */
async function turn(c: RealtimeTestClient, n: number): Promise<Record<string, any>> {
  appendAudio(c, Buffer.concat([silence(200), tone(500), silence(600)]));
  await c.next("conversation.item.input_audio_transcription.completed", () => c.all("conversation.item.input_audio_transcription.completed").length >= n);
  return c.all("conversation.item.input_audio_transcription.completed")[n - 1]!;
}

const finalizes = (s: LiveSession): number => s.control.filter((m) => m === '{"type":"Finalize"}').length;

describe("one Deepgram socket per realtime session", () => {
  it("three turns over one socket: Finalize at each turn's end, KeepAlive between turns, CloseStream at the session's end", async () => {
    deepgram.script = { idleTimeoutMs: 600 };
    try {
      const before = deepgram.sessions.length;
      const c = await open(tg);
      const first = deepgram.nextSession();
      for (let n = 1; n <= 3; n++) {
        const t = await turn(c, n);
        assert.equal(t.transcript, "Hello from Deepgram.", `turn ${n}`);
        // A pause longer than the fake's idle timeout (600 ms): KeepAlive (every 150 ms of quiet) keeps the socket.
        await new Promise((r) => setTimeout(r, 900));
      }
      const dg = await first;
      assert.equal(deepgram.sessions.length - before, 1, "one socket for three turns");
      assert.equal(finalizes(dg), 3);
      assert.ok(dg.control.filter((m) => m === '{"type":"KeepAlive"}').length >= 1, "KeepAlive during the pauses");
      assert.equal(dg.control.includes('{"type":"CloseStream"}'), false, "not closed while the session lives");
      assert.equal(c.all("input_audio_buffer.speech_started").length, 3);
      assert.equal(c.all("input_audio_buffer.committed").length, 3);
      assert.deepEqual(c.all("conversation.item.input_audio_transcription.delta").map((e) => e.delta), ["Hello from Deepgram.", "Hello from Deepgram.", "Hello from Deepgram."]);
      assert.deepEqual(c.all("conversation.item.input_audio_transcription.failed"), []);
      assert.deepEqual(c.all("error"), []);
      await c.close();
      const closed = await dg.closed;
      assert.equal(dg.control.at(-1), '{"type":"CloseStream"}');
      assert.notEqual(closed.code, 1011, "not Deepgram's idle timeout");
      assert.deepEqual(c.invalid, []);
    } finally {
      deepgram.script = {};
    }
  });

  it("a socket Deepgram closed between turns (no KeepAlive in time: NET-0001) is replaced at the next turn without an error", async () => {
    deepgram.script = { idleTimeoutMs: 400 };
    try {
      const c = await open(lateKeepAlive);
      const first = deepgram.nextSession();
      assert.equal((await turn(c, 1)).transcript, "Hello from Deepgram.");
      const dg1 = await first;
      const closed = await dg1.closed;
      assert.equal(closed.code, 1011);
      assert.equal(closed.byClient, false, "Deepgram closed it (idle timeout)");
      const second = deepgram.nextSession();
      assert.equal((await turn(c, 2)).transcript, "Hello from Deepgram.");
      await second;
      assert.deepEqual(c.all("conversation.item.input_audio_transcription.failed"), []);
      assert.deepEqual(c.all("error"), []);
      await c.close();
    } finally {
      deepgram.script = {};
    }
  });

  it("a socket Deepgram closes mid-turn is reopened and the turn's audio sent again; the transcript is not repeated", async () => {
    deepgram.script = { closeAfterResults: 1 };
    try {
      const c = await open(tg);
      const first = deepgram.nextSession().then((s) => {
        // The next socket is a healthy one.
        deepgram.script = {};
        return s;
      });
      const t = await turn(c, 1);
      const dg1 = await first;
      assert.equal((await dg1.closed).code, 1011, "closed by the fake mid-turn");
      assert.equal(t.transcript, "Hello from Deepgram.");
      assert.deepEqual(c.all("conversation.item.input_audio_transcription.delta").map((e) => e.delta), ["Hello from Deepgram."]);
      assert.deepEqual(c.all("conversation.item.input_audio_transcription.failed"), []);
      assert.deepEqual(c.all("error"), []);
      const dg2 = deepgram.sessions.at(-1)!;
      assert.notEqual(dg2, dg1);
      const bytes = (s: LiveSession): number => s.audio.reduce((n, b) => n + b.length, 0);
      assert.ok(bytes(dg2) >= bytes(dg1), "the turn's audio was sent again from its start");
      assert.equal(finalizes(dg2), 1);
      await c.close();
    } finally {
      deepgram.script = {};
    }
  });

  it("an Error message or one that is not JSON fails the turn's transcription without a reconnect, and the session goes on", async () => {
    const cases = [
      { message: JSON.stringify({ type: "Error", description: "Failed to process audio.", variant: "DATA-0001" }), says: /Failed to process audio\./ },
      { message: "not json at all", says: /not JSON/ },
    ];
    for (const k of cases) {
      deepgram.script = { sendOnFirstAudio: k.message };
      try {
        const c = await open(tg);
        const opened = deepgram.sessions.length;
        appendAudio(c, Buffer.concat([silence(200), tone(500), silence(600)]));
        const failed = await c.next("conversation.item.input_audio_transcription.failed");
        assert.match(failed.error.message, k.says);
        assert.equal(c.all("conversation.item.input_audio_transcription.completed").length, 0);
        assert.equal(deepgram.sessions.length, opened + 1, "a broken stream is not reopened to send the same audio again");
        deepgram.script = {};
        assert.equal((await turn(c, 1)).transcript, "Hello from Deepgram.", "the next turn is transcribed over a new socket");
        await c.close();
      } finally {
        deepgram.script = {};
      }
    }
  });

  it("when the reconnect fails too, the turn's transcription fails (an error object naming the close) and the session goes on", async () => {
    deepgram.script = { closeAfterResults: 1 };
    try {
      const c = await open(tg);
      void deepgram.nextSession().then(() => {
        deepgram.script = { refuseStatus: 503, refuseBody: { err_code: "SERVICE_UNAVAILABLE", err_msg: "try later", request_id: "r" } };
      });
      appendAudio(c, Buffer.concat([silence(200), tone(500), silence(600)]));
      const failed = await c.next("conversation.item.input_audio_transcription.failed");
      assert.ok(failed.error.message.length > 0);
      assert.equal(c.all("conversation.item.input_audio_transcription.completed").length, 0);
      // The session goes on: with Deepgram healthy again the next turn is transcribed over a new socket.
      deepgram.script = {};
      assert.equal((await turn(c, 1)).transcript, "Hello from Deepgram.");
      await c.close();
    } finally {
      deepgram.script = {};
    }
  });
});
