/**
 * The batched log destination (src/observability/log-writer.ts): lines come
 * out whole and in order, at the latest after the flush interval, and what
 * is held when the process exits is written before it goes (a child process
 * that logs and exits at once, stdout piped, as under a supervisor).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { LogWriter } from "../src/observability/log-writer.js";

describe("log writer", () => {
  it("writes every line whole and in order, in batches and after the interval", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "log-writer-")), "out.log");
    const fd = openSync(file, "w");
    const w = new LogWriter(fd);
    const lines = Array.from({ length: 5000 }, (_, i) => `${JSON.stringify({ i, pad: "x".repeat(i % 97) })}\n`);
    for (const l of lines) w.write(l);
    await sleep(400);
    closeSync(fd);
    assert.equal(readFileSync(file, "utf8"), lines.join(""));
  });

  it("keeps multi-byte text and lines larger than a batch whole and in order", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "log-writer-")), "out.log");
    const fd = openSync(file, "w");
    const w = new LogWriter(fd);
    const lines: string[] = [];
    for (let i = 0; i < 3000; i++) {
      // Some lines of 3-byte and 4-byte characters near the batch's end, one larger than a whole batch (64 KiB), one empty.
      const text = i === 1500 ? "日".repeat(30_000) : i === 1501 ? "" : i % 7 === 0 ? "日本語🚀".repeat(i % 50) : "é".repeat(i % 113);
      lines.push(`${JSON.stringify({ i, text })}\n`);
    }
    for (const l of lines) w.write(l);
    await sleep(400);
    closeSync(fd);
    assert.equal(readFileSync(file, "utf8"), lines.join(""));
  });

  it("flushes what it holds when the process exits", () => {
    const code = `import { createLogger } from ${JSON.stringify(join(process.cwd(), "src/observability/logger.ts"))};
      const log = createLogger();
      for (let i = 0; i < 300; i++) log.info({ i }, "line");
      process.exit(0);`;
    const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { encoding: "utf8", env: { ...process.env, LOG_LEVEL: "info", NODE_TEST_CONTEXT: "" } });
    assert.equal(r.status, 0, r.stderr);
    const got = r.stdout.trim().split("\n").map((l) => (JSON.parse(l) as { i: number }).i);
    assert.deepEqual(got, Array.from({ length: 300 }, (_, i) => i));
  });
});
