import { Mp3Encoder } from "@breezystack/lamejs";

/** Sample rates MPEG-1/2/2.5 layer III can carry (lamejs does not resample). */
export const MP3_RATES: readonly number[] = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000];

/**
 * Encodes s16 mono PCM to MP3 as it arrives, with lamejs (a pure-JS port of
 * LAME). Each `encode` returns the frames completed so far (often none for a
 * short input); `flush` returns the rest.
 */
export class Mp3StreamEncoder {
  private readonly encoder: Mp3Encoder;

  /** `sampleRate` must be one of {@link MP3_RATES}; `kbps` defaults to 64 (speech). */
  constructor(sampleRate: number, kbps = 64) {
    if (!MP3_RATES.includes(sampleRate)) throw new RangeError(`MP3 cannot carry ${sampleRate} Hz`);
    this.encoder = new Mp3Encoder(1, sampleRate, kbps);
  }

  /** Encodes samples; returns the MP3 bytes completed so far. */
  encode(samples: Int16Array): Uint8Array {
    // lamejs returns an Int8Array: view it as bytes.
    return asBytes(this.encoder.encodeBuffer(samples));
  }

  /** Ends the stream; returns the last MP3 bytes. */
  flush(): Uint8Array {
    return asBytes(this.encoder.flush());
  }
}

function asBytes(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}
