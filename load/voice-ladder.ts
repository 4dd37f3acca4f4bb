/**
 * `npx tsx load/voice-ladder.ts [--rounds 2] [--callers 20] [--turns 3] [--warm 3] [--warm-callers 1] [--only a,f] [--root DIR] [--node-arg FLAG] [--built] [--by-thread]`:
 * where a voice turn's CPU goes (issue 17), as an ablation ladder in one
 * harness. Every rung runs the same client (load/realtime-latency.ts, a
 * fresh session per turn, the same utterance in 20 ms pieces of 24 kHz pcm16
 * as base64 `input_audio_buffer.append`, real-time pace, the whole utterance
 * sent) against a server doing a little more than the rung below:
 *
 * - `floor-drop`: a bare uWebSockets.js server (load/voice-floor.ts) that drops the frames;
 * - `floor-parse`: the same, `JSON.parse` and a base64 decode of each;
 * - `a appends`: the gateway, `turn_detection: null` — each append parsed, decoded, buffered;
 * - `c energy`: + server VAD (energy), `create_response: false`, the profile's `stt` an OpenAI-type
 *   model of the fake text provider (`fake/no-such-stt`). **Not VAD alone**: the door streams each
 *   turn's audio as a WAV upload over HTTP to that provider as it arrives (undici, one write per
 *   append; the fake answers at the end), which the profile showed as most of this rung's cost;
 *   a realtime profile needs an `stt`, and no configured model fails without a socket;
 * - `c silero`: the same with Silero (the 24 → 16 kHz converter and the model);
 * - `d recognizer`: + the fake Deepgram socket (the bench's profile), `create_response: false`, until the transcript;
 * - `e text`: + the response, text only (`output_modalities: ["text"]`), until the first text delta;
 * - `f cascade`: + synthesis (fake ElevenLabs) and audio deltas out — the bench's turn, until the first audio;
 * - `f energy`: the cascade with the energy VAD instead of Silero (Silero's share with the rest in place).
 *
 * The fakes are the bench's (load/speech-fakes.ts, own process). Each rung
 * gets a fresh server, `--warm` turns of `--warm-callers` callers (default 1), then `--callers` ×
 * `--turns` measured; the order of the rungs flips every round. CPU per turn
 * is the server process's, per thread (/proc/PID/task/*\/stat, as
 * load/hotpath-threads.ts): the main thread and the rest (V8's GC and
 * compiler helpers, libuv's pool, onnxruntime) by name. `--only` picks rungs
 * by name prefix; `--root` runs another tree's gateway; `--node-arg` passes
 * a node flag to the gateways (e.g. `--node-arg=--cpu-prof`); `--built` runs
 * the compiled gateway (`node dist/main.js`; build it first with
 * `npm run build`), without tsx's module-hooks thread; `--by-thread` reports
 * each thread apart (named by tid − pid, its place in the creation order).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { pinOthers, ROOT, startMock, startSpillway, TSX, type Proc } from "./procs.js";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "2" },
    callers: { type: "string", default: "20" },
    turns: { type: "string", default: "3" },
    warm: { type: "string", default: "3" },
    "warm-callers": { type: "string", default: "1" },
    only: { type: "string" },
    root: { type: "string" },
    "node-arg": { type: "string", multiple: true, default: [] },
    built: { type: "boolean", default: false },
    "by-thread": { type: "boolean", default: false },
  },
});

interface Rung {
  readonly name: string;
  /** `floor`: load/voice-floor.ts in that mode; else the gateway with that VAD engine. */
  readonly server: { floor: "drop" | "parse" } | { vad: "energy" | "silero" };
  readonly model: string;
  readonly session: Record<string, unknown>;
  readonly until: "sent" | "transcribed" | "text" | "audio";
}

const noResponse = { turn_detection: { type: "server_vad", create_response: false } };
const RUNGS: readonly Rung[] = [
  { name: "floor-drop", server: { floor: "drop" }, model: "x", session: {}, until: "sent" },
  { name: "floor-parse", server: { floor: "parse" }, model: "x", session: {}, until: "sent" },
  { name: "a appends", server: { vad: "silero" }, model: "bench/phone", session: { turn_detection: null }, until: "sent" },
  { name: "c energy", server: { vad: "energy" }, model: "bench/vad", session: noResponse, until: "sent" },
  { name: "c silero", server: { vad: "silero" }, model: "bench/vad", session: noResponse, until: "sent" },
  { name: "d recognizer", server: { vad: "silero" }, model: "bench/phone", session: noResponse, until: "transcribed" },
  { name: "e text", server: { vad: "silero" }, model: "bench/phone", session: { output_modalities: ["text"] }, until: "text" },
  { name: "f cascade", server: { vad: "silero" }, model: "bench/phone", session: {}, until: "audio" },
  // The cascade with the energy VAD: Silero's share with everything else in place.
  { name: "f energy", server: { vad: "energy" }, model: "bench/phone", session: {}, until: "audio" },
];

const TICK_MS = 10; // USER_HZ 100

/** user + system ms of each thread of `pid`, by thread id, with its name. */
function threads(pid: number): Map<string, { name: string; ms: number }> {
  const m = new Map<string, { name: string; ms: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const s = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const comm = s.slice(s.indexOf("(") + 1, s.lastIndexOf(")")).replace(/\d+$/, "N");
      // --by-thread: each thread apart, named by its place in the creation order (tid − pid).
      const name = tid === String(pid) ? "main" : values["by-thread"] ? `${comm}+${Number(tid) - pid}` : comm;
      const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
      m.set(tid, { name, ms: (Number(f[11]) + Number(f[12])) * TICK_MS });
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return m;
}

function byName(before: Map<string, { name: string; ms: number }>, after: Map<string, { name: string; ms: number }>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [tid, a] of after) out.set(a.name, (out.get(a.name) ?? 0) + a.ms - (before.get(tid)?.ms ?? 0));
  return out;
}

interface Measured {
  readonly turns: number;
  readonly errors: number;
  readonly appendsPerTurn: number;
  readonly threads: Map<string, number>;
}

/** One client run of `callers` × `turns` against `url`; the server's threads are read from its READY line on. */
async function run(url: string, pid: number, pcm: string, rung: Rung, callers: number, turns: number): Promise<Measured> {
  const args = ["--url", url, "--turns", String(turns), "--concurrency", String(callers), "--json", "--pcm", pcm, "--until", rung.until, "--setup", JSON.stringify({ type: "session.update", session: rung.session })];
  const child = spawn(process.execPath, [...TSX, join(ROOT, "load/realtime-latency.ts"), ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
  pinOthers(child);
  let before = threads(pid);
  let out = "";
  child.stdout.on("data", (d: Buffer) => {
    const had = out.includes("READY\n");
    out += d.toString();
    if (!had && out.includes("READY\n")) before = threads(pid);
  });
  const code = await new Promise<number | null>((r) => child.once("exit", r));
  const after = threads(pid);
  const line = out.split("\n").find((l) => l.startsWith("RESULT "));
  if (!line) throw new Error(`realtime-latency exited ${code} without a result:\n${out.slice(-2000)}`);
  const r = JSON.parse(line.slice("RESULT ".length)) as { turns: number; errors: number; errorSamples: string[]; appendsPerTurn: number };
  if (r.errors > 0) console.log(`  ${rung.name}: ${r.errors} errors, e.g. ${r.errorSamples.join(" | ")}`);
  return { turns: r.turns, errors: r.errors, appendsPerTurn: r.appendsPerTurn, threads: byName(before, after) };
}

async function startFloor(mode: "drop" | "parse"): Promise<Proc & { port: number }> {
  const child: ChildProcess = spawn(process.execPath, [...TSX, join(ROOT, "load/voice-floor.ts"), "--mode", mode], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const l = out.split("\n").find((x) => x.startsWith("{"));
      if (l) resolve((JSON.parse(l) as { port: number }).port);
    });
    child.once("exit", (c) => reject(new Error(`voice-floor exited ${c}`)));
  });
  return { child, port, stop: () => new Promise<void>((res) => (child.exitCode !== null ? res() : (child.once("exit", () => res()), child.kill("SIGTERM")))) };
}

async function startFakes(): Promise<Proc & { urls: { deepgram: string; openai: string; elevenlabs: string } }> {
  const child = spawn(process.execPath, [...TSX, join(ROOT, "load/speech-fakes.ts")], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, LOG_LEVEL: "silent" } });
  const urls = await new Promise<{ deepgram: string; openai: string; elevenlabs: string }>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const l = out.split("\n").find((x) => x.startsWith("{"));
      if (l) resolve(JSON.parse(l) as { deepgram: string; openai: string; elevenlabs: string });
    });
    child.once("exit", (c) => reject(new Error(`speech fakes exited ${c}`)));
  });
  return { child, urls, stop: () => new Promise<void>((res) => (child.exitCode !== null ? res() : (child.once("exit", () => res()), child.kill("SIGTERM")))) };
}

const mock = await startMock();
const fakes = await startFakes();
const gateway = (vad: "energy" | "silero"): ReturnType<typeof startSpillway> =>
  startSpillway({
    mockPort: mock.port,
    workers: 1,
    realtime: {},
    ...(values.root ? { root: values.root } : {}),
    nodeArgs: values["node-arg"],
    built: values.built,
    extra: {
      providers: {
        fake: { type: "openai", baseUrl: fakes.urls.openai, models: ["gpt-fake"] },
        deepgram: { type: "deepgram", baseUrl: fakes.urls.deepgram, apiKey: "dg-test-key", endpointingMs: false },
        elevenlabs: { type: "elevenlabs", baseUrl: fakes.urls.elevenlabs, apiKey: "xi-test-key", voices: { alloy: "voice1" } },
      },
      profiles: {
        "bench/phone": { stt: "deepgram/nova-3", text: "fake/gpt-fake", tts: "elevenlabs/eleven_flash_v2_5", voice: "alloy" },
        // The fake text provider as speech-to-text: each turn's audio goes up as a streamed WAV over HTTP (see the file comment).
        "bench/vad": { stt: "fake/no-such-stt", text: "fake/gpt-fake", tts: "elevenlabs/eleven_flash_v2_5", voice: "alloy" },
      },
      vad: { engine: vad },
    },
  });

const only = values.only?.split(",").map((s) => s.trim());
const rungs = RUNGS.filter((r) => !only || only.some((o) => r.name.startsWith(o)));
const results = new Map<string, Array<{ total: number; main: number; threads: Map<string, number>; appends: number }>>();
try {
  // The utterance, made once by a gateway's local/tts, the same bytes for every rung.
  const pcmFile = join(mkdtempSync(join(tmpdir(), "voice-ladder-")), "utterance.pcm");
  {
    const gw = await gateway("energy");
    const r = await fetch(`http://127.0.0.1:${gw.httpPort}/v1/audio/speech`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "local/tts", input: "Hello there. What is the weather like today?", voice: "alloy", response_format: "pcm" }) });
    writeFileSync(pcmFile, Buffer.from(await r.arrayBuffer()));
    await gw.stop();
  }
  for (let round = 1; round <= Number(values.rounds); round++) {
    const order = round % 2 === 1 ? rungs : [...rungs].reverse();
    for (const rung of order) {
      const srv = "floor" in rung.server ? await startFloor(rung.server.floor) : await gateway(rung.server.vad);
      const port = "port" in srv ? srv.port : srv.httpPort;
      const url = `ws://127.0.0.1:${port}/v1/realtime?model=${rung.model}`;
      try {
        if (Number(values.warm) > 0) await run(url, srv.child.pid!, pcmFile, rung, Number(values["warm-callers"]), Number(values.warm));
        const m = await run(url, srv.child.pid!, pcmFile, rung, Number(values.callers), Number(values.turns));
        let total = 0;
        for (const v of m.threads.values()) total += v;
        const per = (ms: number): number => Math.round((ms / m.turns) * 10) / 10;
        const rest = [...m.threads.entries()].filter(([n, v]) => n !== "main" && v > 0).sort((x, y) => y[1] - x[1]).map(([n, v]) => `${n} ${per(v)}`).join(", ");
        console.log(`round ${round} ${rung.name.padEnd(13)} ${m.turns} turns ${m.errors} errors ${m.appendsPerTurn.toFixed(0)} appends/turn | CPU/turn ${per(total)} ms: main ${per(m.threads.get("main") ?? 0)} | ${rest} | load ${loadavg().map((l) => l.toFixed(1)).join(" ")}`);
        const list = results.get(rung.name) ?? [];
        list.push({ total: per(total), main: per(m.threads.get("main") ?? 0), threads: new Map([...m.threads].map(([n, v]) => [n, per(v)])), appends: m.appendsPerTurn });
        results.set(rung.name, list);
      } finally {
        await srv.stop();
      }
    }
  }
  console.log("\n| rung | CPU per turn, ms (rounds) | main thread (rounds) | other threads (last round) | appends per turn |\n| --- | --- | --- | --- | --- |");
  for (const rung of rungs) {
    const l = results.get(rung.name) ?? [];
    const last = l.at(-1);
    const rest = last ? [...last.threads].filter(([n, v]) => n !== "main" && v > 0).map(([n, v]) => `${n} ${v}`).join(", ") : "";
    console.log(`| ${rung.name} | ${l.map((x) => x.total).join(" / ")} | ${l.map((x) => x.main).join(" / ")} | ${rest} | ${last?.appends.toFixed(0) ?? "-"} |`);
  }
} finally {
  await fakes.stop();
  await mock.stop();
}
