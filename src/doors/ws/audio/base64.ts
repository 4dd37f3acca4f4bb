/**
 * Base64 for the realtime door's JSON edge. PCM sample helpers and
 * resampling come from src/audio.
 */

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2,3})?$/;

/** Decodes standard base64 (padding optional); undefined when `s` is not base64. */
export function decodeBase64Strict(s: string): Buffer | undefined {
  if (!BASE64.test(s)) return undefined;
  return Buffer.from(s, "base64");
}
