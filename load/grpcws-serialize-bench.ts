/**
 * `tsx load/grpcws-serialize-bench.ts`: CPU µs per gRPC text chunk
 * serialized (a 36-character stream id, a seq, 16 characters of text), the
 * generated ts-proto serializer against the door's (`serializeChunk`), one
 * million chunks each, three times. Prints one line per run.
 */
import { serializeChunk } from "../src/doors/grpc/chunk-serializer.js";
import { Chunk } from "../src/gen/spillway/v1/chunk.js";

const c: Chunk = { streamId: `str_${"a".repeat(32)}`, seq: 0, payload: { $case: "text", value: { text: "x".repeat(16) } } };
const generated = (v: Chunk): Buffer => Buffer.from(Chunk.encode(v).finish());
for (const [name, serialize] of [
  ["generated", generated],
  ["serializeChunk", serializeChunk],
] as const) {
  for (let run = 0; run < 3; run++) {
    const t0 = process.cpuUsage();
    let bytes = 0;
    for (let i = 0; i < 1_000_000; i++) {
      c.seq = i;
      bytes += serialize(c).length;
    }
    const u = process.cpuUsage(t0);
    console.log(`${name}: ${((u.user + u.system) / 1e6).toFixed(3)} µs/chunk (${bytes} bytes)`);
  }
}
