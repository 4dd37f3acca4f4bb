/**
 * The web playground in a real browser: Playwright drives Debian's Chromium
 * (installed by .ci/run) against a real gateway. It streams a chat reply into
 * the page, then completes a voice turn through the realtime WebSocket with
 * the microphone fed from a WAV made by the local TTS: the transcript is shown
 * and reply audio arrives. Screenshots go to test-artifacts/.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium, type Browser, type Page } from "playwright-core";
import { wavHeader } from "../src/audio/wav.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";

const CHROMIUM = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium";
const ARTIFACTS = join(process.cwd(), "test-artifacts");
const skip = existsSync(CHROMIUM) ? undefined : `Chromium not found at ${CHROMIUM} (scripts/setup-system.sh installs it)`;

describe("playground in Chromium", { skip }, () => {
  let gw: TestGateway;
  let browser: Browser;
  let page: Page;

  before(async () => {
    gw = await startTestGateway({ providers: { local: { type: "local", tokenDelayMs: 30 } } });
    // A spoken sentence from the local TTS, with silence around it so the
    // looping fake microphone gives the VAD clear turns.
    const res = await fetch(`${gw.baseUrl}/audio/speech`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "local/tts", input: "Hello there. What is the weather like today?", voice: "alloy", response_format: "pcm" }),
    });
    assert.equal(res.status, 200);
    const speech = Buffer.from(await res.arrayBuffer());
    const silence = Buffer.alloc(24000 * 2 * 2); // 2 s at 24 kHz s16
    const pcm = Buffer.concat([silence, speech, silence]);
    const wav = join(mkdtempSync(join(tmpdir(), "spillway-pg-")), "mic.wav");
    writeFileSync(wav, Buffer.concat([wavHeader(24000, 1, pcm.length), pcm]));
    mkdirSync(ARTIFACTS, { recursive: true });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        `--use-file-for-fake-audio-capture=${wav}`,
      ],
    });
    page = await browser.newPage();
    page.on("pageerror", (e) => console.log(`# page error: ${e.message}`));
    await page.goto(`${gw.origin}/`);
  });

  after(async () => {
    await browser?.close();
    await gw?.close();
  });

  it("streams a chat reply into the page", async () => {
    await page.waitForFunction(`document.getElementById("chat-model").options.length > 0`);
    await page.selectOption("#chat-model", "local/echo");
    await page.fill("#chat-input", "hello from the playground test");
    await page.click("#chat-send");
    // The reply grows token by token (30 ms each): catch it part-way, then whole.
    await page.waitForFunction(`(document.querySelector(".msg.assistant")?.textContent ?? "").length > 0`);
    const partial = await page.textContent(".msg.assistant");
    await page.waitForFunction(`document.querySelector(".msg.assistant")?.textContent === "hello from the playground test"`);
    assert.ok((partial ?? "").length < "hello from the playground test".length, `streamed, not all at once (first seen: '${partial}')`);
    await page.screenshot({ path: join(ARTIFACTS, "playground-chat.png"), fullPage: true });
  });

  it("completes a voice turn: transcript shown, reply audio received", async () => {
    await page.click('.tab[data-tab="voice"]');
    await page.waitForFunction(`document.getElementById("voice-model").options.length > 0`);
    await page.selectOption("#voice-model", "local/realtime");
    await page.click("#voice-start");
    await page.waitForFunction(`(document.getElementById("voice-user")?.textContent ?? "").trim().length > 0`, undefined, { timeout: 45_000 });
    await page.waitForFunction(`Number(document.getElementById("voice-audio-ms")?.textContent) > 0`, undefined, { timeout: 45_000 });
    const user = await page.textContent("#voice-user");
    const audioMs = Number(await page.textContent("#voice-audio-ms"));
    console.log(`# heard: ${JSON.stringify(user)}; reply audio: ${audioMs} ms`);
    assert.ok(audioMs > 0);
    await page.screenshot({ path: join(ARTIFACTS, "playground-voice.png"), fullPage: true });
    await page.click("#voice-stop");
  });

  it("shows live metrics", async () => {
    await page.waitForFunction(`Number(document.getElementById("m-requests")?.textContent) >= 1`, undefined, { timeout: 10_000 });
    const ttft = await page.textContent("#m-ttft");
    assert.match(ttft ?? "", /ms|s/);
  });
});
