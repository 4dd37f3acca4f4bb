import { Code } from "../../../engine/code.js";
import { SpillwayError } from "../../../engine/errors.js";
import { keyMatches } from "../../../engine/admission.js";
import type { HttpRoute } from "../route.js";
import { openAiShape } from "../shapes/openai/shape.js";

/**
 * `POST /admin/reload`: re-reads the config file, as `SIGHUP` does (every
 * worker under `--workers N`). Off (404) unless `admin.key` is set; then it
 * needs `Authorization: Bearer <admin key>` (a gateway key is not enough).
 * Answers 200 with what needs a restart, or 400 with why the new config was
 * refused (the old one stays in force).
 */
export const adminReloadRoute: HttpRoute = {
  method: "post",
  pattern: "/admin/reload",
  shape: openAiShape,
  public: true,
  async handle(ex, _call, _body, { config, reload }) {
    const key = config.admin.key;
    if (!key) throw new SpillwayError(Code.NotFound, `Unknown request URL: POST ${ex.url}.`, { reason: "unknown_url" });
    if (!keyMatches(key, ex.headers["authorization"])) {
      throw new SpillwayError(Code.Unauthenticated, "The admin key is required: send it as 'Authorization: Bearer <key>'.", { reason: "invalid_api_key" });
    }
    const outcome = await reload();
    if (!outcome.ok) throw new SpillwayError(Code.InvalidArgument, `The new config was refused; the old one stays in force: ${outcome.error}`, { reason: "invalid_config" });
    ex.json(200, { status: "reloaded", restart_needed: outcome.restartNeeded });
  },
};
