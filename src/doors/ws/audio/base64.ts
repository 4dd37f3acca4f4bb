/**
 * Base64 for the realtime door's JSON edge. PCM sample helpers and
 * resampling come from src/audio.
 */

/**
 * Decodes standard base64 (padding optional; the URL-safe letters `-` and
 * `_` are read as `+` and `/`, as Node does); undefined when `s` is not
 * base64. Checked without a regular expression (the decode of every 20 ms
 * append is on the realtime hot path): Node's decoder skips characters
 * outside the alphabet and stops at a `=`, so any such character makes the
 * decoded length fall short of what the string's length promises.
 */
export function decodeBase64Strict(s: string): Buffer | undefined {
  const n = s.length;
  if (n % 4 === 1) return undefined;
  const pad = n > 0 && s.charCodeAt(n - 1) === 61 ? (s.charCodeAt(n - 2) === 61 ? 2 : 1) : 0;
  if (pad > 0 && n % 4 !== 0) return undefined;
  const out = Buffer.from(s, "base64");
  return out.length === Math.floor(((n - pad) * 3) / 4) ? out : undefined;
}
