/**
 * Config of the speech providers: the YAML shapes as written
 * (`type: deepgram`, `type: elevenlabs`, a `phone/agent` profile), keys from
 * DEEPGRAM_API_KEY / ELEVENLABS_API_KEY, errors naming the field, and the
 * models and providers they add to /v1/models and /readyz.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { loadConfig } from "../src/config/load.js";
import { startTestGateway } from "./helpers/gateway.js";

const YAML = `
providers:
  deepgram:   { type: deepgram,   baseUrl: https://api.deepgram.com, apiKey: dg-key }
  elevenlabs: { type: elevenlabs, baseUrl: https://api.elevenlabs.io, apiKey: xi-key }
  openai:     { type: openai, baseUrl: https://api.openai.com/v1, apiKey: sk-key }
realtime:
  profiles:
    phone/agent: { stt: deepgram/nova-3, text: openai/gpt-4o-mini, tts: elevenlabs/eleven_flash_v2_5, voice: 21m00Tcm4TlvDq8ikWAM }
`;

function file(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "spillway-speech-"));
  const p = join(dir, "config.yaml");
  writeFileSync(p, text);
  return p;
}

describe("deepgram + elevenlabs config", () => {
  it("reads the issue's shapes as written", () => {
    const c = loadConfig(file(YAML), {});
    assert.deepEqual(c.providers["deepgram"], { type: "deepgram", baseUrl: "https://api.deepgram.com", apiKey: "dg-key" });
    assert.deepEqual(c.providers["elevenlabs"], { type: "elevenlabs", baseUrl: "https://api.elevenlabs.io", apiKey: "xi-key" });
    assert.equal(c.realtime.profiles["phone/agent"]?.tts, "elevenlabs/eleven_flash_v2_5");
  });

  it("takes DEEPGRAM_API_KEY and ELEVENLABS_API_KEY from the environment, with the vendors' base URLs", () => {
    const c = loadConfig(undefined, { DEEPGRAM_API_KEY: "dg-env", ELEVENLABS_API_KEY: "xi-env" });
    assert.deepEqual(c.providers["deepgram"], { type: "deepgram", baseUrl: "https://api.deepgram.com", apiKey: "dg-env" });
    assert.deepEqual(c.providers["elevenlabs"], { type: "elevenlabs", baseUrl: "https://api.elevenlabs.io", apiKey: "xi-env" });
    const withFile = loadConfig(file("providers:\n  deepgram: { type: deepgram }\n"), { DEEPGRAM_API_KEY: "dg-env" });
    assert.equal((withFile.providers["deepgram"] as { apiKey?: string }).apiKey, "dg-env");
  });

  it("names the field at fault", () => {
    assert.throws(() => loadConfig(file("providers:\n  deepgram: { type: deepgram, endpointingMs: fast }\n"), {}), /providers\.deepgram\.endpointingMs/);
    assert.throws(() => loadConfig(file("providers:\n  deepgram: { type: deepgram, utteranceEndMs: 300 }\n"), {}), /providers\.deepgram\.utteranceEndMs/);
    assert.throws(() => loadConfig(file("providers:\n  elevenlabs: { type: elevenlabs, voices: { alloy: '' } }\n"), {}), /providers\.elevenlabs\.voices\.alloy/);
    assert.throws(() => loadConfig(file("providers:\n  elevenlabs: { type: elevenlabs, chunkLengthSchedule: [10] }\n"), {}), /providers\.elevenlabs\.chunkLengthSchedule\[0\]/);
    assert.throws(() => loadConfig(file("providers:\n  elevenlabs: { type: elevenlabs, voiceId: x }\n"), {}), /providers\.elevenlabs.*voiceId/);
  });

  it("lists their models and the phone profile in /v1/models, and both providers in /readyz", async () => {
    const gw = await startTestGateway({
      grpc: { enabled: false },
      providers: {
        deepgram: { type: "deepgram", apiKey: "dg", models: ["nova-3"] },
        elevenlabs: { type: "elevenlabs", apiKey: "xi" },
      },
      realtime: { profiles: { "phone/agent": { stt: "deepgram/nova-3", text: "local/echo", tts: "elevenlabs/eleven_flash_v2_5", voice: "alloy" } } },
    });
    try {
      const models = ((await (await fetch(`${gw.baseUrl}/models`)).json()) as any).data as any[];
      const caps = (id: string): unknown => models.find((m) => m.id === id)?.capabilities;
      assert.deepEqual(caps("deepgram/nova-3"), ["transcription"]);
      assert.deepEqual(caps("elevenlabs/eleven_flash_v2_5"), ["speech"]);
      assert.deepEqual(caps("phone/agent"), ["realtime"]);
      const ready = (await (await fetch(`${gw.origin}/readyz`)).json()) as any;
      assert.deepEqual(
        ready.providers.filter((p: any) => p.name === "deepgram" || p.name === "elevenlabs").map((p: any) => [p.name, p.state]),
        [
          ["deepgram", "ok"],
          ["elevenlabs", "ok"],
        ],
      );
    } finally {
      await gw.close();
    }
  });
});
