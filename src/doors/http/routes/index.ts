import type { HttpRoute } from "../route.js";
import { chatCompletionsRoute } from "./chat-completions.js";
import { completionsRoute } from "./completions.js";
import { healthRoute, metricsRoute, readyRoute } from "./health.js";
import { getModelRoute, listModelsRoute } from "./models.js";
import { playgroundRoutes } from "./playground.js";
import { responsesRoute } from "./responses.js";
import { speechRoute } from "./speech.js";
import { transcriptionsRoute } from "./transcriptions.js";

/** Every HTTP route the door serves. Add new routes here. */
export const ROUTES: readonly HttpRoute[] = [
  chatCompletionsRoute,
  completionsRoute,
  responsesRoute,
  speechRoute,
  transcriptionsRoute,
  listModelsRoute,
  getModelRoute,
  healthRoute,
  readyRoute,
  metricsRoute,
  ...playgroundRoutes,
];
