import { Chunk } from "../../gen/spillway/v1/chunk.js";
import type { ChunkPayload } from "../payload.js";

/** A stored stream: what served it and its payloads, in order. */
export interface CachedStream {
  /** The `provider/model` id that served the original stream (after fallbacks). */
  readonly routeId: string;
  /** The original stream's labels (e.g. `key`, the upstream key's name). */
  readonly labels: Readonly<Record<string, string>>;
  /** Content payloads, then `usage`, then `finish`, as the original stream delivered them. */
  readonly payloads: readonly ChunkPayload[];
}

const MAGIC = 0x53574331; // "SWC1"

/**
 * Encodes a stored stream as bytes (the same in memory and in Redis):
 * `SWC1`, a u32 length + JSON header (route id, labels), then each payload
 * as a length-prefixed protobuf `Chunk` (stream id and seq left empty: the
 * replay stamps its own).
 */
export function encodeEntry(entry: CachedStream): Uint8Array {
  const header = Buffer.from(JSON.stringify({ routeId: entry.routeId, labels: entry.labels }));
  const parts: Uint8Array[] = [];
  let size = 8 + header.length;
  for (const payload of entry.payloads) {
    const bytes = Chunk.encode({ streamId: "", seq: 0, payload }).finish();
    parts.push(bytes);
    size += 4 + bytes.byteLength;
  }
  const out = Buffer.allocUnsafe(size);
  out.writeUInt32BE(MAGIC, 0);
  out.writeUInt32BE(header.length, 4);
  header.copy(out, 8);
  let at = 8 + header.length;
  for (const p of parts) {
    out.writeUInt32BE(p.byteLength, at);
    out.set(p, at + 4);
    at += 4 + p.byteLength;
  }
  return out;
}

/** Decodes {@link encodeEntry}'s bytes; `undefined` for anything else (a foreign or damaged value is a miss). */
export function decodeEntry(bytes: Uint8Array): CachedStream | undefined {
  try {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (buf.length < 8 || buf.readUInt32BE(0) !== MAGIC) return undefined;
    const headerEnd = 8 + buf.readUInt32BE(4);
    const header = JSON.parse(buf.subarray(8, headerEnd).toString("utf8")) as { routeId?: unknown; labels?: unknown };
    if (typeof header.routeId !== "string" || typeof header.labels !== "object" || header.labels === null) return undefined;
    const payloads: ChunkPayload[] = [];
    let at = headerEnd;
    while (at < buf.length) {
      const len = buf.readUInt32BE(at);
      const chunk = Chunk.decode(buf.subarray(at + 4, at + 4 + len));
      if (chunk.payload) payloads.push(chunk.payload);
      at += 4 + len;
    }
    return { routeId: header.routeId, labels: header.labels as Record<string, string>, payloads };
  } catch {
    return undefined;
  }
}
