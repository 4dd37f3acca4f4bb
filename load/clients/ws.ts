/**
 * The WebSocket load client: one OpenAI Realtime session per stream on
 * `/v1/realtime` (the `ws` package): after `session.created` it adds a user
 * text item and asks for a text response; the stream's latency is from
 * `response.create` to the first `response.output_text.delta`, its chunks
 * the text deltas, its end `response.done` with status `completed`.
 * With `fromSchedule`, latency counts from the stream's scheduled start
 * instead (connection and session setup included): what an open-loop
 * overload run must count, or a gateway slow to accept sessions would look
 * fast. An `error` event with code `server_overloaded` is a refusal, timed
 * from the `response.create` it refuses (the session itself was accepted);
 * so is an upgrade answered 503 with `Retry-After` (the gateway refuses
 * sessions at the upgrade while it has no free slot), timed from the connect.
 */
import WebSocket from "ws";
import type { Held, LoadClient, Outcome } from "./types.js";

/** Settings of a WebSocket load client. */
export interface WsClientOptions {
  /** `ws://127.0.0.1:PORT/v1/realtime?model=…` */
  readonly url: string;
  readonly expectChunks: number;
  /** Count latency from the scheduled start (default: from `response.create`). */
  readonly fromSchedule?: boolean;
}

const ITEM = JSON.stringify({
  type: "conversation.item.create",
  item: { type: "message", role: "user", content: [{ type: "input_text", text: "benchmark" }] },
});
const RESPONSE = JSON.stringify({ type: "response.create", response: { output_modalities: ["text"] } });

function session(url: string, onEvent: (type: string, e: Record<string, unknown>, ws: WebSocket) => void, onFail: (e: Error) => void): WebSocket {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  ws.on("message", (data: Buffer) => {
    const e = JSON.parse(data.toString("utf8")) as Record<string, unknown>;
    onEvent(String(e["type"]), e, ws);
  });
  ws.on("error", onFail);
  return ws;
}

/** Creates a WebSocket (realtime) load client. */
export function createWsClient(o: WsClientOptions): LoadClient {
  const open = new Set<WebSocket>();
  return {
    run(scheduled) {
      return new Promise<Outcome>((resolve) => {
        let t0 = scheduled;
        // The refused request is the `response.create`: a refusal is timed from it.
        let asked = scheduled;
        let ttft: number | undefined;
        let chunks = 0;
        let settled = false;
        const settle = (r: Outcome): void => {
          if (settled) return;
          settled = true;
          open.delete(ws);
          // A finished session closes cleanly; a refused or failed one lets its socket go at once,
          // so an overload run cannot pile up sockets waiting for close handshakes (EMFILE).
          // A finished one's close handshake is bounded too (1 s): a slow server would otherwise keep
          // its socket past the stream, where the generator's cap on open streams does not count it.
          if (r.ok) {
            ws.close();
            const t = setTimeout(() => ws.terminate(), 1000);
            ws.once("close", () => clearTimeout(t));
          } else ws.terminate();
          resolve(r);
        };
        const connectAt = performance.now();
        const ws = session(
          o.url,
          (type, e, socket) => {
            if (type === "session.created") {
              socket.send(ITEM);
              asked = performance.now();
              if (!o.fromSchedule) t0 = asked;
              socket.send(RESPONSE);
            } else if (type === "response.output_text.delta" || type === "response.text.delta") {
              ttft ??= performance.now() - t0;
              chunks++;
            } else if (type === "response.done") {
              const status = (e["response"] as { status?: string } | undefined)?.status;
              const ok = status === "completed" && chunks > 0;
              settle(ok ? { ok, ttftMs: ttft, chunks } : { ok, ttftMs: ttft, chunks, error: `response ${status}` });
            } else if (type === "error") {
              const refused = (e["error"] as { code?: unknown } | undefined)?.code === "server_overloaded";
              settle({ ok: false, ttftMs: ttft, chunks, error: JSON.stringify(e["error"]).slice(0, 200), ...(refused ? { refused, refusalMs: performance.now() - asked } : {}) });
            }
          },
          (err) => settle({ ok: false, ttftMs: ttft, chunks, error: err.message }),
        );
        open.add(ws);
        ws.on("unexpected-response", (req, res) => {
          const refused = res.statusCode === 503 && res.headers["retry-after"] !== undefined;
          req.destroy();
          settle({ ok: false, ttftMs: ttft, chunks, error: `upgrade ${res.statusCode}`, ...(refused ? { refused, refusalMs: performance.now() - connectAt } : {}) });
        });
        ws.on("close", () => settle({ ok: false, ttftMs: ttft, chunks, error: "closed early" }));
      });
    },
    hold() {
      return new Promise<Held>((resolve, reject) => {
        let first = true;
        const ws = session(
          o.url,
          (type, _e, socket) => {
            if (type === "session.created") {
              socket.send(ITEM);
              socket.send(RESPONSE);
            } else if (first && (type === "response.output_text.delta" || type === "response.text.delta")) {
              first = false;
              resolve({ close: () => ws.terminate() });
            }
          },
          reject,
        );
        open.add(ws);
      });
    },
    close() {
      for (const ws of open) ws.terminate();
      open.clear();
    },
  };
}
