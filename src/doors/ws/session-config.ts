/**
 * The settings of one realtime session, how `session.update` changes them,
 * and how they are shown to the client (`session.created` / `.updated`), in
 * the GA shape or, for beta clients, the beta shape.
 */
import type { RealtimeAudioFormat } from "./audio/formats.js";
import type { FunctionTool, SessionUpdate, ToolChoice } from "./client-events.js";
import type { VoiceProfile } from "./profiles.js";

/**
 * Turn detection settings. `semantic_vad` is not semantic: it runs the same
 * detector as `server_vad` (Silero, or the energy fallback), its `eagerness`
 * choosing the silence duration that ends a turn; it does not look at words.
 */
export interface TurnDetection {
  type: "server_vad" | "semantic_vad";
  threshold: number;
  prefixPaddingMs: number;
  silenceDurationMs: number;
  createResponse: boolean;
  interruptResponse: boolean;
  idleTimeoutMs: number | null;
  eagerness: "low" | "medium" | "high" | "auto";
}

/** Everything a session is configured with. */
export interface SessionSettings {
  readonly id: string;
  /** `realtime` (the cascade answers), or `transcription` (speech to text only). */
  type: "realtime" | "transcription";
  profile: VoiceProfile;
  instructions: string;
  outputModalities: ("text" | "audio")[];
  inputFormat: RealtimeAudioFormat;
  outputFormat: RealtimeAudioFormat;
  voice: string;
  speed: number;
  transcription: { model: string; language: string; prompt: string };
  turnDetection: TurnDetection | null;
  maxOutputTokens: number | "inf";
  temperature: number | undefined;
  tools: FunctionTool[];
  toolChoice: ToolChoice;
  readonly expiresAt: number;
}

const SILENCE_BY_EAGERNESS = { low: 1000, medium: 600, high: 300, auto: 500 } as const;

/** OpenAI's defaults for `server_vad`. */
export function defaultTurnDetection(): TurnDetection {
  return {
    type: "server_vad",
    threshold: 0.5,
    prefixPaddingMs: 300,
    silenceDurationMs: 500,
    createResponse: true,
    interruptResponse: true,
    idleTimeoutMs: null,
    eagerness: "auto",
  };
}

/** A new session's settings. */
export function newSessionSettings(id: string, profile: VoiceProfile, expiresAt: number): SessionSettings {
  return {
    id,
    type: "realtime",
    profile,
    instructions: profile.instructions,
    outputModalities: ["audio"],
    inputFormat: "audio/pcm",
    outputFormat: "audio/pcm",
    voice: profile.voice,
    speed: 1,
    transcription: { model: profile.stt, language: "", prompt: "" },
    turnDetection: defaultTurnDetection(),
    maxOutputTokens: "inf",
    temperature: undefined,
    tools: [],
    toolChoice: "auto",
    expiresAt,
  };
}

const BETA_FORMATS: Record<string, RealtimeAudioFormat> = {
  pcm16: "audio/pcm",
  g711_ulaw: "audio/pcmu",
  g711_alaw: "audio/pcma",
};

function applyTurnDetection(s: SessionSettings, td: NonNullable<SessionUpdate["turn_detection"]> | null): void {
  if (td === null) {
    s.turnDetection = null;
    return;
  }
  const base = s.turnDetection ?? defaultTurnDetection();
  const next: TurnDetection = { ...base, type: td.type };
  if (td.eagerness !== undefined) next.eagerness = td.eagerness;
  if (td.type === "semantic_vad" && td.silence_duration_ms === undefined) {
    next.silenceDurationMs = SILENCE_BY_EAGERNESS[next.eagerness];
  }
  if (td.threshold !== undefined) next.threshold = td.threshold;
  if (td.prefix_padding_ms !== undefined) next.prefixPaddingMs = td.prefix_padding_ms;
  if (td.silence_duration_ms !== undefined) next.silenceDurationMs = td.silence_duration_ms;
  if (td.create_response !== undefined) next.createResponse = td.create_response;
  if (td.interrupt_response !== undefined) next.interruptResponse = td.interrupt_response;
  if (td.idle_timeout_ms !== undefined) next.idleTimeoutMs = td.idle_timeout_ms;
  s.turnDetection = next;
}

/**
 * Applies a `session.update` to `s` (the profile change, if any, is done by
 * the caller, which knows the profiles). GA fields win over their beta names
 * when both are present.
 */
export function applySessionUpdate(s: SessionSettings, u: SessionUpdate): void {
  if (u.type !== undefined) s.type = u.type;
  if (u.instructions !== undefined) s.instructions = u.instructions;
  const mods = u.output_modalities ?? u.modalities;
  if (mods) s.outputModalities = mods.includes("audio") ? ["audio"] : ["text"];
  const inFmt = u.audio?.input?.format?.type ?? (u.input_audio_format && BETA_FORMATS[u.input_audio_format]);
  if (inFmt) s.inputFormat = inFmt;
  const outFmt = u.audio?.output?.format?.type ?? (u.output_audio_format && BETA_FORMATS[u.output_audio_format]);
  if (outFmt) s.outputFormat = outFmt;
  const voice = u.audio?.output?.voice ?? u.voice;
  if (voice) s.voice = voice;
  const speed = u.audio?.output?.speed ?? u.speed;
  if (speed !== undefined) s.speed = speed;
  const tr = u.audio?.input && "transcription" in u.audio.input ? u.audio.input.transcription : u.input_audio_transcription;
  if (tr) {
    s.transcription = {
      // A `provider/model` id picks the speech-to-text model; OpenAI names (`whisper-1`) keep the profile's.
      model: tr.model?.includes("/") ? tr.model : s.transcription.model,
      language: tr.language ?? s.transcription.language,
      prompt: tr.prompt ?? s.transcription.prompt,
    };
  }
  const td = u.audio?.input && "turn_detection" in u.audio.input ? u.audio.input.turn_detection : u.turn_detection;
  if (td !== undefined) applyTurnDetection(s, td);
  const max = u.max_output_tokens ?? u.max_response_output_tokens;
  if (max !== undefined) s.maxOutputTokens = max;
  if (u.temperature !== undefined) s.temperature = u.temperature;
  if (u.tools !== undefined) s.tools = u.tools;
  if (u.tool_choice !== undefined) s.toolChoice = u.tool_choice;
}

function formatJson(f: RealtimeAudioFormat): Record<string, unknown> {
  return f === "audio/pcm" ? { type: f, rate: 24000 } : { type: f };
}

function turnDetectionJson(td: TurnDetection | null): Record<string, unknown> | null {
  if (!td) return null;
  if (td.type === "semantic_vad") {
    return {
      type: "semantic_vad",
      eagerness: td.eagerness,
      create_response: td.createResponse,
      interrupt_response: td.interruptResponse,
    };
  }
  return {
    type: "server_vad",
    threshold: td.threshold,
    prefix_padding_ms: td.prefixPaddingMs,
    silence_duration_ms: td.silenceDurationMs,
    create_response: td.createResponse,
    interrupt_response: td.interruptResponse,
    idle_timeout_ms: td.idleTimeoutMs,
  };
}

const BETA_FORMAT_NAMES: Record<RealtimeAudioFormat, string> = {
  "audio/pcm": "pcm16",
  "audio/pcmu": "g711_ulaw",
  "audio/pcma": "g711_alaw",
};

/** The session object of `session.created` / `session.updated`. */
export function sessionJson(s: SessionSettings, beta: boolean): Record<string, unknown> {
  const transcription: Record<string, unknown> = { model: s.transcription.model };
  if (s.transcription.language) transcription["language"] = s.transcription.language;
  if (s.transcription.prompt) transcription["prompt"] = s.transcription.prompt;
  if (s.type === "transcription") {
    const td = turnDetectionJson(s.turnDetection);
    return {
      type: "transcription",
      id: s.id,
      object: "realtime.transcription_session",
      expires_at: s.expiresAt,
      audio: {
        input: {
          format: formatJson(s.inputFormat),
          transcription,
          turn_detection: td && {
            type: td["type"],
            threshold: s.turnDetection!.threshold,
            prefix_padding_ms: s.turnDetection!.prefixPaddingMs,
            silence_duration_ms: s.turnDetection!.silenceDurationMs,
          },
        },
      },
    };
  }
  if (beta) {
    return {
      id: s.id,
      object: "realtime.session",
      model: s.profile.id,
      expires_at: s.expiresAt,
      modalities: s.outputModalities.includes("audio") ? ["text", "audio"] : ["text"],
      instructions: s.instructions,
      voice: s.voice,
      speed: s.speed,
      input_audio_format: BETA_FORMAT_NAMES[s.inputFormat],
      output_audio_format: BETA_FORMAT_NAMES[s.outputFormat],
      input_audio_transcription: transcription,
      turn_detection: turnDetectionJson(s.turnDetection),
      tools: s.tools,
      tool_choice: s.toolChoice,
      temperature: s.temperature ?? 0.8,
      max_response_output_tokens: s.maxOutputTokens,
    };
  }
  return {
    type: "realtime",
    object: "realtime.session",
    id: s.id,
    model: s.profile.id,
    expires_at: s.expiresAt,
    output_modalities: s.outputModalities,
    instructions: s.instructions,
    audio: {
      input: {
        format: formatJson(s.inputFormat),
        transcription,
        turn_detection: turnDetectionJson(s.turnDetection),
      },
      output: { format: formatJson(s.outputFormat), voice: s.voice, speed: s.speed },
    },
    tools: s.tools,
    tool_choice: s.toolChoice,
    max_output_tokens: s.maxOutputTokens,
    tracing: null,
  };
}
