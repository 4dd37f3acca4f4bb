/**
 * The gRPC floor of the benchmark: a plain grpc-js server (no interceptor, no
 * engine, no upstream) whose `Generate` streams the mock's answer itself —
 * the shape read from the model name as the mock reads it
 * (`m-c20-b16-d10-f0`: 20 text chunks of 16 characters, 10 ms apart, the
 * first at once), then usage and finish — with grpc-js's own `write()`.
 * Its time to first chunk is what the gRPC load client and a grpc-js server
 * cost with nothing behind them, so `--only ttft` can split the gRPC door's
 * "added" time into the protocol's share (this floor against the SSE mock)
 * and the gateway's (the door against this floor).
 *
 * Run: `tsx load/grpc-floor.ts [--port 0]`; prints `{"port":N}` once listening.
 */
import { Server, ServerCredentials, type ServerWritableStream } from "@grpc/grpc-js";
import { parseArgs } from "node:util";
import { Finish_Reason, type Chunk } from "../src/gen/spillway/v1/chunk.js";
import type { GenerateRequest } from "../src/gen/spillway/v1/request.js";
import { spillwayServiceDefinition } from "../src/doors/grpc/chunk-serializer.js";
import { parseMockModel, type MockShape } from "./mock-upstream.js";
import { isMain } from "./util.js";

const DEFAULT_SHAPE: MockShape = { chunks: 20, bytes: 16, delayMs: 10, firstMs: 0 };

/** Streams one answer of `shape` to `call`, then ends it OK. */
function answer(call: ServerWritableStream<GenerateRequest, Chunk>, shape: MockShape): void {
  const streamId = "floor";
  const text = "x".repeat(Math.max(1, shape.bytes));
  let seq = 0;
  let cancelled = false;
  call.once("cancelled", () => (cancelled = true));
  const next = (): void => {
    if (cancelled) return;
    if (seq < shape.chunks) {
      call.write({ streamId, seq: seq++, payload: { $case: "text", value: { text } } });
      if (seq < shape.chunks && shape.delayMs > 0) setTimeout(next, shape.delayMs);
      else next();
      return;
    }
    call.write({ streamId, seq: seq++, payload: { $case: "usage", value: { inputTokens: 1, outputTokens: shape.chunks, totalTokens: shape.chunks + 1, cachedInputTokens: 0, reasoningTokens: 0, inputAudioSeconds: 0, outputAudioSeconds: 0 } } });
    call.write({ streamId, seq: seq++, payload: { $case: "finish", value: { reason: Finish_Reason.REASON_STOP, stopSequence: "" } } });
    call.end();
  };
  if (shape.firstMs > 0) setTimeout(next, shape.firstMs);
  else next();
}

/** Starts the floor server on loopback; resolves with its port and a close function. */
export async function startGrpcFloor(port = 0): Promise<{ port: number; close(): void }> {
  const server = new Server({ "grpc.enable_channelz": 0 });
  server.addService(spillwayServiceDefinition, {
    generate: (call: ServerWritableStream<GenerateRequest, Chunk>) => answer(call, parseMockModel(call.request.model, DEFAULT_SHAPE)),
  });
  const bound = await new Promise<number>((resolve, reject) => server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { port: bound, close: () => server.forceShutdown() };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { port: { type: "string", default: "0" } } });
  const floor = await startGrpcFloor(Number(values.port));
  process.stdout.write(`${JSON.stringify({ port: floor.port })}\n`);
  const stop = (): void => {
    floor.close();
    process.exit(0);
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}
