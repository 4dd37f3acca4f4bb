/**
 * Reading a realtime WebSocket upgrade request: the API key (from
 * `Authorization: Bearer …` or the `openai-insecure-api-key.<key>`
 * subprotocol browsers use), whether the client speaks the beta protocol,
 * and which of the offered subprotocols to echo back. A client that offered
 * subprotocols fails the handshake unless the server picks one of them.
 */

const KEY_PROTOCOL = "openai-insecure-api-key.";
const BETA_PROTOCOL = "openai-beta.realtime-v1";

/** What the upgrade request says. */
export interface Handshake {
  /** The API key, when the client sent one. */
  readonly apiKey: string | undefined;
  /** True when the client asked for the beta protocol. */
  readonly beta: boolean;
  /** The subprotocol to answer with ("" when none was offered). */
  readonly protocol: string;
  /** `model` from the query string ("" when absent). */
  readonly model: string;
  /** True for `?intent=transcription`: a transcription-only session. */
  readonly transcription: boolean;
}

/** Raw header values and query of an upgrade request. */
export interface HandshakeInput {
  readonly authorization: string;
  readonly openAiBeta: string;
  readonly protocols: string;
  readonly query: string;
}

/** Parses an upgrade request. Never throws. */
export function parseHandshake(input: HandshakeInput): Handshake {
  const offered = input.protocols
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
  let apiKey: string | undefined;
  const bearer = /^Bearer\s+(.+)$/i.exec(input.authorization.trim());
  if (bearer) apiKey = bearer[1]!.trim();
  const keyProtocol = offered.find((p) => p.startsWith(KEY_PROTOCOL));
  if (keyProtocol && apiKey === undefined) apiKey = keyProtocol.slice(KEY_PROTOCOL.length) || undefined;
  const beta = offered.includes(BETA_PROTOCOL) || /realtime=v1/i.test(input.openAiBeta);
  // Echo a protocol that says what we speak; the key protocol (a secret) only as a last resort.
  const protocol =
    offered.find((p) => p === "realtime") ??
    offered.find((p) => p === BETA_PROTOCOL) ??
    offered.find((p) => !p.startsWith(KEY_PROTOCOL)) ??
    offered[0] ??
    "";
  const query = new URLSearchParams(input.query);
  const model = query.get("model") ?? "";
  return { apiKey, beta, protocol, model, transcription: query.get("intent") === "transcription" };
}
