import type { HttpRoute } from "../route.js";
import { anthropicMessagesRoutes } from "./anthropic-messages/routes.js";
import { anthropicShape } from "./anthropic-messages/shape.js";
import { openAiAudioRoutes } from "./openai-audio/routes.js";
import { openAiChatRoutes } from "./openai-chat/routes.js";
import { openAiModelsRoutes } from "./openai-models/routes.js";
import { openAiResponsesRoutes } from "./openai-responses/routes.js";
import { openAiShape } from "./openai/shape.js";
import type { Shape } from "./shape.js";

/** Every wire shape the HTTP door speaks; the first is the default (for URLs no route matches). */
export const SHAPES: readonly Shape[] = [openAiShape, anthropicShape];

/** Every route of every shape. A new shape is a folder whose `routes.ts` list is added here. */
export const SHAPE_ROUTES: readonly HttpRoute[] = [...openAiChatRoutes, ...openAiResponsesRoutes, ...openAiAudioRoutes, ...openAiModelsRoutes, ...anthropicMessagesRoutes];
