/**
 * What a relayed realtime session used, read from the events that pass: the
 * audio formats (from the upstream's `session.created` / `session.updated`),
 * seconds of input audio (client `input_audio_buffer.append`) and output
 * audio (`response.output_audio.delta`, beta `response.audio.delta`), and
 * tokens from each `response.done`'s `usage`.
 */
import type { Usage } from "../../../gen/spillway/v1/chunk.js";

/** Bytes per second of a Realtime audio format on the wire. */
function bytesPerSecond(format: string): number {
  // audio/pcm (pcm16 24 kHz) and beta pcm16; G.711 is one byte per sample at 8 kHz.
  return format === "audio/pcmu" || format === "audio/pcma" || format === "g711_ulaw" || format === "g711_alaw" ? 8000 : 48_000;
}

/** Decoded length of a base64 string, without decoding it. */
export function base64Bytes(b64: string): number {
  const pad = b64.endsWith("==") ? 2 : b64.endsWith("=") ? 1 : 0;
  return Math.max(0, Math.floor((b64.length * 3) / 4) - pad);
}

/** The usage of one `response.done`, as the engine's `Usage`. */
export function usageOf(usage: unknown, outputAudioSeconds: number): Usage {
  const u = (typeof usage === "object" && usage !== null ? usage : {}) as Record<string, unknown>;
  const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : 0);
  const inDetails = (u["input_token_details"] ?? {}) as Record<string, unknown>;
  return {
    inputTokens: num(u["input_tokens"]),
    outputTokens: num(u["output_tokens"]),
    totalTokens: num(u["total_tokens"]),
    cachedInputTokens: num(inDetails["cached_tokens"]),
    reasoningTokens: 0,
    inputAudioSeconds: 0,
    outputAudioSeconds,
  };
}

/** Audio formats and seconds of one relayed session. */
export class RelayMeter {
  private inputFormat = "audio/pcm";
  private outputFormat = "audio/pcm";
  /** Seconds of audio the client appended. */
  inputAudioSeconds = 0;
  /** Seconds of audio the upstream sent, over the session. */
  outputAudioSeconds = 0;
  inputTokens = 0;
  outputTokens = 0;

  /** A client event (parsed). */
  client(e: Record<string, unknown>): void {
    if (e["type"] === "input_audio_buffer.append" && typeof e["audio"] === "string") {
      this.inputAudioSeconds += base64Bytes(e["audio"]) / bytesPerSecond(this.inputFormat);
    }
  }

  /** Seconds of output audio in an upstream event (0 for other events); updates formats from session events. */
  server(e: Record<string, unknown>): number {
    const type = e["type"];
    if ((type === "response.output_audio.delta" || type === "response.audio.delta") && typeof e["delta"] === "string") {
      const s = base64Bytes(e["delta"]) / bytesPerSecond(this.outputFormat);
      this.outputAudioSeconds += s;
      return s;
    }
    if (type === "session.created" || type === "session.updated") this.formats(e["session"]);
    return 0;
  }

  /** Adds the tokens of a `response.done`. */
  tokens(u: Usage): void {
    this.inputTokens += u.inputTokens;
    this.outputTokens += u.outputTokens;
  }

  private formats(session: unknown): void {
    if (typeof session !== "object" || session === null) return;
    const s = session as Record<string, unknown>;
    const audio = field(s, "audio");
    const input = field(field(field(audio, "input"), "format"), "type") ?? s["input_audio_format"];
    const output = field(field(field(audio, "output"), "format"), "type") ?? s["output_audio_format"];
    if (typeof input === "string") this.inputFormat = input;
    if (typeof output === "string") this.outputFormat = output;
  }
}

/** `o[key]` when `o` is an object, else undefined. */
function field(o: unknown, key: string): unknown {
  return typeof o === "object" && o !== null ? (o as Record<string, unknown>)[key] : undefined;
}
