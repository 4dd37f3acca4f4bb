import { MPEGDecoder } from "mpg123-decoder";
import { audioInputError } from "./audio-error.js";
import { floatToS16, mixDown } from "./pcm.js";

/** Samples decoded from a piece of MP3, with their rate (0 until the first frame). */
export interface DecodedPcm {
  readonly samples: Int16Array;
  readonly sampleRate: number;
}

/**
 * Decodes MP3 (MPEG layer I/II/III) as it arrives with mpg123-decoder
 * (mpg123 compiled to WebAssembly): feed any slice of the file, get the
 * s16 mono samples of the frames it completes. A file that yields no audio
 * at all is reported as corrupt by {@link end}.
 */
export class Mp3StreamDecoder {
  private decoder: MPEGDecoder | undefined;
  private total = 0;
  private fed = 0;

  /** Compiles the WebAssembly decoder; call once before `push`. */
  async init(): Promise<void> {
    const d = new MPEGDecoder();
    await d.ready;
    this.decoder = d;
  }

  /** Decodes the next bytes of the file. */
  push(chunk: Uint8Array): DecodedPcm {
    const r = this.decoder!.decode(chunk);
    this.fed += chunk.length;
    this.total += r.samplesDecoded;
    if (this.total === 0 && this.fed > 256 * 1024) {
      throw audioInputError("Corrupt MP3 file: no MPEG audio frame in the first 256 KiB.");
    }
    if (r.samplesDecoded === 0) return { samples: new Int16Array(0), sampleRate: r.sampleRate };
    return { samples: floatToS16(mixDown(r.channelData)), sampleRate: r.sampleRate };
  }

  /** Frees the decoder; throws when the whole file held no audio. */
  end(): void {
    this.free();
    if (this.total === 0) throw audioInputError("Corrupt MP3 file: no MPEG audio frame could be decoded.");
  }

  /** Frees the WebAssembly memory (safe to call twice). */
  free(): void {
    this.decoder?.free();
    this.decoder = undefined;
  }
}
