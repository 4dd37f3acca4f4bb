// Regenerates src/gen with `buf generate` and fails when the result differs
// from what is committed: generated code must come from proto/ unedited.
import { execFileSync } from "node:child_process";

const run = (cmd, args) => execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
run("npx", ["buf", "lint"]);
run("npx", ["buf", "generate"]);
const diff = run("git", ["status", "--porcelain", "--", "src/gen"]);
if (diff.trim()) {
  console.error("src/gen is out of date with proto/: run `npm run generate` and commit.\n" + diff);
  process.exit(1);
}
console.log("src/gen matches proto/ (buf lint + generate)");
