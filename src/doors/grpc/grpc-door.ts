import type { Door } from "../door.js";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import type { Observability } from "../../observability/observability.js";
import { logger } from "../../observability/logger.js";
import { gatewayKeys } from "./auth.js";
import type { GrpcAuthorize } from "./context.js";
import { createSpillwayService } from "./handlers/index.js";
import { spillwayServiceDefinition } from "./chunk-serializer.js";
import { addReflection } from "./reflection.js";
import { createEarlyCheck } from "./early-admission.js";
import { installStreamGate } from "./stream-gate.js";
import { createStreamRefusal, type StreamRefusal } from "./stream-refusal.js";
import { doorInterceptor } from "./write-coalescing.js";
import type { StreamEngine } from "../../engine/stream-engine.js";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import type { CallScope } from "./call-scope.js";

/** The fully-qualified name of the Spillway service, as health checks and reflection name it. */
export const SPILLWAY_SERVICE_NAME = "spillway.v1.SpillwayService";

/** Settings of the gRPC door. */
export interface GrpcDoorOptions {
  readonly engine: StreamEngine;
  /**
   * Largest request message accepted (bytes); larger ones fail with
   * `RESOURCE_EXHAUSTED` before they are buffered (grpc-js
   * `grpc.max_receive_message_length`). Default 4 MiB.
   */
  readonly maxMessageBytes?: number | undefined;
  /**
   * Auth hook on request metadata; see {@link GrpcAuthorize}. Default: the
   * gateway's API keys ({@link gatewayKeys}), the same as the HTTP door's.
   */
  readonly authorize?: GrpcAuthorize | undefined;
  /** Serve server reflection. Default true. */
  readonly reflection?: boolean | undefined;
  /** Metrics and request logs; none when absent. */
  readonly obs?: Observability | undefined;
  /**
   * Write the chunks a call has ready in one turn as one HTTP/2 write of
   * gRPC-framed messages (write-coalescing.ts; needs grpc-js 1.14's private
   * base call, detected per call); false: one grpc-js `sendMessage` per
   * chunk. Default true. Either way each chunk is its own message.
   */
  readonly frameBursts?: boolean | undefined;
  /**
   * Refuse streaming calls past capacity at the HTTP/2 stream, before grpc-js
   * builds a call (stream-refusal.ts, through grpc-js's private
   * `createHttp2Server`: stream-gate.ts); false: only the interceptor refuses
   * (the fallback, which it also is when grpc-js is not shaped as expected).
   * Default true.
   */
  readonly refuseAtStream?: boolean | undefined;
}

/** The gRPC door: `spillway.v1.SpillwayService`, `grpc.health.v1.Health` and server reflection. */
export interface GrpcDoor extends Door {
  /** The grpc-js server. */
  readonly server: Server;
  /** Streaming calls in flight. */
  readonly activeCalls: number;
  /**
   * Calls refused at the HTTP/2 stream, before grpc-js saw them (the rest of
   * the refusals come from the interceptor); undefined when that refusal is
   * not installed (`refuseAtStream: false`, or grpc-js not shaped as expected).
   */
  readonly streamRefusals: number | undefined;
  /** The health service; `""` and the Spillway service report SERVING until shutdown. */
  readonly health: HealthImplementation;
  /**
   * Starts draining for shutdown: health reports NOT_SERVING and new calls
   * get `UNAVAILABLE`; calls in flight go on. Idempotent.
   */
  drain(): void;
  /** Binds `host:port` (insecure); resolves with the port actually bound (useful with port 0). */
  listen(host: string, port: number): Promise<number>;
  /**
   * Drains, stops accepting connections and waits up to `graceMs`
   * for calls in flight to end (`tryShutdown`), then ends the rest: their
   * work is aborted with `Unavailable` (`server_shutting_down`), so each
   * ends with `UNAVAILABLE`, and `forceShutdown` runs. Never rejects.
   */
  shutdown(graceMs: number): Promise<void>;
}

/** The paths of the Spillway service's streaming methods: the ones admitted early. */
const streamingPaths: ReadonlySet<string> = new Set(
  Object.values(spillwayServiceDefinition)
    .filter((m) => m.responseStream)
    .map((m) => m.path),
);

/** `host:port` for grpc-js, bracketing IPv6 literals. */
function address(host: string, port: number): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Creates the gRPC door over the engine. Call `listen` to serve. */
export function createGrpcDoor(options: GrpcDoorOptions): GrpcDoor {
  const check = createEarlyCheck(options.engine.admission, options.obs);
  const server = new Server({
    "grpc.max_receive_message_length": options.maxMessageBytes ?? 4 * 1024 * 1024,
    // channelz (per-call stats for grpcdebug) showed in the per-call profile and nothing here reads it.
    "grpc.enable_channelz": 0,
    // Streaming calls are admitted on their metadata, before the message is decoded; their
    // messages leave in one HTTP/2 write per batch, not one each (write-coalescing.ts).
    interceptors: [doorInterceptor({ check, frame: options.frameBursts })],
  });
  // Past capacity, a streaming call is refused on its HTTP/2 headers, before grpc-js builds the call.
  let atStream: StreamRefusal | undefined;
  if (options.refuseAtStream !== false) {
    const gate = createStreamRefusal({ admission: options.engine.admission, check, paths: streamingPaths });
    if (installStreamGate(server, gate)) atStream = gate;
    else logger.warn("gRPC refusals at the HTTP/2 stream are off: grpc-js has no createHttp2Server (its interceptor refuses instead)");
  }
  let draining = false;
  const active = { calls: 0 };
  const inFlight = new Set<CallScope>();
  server.addService(
    spillwayServiceDefinition,
    createSpillwayService({
      engine: options.engine,
      authorize: options.authorize ?? gatewayKeys(options.engine.admission),
      draining: () => draining,
      obs: options.obs,
      active,
      inFlight,
    }),
  );
  const health = new HealthImplementation({ "": "SERVING", [SPILLWAY_SERVICE_NAME]: "SERVING" });
  health.addToServer(server);
  if (options.reflection !== false && !addReflection(server)) {
    logger.warn("gRPC reflection is off: gen/descriptor-set.binpb is not next to the code (npm run build copies it into dist/)");
  }
  let shutdown: Promise<void> | undefined;
  const drain = (): void => {
    if (draining) return;
    draining = true;
    health.setStatus("", "NOT_SERVING");
    health.setStatus(SPILLWAY_SERVICE_NAME, "NOT_SERVING");
  };

  return {
    name: "grpc",
    server,
    get activeCalls() {
      return active.calls;
    },
    get streamRefusals() {
      return atStream?.refused;
    },
    get active() {
      return active.calls;
    },
    close(graceMs) {
      return this.shutdown(graceMs);
    },
    health,
    drain,
    listen(host, port) {
      return new Promise((resolve, reject) => {
        server.bindAsync(address(host, port), ServerCredentials.createInsecure(), (err, bound) => {
          if (err) reject(new Error(`cannot listen for gRPC on ${address(host, port)}: ${err.message}`));
          else resolve(bound);
        });
      });
    },
    shutdown(graceMs) {
      shutdown ??= new Promise<void>((resolve) => {
        drain();
        const force = setTimeout(() => {
          // grpc-js's forceShutdown destroys only the sessions channelz tracked, none with channelz
          // off: the door ends its calls itself (each handler then sends UNAVAILABLE).
          for (const scope of inFlight) scope.end(new SpillwayError(Code.Unavailable, "the server is shutting down", { reason: "server_shutting_down" }));
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      return shutdown;
    },
  };
}
