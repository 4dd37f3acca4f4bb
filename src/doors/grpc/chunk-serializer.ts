import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { Chunk } from "../../gen/spillway/v1/chunk.js";
import { SpillwayServiceService } from "../../gen/spillway/v1/service.js";

/** A writer whose buffer is larger than this after a message is replaced, so one big audio chunk does not stay resident. */
const KEEP_BYTES = 64 * 1024;

let writer = new BinaryWriter();

/**
 * Serializes a chunk for the wire: the same bytes as the generated
 * `Buffer.from(Chunk.encode(value).finish())`, with less garbage per message.
 * The generated serializer builds a new writer per message (a zeroed
 * 128-byte buffer, grown as needed), slices the bytes out and copies them
 * once more into a Buffer; grpc-js then copies them a third time behind the
 * 5-byte frame header. Here one writer is reused (its buffer kept) and the
 * slice is wrapped, not copied. Throws what `Chunk.encode` throws (an
 * out-of-range number); the writer is reset first, so the next message is
 * unaffected.
 */
export function serializeChunk(value: Chunk): Buffer {
  let bytes: Uint8Array;
  try {
    bytes = Chunk.encode(value, writer).finish();
  } catch (e) {
    writer = new BinaryWriter();
    throw e;
  }
  if (bytes.byteLength > KEEP_BYTES) writer = new BinaryWriter();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * `spillway.v1.SpillwayService` as generated, with {@link serializeChunk} as
 * the response serializer of every method that streams chunks.
 */
export const spillwayServiceDefinition: typeof SpillwayServiceService = {
  ...SpillwayServiceService,
  generate: { ...SpillwayServiceService.generate, responseSerialize: serializeChunk },
  synthesize: { ...SpillwayServiceService.synthesize, responseSerialize: serializeChunk },
  transcribe: { ...SpillwayServiceService.transcribe, responseSerialize: serializeChunk },
  attach: { ...SpillwayServiceService.attach, responseSerialize: serializeChunk },
};
