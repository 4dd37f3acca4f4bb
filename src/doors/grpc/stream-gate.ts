import type { Server } from "@grpc/grpc-js";
import type { Http2Server, IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";

/**
 * Looks at a new HTTP/2 stream before grpc-js does. Returns true when it has
 * answered the stream itself (grpc-js then never sees it: no call object, no
 * metadata parse, no interceptors); false to hand it to grpc-js as usual.
 * Runs synchronously in the HTTP/2 server's `stream` event; must not throw.
 */
export type StreamGate = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => boolean;

/** grpc-js 1.14's private `Server.createHttp2Server(credentials)`, which every bind and connection injector goes through. */
type CreateHttp2Server = (this: Server, credentials: unknown) => Http2Server;

type StreamListener = (this: Http2Server, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, ...rest: unknown[]) => void;

/**
 * Puts `gate` in front of grpc-js on every HTTP/2 server `server` creates
 * from now on (call it before `bindAsync`).
 *
 * grpc-js has no public hook before it builds a call: by the time a server
 * interceptor runs, grpc-js has parsed the headers into `Metadata`, set up
 * the call (listeners on the stream, a decoder, a deadline timer) and the
 * interceptor chain. This reaches into grpc-js 1.14's private
 * `createHttp2Server` — the one place that makes its `http2.Server`s and adds
 * its `stream` listener (`_setupHandlers`) — and, on each server it returns,
 * swaps that one listener for one that asks `gate` first. Node's own
 * `stream` event and `EventEmitter.listeners` are the rest: public API.
 *
 * Returns false, changing nothing, when grpc-js is not shaped as expected
 * (no such method); a server it returns whose `stream` listeners are not
 * exactly one is left as grpc-js made it. Either way calls still reach the
 * door's interceptor, which refuses the same way a little later (the
 * fallback). `test/grpc-stream-gate.test.ts` fails if the gate stops being
 * asked.
 */
export function installStreamGate(server: Server, gate: StreamGate): boolean {
  const holder = server as unknown as { createHttp2Server?: unknown };
  const original = holder.createHttp2Server;
  if (typeof original !== "function") return false;
  const create = original as CreateHttp2Server;
  holder.createHttp2Server = function (this: Server, credentials: unknown): Http2Server {
    const http2Server = create.call(this, credentials);
    const listeners = http2Server.listeners("stream") as StreamListener[];
    const grpc = listeners.length === 1 ? listeners[0] : undefined;
    if (grpc !== undefined) {
      http2Server.removeListener("stream", grpc);
      http2Server.on("stream", function (this: Http2Server, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, ...rest: unknown[]) {
        if (!gate(stream, headers)) grpc.call(this, stream, headers, ...rest);
      });
    }
    return http2Server;
  };
  return true;
}
