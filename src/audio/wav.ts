import { audioInputError } from "./audio-error.js";
import { floatToS16, toSamples } from "./pcm.js";

/** The size written in a streamed WAV header whose length is not known yet. */
export const WAV_UNKNOWN_SIZE = 0xffffffff;

/**
 * A 44-byte canonical WAV header for s16le PCM. Without `dataBytes` the
 * sizes are set to their maximum, as for a stream whose length is unknown:
 * players and decoders (ffmpeg, browsers) read such a file to its end.
 */
export function wavHeader(sampleRate: number, channels = 1, dataBytes?: number): Buffer {
  const h = Buffer.alloc(44);
  const data = dataBytes ?? WAV_UNKNOWN_SIZE - 36;
  h.write("RIFF", 0, "ascii");
  h.writeUInt32LE(dataBytes === undefined ? WAV_UNKNOWN_SIZE : 36 + data, 4);
  h.write("WAVE", 8, "ascii");
  h.write("fmt ", 12, "ascii");
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(sampleRate, 24);
  h.writeUInt32LE(sampleRate * channels * 2, 28);
  h.writeUInt16LE(channels * 2, 32);
  h.writeUInt16LE(16, 34);
  h.write("data", 36, "ascii");
  h.writeUInt32LE(data, 40);
  return h;
}

/** The format of a WAV stream, from its `fmt ` chunk. */
export interface WavFormat {
  readonly sampleRate: number;
  readonly channels: number;
  readonly bitsPerSample: number;
  /** True for IEEE float samples, false for integer PCM. */
  readonly float: boolean;
}

/** Largest WAV header (everything before the `data` chunk) accepted, in bytes. */
const MAX_HEADER_BYTES = 1024 * 1024;

/**
 * Parses a WAV file as it arrives and yields its audio as s16 mono samples.
 * Handles integer PCM (8, 16, 24, 32 bit) and 32-bit float, any channel
 * count (mixed down), WAVE_FORMAT_EXTENSIBLE, and streamed files whose
 * sizes are unknown (0 or 0xFFFFFFFF). Anything else is a 400 naming the
 * problem.
 */
export class WavStreamParser {
  /** The format, once the header has been read. */
  format: WavFormat | undefined;
  private head: Buffer = Buffer.alloc(0);
  private carry: Buffer = Buffer.alloc(0);
  /** Data bytes still expected; Infinity for a stream of unknown length. */
  private remaining = Infinity;
  /** Total bytes of audio data read. */
  dataBytes = 0;

  /** Feeds bytes; returns the samples they complete (possibly none). */
  push(chunk: Uint8Array): Int16Array {
    let data: Buffer;
    if (!this.format) {
      this.head = Buffer.concat([this.head, chunk]);
      const start = this.parseHeader();
      if (start === undefined) {
        if (this.head.length > MAX_HEADER_BYTES) throw audioInputError("Corrupt WAV file: no `data` chunk in the first 1 MiB.");
        return new Int16Array(0);
      }
      data = this.head.subarray(start);
      this.head = Buffer.alloc(0);
    } else {
      data = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    }
    if (data.length > this.remaining) data = data.subarray(0, this.remaining);
    this.remaining -= data.length;
    this.dataBytes += data.length;
    return this.convert(data);
  }

  /** Checks the stream ended sensibly; throws when it never had a header. */
  end(): void {
    if (!this.format) throw audioInputError("Corrupt WAV file: it ends before its audio data starts.");
  }

  /** Returns the offset of the audio data in `head`, or undefined when more bytes are needed. */
  private parseHeader(): number | undefined {
    const h = this.head;
    if (h.length < 12) return undefined;
    if (h.toString("ascii", 0, 4) !== "RIFF" || h.toString("ascii", 8, 12) !== "WAVE") {
      throw audioInputError("Corrupt WAV file: it does not start with a RIFF/WAVE header.");
    }
    let at = 12;
    let format: WavFormat | undefined;
    while (at + 8 <= h.length) {
      const id = h.toString("ascii", at, at + 4);
      const size = h.readUInt32LE(at + 4);
      const body = at + 8;
      if (id === "data") {
        if (!format) throw audioInputError("Corrupt WAV file: its `data` chunk comes before `fmt `.");
        this.format = format;
        this.remaining = size === 0 || size >= WAV_UNKNOWN_SIZE - 36 ? Infinity : size;
        return body;
      }
      if (body + size > h.length) return undefined;
      if (id === "fmt ") format = parseFmt(h.subarray(body, body + size));
      at = body + size + (size % 2);
    }
    return undefined;
  }

  private convert(data: Buffer): Int16Array {
    const f = this.format!;
    const bytes = f.bitsPerSample / 8;
    const frame = bytes * f.channels;
    if (this.carry.length > 0) {
      data = Buffer.concat([this.carry, data]);
      this.carry = Buffer.alloc(0);
    }
    const frames = Math.floor(data.length / frame);
    if (frames * frame < data.length) this.carry = Buffer.from(data.subarray(frames * frame));
    if (frame === 2 && !f.float) return toSamples(Buffer.from(data.subarray(0, frames * 2))); // s16 mono: a copy, no conversion
    const mono = new Float32Array(frames);
    for (let i = 0; i < frames; i++) {
      let sum = 0;
      for (let c = 0; c < f.channels; c++) sum += readSample(data, i * frame + c * bytes, f);
      mono[i] = sum / f.channels;
    }
    return floatToS16(mono);
  }
}

function parseFmt(b: Buffer): WavFormat {
  if (b.length < 16) throw audioInputError("Corrupt WAV file: its `fmt ` chunk is too short.");
  let tag = b.readUInt16LE(0);
  const channels = b.readUInt16LE(2);
  const sampleRate = b.readUInt32LE(4);
  const bitsPerSample = b.readUInt16LE(14);
  if (tag === 0xfffe && b.length >= 26) tag = b.readUInt16LE(24); // WAVE_FORMAT_EXTENSIBLE: the sub-format
  const float = tag === 3;
  if (tag !== 1 && !float) {
    throw audioInputError(`Unsupported WAV encoding (format tag ${tag}): only integer PCM and 32-bit float are supported.`);
  }
  if (channels < 1 || channels > 16 || sampleRate < 1000 || sampleRate > 384_000) {
    throw audioInputError(`Corrupt WAV file: ${channels} channels at ${sampleRate} Hz.`);
  }
  if (float ? bitsPerSample !== 32 : ![8, 16, 24, 32].includes(bitsPerSample)) {
    throw audioInputError(`Unsupported WAV sample size: ${bitsPerSample}-bit ${float ? "float" : "PCM"}.`);
  }
  return { sampleRate, channels, bitsPerSample, float };
}

function readSample(b: Buffer, at: number, f: WavFormat): number {
  if (f.float) return b.readFloatLE(at);
  switch (f.bitsPerSample) {
    case 8:
      return (b[at]! - 128) / 128;
    case 16:
      return b.readInt16LE(at) / 32768;
    case 24:
      return b.readIntLE(at, 3) / 8388608;
    default:
      return b.readInt32LE(at) / 2147483648;
  }
}
