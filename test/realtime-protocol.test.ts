/**
 * The realtime door's protocol against a real gateway on loopback with real
 * `ws` clients: session lifecycle, text responses, beta names, subprotocols
 * and auth, bad input (each an `error` event naming the problem, the session
 * kept open; oversized frames close with 1009), cancellation, truncation,
 * G.711, and a dropped socket cancelling its work. Every server event of a
 * GA session is checked against RealtimeServerEvent.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import type { Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { audioOf, RealtimeTestClient, realtimeUrl, silence } from "./helpers/realtime.js";

let tg: TestGateway;

before(async () => {
  tg = await startTestGateway({ realtime: { maxFrameBytes: 64 * 1024 } });
});
after(async () => {
  await tg.close();
});

async function open(opts: Parameters<typeof RealtimeTestClient.connect>[1] = {}, model = "local/realtime"): Promise<RealtimeTestClient> {
  const c = await RealtimeTestClient.connect(realtimeUrl(tg.origin, model), opts);
  await c.next("session.created");
  return c;
}

function say(c: RealtimeTestClient, text: string, response: Record<string, unknown> = {}): void {
  c.send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text }] } });
  c.send({ type: "response.create", response });
}

describe("realtime session", () => {
  it("opens with session.created and applies session.update (GA shape)", async () => {
    const c = await open();
    const created = c.all("session.created")[0]!;
    assert.equal(created.session.model, "local/realtime");
    assert.equal(created.session.audio.input.turn_detection.type, "server_vad");
    c.send({
      type: "session.update",
      session: {
        type: "realtime",
        instructions: "Be brief.",
        output_modalities: ["text"],
        audio: {
          input: { format: { type: "audio/pcmu" }, turn_detection: { type: "server_vad", threshold: 0.7, silence_duration_ms: 300 } },
          output: { voice: "echo" },
        },
      },
    });
    const u = await c.next("session.updated");
    assert.equal(u.session.instructions, "Be brief.");
    assert.deepEqual(u.session.output_modalities, ["text"]);
    assert.deepEqual(u.session.audio.input.format, { type: "audio/pcmu" });
    assert.equal(u.session.audio.input.turn_detection.threshold, 0.7);
    assert.equal(u.session.audio.input.turn_detection.silence_duration_ms, 300);
    assert.equal(u.session.audio.output.voice, "echo");
    c.send({ type: "session.update", session: { type: "realtime", audio: { input: { turn_detection: null } } } });
    const manual = await c.next("session.updated", (e) => e.session.audio.input.turn_detection === null);
    assert.equal(manual.session.audio.input.turn_detection, null);
    assert.deepEqual(c.invalid, []);
    await c.close();
  });

  it("answers a text item with output_text deltas in OpenAI's order", async () => {
    const c = await open();
    say(c, "Hello there friend.", { output_modalities: ["text"] });
    const done = await c.next("response.done");
    assert.equal(done.response.status, "completed");
    const types = c.types().filter((t) => !t.endsWith(".delta"));
    assert.deepEqual(types.slice(types.indexOf("response.created")), [
      "response.created",
      "response.output_item.added",
      "conversation.item.created",
      "conversation.item.added",
      "response.content_part.added",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "conversation.item.done",
      "response.done",
    ]);
    const text = c.all("response.output_text.delta").map((e) => e.delta).join("");
    assert.equal(text, "Hello there friend.");
    assert.equal(c.all("response.output_text.done")[0]!.text, text);
    assert.equal(done.response.output[0].content[0].text, text);
    assert.ok(done.response.usage.output_tokens > 0);
    assert.deepEqual(c.invalid, []);
    await c.close();
    // One metrics record per response, door ws.
    const metrics = await (await fetch(`${tg.origin}/metrics`)).text();
    assert.match(metrics, /spillway_requests_total\{[^}]*door="ws"[^}]*route="\/v1\/realtime"[^}]*outcome="ok"/);
  });

  it("answers with audio: transcript deltas, audio deltas, then the done events", async () => {
    const c = await open();
    say(c, "One sentence. And another one.");
    const done = await c.next("response.done");
    assert.equal(done.response.status, "completed");
    assert.equal(c.all("response.output_audio_transcript.delta").map((e) => e.delta).join(""), "One sentence. And another one.");
    const audio = audioOf(c, done.response.id);
    assert.ok(audio.length > 24_000, `audio bytes: ${audio.length}`);
    assert.equal(audio.length % 2, 0);
    assert.ok(c.types().indexOf("response.output_audio.done") > c.types().lastIndexOf("response.output_audio.delta"));
    assert.deepEqual(c.invalid, []);
    await c.close();
  });

  it("speaks G.711 (audio/pcmu) when asked: 8000 bytes per second", async () => {
    const c = await open();
    c.send({ type: "session.update", session: { type: "realtime", audio: { output: { format: { type: "audio/pcmu" } } } } });
    await c.next("session.updated");
    say(c, "Testing mu law output.");
    const done = await c.next("response.done");
    const ulaw = audioOf(c, done.response.id);
    assert.ok(ulaw.length > 4000, `bytes ${ulaw.length}`);
    assert.equal(done.response.audio.output.format.type, "audio/pcmu");
    await c.close();
  });

  it("speaks the beta protocol to clients that ask (header or subprotocol)", async () => {
    const byHeader = await open({ headers: { "OpenAI-Beta": "realtime=v1" }, validate: false });
    say(byHeader, "Beta words.");
    await byHeader.next("response.done");
    assert.ok(byHeader.all("response.audio.delta").length > 0);
    assert.ok(byHeader.all("response.audio_transcript.delta").length > 0);
    assert.equal(byHeader.all("response.output_audio.delta").length, 0);
    assert.equal(byHeader.all("session.created")[0]!.session.input_audio_format, "pcm16");
    await byHeader.close();

    const byProtocol = await open({ protocols: ["realtime", "openai-beta.realtime-v1"], validate: false });
    assert.equal(byProtocol.ws.protocol, "realtime");
    byProtocol.send({ type: "session.update", session: { modalities: ["text"], input_audio_format: "g711_ulaw" } });
    const u = await byProtocol.next("session.updated");
    assert.equal(u.session.input_audio_format, "g711_ulaw");
    say(byProtocol, "Beta text.");
    await byProtocol.next("response.done");
    assert.ok(byProtocol.all("response.text.delta").length > 0);
    await byProtocol.close();
  });

  it("echoes an offered subprotocol (also the key one alone) and takes the key from it", async () => {
    const c = await open({ protocols: ["openai-insecure-api-key.sk-anything"] });
    assert.equal(c.ws.protocol, "openai-insecure-api-key.sk-anything");
    await c.close();
  });

  it("an unknown realtime model is an error event, then close 1008", async () => {
    const c = await RealtimeTestClient.connect(realtimeUrl(tg.origin, "nope/none"));
    const err = await c.next("error");
    assert.equal(err.error.param, "model");
    assert.match(err.error.message, /nope\/none/);
    assert.equal((await c.closed).code, 1008);
  });

  it("accepts raw binary frames as input audio, and commits them in manual mode", async () => {
    const c = await open();
    c.send({ type: "session.update", session: { type: "realtime", audio: { input: { turn_detection: null } } } });
    await c.next("session.updated");
    c.ws.send(silence(200));
    c.send({ type: "input_audio_buffer.commit" });
    const committed = await c.next("input_audio_buffer.committed");
    const item = await c.next("conversation.item.created", (e) => e.item.id === committed.item_id);
    assert.equal(item.item.content[0].type, "input_audio");
    await c.next("conversation.item.input_audio_transcription.completed", (e) => e.item_id === committed.item_id);
    assert.equal(c.all("error").length, 0);
    await c.close();
  });

  it("cancels a response on response.cancel (status cancelled, client_cancelled)", async () => {
    const slow = await startTestGateway({ providers: { local: { type: "local", tokenDelayMs: 100 } } });
    try {
      const c = await RealtimeTestClient.connect(realtimeUrl(slow.origin));
      await c.next("session.created");
      say(c, "a b c d e f g h i j k l m n o p q r s t u v w x y z", { output_modalities: ["text"] });
      await c.next("response.output_text.delta");
      c.send({ type: "response.cancel" });
      const done = await c.next("response.done");
      assert.equal(done.response.status, "cancelled");
      assert.equal(done.response.status_details.reason, "client_cancelled");
      const at = c.events.indexOf(done);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(c.events.slice(at + 1).filter((e) => e.response_id === done.response.id).length, 0);
      c.send({ type: "response.cancel" });
      const err = await c.next("error");
      assert.equal(err.error.code, "response_cancel_not_active");
      assert.deepEqual(c.invalid, []);
      await c.close();
    } finally {
      await slow.close();
    }
  });

  it("truncates an assistant audio item, and refuses a cut past its end", async () => {
    const c = await open();
    say(c, "Truncate me please.");
    const done = await c.next("response.done");
    const itemId = done.response.output[0].id;
    c.send({ type: "conversation.item.truncate", item_id: itemId, content_index: 0, audio_end_ms: 200 });
    const t = await c.next("conversation.item.truncated");
    assert.deepEqual([t.item_id, t.content_index, t.audio_end_ms], [itemId, 0, 200]);
    c.send({ type: "conversation.item.truncate", item_id: itemId, content_index: 0, audio_end_ms: 999_999, event_id: "cut" });
    const err = await c.next("error");
    assert.equal(err.error.param, "audio_end_ms");
    assert.equal(err.error.event_id, "cut");
    assert.deepEqual(c.invalid, []);
    await c.close();
  });
});

describe("realtime conversation items", () => {
  it("retrieves and deletes items; a deleted item is gone from the model's context", async () => {
    const c = await open();
    c.send({ type: "conversation.item.create", item: { id: "first", type: "message", role: "user", content: [{ type: "input_text", text: "forget me" }] } });
    c.send({ type: "conversation.item.create", item: { id: "second", type: "message", role: "user", content: [{ type: "input_text", text: "keep me" }] } });
    c.send({ type: "conversation.item.retrieve", item_id: "first" });
    const got = await c.next("conversation.item.retrieved");
    assert.equal(got.item.content[0].text, "forget me");
    c.send({ type: "conversation.item.delete", item_id: "second" });
    assert.equal((await c.next("conversation.item.deleted")).item_id, "second");
    c.send({ type: "conversation.item.retrieve", item_id: "second", event_id: "r2" });
    const err = await c.next("error");
    assert.deepEqual([err.error.code, err.error.param, err.error.event_id], ["item_not_found", "item_id", "r2"]);
    // The echo model answers the last user message left: the deleted one is gone.
    c.send({ type: "response.create", response: { output_modalities: ["text"] } });
    await c.next("response.done");
    assert.equal(c.all("response.output_text.done")[0]!.text, "forget me");
    assert.deepEqual(c.invalid, []);
    await c.close();
  });
});

describe("realtime bad input", () => {
  async function expectError(c: RealtimeTestClient, frame: string, check: (e: any) => void): Promise<void> {
    const from = c.events.length;
    c.ws.send(frame);
    check(await c.next("error", () => true, 5000, from));
  }

  it("each problem is an error event naming it, and the session stays usable", async () => {
    const c = await open();
    await expectError(c, "this is not json", (e) => assert.equal(e.error.code, "invalid_json"));
    await expectError(c, JSON.stringify({ type: "response.fly" }), (e) => {
      assert.equal(e.error.param, "type");
      assert.match(e.error.message, /response\.fly/);
    });
    await expectError(c, JSON.stringify({ type: "input_audio_buffer.append", event_id: "ev1" }), (e) => {
      assert.equal(e.error.code, "missing_required_parameter");
      assert.equal(e.error.param, "audio");
      assert.equal(e.error.event_id, "ev1");
    });
    await expectError(c, JSON.stringify({ type: "conversation.item.truncate", item_id: "x" }), (e) =>
      assert.equal(e.error.param, "content_index"),
    );
    await expectError(c, JSON.stringify({ type: "input_audio_buffer.append", audio: "%%% not base64 %%%" }), (e) => {
      assert.equal(e.error.param, "audio");
      assert.match(e.error.message, /base64/);
    });
    await expectError(c, JSON.stringify({ type: "input_audio_buffer.append", audio: Buffer.from([1, 2, 3]).toString("base64") }), (e) => {
      assert.equal(e.error.code, "invalid_audio_format");
      assert.match(e.error.message, /audio\/pcm/);
    });
    await expectError(
      c,
      JSON.stringify({ type: "session.update", session: { type: "realtime", audio: { input: { format: { type: "audio/pcm", rate: 16000 } } } } }),
      (e) => assert.equal(e.error.param, "session.audio.input.format.rate"),
    );
    await expectError(c, JSON.stringify({ type: "session.update", session: { audio: { output: { format: { type: "audio/mp3" } } } } }), (e) =>
      assert.equal(e.error.param, "session.audio.output.format.type"),
    );
    c.send({ type: "session.update", session: { type: "realtime", audio: { input: { turn_detection: null } } } });
    await c.next("session.updated");
    await expectError(c, JSON.stringify({ type: "input_audio_buffer.commit" }), (e) => {
      assert.equal(e.error.code, "input_audio_buffer_commit_empty");
      assert.match(e.error.message, /buffer too small/);
    });
    await expectError(c, JSON.stringify({ type: "session.update", session: { model: "nope/none" } }), (e) =>
      assert.equal(e.error.param, "session.model"),
    );
    await expectError(c, JSON.stringify({ type: "response.cancel" }), (e) => assert.equal(e.error.code, "response_cancel_not_active"));
    // Still usable.
    say(c, "still here", { output_modalities: ["text"] });
    const done = await c.next("response.done");
    assert.equal(done.response.status, "completed");
    assert.deepEqual(c.invalid, []);
    await c.close();
  });

  it("a frame over maxFrameBytes closes the socket with 1009", async () => {
    const c = await open();
    c.ws.send(JSON.stringify({ type: "input_audio_buffer.append", audio: Buffer.alloc(60 * 1024).toString("base64") }));
    const { code } = await c.closed;
    assert.equal(code, 1009);
    const err = c.all("error")[0];
    assert.equal(err?.error.code, "message_too_big");
    // Far over the limit, uWS drops the connection itself; the gateway is fine either way.
    const huge = await open();
    huge.ws.send(Buffer.alloc(1024 * 1024));
    assert.ok([1006, 1009].includes((await huge.closed).code));
    const d = await open();
    await d.close();
  });

  it("rejects a second response.create while one is active", async () => {
    const slow = await startTestGateway({ providers: { local: { type: "local", tokenDelayMs: 50 } } });
    try {
      const c = await RealtimeTestClient.connect(realtimeUrl(slow.origin));
      await c.next("session.created");
      say(c, "one two three four five six", { output_modalities: ["text"] });
      c.send({ type: "response.create", event_id: "second" });
      const err = await c.next("error");
      assert.equal(err.error.code, "conversation_already_has_active_response");
      assert.equal(err.error.event_id, "second");
      await c.next("response.done");
      await c.close();
    } finally {
      await slow.close();
    }
  });
});

describe("realtime auth and cleanup", () => {
  it("with gateway keys: no key is refused (401); a key by header or subprotocol is let in", async () => {
    const keyed = await startTestGateway({ auth: { keys: [{ key: "sk-spillway-test", name: "t" }] } });
    try {
      await assert.rejects(RealtimeTestClient.connect(realtimeUrl(keyed.origin)), /401/);
      const byHeader = await RealtimeTestClient.connect(realtimeUrl(keyed.origin), { headers: { Authorization: "Bearer sk-spillway-test" } });
      await byHeader.next("session.created");
      await byHeader.close();
      const byProtocol = await RealtimeTestClient.connect(realtimeUrl(keyed.origin), {
        protocols: ["realtime", "openai-insecure-api-key.sk-spillway-test"],
      });
      await byProtocol.next("session.created");
      assert.equal(byProtocol.ws.protocol, "realtime");
      await byProtocol.close();
      await assert.rejects(
        RealtimeTestClient.connect(realtimeUrl(keyed.origin), { headers: { Authorization: "Bearer wrong-key-123" } }),
        /401/,
      );
    } finally {
      await keyed.close();
    }
  });

  it("a dropped socket cancels its engine streams and kills its speech processes", async () => {
    const c = await open();
    const long = Array.from({ length: 12 }, (_, i) => `This is sentence number ${i + 1} of a long answer.`).join(" ");
    say(c, long);
    await c.next("response.output_audio.delta");
    assert.ok(tg.gateway.engine.admission.openStreams > 0);
    c.ws.terminate();
    await c.closed;
    const until = Date.now() + 5000;
    while (tg.gateway.engine.admission.openStreams > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.equal(tg.gateway.engine.admission.openStreams, 0);
    let children = "";
    for (let i = 0; i < 50; i++) {
      try {
        children = execFileSync("pgrep", ["-P", String(process.pid), "-a"], { encoding: "utf8" });
      } catch {
        children = "";
      }
      if (!/espeak|pocketsphinx/.test(children)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.doesNotMatch(children, /espeak|pocketsphinx/);
  });

  it("a plain GET of /v1/realtime is not a WebSocket; /v1/models lists local/realtime", async () => {
    const r = await fetch(`${tg.origin}/v1/realtime`);
    assert.ok(r.status >= 400);
    const models = (await (await fetch(`${tg.origin}/v1/models`)).json()) as { data: Array<{ id: string; capabilities: string[]; available: boolean }> };
    const rt = models.data.find((m) => m.id === "local/realtime");
    assert.deepEqual(rt?.capabilities, ["realtime"]);
    assert.equal(rt?.available, true);
  });
});

describe("realtime limits and flow control", () => {
  it("closes a session idle for idleTimeoutSeconds with an error event and 1000", async () => {
    const idle = await startTestGateway({ realtime: { idleTimeoutSeconds: 1 } });
    try {
      const c = await RealtimeTestClient.connect(realtimeUrl(idle.origin));
      await c.next("session.created");
      const err = await c.next("error", () => true, 5000);
      assert.equal(err.error.code, "session_idle_timeout");
      assert.equal((await c.closed).code, 1000);
    } finally {
      await idle.close();
    }
  });

  it("refuses input audio beyond maxInputAudioMs (error naming audio), and clear empties the buffer", async () => {
    const small = await startTestGateway({ realtime: { maxInputAudioMs: 500 } });
    try {
      const c = await RealtimeTestClient.connect(realtimeUrl(small.origin));
      await c.next("session.created");
      c.send({ type: "session.update", session: { type: "realtime", audio: { input: { turn_detection: null } } } });
      await c.next("session.updated");
      c.send({ type: "input_audio_buffer.append", audio: silence(400).toString("base64") });
      c.send({ type: "input_audio_buffer.append", audio: silence(200).toString("base64") });
      const err = await c.next("error");
      assert.equal(err.error.code, "input_audio_buffer_full");
      assert.equal(err.error.param, "audio");
      c.send({ type: "input_audio_buffer.clear" });
      await c.next("input_audio_buffer.cleared");
      c.send({ type: "input_audio_buffer.commit" });
      assert.equal((await c.next("error", (e) => e.error.code !== "input_audio_buffer_full")).error.code, "input_audio_buffer_commit_empty");
      assert.deepEqual(c.invalid, []);
      await c.close();
    } finally {
      await small.close();
    }
  });

  it("audio output waits for a slow client (speech generation pauses), then completes", async () => {
    const bp = await startTestGateway({ realtime: { highWaterBytes: 16 * 1024 } });
    try {
      const c = await RealtimeTestClient.connect(realtimeUrl(bp.origin));
      await c.next("session.created");
      const long = Array.from({ length: 40 }, (_, i) => `This is sentence number ${i + 1} of a very long spoken answer.`).join(" ");
      const socket = (c.ws as any)._socket as Socket;
      say(c, long);
      await c.next("response.output_audio.delta");
      socket.pause();
      // While the client reads nothing, the gateway stops producing: the speech stream stays open.
      await new Promise((r) => setTimeout(r, 2500));
      const received = c.events.length;
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(c.events.length, received, "nothing arrives while paused");
      assert.ok(bp.gateway.engine.admission.openStreams > 0, "synthesis is held back, not run to the end");
      socket.resume();
      const done = await c.next("response.done", () => true, 60_000);
      assert.equal(done.response.status, "completed");
      assert.ok(audioOf(c, done.response.id).length > 24_000 * 2 * 20, "all the audio arrives after resuming");
      await c.close();
    } finally {
      await bp.close();
    }
  });
});
