// Fails when src/gen is not what proto/ generates: runs `buf lint`, generates
// into a temporary folder (scripts/generate.mjs: ts-proto code and the
// reflection descriptor set) and compares it file by file with src/gen as it
// is on disk. Never writes to the working tree, so it passes in the middle of
// an uncommitted proto edit as soon as `npm run generate` has been run.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { generate, REPO } from "./generate.mjs";

/** Every file under `dir`, as paths relative to it. */
function files(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

execFileSync(join(REPO, "node_modules/.bin/buf"), ["lint"], { cwd: REPO, stdio: ["ignore", "inherit", "inherit"] });
const scratch = mkdtempSync(join(tmpdir(), "spillway-check-gen-"));
try {
  generate(scratch);
  const fresh = join(scratch, "src/gen");
  const disk = join(REPO, "src/gen");
  const want = files(fresh);
  const have = files(disk);
  const problems = [
    ...want.filter((f) => !have.includes(f)).map((f) => `missing:  src/gen/${f}`),
    ...have.filter((f) => !want.includes(f)).map((f) => `extra:    src/gen/${f} (proto/ generates no such file)`),
    ...want
      .filter((f) => have.includes(f) && !readFileSync(join(fresh, f)).equals(readFileSync(join(disk, f))))
      .map((f) => `stale:    src/gen/${f}`),
  ];
  if (problems.length > 0) {
    console.error(`src/gen is out of date with proto/ (run \`npm run generate\` and commit):\n  ${problems.join("\n  ")}`);
    process.exitCode = 1;
  } else {
    console.log(`src/gen matches proto/ (buf lint; ${want.length} generated files compared)`);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
