import { ModelKind, type ModelInfo } from "../../../gen/spillway/v1/request.js";
import { Code } from "../../../engine/code.js";
import { SpillwayError } from "../../../engine/errors.js";
import type { HttpRoute } from "../route.js";

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

/** `GET /v1/models`: every model of every configured provider. */
export const listModelsRoute: HttpRoute = {
  method: "get",
  pattern: "/v1/models",
  async handle(ex, { engine }) {
    const models = await engine.listModels(ex.signal);
    ex.json(200, { object: "list", data: models.map(modelJson) });
  },
};

/** `GET /v1/models/{provider}/{model}`: one model. */
export const getModelRoute: HttpRoute = {
  method: "get",
  pattern: "/v1/models/*",
  async handle(ex, { engine }) {
    const id = decodeURIComponent(ex.url.slice("/v1/models/".length));
    const models = await engine.listModels(ex.signal);
    const m = models.find((x) => x.id === id);
    if (!m) {
      throw new SpillwayError(Code.NotFound, `The model '${id}' does not exist.`, {
        param: "model",
        openAiCode: "model_not_found",
      });
    }
    ex.json(200, modelJson(m));
  },
};
