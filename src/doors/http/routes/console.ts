import { mergeConsole, type ConsoleSnapshot } from "../../../observability/console-feed.js";
import { collectAll } from "../../../workers/collect.js";
import type { HttpRoute } from "../route.js";
import { openAiShape } from "../shapes/openai/shape.js";

/**
 * `GET /v1/spillway/console`: what the console page shows — the last
 * finished requests (no prompts, no keys: key names), each provider's state,
 * each gateway key's use against its limits, and a sample a second of open
 * streams and time to first chunk — for the whole gateway (every worker's,
 * merged). Same auth as the API: a gateway key when keys are configured.
 */
export const consoleRoute: HttpRoute = {
  method: "get",
  pattern: "/v1/spillway/console",
  shape: openAiShape,
  async handle(ex, _call, _body, { obs }) {
    const feed = obs.console;
    const parts = (await collectAll("console", () => (feed ? feed.snapshot() : Promise.resolve(null)))).parts as Array<ConsoleSnapshot | null>;
    const snapshots = parts.filter((p): p is ConsoleSnapshot => p !== null);
    ex.json(200, snapshots.length > 0 ? mergeConsole(snapshots) : { requests: [], series: [], providers: [], keys: [] }, [["cache-control", "no-store"]]);
  },
};
