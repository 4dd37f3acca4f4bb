import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";

const cache = new Map<string, string | undefined>();

/**
 * Finds an executable on `PATH`, like `which`: the full path, or undefined.
 * Results are cached per `PATH` value, so a changed `PATH` is looked up afresh.
 */
export function findExecutable(name: string): string | undefined {
  const path = process.env["PATH"] ?? "";
  const key = `${path}\0${name}`;
  if (cache.has(key)) return cache.get(key);
  let found: string | undefined;
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) {
        found = candidate;
        break;
      }
    } catch {
      // not here
    }
  }
  cache.set(key, found);
  return found;
}
