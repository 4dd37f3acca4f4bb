// k6 (v0.48) load script: streamed chat completions over SSE.
//
//   k6 run --vus 2 --duration 5s load/k6-chat-sse.js
//   BASE_URL=http://127.0.0.1:8080 MODEL=local/echo k6 run load/k6-chat-sse.js
//
// k6's http client reads the whole response, so the time to the first token
// is `timings.waiting` (time to the first response byte): Spillway sends the
// status line and headers together with the first chunk, so the two are the
// same. The stream is checked to end with `data: [DONE]`.
import http from "k6/http";
import { check } from "k6";
import { Trend, Rate } from "k6/metrics";

const BASE_URL = __ENV.BASE_URL || "http://127.0.0.1:8080";
const MODEL = __ENV.MODEL || "local/echo";
const API_KEY = __ENV.API_KEY || "";

const ttft = new Trend("chat_ttft", true);
const complete = new Rate("chat_stream_complete");

export const options = {
  thresholds: {
    http_req_failed: ["rate<0.01"],
    chat_stream_complete: ["rate>0.99"],
    chat_ttft: ["p(95)<500", "p(99)<1000"],
    checks: ["rate>0.99"],
  },
};

const body = JSON.stringify({
  model: MODEL,
  messages: [{ role: "user", content: "the quick brown fox jumps over the lazy dog" }],
  stream: true,
  stream_options: { include_usage: true },
});

export default function () {
  const headers = { "Content-Type": "application/json" };
  if (API_KEY) headers["Authorization"] = `Bearer ${API_KEY}`;
  const res = http.post(`${BASE_URL}/v1/chat/completions`, body, { headers, timeout: "60s" });
  ttft.add(res.timings.waiting);
  const text = String(res.body || "");
  const done = text.trimEnd().endsWith("data: [DONE]");
  complete.add(done);
  check(res, {
    "status 200": (r) => r.status === 200,
    "event stream": (r) => String(r.headers["Content-Type"] || "").startsWith("text/event-stream"),
    "ends with [DONE]": () => done,
    "has content chunks": () => text.includes('"content":'),
  });
}
