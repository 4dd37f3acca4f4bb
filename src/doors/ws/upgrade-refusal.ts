/**
 * The answer to a refused realtime upgrade: an HTTP error instead of a
 * WebSocket (no 101), rendered by the OpenAI shape exactly as the HTTP door
 * renders the same error (status from the one table, `{"error":…}` body with
 * the error's own message — the stream cap's, the session cap's, the
 * drain's or the adaptive limit's —, `Retry-After`). The shared refusals for
 * overload (`overloadCause`) are rendered once, status line and body bytes
 * included: a flood of refused upgrades renders no JSON (uWS writes a
 * response through `writeStatus`/`writeHeader`/`end`, so what is kept is
 * those arguments, the body as bytes).
 */
import type uWS from "uWebSockets.js";
import { overloadCause } from "../../engine/admission.js";
import type { SpillwayError } from "../../engine/errors.js";
import { openAiShape } from "../http/shapes/openai/shape.js";
import { statusLine } from "../http/status.js";

/** A refusal as uWS writes it: status line, headers (content type first), body. */
interface RenderedRefusal {
  readonly status: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: Buffer;
}

const rendered = new WeakMap<SpillwayError, RenderedRefusal>();

/** `err` rendered for the wire; cached for the shared refusals for overload. */
export function renderUpgradeRefusal(err: SpillwayError): RenderedRefusal {
  const hit = rendered.get(err);
  if (hit) return hit;
  const r = openAiShape.renderError(err);
  const out: RenderedRefusal = {
    status: statusLine(r.status),
    headers: [["content-type", r.contentType], ...r.headers],
    body: Buffer.from(r.body),
  };
  if (overloadCause(err) !== undefined) rendered.set(err, out);
  return out;
}

/** Answers the upgrade request `res` with `err` (see the module comment), corked. */
export function refuseUpgrade(res: uWS.HttpResponse, err: SpillwayError): void {
  const r = renderUpgradeRefusal(err);
  res.cork(() => {
    res.writeStatus(r.status);
    for (const [name, value] of r.headers) res.writeHeader(name, value);
    res.end(r.body);
  });
}
