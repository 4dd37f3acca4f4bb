// k6 (v0.48) load script: realtime sessions on the WebSocket door
// (k6/experimental/websockets). Each iteration opens a session on
// /v1/realtime, adds a user text item, asks for a text response, and
// measures the time from `response.create` to the first text delta.
//
//   k6 run --vus 2 --duration 5s load/k6-realtime-ws.js
//   WS_URL=ws://127.0.0.1:8080/v1/realtime MODEL=local/realtime k6 run load/k6-realtime-ws.js
import { WebSocket } from "k6/experimental/websockets";
import { check } from "k6";
import { Trend, Rate } from "k6/metrics";

const WS_URL = __ENV.WS_URL || "ws://127.0.0.1:8080/v1/realtime";
const MODEL = __ENV.MODEL || "local/realtime";

const ttft = new Trend("realtime_ttft", true);
const completed = new Rate("realtime_response_completed");

export const options = {
  thresholds: {
    realtime_response_completed: ["rate>0.99"],
    realtime_ttft: ["p(95)<500", "p(99)<1000"],
    checks: ["rate>0.99"],
  },
};

export default function () {
  const ws = new WebSocket(`${WS_URL}?model=${encodeURIComponent(MODEL)}`);
  let sentAt = 0;
  let firstDelta = false;
  let deltas = 0;
  const timeout = setTimeout(() => {
    completed.add(false);
    ws.close();
  }, 30000);

  ws.onmessage = (m) => {
    const e = JSON.parse(m.data);
    if (e.type === "session.created") {
      ws.send(JSON.stringify({
        type: "conversation.item.create",
        item: { type: "message", role: "user", content: [{ type: "input_text", text: "hello from k6" }] },
      }));
      sentAt = Date.now();
      ws.send(JSON.stringify({ type: "response.create", response: { output_modalities: ["text"] } }));
    } else if (e.type === "response.output_text.delta" || e.type === "response.text.delta") {
      if (!firstDelta) {
        firstDelta = true;
        ttft.add(Date.now() - sentAt);
      }
      deltas++;
    } else if (e.type === "response.done") {
      const ok = e.response && e.response.status === "completed";
      completed.add(ok);
      check(e, { "response completed": () => ok, "text deltas received": () => deltas > 0 });
      clearTimeout(timeout);
      ws.close();
    } else if (e.type === "error") {
      check(e, { "no error event": () => false });
    }
  };
  ws.onerror = (e) => {
    check(e, { "no socket error": () => false });
  };
}
