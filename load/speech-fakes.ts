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
import { chatEvents, startFakeOpenAi } from "../test/helpers/fake-openai.js";
import { startFakeDeepgram } from "../test/helpers/fake-deepgram.js";
import { startFakeElevenLabs } from "../test/helpers/fake-elevenlabs.js";
import { FAKE_LATENCY } from "./speech-latency.js";

/** The text model's reply: its first token ends a sentence, so speech can start on it. */
const REPLY_TOKENS = ["Sure thing.", " Let me", " check", " that", " for", " you", " right", " now."];

const deepgram = await startFakeDeepgram({ finalDelayMs: FAKE_LATENCY.recognizerFinal, words: ["What", "is", "the", "weather", "like?"] });
const openai = await startFakeOpenAi(() => ({ events: chatEvents(REPLY_TOKENS), headerDelayMs: FAKE_LATENCY.textFirstToken, delayMs: 20 }));
const eleven = await startFakeElevenLabs({ firstByteMs: FAKE_LATENCY.speechFirstByte, pieceDelayMs: 5, msPerChar: 60 });
console.log(JSON.stringify({ deepgram: deepgram.baseUrl, openai: openai.baseUrl, elevenlabs: eleven.baseUrl }));
