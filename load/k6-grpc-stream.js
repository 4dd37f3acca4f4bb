// k6 (v0.48) load script: the gRPC door's server-streaming Generate
// (k6/experimental/grpc Stream), with the .proto files from proto/.
//
//   k6 run --vus 2 --duration 5s load/k6-grpc-stream.js
//   GRPC_ADDR=127.0.0.1:50051 MODEL=local/echo k6 run load/k6-grpc-stream.js
import { Client, Stream } from "k6/experimental/grpc";
import { check } from "k6";
import { Trend, Rate } from "k6/metrics";

const GRPC_ADDR = __ENV.GRPC_ADDR || "127.0.0.1:50051";
const MODEL = __ENV.MODEL || "local/echo";

const client = new Client();
client.load(["../proto"], "spillway/v1/service.proto");

const ttft = new Trend("grpc_ttft", true);
const finished = new Rate("grpc_stream_finished");

export const options = {
  thresholds: {
    grpc_stream_finished: ["rate>0.99"],
    grpc_ttft: ["p(95)<500", "p(99)<1000"],
    checks: ["rate>0.99"],
  },
};

export default () => {
  if (__ITER === 0) client.connect(GRPC_ADDR, { plaintext: true });
  const stream = new Stream(client, "spillway.v1.SpillwayService/Generate");
  const startedAt = Date.now();
  let first = true;
  let texts = 0;
  let finish = false;
  stream.on("data", (chunk) => {
    if (first) {
      first = false;
      ttft.add(Date.now() - startedAt);
    }
    if (chunk.text) texts++;
    if (chunk.finish) finish = true;
  });
  stream.on("error", (e) => {
    check(e, { "no stream error": () => false });
  });
  stream.on("end", () => {
    finished.add(finish);
    check(null, { "stream finished": () => finish, "text chunks received": () => texts > 0 });
  });
  stream.write({ model: MODEL, messages: [{ role: "user", content: "the quick brown fox" }] });
  stream.end();
};
