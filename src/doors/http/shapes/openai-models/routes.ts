import { ModelKind, type ModelInfo } from "../../../../gen/spillway/v1/request.js";
import { Code } from "../../../../engine/code.js";
import { SpillwayError } from "../../../../engine/errors.js";
import type { HttpDoorContext, HttpRoute } from "../../route.js";
import { openAiShape } from "../openai/shape.js";

const STARTED = Math.floor(Date.now() / 1000);

const KIND_NAMES: Partial<Record<ModelKind, string>> = {
  [ModelKind.MODEL_KIND_TEXT]: "text",
  [ModelKind.MODEL_KIND_SPEECH]: "speech",
  [ModelKind.MODEL_KIND_TRANSCRIPTION]: "transcription",
  [ModelKind.MODEL_KIND_REALTIME]: "realtime",
};

/** OpenAI's model object, plus Spillway's own fields (what it can do, whether it is available). */
function modelJson(m: ModelInfo): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: m.id,
    object: "model",
    created: STARTED,
    owned_by: m.ownedBy,
    capabilities: m.kinds.map((k) => KIND_NAMES[k] ?? "unknown"),
    available: m.available,
  };
  if (!m.available) out["unavailable_reason"] = m.unavailableReason;
  return out;
}

/** Every model: each provider's, plus the realtime voice profiles defined in config. */
async function allModels(ctx: HttpDoorContext, signal: AbortSignal): Promise<ModelInfo[]> {
  const models = await ctx.engine.listModels(signal);
  const known = new Set(models.map((m) => m.id));
  for (const id of Object.keys(ctx.config.realtime.profiles)) {
    if (known.has(id)) continue;
    models.push({ id, ownedBy: "spillway", kinds: [ModelKind.MODEL_KIND_REALTIME], available: true, unavailableReason: "" });
  }
  return models;
}

/** `GET /v1/models`: every model of every configured provider, and the realtime profiles. */
export const listModelsRoute: HttpRoute = {
  method: "get",
  pattern: "/v1/models",
  shape: openAiShape,
  async handle(ex, _call, _body, ctx) {
    const models = await allModels(ctx, ex.signal);
    ex.json(200, { object: "list", data: models.map(modelJson) });
  },
};

/** `GET /v1/models/{provider}/{model}`: one model. */
export const getModelRoute: HttpRoute = {
  method: "get",
  pattern: "/v1/models/*",
  shape: openAiShape,
  async handle(ex, _call, _body, ctx) {
    const id = decodeURIComponent(ex.url.slice("/v1/models/".length));
    const models = await allModels(ctx, ex.signal);
    const m = models.find((x) => x.id === id);
    if (!m) {
      throw new SpillwayError(Code.NotFound, `The model '${id}' does not exist.`, {
        param: "model",
        reason: "model_not_found",
      });
    }
    ex.json(200, modelJson(m));
  },
};

/** The OpenAI models routes. */
export const openAiModelsRoutes: readonly HttpRoute[] = [listModelsRoute, getModelRoute];
