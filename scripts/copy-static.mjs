// Copies the playground's static files next to the compiled code (dist/),
// where the playground route looks for them.
import { cpSync } from "node:fs";

cpSync("src/doors/http/playground", "dist/doors/http/playground", { recursive: true });
