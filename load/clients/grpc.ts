/**
 * The gRPC load client: `Generate` with the generated client (src/gen), over
 * several channels (`grpc.use_local_subchannel_pool` so each is its own
 * HTTP/2 connection, which lets a gateway with several workers share them).
 */
import { credentials, status, type ServiceError } from "@grpc/grpc-js";
import type { Chunk } from "../../src/gen/spillway/v1/chunk.js";
import { makeGenerateRequest, makeMessage } from "../../src/engine/requests.js";
import { SpillwayServiceClient } from "../../src/gen/spillway/v1/service.js";
import type { Held, LoadClient, Outcome } from "./types.js";

/** Settings of a gRPC load client. */
export interface GrpcClientOptions {
  /** `127.0.0.1:PORT` */
  readonly address: string;
  readonly model: string;
  readonly expectChunks: number;
  /** HTTP/2 connections to spread calls over. Default 4. */
  readonly channels?: number;
}

/** Creates a gRPC load client. */
export function createGrpcClient(o: GrpcClientOptions): LoadClient {
  const clients = Array.from(
    { length: o.channels ?? 4 },
    () =>
      new SpillwayServiceClient(o.address, credentials.createInsecure(), {
        "grpc.use_local_subchannel_pool": 1,
        "grpc.max_concurrent_streams": 100_000,
      }),
  );
  let next = 0;
  const req = makeGenerateRequest({ model: o.model, messages: [makeMessage({ role: "user", content: "benchmark" })] });
  const pick = (): SpillwayServiceClient => clients[next++ % clients.length]!;

  return {
    run(t0) {
      // A refusal is timed from the actual send: the gateway's answer time, not the generator's lag.
      const sent = performance.now();
      return new Promise<Outcome>((resolve) => {
        let ttft: number | undefined;
        let chunks = 0;
        let finished = false;
        let inBandError: string | undefined;
        const call = pick().generate(req);
        call.on("data", (c: Chunk) => {
          ttft ??= performance.now() - t0;
          const k = c.payload?.$case;
          if (k === "text") chunks++;
          else if (k === "finish") finished = true;
          else if (k === "error") inBandError = c.payload?.$case === "error" ? c.payload.value.message : "error";
        });
        call.on("error", (e: ServiceError) => {
          // The gateway's refusal: UNAVAILABLE with its retry-after trailer (a dead channel is UNAVAILABLE without one).
          const refused = e.code === status.UNAVAILABLE && (e.metadata?.get("spillway-retry-after-ms").length ?? 0) > 0;
          resolve({ ok: false, ttftMs: ttft, chunks, error: e.message, ...(refused ? { refused, refusalMs: performance.now() - sent } : {}) });
        });
        call.on("end", () => {
          const ok = finished && chunks >= o.expectChunks && !inBandError;
          resolve(ok ? { ok, ttftMs: ttft, chunks } : { ok, ttftMs: ttft, chunks, error: inBandError ?? `short stream (${chunks} chunks)` });
        });
      });
    },
    hold() {
      return new Promise<Held>((resolve, reject) => {
        const call = pick().generate(req);
        call.once("data", () => resolve({ close: () => call.cancel() }));
        call.on("data", () => undefined);
        call.on("error", (e) => reject(e));
      });
    },
    close() {
      for (const c of clients) c.close();
    },
  };
}
