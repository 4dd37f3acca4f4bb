import { randomUUID } from "node:crypto";
import type { handleServerStreamingCall } from "@grpc/grpc-js";
import { Code } from "../../../engine/code.js";
import { ownerOf } from "../../../engine/durable/durable-streams.js";
import { SpillwayError, invalidArgument } from "../../../engine/errors.js";
import type { Chunk } from "../../../gen/spillway/v1/chunk.js";
import type { AttachRequest, GenerateRequest } from "../../../gen/spillway/v1/request.js";
import { admitCall } from "../auth.js";
import { createCallScope } from "../call-scope.js";
import type { GrpcDoorContext } from "../context.js";
import { pipeChunks } from "../pipe.js";
import { admitEarly, failCall } from "../serve.js";

/**
 * `Attach`: a stored stream's chunks after `after_seq` (all when absent),
 * then live ones until its terminal chunk — the same replay-then-follow as
 * the HTTP resumes, over the same log. NOT_FOUND for an unknown stream and
 * for another key's (not revealing that it exists); INVALID_ARGUMENT for a
 * malformed `stream_id`. The client leaving stops only this reader.
 *
 * Past capacity an Attach is refused like any streaming call, before its
 * request is decoded (`UNAVAILABLE`, `server_overloaded`, retry after 1 s):
 * replaying a log and following it is work per chunk, like a stream. An
 * admitted Attach holds its slot (its ticket) while it follows, and frees it
 * when the call ends, however it ends; one that would wait in the adaptive
 * queue (a spent ticket) waits there (`Admission.hold`, at most `queueMs`,
 * then `UNAVAILABLE`) for a slot of its own, after its key is checked and
 * before the log is read — the rule of the HTTP followers (`route.follows`).
 */
export function attachHandler(ctx: GrpcDoorContext): handleServerStreamingCall<AttachRequest, Chunk> {
  return (call) => {
    const early = admitEarly(call, ctx);
    if (early === undefined) return;
    let ticket = early;
    void (async () => {
      const scope = createCallScope(call, ctx.inFlight);
      ctx.active.calls++;
      try {
        const granted = await admitCall(ctx, call.metadata, call.getPath());
        // A follower holds one slot while it replays and follows, as on HTTP: a spent ticket waits for one here.
        ticket = await ctx.engine.admission.hold(ticket);
        const id = call.request.streamId.startsWith("resp_") ? call.request.streamId.slice(5) : call.request.streamId;
        if (!/^[0-9a-f]{32}$/.test(id)) throw invalidArgument(`Invalid 'stream_id': expected a stream id (32 hex digits, or 'resp_' and them), got '${call.request.streamId}'.`, "stream_id");
        const record = await ctx.engine.streams.get(id, ownerOf(granted.principal));
        if (!record) throw new SpillwayError(Code.NotFound, `No stored stream '${call.request.streamId}'.`, { reason: "not_found", param: "stream_id" });
        const after = call.request.afterSeq ?? -1;
        const chunks = (async function* () {
          for await (const { chunk } of ctx.engine.streams.follow(id, after, scope.signal)) yield chunk;
        })();
        await pipeChunks(call, chunks, scope.signal);
        if (!call.cancelled) call.end();
      } catch (e) {
        failCall(call, e);
      } finally {
        ticket.release();
        ctx.active.calls--;
        scope.dispose();
      }
    })();
  };
}

/** The metadata that asks `Generate` for a resumable stream (`true`). */
export const RESUMABLE_METADATA = "x-spillway-resumable";

/**
 * `Generate` with `x-spillway-resumable: true` metadata: the generation runs
 * detached from the call (like a background response) and is logged; the
 * call is one follower of the log, so a client that loses it calls `Attach`
 * with the stream id (every chunk carries it) and the last seq it got.
 * Admitted early like every Generate; the detached generation takes the
 * call's slot over (it is held as long as the generation runs, not the call).
 */
export function serveResumableGenerate(call: Parameters<handleServerStreamingCall<GenerateRequest, Chunk>>[0], ctx: GrpcDoorContext, validate: () => void): void {
  const ticket = admitEarly(call, ctx);
  if (ticket === undefined) return;
  void (async () => {
    const scope = createCallScope(call, ctx.inFlight);
    ctx.active.calls++;
    try {
      const granted = await admitCall(ctx, call.metadata, call.getPath());
      validate();
      const id = randomUUID().replaceAll("-", "");
      const rec = ctx.engine.streams.reserve(id, ownerOf(granted.principal), true);
      let stream;
      try {
        stream = await ctx.engine.generate(call.request, { ...granted, ticket, streamId: id, signal: rec.signal, deadline: scope.deadline });
      } catch (e) {
        rec.abandon();
        throw e;
      }
      try {
        await rec.open(JSON.stringify({ shape: "grpc" }));
      } catch (e) {
        stream.cancel(e);
        throw e;
      }
      rec.runDetached(stream);
      const chunks = (async function* () {
        for await (const { chunk } of ctx.engine.streams.follow(id, -1, scope.signal)) yield chunk;
      })();
      await pipeChunks(call, chunks, scope.signal);
      if (!call.cancelled) call.end();
    } catch (e) {
      failCall(call, e);
    } finally {
      ticket.release();
      ctx.active.calls--;
      scope.dispose();
    }
  })();
}
