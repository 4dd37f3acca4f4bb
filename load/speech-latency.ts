/** Latencies of the voice benchmark's fake speech providers (ms): what real ones take, roughly. */
export const FAKE_LATENCY = {
  /** Deepgram: the final result after the end of the input (Finalize). */
  recognizerFinal: 150,
  /** The text model: its first token (which completes a sentence). */
  textFirstToken: 300,
  /** ElevenLabs: the first audio after a request or a generation's trigger. */
  speechFirstByte: 150,
} as const;
