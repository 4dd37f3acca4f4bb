import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Code } from "../../../engine/code.js";
import { SpillwayError } from "../../../engine/errors.js";
import type { HttpRoute } from "../route.js";
import { openAiShape } from "../shapes/openai/shape.js";

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
};

/** The playground's folder: next to the code (src/ under tsx, dist/ after `npm run build`). */
const DIR = fileURLToPath(new URL("../playground/", import.meta.url));

/** The playground's files, read once at start-up (they are small). */
const FILES = new Map<string, { type: string; body: Buffer }>();
for (const name of ["index.html", "app.js", "style.css"]) {
  const path = `${DIR}${name}`;
  if (existsSync(path)) FILES.set(name, { type: TYPES[name.slice(name.lastIndexOf(".") + 1)]!, body: readFileSync(path) });
}

function serve(name: string): HttpRoute["handle"] {
  return (ex) => {
    const file = FILES.get(name);
    if (!file) throw new SpillwayError(Code.NotFound, `The playground file '${name}' is not installed.`, { reason: "unknown_url" });
    ex.send(200, file.type, file.body, [["cache-control", "no-cache"]]);
  };
}

/** `GET /`: the web playground (chat over SSE, voice over the realtime WebSocket, live metrics). */
export const playgroundRoutes: readonly HttpRoute[] = [
  { method: "get", pattern: "/", shape: openAiShape, public: true, handle: serve("index.html") },
  { method: "get", pattern: "/playground/app.js", shape: openAiShape, public: true, handle: serve("app.js") },
  { method: "get", pattern: "/playground/style.css", shape: openAiShape, public: true, handle: serve("style.css") },
];
