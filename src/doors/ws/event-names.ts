/**
 * Server event names that changed between the Realtime beta and GA. Spillway
 * emits GA names, or beta names to clients that ask for the beta protocol
 * (`OpenAI-Beta: realtime=v1` or the `openai-beta.realtime-v1` subprotocol).
 */
const GA_TO_BETA: Readonly<Record<string, string>> = {
  "response.output_audio.delta": "response.audio.delta",
  "response.output_audio.done": "response.audio.done",
  "response.output_audio_transcript.delta": "response.audio_transcript.delta",
  "response.output_audio_transcript.done": "response.audio_transcript.done",
  "response.output_text.delta": "response.text.delta",
  "response.output_text.done": "response.text.done",
};

/** The name a server event has in the protocol the client speaks. */
export function serverEventName(gaName: string, beta: boolean): string {
  return beta ? (GA_TO_BETA[gaName] ?? gaName) : gaName;
}

/** Content part types of assistant items: GA `output_*`, beta without the prefix. */
export function assistantPartType(kind: "text" | "audio", beta: boolean): string {
  return beta ? kind : `output_${kind}`;
}
