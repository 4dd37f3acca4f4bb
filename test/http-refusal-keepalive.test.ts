/**
 * An HTTP refusal for overload (503 `server_overloaded`) of a request with a
 * small declared body keeps the connection open (issue 16, wave 8): the body
 * is read and dropped, the 503 goes out once it has arrived, without
 * `connection: close`, and the next request on the same socket is answered
 * — refused again while the stream cap is full, served once it is not. A
 * large declared body is still refused with a lingering close. Saturation is
 * certain without timing: the process's stream cap of 1, held by a stream.
 */
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { Admission } from "../src/engine/admission.js";
import { AdaptiveLimit, OVERLOADED } from "../src/engine/adaptive-limit.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { postJson } from "./helpers/sse.js";
import { until } from "./helpers/saturate.js";

/** One HTTP/1.1 connection that sends requests and reads whole responses (Content-Length bodies) in order. */
class Conn {
  private buf = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  closed = false;
  private constructor(private readonly s: Socket) {
    s.on("data", (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.waiting?.();
    });
    s.on("close", () => {
      this.closed = true;
      this.waiting?.();
    });
  }
  static open(port: number): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const s = connect(port, "127.0.0.1", () => resolve(new Conn(s)));
      s.once("error", reject);
    });
  }
  write(b: string | Buffer): void {
    this.s.write(b);
  }
  /** The next whole response: its head (lower-cased) and body. */
  async response(): Promise<{ status: number; head: string; body: string }> {
    for (;;) {
      const end = this.buf.indexOf("\r\n\r\n");
      if (end >= 0) {
        const head = this.buf.subarray(0, end).toString("latin1").toLowerCase();
        const len = Number(/\r\ncontent-length: (\d+)/.exec(head)?.[1] ?? "0");
        if (this.buf.length >= end + 4 + len) {
          const body = this.buf.subarray(end + 4, end + 4 + len).toString("utf8");
          this.buf = this.buf.subarray(end + 4 + len);
          return { status: Number(head.slice(9, 12)), head, body };
        }
      }
      if (this.closed) throw new Error(`connection closed; got ${this.buf.toString("latin1")}`);
      await new Promise<void>((resolve) => (this.waiting = resolve));
    }
  }
  close(): void {
    this.s.destroy();
  }
}

function post(body: string, declared = Buffer.byteLength(body)): string {
  return `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${declared}\r\n\r\n${body}`;
}

describe("Admission.entryRefusal (unit): what enter() would throw, nothing taken", () => {
  it("agrees with enter(): stream cap, no room with no queue, room, and a queue to wait in", () => {
    const capped = new Admission([], { maxConcurrentStreams: 0 });
    assert.ok(capped.entryRefusal());
    assert.throws(() => capped.enter(), (e: unknown) => e === capped.entryRefusal());
    const limit = new AdaptiveLimit({ targetDelayMs: 100, minLimit: 1, queueMs: 0, sampleMs: 60_000 });
    const queued = new AdaptiveLimit({ targetDelayMs: 100, minLimit: 1, queueMs: 60_000, sampleMs: 60_000 });
    try {
      const a = new Admission([], { maxConcurrentStreams: 10, concurrency: limit });
      assert.equal(a.entryRefusal(), undefined);
      limit.limit = 0;
      assert.equal(a.entryRefusal(), OVERLOADED);
      assert.equal(limit.inflight, 0, "nothing taken");
      const b = new Admission([], { maxConcurrentStreams: 10, concurrency: queued });
      queued.limit = 0;
      assert.equal(b.entryRefusal(), undefined, "it would wait in the queue, not be refused");
      assert.equal(b.refusal(), OVERLOADED, "refusal() (no slot at once) says otherwise: not the same question");
    } finally {
      limit.stop();
      queued.stop();
    }
  });
});

describe("HTTP refusal for overload keeps a small request's connection", () => {
  let gw: TestGateway;
  let port: number;
  before(async () => {
    gw = await startTestGateway({ providers: { local: { type: "local", tokenDelayMs: 100 } }, limits: { maxConcurrentStreams: 1 } });
    port = gw.gateway.httpPort;
  });
  after(() => gw.close());

  it("refused three times on one socket (the body drained each time, one sent in two pieces), then served on it", async () => {
    const words = Array.from({ length: 30 }, (_, i) => `w${i}`).join(" ");
    const held = postJson(`${gw.baseUrl}/chat/completions`, { model: "local/echo", messages: [{ role: "user", content: words }], stream: true }).then((r) => r.text());
    await until(() => Promise.resolve(gw.gateway.engine.admission.openStreams === 1), "the cap is full");
    const c = await Conn.open(port);
    try {
      const body = JSON.stringify({ model: "local/echo", messages: [{ role: "user", content: "x" }] });
      for (let i = 0; i < 2; i++) {
        c.write(post(body));
        const r = await c.response();
        assert.equal(r.status, 503, r.head);
        assert.match(r.head, /\r\nretry-after: 1(\r\n|$)/);
        assert.doesNotMatch(r.head, /connection: close/, "the connection stays open");
        assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, "server_overloaded");
      }
      // The head and the first half of the body, then the rest: answered once the whole body is in.
      const whole = post(body);
      c.write(whole.slice(0, whole.length - 10));
      await new Promise((resolve) => setTimeout(resolve, 50));
      c.write(whole.slice(whole.length - 10));
      const third = await c.response();
      assert.equal(third.status, 503);
      assert.doesNotMatch(third.head, /connection: close/);

      assert.match(await held, /\[DONE\]/);
      await until(() => Promise.resolve(gw.gateway.engine.admission.openStreams === 0), "the slot is free");
      c.write(post(body));
      const ok = await c.response();
      assert.equal(ok.status, 200, ok.body);
      assert.match(ok.body, /"x"|x/);
      assert.equal(c.closed, false);
    } finally {
      c.close();
    }
  });

  it("a declared body over 64 KiB is still refused with connection: close", async () => {
    const words = Array.from({ length: 30 }, (_, i) => `w${i}`).join(" ");
    const held = postJson(`${gw.baseUrl}/chat/completions`, { model: "local/echo", messages: [{ role: "user", content: words }], stream: true }).then((r) => r.text());
    await until(() => Promise.resolve(gw.gateway.engine.admission.openStreams === 1), "the cap is full");
    const c = await Conn.open(port);
    try {
      const big = JSON.stringify({ model: "local/echo", messages: [{ role: "user", content: "y".repeat(70 * 1024) }] });
      c.write(post(big));
      const r = await c.response();
      assert.equal(r.status, 503);
      assert.match(r.head, /\r\nconnection: close/);
    } finally {
      c.close();
      await held;
    }
  });
});
