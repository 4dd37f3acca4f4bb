/**
 * The speech providers of the voice benchmark, in their own process on
 * loopback: fake Deepgram (a final result 150 ms after Finalize), a fake
 * OpenAI text model (300 ms to its first token, which completes a sentence,
 * then a token every 20 ms) and fake ElevenLabs (150 ms from a generation's
 * trigger or a request to its first audio). Prints one JSON line with their
 * base URLs, then serves until killed.
 *
 *   npx tsx load/speech-fakes.ts
 */
import { chatChunk, startFakeOpenAi, usageChunk } from "../test/helpers/fake-openai.js";
import { startFakeDeepgram } from "../test/helpers/fake-deepgram.js";
import { startFakeElevenLabs } from "../test/helpers/fake-elevenlabs.js";
import { FAKE_LATENCY } from "./speech-latency.js";

/** The text model's reply: its first token ends a sentence, so speech can start on it. */
const REPLY_TOKENS = ["Sure thing.", " Let me", " check", " that", " for", " you", " right", " now."];

const deepgram = await startFakeDeepgram({ finalDelayMs: FAKE_LATENCY.recognizerFinal, words: ["What", "is", "the", "weather", "like?"] });
// The first token comes with the role, at FAKE_LATENCY.textFirstToken; the rest 20 ms apart.
const events = [chatChunk(REPLY_TOKENS[0]!, { role: "assistant" }), ...REPLY_TOKENS.slice(1).map((t) => chatChunk(t)), chatChunk(null, {}, "stop"), usageChunk(12, REPLY_TOKENS.length)];
const openai = await startFakeOpenAi(() => ({ events, headerDelayMs: FAKE_LATENCY.textFirstToken, delayMs: 20 }));
const eleven = await startFakeElevenLabs({ firstByteMs: FAKE_LATENCY.speechFirstByte, pieceDelayMs: 5, msPerChar: 60 });
console.log(JSON.stringify({ deepgram: deepgram.baseUrl, openai: openai.baseUrl, elevenlabs: eleven.baseUrl }));

// At the end (the benchmark stops this process with SIGTERM): how the gateway framed its audio to Deepgram, on stderr.
process.once("SIGTERM", () => {
  let frames = 0;
  let bytes = 0;
  let finalizes = 0;
  for (const s of deepgram.sessions) {
    frames += s.audio.length;
    for (const b of s.audio) bytes += b.length;
    finalizes += s.control.filter((m) => m.includes('"Finalize"')).length;
  }
  const perTurn = finalizes > 0 ? (frames / finalizes).toFixed(1) : "-";
  const ms = frames > 0 ? ((bytes / frames / 48).toFixed(0)) : "-";
  process.stderr.write(`deepgram fake: ${frames} audio frames for ${finalizes} turns (${perTurn} per turn, ${ms} ms each on average at 24 kHz pcm16)\n`);
  process.exit(0);
});
