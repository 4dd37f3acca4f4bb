/**
 * The console at `/` in a real browser (Playwright + Debian's Chromium)
 * against real traffic: the live request log (key names, never keys or
 * prompts), each provider's state (a circuit opened by failures shows), each
 * key's use against its limits, and charts of time to first chunk and open
 * streams. Same auth as the API: the console data needs a gateway key.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { chromium, type Browser, type Page } from "playwright-core";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";

const CHROMIUM = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium";
const ARTIFACTS = join(process.cwd(), "test-artifacts");
const skip = existsSync(CHROMIUM) ? undefined : `Chromium not found at ${CHROMIUM} (scripts/setup-system.sh installs it)`;
const KEY = "sk-console-team-a-1";
const PROMPT = "a secret prompt that must not show";

describe("console in Chromium", { skip }, () => {
  let gw: TestGateway;
  let browser: Browser;
  let page: Page;

  before(async () => {
    gw = await startTestGateway({
      auth: { keys: [{ key: KEY, name: "team-a", rpm: 500 }] },
      // A provider nothing listens for: one failure opens its circuit.
      providers: { local: { type: "local", tokenDelayMs: 5 }, broken: { type: "openai", baseUrl: "http://127.0.0.1:9/v1", apiKey: "x" } },
      routing: { maxAttempts: 1, breakerThreshold: 1, breakerCooldownMs: 600_000 },
      cache: { enabled: true },
    });
    const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: KEY, maxRetries: 0 });
    for (let i = 0; i < 5; i++) await client.chat.completions.create({ model: "local/echo", messages: [{ role: "user", content: `${PROMPT} ${i % 4}` }] });
    await assert.rejects(client.chat.completions.create({ model: "broken/gpt", messages: [{ role: "user", content: "x" }] }));
    mkdirSync(ARTIFACTS, { recursive: true });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    page = await browser.newPage();
    page.on("pageerror", (e) => console.log(`# page error: ${e.message}`));
    await page.goto(`${gw.origin}/`);
  });

  after(async () => {
    await browser?.close();
    await gw?.close();
  });

  it("needs a gateway key, like the API", async () => {
    assert.equal((await fetch(`${gw.baseUrl}/spillway/console`)).status, 401);
  });

  it("shows the request log, provider states, key usage and live charts", async () => {
    await page.fill("#key", KEY);
    await page.dispatchEvent("#key", "change");
    await page.click('.tab[data-tab="console"]');
    await page.waitForFunction(`document.querySelectorAll("#console-requests tbody tr").length >= 6`, undefined, { timeout: 10_000 });
    // Live: a request made now appears without reloading the page.
    const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: KEY, maxRetries: 0 });
    await client.chat.completions.create({ model: "local/echo", messages: [{ role: "user", content: "one more" }] });
    await page.waitForFunction(`document.querySelectorAll("#console-requests tbody tr").length >= 7`, undefined, { timeout: 10_000 });
    const rows = await page.$$eval("#console-requests tbody tr", (trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent)));
    const ok = rows.find((r) => r[3] === "local/echo")!;
    assert.deepEqual([ok[1], ok[2], ok[4], ok[5], ok[6]], ["http", "/v1/chat/completions", "local", "team-a", "200"]);
    assert.ok(rows.some((r) => r[3] === "none" || r[4] === "broken" || r[6] === "502"), "the failed request is listed");
    assert.ok(rows.some((r) => r[10] === "hit"), "a request the cache served shows as a hit");
    assert.ok(rows.some((r) => r[10] === "miss"), "and one it stored as a miss");
    const providers = await page.$$eval("#console-providers tbody tr", (trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent)));
    assert.deepEqual(providers.find((p) => p[0] === "local")?.[1], "ok");
    assert.deepEqual(providers.find((p) => p[0] === "broken")?.[1], "circuit_open");
    const keys = await page.$$eval("#console-keys tbody tr", (trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent)));
    assert.match(keys.find((k) => k[0] === "team-a")?.[1] ?? "", /^\d+ \/ 500$/);
    // The charts fill as seconds pass.
    await page.waitForFunction(`Number(document.querySelector("#chart-active polyline")?.dataset.points ?? 0) >= 2`, undefined, { timeout: 10_000 });
    assert.ok(await page.$("#chart-ttft polyline"), "a time-to-first-chunk line is drawn");
    const html = await page.content();
    assert.ok(!html.includes(PROMPT), "no prompt text on the page");
    assert.ok(!(await page.$eval("#console", (el) => el.textContent ?? "")).includes(KEY), "no key on the page");
    await page.screenshot({ path: join(ARTIFACTS, "console.png"), fullPage: true });
  });
});
