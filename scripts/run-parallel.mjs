// Runs npm scripts at the same time and fails if any fails: `npm test` runs
// lint, typecheck and check:gen this way (each is one process and mostly one
// core; on CI's two cores they overlap instead of queueing). Each script's
// output is buffered and printed whole when it ends, in the order given, so
// the logs do not interleave. Usage: node scripts/run-parallel.mjs lint typecheck
import { spawn } from "node:child_process";

const names = process.argv.slice(2);
const npm = process.env["npm_execpath"];
const runs = names.map(
  (name) =>
    new Promise((resolve) => {
      // Through the npm that runs us when there is one (npm test), else `npm` on PATH.
      const child = npm ? spawn(process.execPath, [npm, "run", "-s", name], { stdio: ["ignore", "pipe", "pipe"] }) : spawn("npm", ["run", "-s", name], { stdio: ["ignore", "pipe", "pipe"] });
      const out = [];
      const started = Date.now();
      child.stdout.on("data", (d) => out.push(d));
      child.stderr.on("data", (d) => out.push(d));
      child.on("error", (e) => out.push(Buffer.from(`${e.message}\n`)));
      child.on("close", (code, signal) => resolve({ name, code: code ?? (signal ? 1 : 0), out: Buffer.concat(out), seconds: (Date.now() - started) / 1000 }));
    }),
);
let failed = false;
for (const run of runs) {
  const r = await run;
  process.stdout.write(`> ${r.name} (${r.seconds.toFixed(1)} s, exit ${r.code})\n`);
  process.stdout.write(r.out);
  if (r.code !== 0) failed = true;
}
process.exitCode = failed ? 1 : 0;
