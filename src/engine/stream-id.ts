import { randomFillSync } from "node:crypto";

/** Random bytes taken 16 at a time; refilled when spent (one `randomFillSync` per 256 ids). */
const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let at = POOL_BYTES;
/** Lower-case hex digits, by value. */
const HEX = "0123456789abcdef";
/** Where an id's characters are written before they become one string. */
const text = Buffer.allocUnsafe(36);

/** Takes the pool's next 16 bytes (refilling it when spent), marked as a v4 UUID's (version 4, variant 10); returns where they start. */
function nextUuidBytes(): number {
  if (at + 16 > POOL_BYTES) {
    randomFillSync(pool);
    at = 0;
  }
  const i = at;
  at += 16;
  pool[i + 6] = (pool[i + 6]! & 0x0f) | 0x40;
  pool[i + 8] = (pool[i + 8]! & 0x3f) | 0x80;
  return i;
}

/**
 * A new stream id: 32 lower-case hex digits of a random version-4 UUID, the
 * same form as `randomUUID().replaceAll("-", "")` (version nibble `4`,
 * variant `8`–`b`), made straight from random bytes as one flat string —
 * not the UUID's 36 characters built piece by piece and then rewritten
 * without its dashes (a stream id is made per request on the hot path).
 * Cryptographically random, as `randomUUID` is.
 */
export function streamIdHex(): string {
  const i = nextUuidBytes();
  for (let b = 0; b < 16; b++) {
    const v = pool[i + b]!;
    text[2 * b] = HEX.charCodeAt(v >> 4);
    text[2 * b + 1] = HEX.charCodeAt(v & 15);
  }
  return text.toString("latin1", 0, 32);
}

/** Where a UUID's dashes go. */
const DASHES = [8, 13, 18, 23];

/**
 * A new random version-4 UUID in its usual 36-character form (as
 * `crypto.randomUUID()`: lower-case hex, dashes at 8, 13, 18, 23, version
 * `4`, variant `8`–`b`), written from pooled random bytes into one flat
 * string (`randomUUID` builds it piece by piece, a string of ~20 parts that
 * is flattened again when written). Cryptographically random.
 */
export function uuidV4(): string {
  const i = nextUuidBytes();
  let o = 0;
  for (let b = 0; b < 16; b++) {
    if (o === DASHES[0] || o === DASHES[1] || o === DASHES[2] || o === DASHES[3]) text[o++] = 0x2d;
    const v = pool[i + b]!;
    text[o++] = HEX.charCodeAt(v >> 4);
    text[o++] = HEX.charCodeAt(v & 15);
  }
  return text.toString("latin1", 0, 36);
}
