/**
 * A realtime session's turn transcribed over the session's one Deepgram
 * socket (live-connection.ts): the call's audio is read as it comes and
 * pushed to its turn (live-turn.ts), whose routed results are the call's
 * stream, then usage and finish.
 */
import type { TranscribeConfig } from "../../gen/spillway/v1/request.js";
import { SpillwayError } from "../../engine/errors.js";
import { finishPayload, FinishReason, usagePayload, type ChunkPayload } from "../../engine/payload.js";
import type { ProviderContext } from "../../engine/provider.js";
import type { ProviderSession } from "../../engine/provider-session.js";
import { tryNext } from "../../engine/poll.js";
import { openLiveAudio } from "./live-audio.js";
import { liveUrl } from "./live.js";
import { LiveConnection } from "./live-connection.js";
import type { LiveTurn } from "./live-turn.js";
import type { DeepgramUpstream } from "./upstream.js";

/** Streams a live transcript of one turn's `audio` over the session's Deepgram socket (opened at the first turn). */
export async function* deepgramSessionLive(
  up: DeepgramUpstream,
  model: string,
  config: TranscribeConfig,
  audio: AsyncIterable<Uint8Array>,
  ctx: ProviderContext,
  session: ProviderSession,
): AsyncGenerator<ChunkPayload> {
  const source = audio[Symbol.asyncIterator]();
  const format = await openLiveAudio(config, source);
  const url = liveUrl(up, model, config, format);
  const key = `deepgram-live:${up.name}:${url}`;
  let conn = session.get(key) as LiveConnection | undefined;
  if (!conn || conn.finished) {
    conn = new LiveConnection(up, url, format.bytesPerSecond, session, key);
    session.set(key, conn);
  }
  const turn = conn.openTurn(ctx);
  const onAbort = (): void => turn.abort(SpillwayError.from(ctx.signal.reason));
  if (ctx.signal.aborted) onAbort();
  else ctx.signal.addEventListener("abort", onAbort, { once: true });
  void feed(turn, source, (b) => format.convert(b), format.first, ctx);
  try {
    for (;;) {
      const batch = await turn.next();
      if (!batch) break;
      yield* batch;
    }
    yield usagePayload({ inputAudioSeconds: format.bytesPerSecond ? turn.bytes / format.bytesPerSecond : 0 });
    yield finishPayload(FinishReason.REASON_STOP);
  } finally {
    ctx.signal.removeEventListener("abort", onAbort);
    turn.release();
    void source.return?.()?.catch(() => undefined);
  }
}

/**
 * Pushes the source's audio to the turn as it comes. What the source holds
 * ready (`tryNext`: the door's queue) is taken without a promise; only an
 * empty source is awaited (one wake-up per append of a realtime client).
 */
async function feed(turn: LiveTurn, source: AsyncIterator<Uint8Array>, convert: (b: Uint8Array) => Uint8Array, first: readonly Uint8Array[], ctx: ProviderContext): Promise<void> {
  try {
    for (const b of first) turn.push(b);
    for (;;) {
      const r = tryNext(source) ?? (await source.next());
      if (turn.released || ctx.signal.aborted) return;
      if (r.done) break;
      turn.push(convert(r.value));
    }
    // An input that ended because its call was cancelled is not a finished input.
    await new Promise((resolve) => setImmediate(resolve));
    if (turn.released || ctx.signal.aborted) return;
    turn.endInput();
  } catch (e) {
    turn.fail(SpillwayError.from(e));
  }
}
