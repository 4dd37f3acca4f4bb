import { MPEGDecoder } from "mpg123-decoder";
import { audioInputError } from "./audio-error.js";
import { floatToS16, mixDown } from "./pcm.js";

/** Bytes of audio data (after any ID3 tag) in which at least one frame must decode. */
const NO_FRAME_LIMIT = 256 * 1024;

/** The size of an ID3v2 tag at the start of `head` (header included), or 0. */
function id3Size(head: Uint8Array): number {
  if (head.length < 10 || head[0] !== 0x49 || head[1] !== 0x44 || head[2] !== 0x33) return 0;
  // A "syncsafe" integer: 7 bits per byte.
  return 10 + ((head[6]! & 0x7f) << 21) + ((head[7]! & 0x7f) << 14) + ((head[8]! & 0x7f) << 7) + (head[9]! & 0x7f);
}

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
  /** Size of a leading ID3v2 tag (cover art can make it large), skipped by the no-frame check. */
  private tagBytes = 0;

  /** Compiles the WebAssembly decoder; call once before `push`. */
  async init(): Promise<void> {
    const d = new MPEGDecoder();
    await d.ready;
    this.decoder = d;
  }

  /** Decodes the next bytes of the file. */
  push(chunk: Uint8Array): DecodedPcm {
    if (this.fed === 0) this.tagBytes = id3Size(chunk);
    const r = this.decoder!.decode(chunk);
    this.fed += chunk.length;
    this.total += r.samplesDecoded;
    if (this.total === 0 && this.fed > this.tagBytes + NO_FRAME_LIMIT) {
      throw audioInputError("Corrupt MP3 file: no MPEG audio frame in the first 256 KiB of audio data.");
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
