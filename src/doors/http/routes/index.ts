import type { HttpRoute } from "../route.js";
import { SHAPE_ROUTES } from "../shapes/index.js";
import { adminReloadRoute } from "./admin.js";
import { consoleRoute } from "./console.js";
import { healthRoute, metricsRoute, readyRoute } from "./health.js";
import { playgroundRoutes } from "./playground.js";

/** Every HTTP route the door serves: each shape's, then the gateway's own (health, metrics, admin, console, playground). */
export const ROUTES: readonly HttpRoute[] = [...SHAPE_ROUTES, healthRoute, readyRoute, metricsRoute, adminReloadRoute, consoleRoute, ...playgroundRoutes];
