/**
 * The WebSocket floor of a voice turn (issue 17): a bare uWebSockets.js
 * server in Node with the realtime door's socket settings, answering each
 * connection with one `session.created` and then reading the client's text
 * frames — dropped (`--mode drop`), or each parsed with `JSON.parse` and its
 * `audio` decoded with `Buffer.from(…, "base64")` (`--mode parse`). No
 * session, no VAD, no providers: what 200 paced ~1.3 KB appends per turn
 * cost Node and uWS themselves. load/voice-ladder.ts runs it as the ladder's
 * bottom rung.
 *
 * Run: `tsx load/voice-floor.ts [--mode drop|parse] [--port 0]`; prints
 * `{"port":N}` on stdout once listening.
 */
import { parseArgs } from "node:util";
import uWS from "uWebSockets.js";

const { values } = parseArgs({ options: { mode: { type: "string", default: "drop" }, port: { type: "string", default: "0" } } });
const parse = values.mode === "parse";
const decoder = new TextDecoder();
let bytes = 0;

uWS
  .App()
  .ws("/v1/realtime", {
    maxPayloadLength: 2 * 1024 * 1024,
    maxBackpressure: 64 * 1024 * 1024,
    closeOnBackpressureLimit: 0,
    idleTimeout: 120,
    sendPingsAutomatically: true,
    open(ws) {
      ws.send(JSON.stringify({ type: "session.created", session: { id: "sess_floor" } }));
    },
    message(_ws, message, isBinary) {
      if (isBinary || !parse) return;
      const ev = JSON.parse(decoder.decode(message)) as { type?: unknown; audio?: unknown };
      // Kept in a counter so the decode is not optimized away.
      if (ev.type === "input_audio_buffer.append" && typeof ev.audio === "string") bytes += Buffer.from(ev.audio, "base64").length;
    },
  })
  .listen("127.0.0.1", Number(values.port), (token) => {
    if (!token) throw new Error("voice-floor: could not listen");
    console.log(JSON.stringify({ port: uWS.us_socket_local_port(token) }));
  });

process.once("SIGTERM", () => {
  process.stderr.write(`voice-floor: ${bytes} audio bytes decoded\n`);
  process.exit(0);
});
