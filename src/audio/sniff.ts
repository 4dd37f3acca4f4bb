/** A container/codec recognized from a file's first bytes. */
export type SniffedFormat = "wav" | "mp3" | "mp4" | "ogg" | "flac" | "webm" | "aac" | "unknown";

/** Bytes {@link sniffAudio} wants to look at (fewer are fine at the end of a file). */
export const SNIFF_BYTES = 12;

/**
 * Recognizes an audio file from its magic bytes: RIFF/WAVE, MP3 (ID3 tag or
 * an MPEG frame sync), MP4/M4A (`ftyp`), Ogg, FLAC, WebM/Matroska (EBML) and
 * ADTS AAC. Everything else is `unknown`.
 */
export function sniffAudio(head: Uint8Array): SniffedFormat {
  const ascii = (from: number, to: number): string => Buffer.from(head.subarray(from, to)).toString("latin1");
  if (ascii(0, 4) === "RIFF" && ascii(8, 12) === "WAVE") return "wav";
  if (ascii(0, 3) === "ID3") return "mp3";
  if (ascii(4, 8) === "ftyp") return "mp4";
  if (ascii(0, 4) === "OggS") return "ogg";
  if (ascii(0, 4) === "fLaC") return "flac";
  if (head[0] === 0x1a && head[1] === 0x45 && head[2] === 0xdf && head[3] === 0xa3) return "webm";
  if (head[0] === 0xff && head[1] !== undefined) {
    const b = head[1];
    if ((b & 0xf6) === 0xf0) return "aac"; // ADTS: sync 0xFFF, layer 00
    if ((b & 0xe0) === 0xe0 && (b & 0x06) !== 0) return "mp3"; // MPEG audio frame sync, layer I-III
  }
  return "unknown";
}
