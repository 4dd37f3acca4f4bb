/**
 * `npx tsx load/voice-compare.ts [--before DIR] [--rounds 2] [--callers 20] [--turns 3] [--warm 5] [--warm-callers N (default: --callers)] [--session-turns 1] [--profile] [--node-arg FLAG]`:
 * the voice rows of `npm run bench` through the fake speech providers
 * (load/voice-providers.ts), for this tree and another Spillway tree (a
 * worktree of an older commit) back to back, `--rounds` times, in one run
 * (each gateway first serves `--warm` turns of `--warm-callers` callers, by
 * default as many as are measured, as in the bench: then the measured turns
 * no longer pay for V8 compiling the code the 20-caller load makes hot; 1 is
 * the old behaviour) —
 * the before/after figures of docs/PERFORMANCE.md. `--profile` runs this
 * tree's gateway with `--cpu-prof` (profiles in load/results/profiles/) and
 * prints its functions with the most self time. `--session-turns K` speaks
 * K turns per realtime session (a call) instead of a fresh session per turn.
 * `--node-arg FLAG` (repeatable) passes a node flag to both trees' gateways
 * (e.g. `--node-arg=--max-semi-space-size=32`); `--after-node-arg FLAG` to
 * this tree's only (with `--before` naming this same tree: a flag's effect).
 * `--silero-model FILE` gives both gateways that Silero model file (config
 * `realtime.vad.modelPath`), e.g. a pristine copy from the npm tarball.
 * `--after-speech-chunk-ms N` sets this tree's Deepgram `speechChunkMs`
 * only (with `--before` naming this same tree: the framing's effect alone).
 * `--built` compiles each tree first and runs its gateway as `npm start`
 * does (`node dist/main.js`) instead of under tsx.
 */
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { buildSpillway, ROOT, startMock } from "./procs.js";
import { voiceProviderTurns, type VoiceProviderRow } from "./voice-providers.js";

const { values } = parseArgs({
  options: {
    before: { type: "string" },
    rounds: { type: "string", default: "2" },
    callers: { type: "string", default: "20" },
    turns: { type: "string", default: "3" },
    warm: { type: "string", default: "5" },
    "warm-callers": { type: "string" },
    profile: { type: "boolean", default: false },
    top: { type: "string", default: "30" },
    "session-turns": { type: "string", default: "1" },
    "node-arg": { type: "string", multiple: true, default: [] },
    "after-node-arg": { type: "string", multiple: true, default: [] },
    "silero-model": { type: "string" },
    "after-speech-chunk-ms": { type: "string" },
    built: { type: "boolean", default: false },
  },
});

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

function topFunctions(file: string, n: number): string[] {
  const p = JSON.parse(readFileSync(file, "utf8")) as { nodes: Node[]; samples: number[] };
  const self = new Map<string, number>();
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  for (const s of p.samples) {
    const f = byId.get(s)!.callFrame;
    const key = `${f.functionName || "(anonymous)"} ${f.url.replace(/^.*\/(src|node_modules)\//, "$1/")}:${f.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + 1);
  }
  const total = p.samples.length;
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => `${((v / total) * 100).toFixed(1).padStart(5)}%  ${k}`);
}

const row = (name: string, r: VoiceProviderRow): string =>
  `${name.padEnd(10)} ×${r.callers} ${r.turns} turns ${r.errors} errors | transcribed p50 ${r.transcribed.p50?.toFixed(1)} | created p50 ${r.created?.p50?.toFixed(1)} | first text p50 ${r.firstText?.p50?.toFixed(1)} | first audio p50 ${r.firstAudio.p50?.toFixed(1)} p90 ${r.firstAudio.p90?.toFixed(1)} | added p50 ${r.addedP50} | CPU/turn ${r.cpuMsPerTurn} ms | faults/turn ${r.minorFaultsPerTurn}`;

const mock = await startMock();
// As in `npm run bench`: warm-up turns first (JIT, model load) at the measured caller count, on the same gateway.
const plan: Array<[number, number]> = [[Number(values.callers), Number(values.turns)]];
if (Number(values.warm) > 0) plan.unshift([Number(values["warm-callers"] ?? values.callers), Number(values.warm)]);
const dir = join(ROOT, "load/results/profiles");
if (values.built) for (const root of [ROOT, ...(values.before ? [values.before] : [])]) buildSpillway(root);
try {
  for (let round = 1; round <= Number(values.rounds); round++) {
    const trees: Array<[string, string | undefined]> = [["after", undefined]];
    if (values.before) trees.push(["before", values.before]);
    if (round % 2 === 0) trees.reverse();
    for (const [name, root] of trees) {
      mkdirSync(dir, { recursive: true });
      const had = new Set(readdirSync(dir));
      const profileArgs = values.profile && !root ? ["--cpu-prof", "--cpu-prof-dir", dir] : undefined;
      const nodeArgs = [...values["node-arg"], ...(root ? [] : values["after-node-arg"]), ...(profileArgs ?? [])];
      for (const r of await voiceProviderTurns(mock.port, plan, { root, nodeArgs, built: values.built, sessionTurns: Number(values["session-turns"]), sileroModel: values["silero-model"], speechChunkMs: root || values["after-speech-chunk-ms"] === undefined ? undefined : Number(values["after-speech-chunk-ms"]) })) {
        console.log(`round ${round} ${row(name, r)} | load ${loadavg().map((l) => l.toFixed(1)).join(" ")}`);
      }
      if (profileArgs) {
        const fresh = readdirSync(dir).filter((f) => !had.has(f) && f.endsWith(".cpuprofile"));
        for (const f of fresh) console.log(`profile ${f}:\n${topFunctions(join(dir, f), Number(values.top)).join("\n")}`);
      }
    }
  }
} finally {
  await mock.stop();
}
