import { randomFillSync } from "node:crypto";

/** Random bytes taken 16 at a time; refilled when spent (one `randomFillSync` per 256 ids). */
const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let at = POOL_BYTES;

/**
 * A new stream id: 32 lower-case hex digits of a random version-4 UUID, the
 * same form as `randomUUID().replaceAll("-", "")` (version nibble `4`,
 * variant `8`–`b`), made straight from random bytes as one flat string —
 * not the UUID's 36 characters built piece by piece and then rewritten
 * without its dashes (a stream id is made per request on the hot path).
 * Cryptographically random, as `randomUUID` is.
 */
export function streamIdHex(): string {
  if (at + 16 > POOL_BYTES) {
    randomFillSync(pool);
    at = 0;
  }
  const i = at;
  at += 16;
  pool[i + 6] = (pool[i + 6]! & 0x0f) | 0x40;
  pool[i + 8] = (pool[i + 8]! & 0x3f) | 0x80;
  return pool.toString("hex", i, i + 16);
}
