/**
 * Base64 for the realtime door's JSON edge. PCM sample helpers and
 * resampling come from src/audio.
 */

/**
 * The byte count standard base64 `s` decodes to (padding optional), or -1
 * when its length or padding cannot be base64.
 */
export function base64DecodedLength(s: string): number {
  const n = s.length;
  if (n % 4 === 1) return -1;
  const pad = n > 0 && s.charCodeAt(n - 1) === 61 ? (s.charCodeAt(n - 2) === 61 ? 2 : 1) : 0;
  if (pad > 0 && n % 4 !== 0) return -1;
  return Math.floor(((n - pad) * 3) / 4);
}

/**
 * Decodes standard base64 (padding optional; the URL-safe letters `-` and
 * `_` are read as `+` and `/`, as Node does); undefined when `s` is not
 * base64. Checked without a regular expression (the decode of every 20 ms
 * append is on the realtime hot path): Node's decoder skips characters
 * outside the alphabet and stops at a `=`, so any such character makes the
 * decoded length fall short of what the string's length promises.
 */
export function decodeBase64Strict(s: string): Buffer | undefined {
  const expected = base64DecodedLength(s);
  if (expected < 0) return undefined;
  const out = Buffer.from(s, "base64");
  return out.length === expected ? out : undefined;
}

/**
 * Decodes `s` as {@link decodeBase64Strict} does, into `target` at `offset`
 * (which must have room for {@link base64DecodedLength} bytes); the bytes
 * written, or -1 when `s` is not base64 (then `target` past `offset` holds
 * whatever the decoder got to).
 */
export function decodeBase64StrictInto(s: string, target: Buffer, offset: number): number {
  const expected = base64DecodedLength(s);
  if (expected <= 0) return expected;
  return target.write(s, offset, expected, "base64") === expected ? expected : -1;
}
