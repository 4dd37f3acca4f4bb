import type { handleBidiStreamingCall } from "@grpc/grpc-js";
import { invalidArgument } from "../../../engine/errors.js";
import type { Chunk } from "../../../gen/spillway/v1/chunk.js";
import type { TranscribeRequest } from "../../../gen/spillway/v1/request.js";
import type { GrpcDoorContext } from "../context.js";
import { serveStream } from "../serve.js";

const CONFIG_FIRST =
  "the first Transcribe message must carry config (model, encoding, sample_rate); audio may only follow it";

/**
 * The audio bytes of the messages after the config, read as the client
 * sends them. The engine pulls from it, so grpc-js stops reading (HTTP/2
 * flow control) while the provider is busy. A second `config` is an error.
 * Stopping early does not destroy the call: its writable side still carries
 * the results.
 */
async function* audioOf(input: AsyncIterator<TranscribeRequest>): AsyncGenerator<Uint8Array> {
  try {
    for (;;) {
      const r = await input.next();
      if (r.done) return;
      const m = r.value.input;
      if (m?.$case === "config") throw invalidArgument("config may only be sent once, as the first message", "config");
      if (m?.$case === "audio" && m.value.length > 0) yield m.value;
    }
  } finally {
    await input.return?.();
  }
}

/**
 * `Transcribe` (bidi): a config message, then audio bytes → transcript
 * chunks, flowing while audio is still being sent. Audio before the config,
 * or a call with no config, fails with `INVALID_ARGUMENT` naming `config`.
 */
export function transcribeHandler(ctx: GrpcDoorContext): handleBidiStreamingCall<TranscribeRequest, Chunk> {
  return (call) => {
    void serveStream(call, ctx, async (opts) => {
      const input = call.iterator({ destroyOnReturn: false }) as AsyncIterator<TranscribeRequest>;
      const first = await input.next();
      const m = first.done ? undefined : first.value.input;
      if (m?.$case !== "config") {
        await input.return?.();
        throw invalidArgument(
          first.done ? `the call ended before any message: ${CONFIG_FIRST}` : `audio arrived before config: ${CONFIG_FIRST}`,
          "config",
        );
      }
      return ctx.engine.transcribe(m.value, audioOf(input), opts);
    });
  };
}
