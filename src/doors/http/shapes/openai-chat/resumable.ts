import { randomUUID } from "node:crypto";
import type { Chunk } from "../../../../gen/spillway/v1/chunk.js";
import { Code } from "../../../../engine/code.js";
import { isTerminal, ownerOf, type LoggedChunk } from "../../../../engine/durable/durable-streams.js";
import { SpillwayError, invalidArgument } from "../../../../engine/errors.js";
import type { HttpExchange } from "../../exchange.js";
import type { HttpDoorContext, RouteCall } from "../../route.js";
import { SSE_HEADERS } from "../../sse.js";
import type { ParsedGenerate } from "./request.js";
import { ChatSseEncoder } from "./stream.js";

/** What the chat shape keeps of a resumable stream, to render its chunks again. */
interface StoredChat {
  readonly shape: "chat";
  readonly created: number;
  readonly model: string;
  readonly includeUsage: boolean;
}

/** The request header that asks for a resumable chat stream (`true`). */
export const RESUMABLE_HEADER = "x-spillway-resumable";

/** Whether a chat request resumes (`Last-Event-ID`) or asks for a resumable stream. */
export function resumableMode(ex: HttpExchange): "resume" | "store" | undefined {
  if (ex.headers["last-event-id"]) return "resume";
  const v = ex.headers[RESUMABLE_HEADER];
  if (!v) return undefined;
  if (v === "true" || v === "1") return "store";
  throw invalidArgument(`Invalid '${RESUMABLE_HEADER}' header: expected 'true', got '${v}'.`, RESUMABLE_HEADER);
}

/** The SSE text of one chunk with an `id: <stream id>:<seq>` line on its last event. */
function withId(text: string, chunk: Chunk): string {
  if (!text) return text;
  const at = text.lastIndexOf("data: ");
  return `${text.slice(0, at)}id: ${chunk.streamId}:${chunk.seq}\n${text.slice(at)}`;
}

async function pipeLogged(ex: HttpExchange, chunks: AsyncIterable<LoggedChunk>, encoder: ChatSseEncoder, afterSeq: number): Promise<void> {
  try {
    for await (const { chunk } of chunks) {
      const text = encoder.encode(chunk);
      if (chunk.seq <= afterSeq) continue;
      if (ex.aborted) break;
      const wait = ex.write(withId(text, chunk));
      if (wait) await wait;
      if (isTerminal(chunk)) break;
    }
  } finally {
    ex.end();
  }
}

/**
 * A resumable chat stream (`x-spillway-resumable: true`, streaming only):
 * generated detached from the connection (like a background response) and
 * logged; each SSE event carries `id: <stream id>:<seq>`, and the client is
 * one follower of the log, so a client that reconnects with `Last-Event-ID`
 * gets exactly the rest.
 */
export async function storeChat(ex: HttpExchange, call: RouteCall, ctx: HttpDoorContext, parsed: ParsedGenerate): Promise<void> {
  if (!parsed.stream) throw invalidArgument(`'${RESUMABLE_HEADER}' needs 'stream': true.`, "stream");
  const id = randomUUID().replaceAll("-", "");
  const rec = ctx.engine.streams.reserve(id, ownerOf(ex.principal), true);
  let stream;
  try {
    stream = await call.generate(parsed.request, parsed.fallbacks, { streamId: id, signal: rec.signal });
  } catch (e) {
    rec.abandon();
    throw e;
  }
  const stored: StoredChat = { shape: "chat", created: stream.created, model: stream.route.model, includeUsage: parsed.includeUsage };
  try {
    await rec.open(JSON.stringify(stored));
  } catch (e) {
    stream.cancel(e);
    throw e;
  }
  rec.runDetached(stream);
  ex.start(200, "text/event-stream", SSE_HEADERS);
  await pipeLogged(ex, ctx.engine.streams.follow(id, -1, ex.signal), new ChatSseEncoder({ id, created: stored.created, route: { model: stored.model } }, stored.includeUsage), -1);
}

/** `Last-Event-ID: <stream id>:<seq>`: replays the caller's stream after `seq`, then follows it live. 404 for anyone else's. */
export async function resumeChat(ex: HttpExchange, ctx: HttpDoorContext): Promise<void> {
  const raw = ex.headers["last-event-id"] ?? "";
  const m = /^([0-9a-f]{32}):(\d{1,15})$/.exec(raw);
  if (!m) throw invalidArgument(`Invalid 'Last-Event-ID' header: expected '<stream id>:<seq>' as sent in the stream's 'id:' lines, got '${raw}'.`, "Last-Event-ID");
  const record = await ctx.engine.streams.get(m[1]!, ownerOf(ex.principal));
  if (!record || (JSON.parse(record.request) as { shape?: string }).shape !== "chat") throw new SpillwayError(Code.NotFound, `No resumable stream '${m[1]}'.`, { httpStatus: 404, reason: "not_found", param: "Last-Event-ID" });
  const stored = JSON.parse(record.request) as StoredChat;
  ex.start(200, "text/event-stream", SSE_HEADERS);
  const encoder = new ChatSseEncoder({ id: record.id, created: stored.created, route: { model: stored.model } }, stored.includeUsage);
  await pipeLogged(ex, ctx.engine.streams.follow(record.id, -1, ex.signal), encoder, Number(m[2]));
}
