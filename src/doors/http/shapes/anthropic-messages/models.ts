import { ModelKind } from "../../../../gen/spillway/v1/request.js";
import { Code } from "../../../../engine/code.js";
import { SpillwayError } from "../../../../engine/errors.js";
import type { HttpDoorContext, HttpRoute } from "../../route.js";
import { anthropicShape } from "./shape.js";

const STARTED = new Date().toISOString();

/** Anthropic's model object. */
interface AnthropicModel {
  type: "model";
  id: string;
  display_name: string;
  created_at: string;
}

/**
 * The text models an Anthropic client can ask for: every configured
 * alias (the bare names such as `claude-sonnet-4-5`, named after what they
 * route to), then every available text model of every provider.
 */
async function textModels(ctx: HttpDoorContext, signal: AbortSignal): Promise<AnthropicModel[]> {
  const models = await ctx.engine.listModels(signal);
  const out: AnthropicModel[] = Object.entries(ctx.config.aliases).map(([alias, target]) => ({ type: "model", id: alias, display_name: `${alias} (${target})`, created_at: STARTED }));
  for (const m of models) {
    if (m.available && m.kinds.includes(ModelKind.MODEL_KIND_TEXT)) out.push({ type: "model", id: m.id, display_name: m.id, created_at: STARTED });
  }
  return out;
}

/** `GET /anthropic/v1/models`: Anthropic's list form (one page: `has_more` is false). */
export const anthropicListModelsRoute: HttpRoute = {
  method: "get",
  pattern: "/anthropic/v1/models",
  shape: anthropicShape,
  async handle(ex, _call, _body, ctx) {
    const data = await textModels(ctx, ex.signal);
    ex.json(200, { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null });
  },
};

/** `GET /anthropic/v1/models/{id}`: one model or alias; 404 `not_found_error` otherwise. */
export const anthropicGetModelRoute: HttpRoute = {
  method: "get",
  pattern: "/anthropic/v1/models/*",
  shape: anthropicShape,
  async handle(ex, _call, _body, ctx) {
    const id = decodeURIComponent(ex.url.slice("/anthropic/v1/models/".length));
    const m = (await textModels(ctx, ex.signal)).find((x) => x.id === id);
    if (!m) throw new SpillwayError(Code.NotFound, `The model '${id}' does not exist.`, { param: "model", reason: "model_not_found" });
    ex.json(200, m);
  },
};
