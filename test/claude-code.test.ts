/**
 * Claude Code itself (`@anthropic-ai/claude-code`, its CLI in print mode)
 * pointed at the gateway by `ANTHROPIC_BASE_URL` only: its model names
 * mapped by `aliases`, a tool loop against a fake Anthropic upstream (the
 * model asks Claude Code to `Read` a file, Claude Code reads it and sends
 * the result back, the model answers quoting it), and a gateway key checked
 * the way Claude Code sends it (`x-api-key`). Claude Code keeps its state
 * under a throwaway HOME and is told to send no traffic of its own.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { messageEnd, messageStart, startFakeAnthropic, textAnswer, textBlock, toolUseBlock, type FakeAnthropic } from "./helpers/fake-anthropic.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";

const CLI = createRequire(import.meta.url).resolve("@anthropic-ai/claude-code/cli.js");
const MARKER = "spillway-marker-7f3a";

/** Claude Code's `--output-format json` result, as far as these tests read it. */
interface ClaudeResult {
  type: string;
  subtype: string;
  is_error: boolean;
  num_turns: number;
  result: string;
  usage: { input_tokens: number; output_tokens: number };
}

/** Runs `claude -p PROMPT --output-format json` against `baseUrl`; resolves with its exit code, stdout and stderr. */
function claude(baseUrl: string, home: string, cwd: string, prompt: string, extra: string[] = [], apiKey = "sk-gateway-test"): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, "-p", prompt, "--output-format", "json", "--max-turns", "4", ...extra], {
      cwd,
      env: {
        PATH: process.env["PATH"] ?? "",
        HOME: home,
        ANTHROPIC_BASE_URL: baseUrl,
        ANTHROPIC_API_KEY: apiKey,
        ANTHROPIC_MODEL: "claude-sonnet-4-5",
        ANTHROPIC_SMALL_FAST_MODEL: "claude-haiku-4-5",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
        DISABLE_AUTOUPDATER: "1",
        DISABLE_TELEMETRY: "1",
        DISABLE_ERROR_REPORTING: "1",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 90_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The gateway's count of 401s on `/v1/messages`, from its /metrics. */
async function refusals(gw: TestGateway): Promise<number> {
  const text = await (await fetch(`${gw.origin}/metrics`, { headers: { authorization: "Bearer sk-gateway-test" } })).text();
  const line = text.split("\n").find((l) => l.startsWith("spillway_requests_total{") && l.includes('route="/v1/messages"') && l.includes('status="401"'));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

/** The text of a tool_result block's content (a string, or text blocks). */
function resultText(content: unknown): string {
  if (typeof content === "string") return content;
  return Array.isArray(content) ? content.map((b: { text?: string }) => b.text ?? "").join("") : "";
}

describe("Claude Code through the gateway", () => {
  let gw: TestGateway;
  let upstream: FakeAnthropic;
  let home: string;
  let work: string;

  before(async () => {
    home = await mkdtemp(join(tmpdir(), "spillway-cc-home-"));
    work = await mkdtemp(join(tmpdir(), "spillway-cc-work-"));
    await writeFile(join(work, "notes.txt"), `${MARKER}\n`);
    // The model: asked with Claude Code's tools and no tool result yet → Read the file; with the result → quote it.
    upstream = await startFakeAnthropic((req) => {
      const body = req.body as { tools?: Array<{ name: string }>; messages: Array<{ content: unknown }> };
      const results = body.messages.flatMap((m) => (Array.isArray(m.content) ? (m.content as Array<{ type: string; content?: unknown }>) : [])).filter((b) => b.type === "tool_result");
      if (results.length > 0) return { events: textAnswer(["The file says ", results.map((r) => resultText(r.content)).join(" ")]) };
      if (body.tools?.some((t) => t.name === "Read")) {
        const input = JSON.stringify({ file_path: join(work, "notes.txt") });
        return { events: [messageStart(30), ...textBlock(0, ["Reading it."]), ...toolUseBlock(1, "toolu_cc1", "Read", [input.slice(0, 7), input.slice(7)]), ...messageEnd("tool_use", 12)] };
      }
      return { events: textAnswer(["ok"]) };
    });
    gw = await startTestGateway({
      auth: { keys: [{ name: "claude-code", key: "sk-gateway-test" }] },
      providers: { an: { type: "anthropic", baseUrl: upstream.baseUrl, apiKey: "sk-ant-upstream" } },
      aliases: { "claude-sonnet-4-5": "an/claude-fake-1", "claude-haiku-4-5": "an/claude-fake-1" },
    });
  });

  after(async () => {
    await gw.close();
    await upstream.close();
    await rm(home, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  it("runs a tool loop: the model asks to Read a file, Claude Code reads it, the answer quotes it", async () => {
    const r = await claude(gw.origin, home, work, "What does notes.txt say?", ["--allowedTools", "Read"]);
    assert.equal(r.code, 0, r.stderr || r.stdout);
    const out = JSON.parse(r.stdout) as ClaudeResult;
    assert.equal(out.is_error, false, r.stdout);
    assert.equal(out.subtype, "success");
    assert.match(out.result, new RegExp(`The file says .*${MARKER}`, "s"));
    assert.ok(out.num_turns >= 2, `turns: ${out.num_turns}`);
    assert.ok(out.usage.output_tokens > 0);
    // Every request the upstream saw came through the gateway with the upstream's key, under the aliased model.
    const messages = upstream.requests.filter((q) => q.url.startsWith("/v1/messages"));
    assert.ok(messages.length >= 2);
    for (const q of messages) {
      assert.equal(q.headers["x-api-key"], "sk-ant-upstream");
      assert.equal((q.body as { model: string }).model, "claude-fake-1");
    }
    assert.ok(messages.some((q) => JSON.stringify(q.body).includes(MARKER)), "the tool result went upstream");
  });

  it("a wrong gateway key: Claude Code is told not to retry (x-should-retry: false), reports it once and stops", async () => {
    const before = upstream.requests.length;
    const refused = (): Promise<number> => refusals(gw);
    const refusedBefore = await refused();
    const r = await claude(gw.origin, home, work, "hi", [], "sk-wrong-key");
    // Without the header Claude Code retries a 401 ten times with backoff (minutes), then fails.
    // It makes up to three calls at start (the model's and its small model's); each is refused once, none retried.
    const n = (await refused()) - refusedBefore;
    assert.ok(n >= 1 && n <= 3, `${n} refused requests`);
    assert.match(r.stdout + r.stderr, /invalid api key|401|authentication/i, r.stdout + r.stderr);
    assert.equal(upstream.requests.length, before, "nothing reached the upstream");
  });
});
