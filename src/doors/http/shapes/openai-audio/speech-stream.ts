import type { Usage } from "../../../../gen/spillway/v1/chunk.js";
import { sseData } from "../../sse.js";
import { SSE_DONE } from "../openai/wire.js";

/** A `speech.audio.delta` frame: the encoded audio in base64 (the only place it is base64). */
export function speechDeltaFrame(audio: Uint8Array): string {
  const b64 = Buffer.from(audio.buffer, audio.byteOffset, audio.byteLength).toString("base64");
  return sseData(`{"type":"speech.audio.delta","audio":"${b64}"}`);
}

/** The `speech.audio.done` frame with usage, then `data: [DONE]`. */
export function speechDoneFrames(u: Usage): string {
  const usage = { input_tokens: u.inputTokens, output_tokens: u.outputTokens, total_tokens: u.totalTokens };
  return sseData(JSON.stringify({ type: "speech.audio.done", usage })) + SSE_DONE;
}
