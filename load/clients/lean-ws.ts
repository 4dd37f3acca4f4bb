/**
 * The lean realtime load client: the sessions and outcomes of
 * load/clients/ws.ts on raw `net` sockets, cheap enough for one process to
 * offer several thousand sessions a second. The upgrade request and the two
 * client events (`conversation.item.create`, `response.create`) are rendered
 * once as bytes (client frames masked with an all-zero key, which RFC 6455
 * allows: the payload goes as is); of the server's frames it reads only the
 * event `type` (the first `"type":"…"` of the text) and, for `response.done`
 * and `error`, whether it says `completed` / `server_overloaded`. No
 * `Sec-WebSocket-Accept` check and no JSON parse: the gateway under test is
 * on loopback, and the outcome needs nothing else.
 */
import { connect, type Socket } from "node:net";
import type { WsClientOptions } from "./ws.js";
import type { Held, LoadClient, Outcome } from "./types.js";

const ITEM = JSON.stringify({
  type: "conversation.item.create",
  item: { type: "message", role: "user", content: [{ type: "input_text", text: "benchmark" }] },
});
const RESPONSE = JSON.stringify({ type: "response.create", response: { output_modalities: ["text"] } });

/** A masked client text frame (mask key 0000). */
function frame(text: string, opcode = 0x1): Buffer {
  const p = Buffer.from(text);
  const head = p.length < 126 ? Buffer.from([0x80 | opcode, 0x80 | p.length]) : Buffer.from([0x80 | opcode, 0x80 | 126, p.length >> 8, p.length & 0xff]);
  return Buffer.concat([head, Buffer.alloc(4), p]);
}

const ASK = Buffer.concat([frame(ITEM), frame(RESPONSE)]);
/** A close frame, code 1000. */
const CLOSE = Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]);
const TYPE = Buffer.from('"type":"');
const CRLFCRLF = Buffer.from("\r\n\r\n");
const COMPLETED = Buffer.from('"status":"completed"');
const OVERLOADED = Buffer.from("server_overloaded");

/** What a session hears: the upgrade's status, then each text message (its type and bytes). */
interface Listener {
  upgraded(status: number, retryAfter: boolean): void;
  event(type: string, payload: Buffer): void;
  fail(e: Error): void;
}

/** Opens one session on a raw socket and feeds `l`. */
function open(host: string, port: number, upgrade: Buffer, l: Listener): Socket {
  const s = connect({ host, port, noDelay: true });
  let buf: Buffer | undefined;
  let head = true;
  s.on("data", (chunk: Buffer) => {
    let b: Buffer = buf ? Buffer.concat([buf, chunk]) : chunk;
    buf = undefined;
    if (head) {
      const end = b.indexOf(CRLFCRLF);
      if (end < 0) {
        buf = b;
        return;
      }
      const h = b.toString("latin1", 0, end).toLowerCase();
      head = false;
      const status = Number(h.slice(9, 12));
      l.upgraded(status, h.includes("\r\nretry-after:"));
      if (status !== 101) return;
      b = b.subarray(end + 4);
    }
    while (b.length >= 2) {
      const op = b[0]! & 0x0f;
      let len = b[1]! & 0x7f;
      let at = 2;
      if (len === 126) {
        if (b.length < 4) break;
        len = b.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (b.length < 10) break;
        len = Number(b.readBigUInt64BE(2));
        at = 10;
      }
      if (b.length < at + len) break;
      const p = b.subarray(at, at + len);
      b = b.subarray(at + len);
      if (op === 0x1) {
        const i = p.indexOf(TYPE);
        const j = i < 0 ? -1 : p.indexOf(0x22, i + TYPE.length);
        l.event(j < 0 ? "" : p.toString("latin1", i + TYPE.length, j), p);
      } else if (op === 0x8) {
        l.fail(new Error("closed early"));
        s.destroy();
        return;
      }
    }
    if (b.length > 0) buf = b;
  });
  s.on("error", (e) => l.fail(e));
  s.on("close", () => l.fail(new Error("closed early")));
  s.write(upgrade);
  return s;
}

/** Creates a lean realtime load client (the options and outcomes of load/clients/ws.ts). */
export function createLeanWsClient(o: WsClientOptions): LoadClient {
  const url = new URL(o.url);
  const host = url.hostname;
  const port = Number(url.port);
  const upgrade = Buffer.from(
    `GET ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n`,
  );
  const live = new Set<Socket>();
  return {
    run(scheduled) {
      return new Promise<Outcome>((resolve) => {
        let t0 = scheduled;
        // The refused request is the `response.create`: a refusal is timed from it.
        let asked = scheduled;
        let ttft: number | undefined;
        let chunks = 0;
        let settled = false;
        const connectAt = performance.now();
        const settle = (r: Outcome): void => {
          if (settled) return;
          settled = true;
          live.delete(s);
          // As load/clients/ws.ts: a finished session closes (its close handshake bounded to 1 s), a refused or failed one goes at once.
          if (r.ok) {
            s.end(CLOSE);
            const t = setTimeout(() => s.destroy(), 1000);
            s.once("close", () => clearTimeout(t));
          } else s.destroy();
          resolve(r);
        };
        const s = open(host, port, upgrade, {
          upgraded(status, retryAfter) {
            if (status === 101) return;
            const refused = status === 503 && retryAfter;
            settle({ ok: false, ttftMs: ttft, chunks, error: `upgrade ${status}`, ...(refused ? { refused, refusalMs: performance.now() - connectAt } : {}) });
          },
          event(type, p) {
            if (type === "session.created") {
              asked = performance.now();
              if (!o.fromSchedule) t0 = asked;
              s.write(ASK);
            } else if (type === "response.output_text.delta" || type === "response.text.delta") {
              ttft ??= performance.now() - t0;
              chunks++;
            } else if (type === "response.done") {
              const ok = p.includes(COMPLETED) && chunks > 0;
              settle(ok ? { ok, ttftMs: ttft, chunks } : { ok, ttftMs: ttft, chunks, error: `response ${p.toString("utf8").slice(0, 200)}` });
            } else if (type === "error") {
              const refused = p.includes(OVERLOADED);
              settle({ ok: false, ttftMs: ttft, chunks, error: p.toString("utf8").slice(0, 200), ...(refused ? { refused, refusalMs: performance.now() - asked } : {}) });
            }
          },
          fail(e) {
            settle({ ok: false, ttftMs: ttft, chunks, error: e.message });
          },
        });
        live.add(s);
      });
    },
    hold() {
      return new Promise<Held>((resolve, reject) => {
        let first = true;
        const s: Socket = open(host, port, upgrade, {
          upgraded(status) {
            if (status !== 101) reject(new Error(`upgrade ${status}`));
          },
          event(type) {
            if (type === "session.created") s.write(ASK);
            else if (first && (type === "response.output_text.delta" || type === "response.text.delta")) {
              first = false;
              resolve({ close: () => s.destroy() });
            }
          },
          fail(e) {
            if (first) reject(e);
          },
        });
        live.add(s);
      });
    },
    close() {
      for (const s of live) s.destroy();
      live.clear();
    },
  };
}
