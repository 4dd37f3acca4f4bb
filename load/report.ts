/** The benchmark's markdown tables, from the JSON it writes. */
import type { MaxRateRow, MemoryRow, RateRow, ThroughputRow } from "./scenarios.js";
import { warmupLabel, type VoiceRow } from "./voice.js";
import type { VoiceProviderRow } from "./voice-providers.js";
import { minus, ratio } from "./stats.js";
import { cpuMarkdown, type CpuResults } from "./cpu-report.js";
import { overloadMarkdown, refusalCostMarkdown, type OverloadRow, type RefusalCostRow } from "./overload.js";

/** Everything one run measured (the JSON file's shape). */
export interface BenchResults {
  readonly startedAt: string;
  readonly command: string;
  readonly machine: { readonly cores: number; readonly node: string; readonly cpu: string };
  readonly settings: Record<string, unknown>;
  readonly fixedRates: RateRow[];
  readonly maxRates: MaxRateRow[];
  readonly throughput: ThroughputRow[];
  readonly memory: MemoryRow[];
  /** Voice turns through the realtime door. */
  readonly voice: VoiceRow[];
  /** Voice turns through fake streaming speech providers (Deepgram → text → ElevenLabs); absent in older runs. */
  readonly voiceProviders: VoiceProviderRow[];
  /** Non-streamed requests through each gateway (the Portkey side by side). */
  readonly compare: {
    readonly rates: RateRow[];
    readonly throughput: ThroughputRow[];
    readonly notes: string[];
  };
  /** `--only ttft`: added TTFT at a fixed rate against the direct mock, rounds in turns (issue 16); absent when not measured. */
  ttft?: { readonly rounds: TtftRow[][]; readonly pinned: boolean; readonly adaptive: boolean; readonly loadAverage: { start: number[]; end: number[] }; readonly trees?: readonly string[] } | undefined;
  /** CPU per request in turns (issue 16); absent in older runs and when not measured. */
  cpu?: CpuResults | undefined;
  /** Overload runs with adaptive concurrency on (issue 16); absent when not measured. */
  overload?: { readonly boundMs?: number; readonly rows: OverloadRow[]; refusalCost?: RefusalCostRow[] | undefined; adaptiveSettings?: Record<string, number | string> | undefined; loadAverage?: { start: number[]; end: number[] } | undefined } | undefined;
  readonly notes: string[];
}

/** The `--only ttft` row name of the gRPC floor (load/grpc-floor.ts). */
export const GRPC_FLOOR = "grpc floor";

/** A fixed-rate row of `--only ttft`: a gRPC door's row also says what it adds over the gRPC floor. */
export interface TtftRow extends RateRow {
  /** p50/p99 TTFT minus the gRPC floor's in the same round (gRPC doors of a gateway only), ms. */
  readonly overFloorP50?: number | undefined;
  readonly overFloorP99?: number | undefined;
}

/** `rows` (one round of `--only ttft`) with each gateway gRPC row's time over the gRPC floor's row at its rate. */
export function overFloor(rows: readonly RateRow[]): TtftRow[] {
  return rows.map((r) => {
    const floor = rows.find((x) => x.target === GRPC_FLOOR && x.rate === r.rate);
    if (r.door !== "grpc" || r.target === GRPC_FLOOR || !floor) return r;
    return { ...r, overFloorP50: minus(r.result.ttft.p50, floor.result.ttft.p50), overFloorP99: minus(r.result.ttft.p99, floor.result.ttft.p99) };
  });
}

function ttftTable(rows: readonly TtftRow[]): string {
  return table(
    ["rate (streams/s)", "target", "door", "ok / started", "TTFT p50 ms", "TTFT p99 ms", "p99 after 1st s", "added p50 ms", "added p99 ms", "over gRPC floor p50 / p99 ms", "CPU µs / stream", "late starts", "load generator CPU %"],
    rows.map((r) => [
      String(r.rate),
      r.target,
      r.door,
      `${r.result.ok} / ${r.result.started}`,
      f(r.result.ttft.p50),
      f(r.result.ttft.p99),
      f(r.result.ttftSteady?.p99),
      f(r.addedP50),
      f(r.addedP99),
      r.overFloorP50 === undefined ? "–" : `${f(r.overFloorP50)} / ${f(r.overFloorP99)}`,
      r.cpuUsPerStream === undefined ? "–" : String(Math.round(r.cpuUsPerStream)),
      String(r.result.lateStarts),
      r.result.loadgenCpuMs === undefined || r.result.elapsedS <= 0 ? "–" : String(Math.round(r.result.loadgenCpuMs / (r.result.elapsedS * 10))),
    ]),
  );
}

/** What the voice tables' warm-up column means. */
const WARMUP_NOTE = "Warm-up: unmeasured turns just before the row on the same gateway, callers at once × turns each; \"(measured)\" = as many callers as the row (the default, `--voice-warmup measured`), otherwise `--warm-callers` or `--voice-warmup one`; \"–\" = a result from before the column existed (one caller's turns came first).";

const f = (v: number | undefined, digits = 2): string => (v === undefined ? "–" : v.toFixed(digits));

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

function rateTable(rows: readonly RateRow[]): string {
  return table(
    ["rate (streams/s)", "target", "door", "ok / started", "TTFT p50 ms", "TTFT p99 ms", "added p50 ms", "added p99 ms", "CPU µs / stream", "late starts", "load generator CPU %"],
    rows.map((r) => [
      String(r.rate),
      r.target,
      r.door,
      `${r.result.ok} / ${r.result.started}`,
      f(r.result.ttft.p50),
      f(r.result.ttft.p99),
      f(r.addedP50),
      f(r.addedP99),
      r.cpuUsPerStream === undefined ? "–" : String(Math.round(r.cpuUsPerStream)),
      String(r.result.lateStarts),
      r.result.loadgenCpuMs === undefined || r.result.elapsedS <= 0 ? "–" : String(Math.round(r.result.loadgenCpuMs / (r.result.elapsedS * 10))),
    ]),
  );
}

function throughputTable(rows: readonly ThroughputRow[], unit: string): string {
  const floor = rows.find((r) => r.target === "direct");
  return table(
    ["target", "door", "concurrency", unit === "chunks" ? "chunks/s" : "requests/s", "streams/s", "vs direct", "errors"],
    rows.map((r) => [
      r.target,
      r.door,
      String(r.concurrency),
      String(unit === "chunks" ? r.chunksPerS : r.streamsPerS),
      String(r.streamsPerS),
      f(unit === "chunks" ? ratio(r.chunksPerS, floor?.chunksPerS) : ratio(r.streamsPerS, floor?.streamsPerS)),
      String(r.result.errors),
    ]),
  );
}

/** The whole report as markdown. */
export function markdown(b: BenchResults): string {
  const out: string[] = [];
  out.push(`# Spillway benchmark — ${b.startedAt}`, "", `\`${b.command}\` on ${b.machine.cores} cores (${b.machine.cpu}), Node ${b.machine.node}.`, "");
  out.push("Mock upstream, gateway and load generator are separate processes on loopback sharing the same cores.", "");
  if (b.fixedRates.length > 0) out.push("## Time to first chunk at fixed rates (open loop)", "", rateTable(b.fixedRates), "");
  if (b.maxRates.length > 0) {
    out.push(
      "## Highest sustained rate",
      "",
      table(
        ["target", "door", "max streams/s", "p99 bound ms", "steps (rate: p99 ms / errors)"],
        b.maxRates.map((m) => [m.target, m.door, String(m.maxRate), String(m.boundMs), m.steps.map((s) => `${s.rate}: ${f(s.p99, 1)}/${s.errors}`).join(", ")]),
      ),
      "",
    );
  }
  if (b.throughput.length > 0) out.push("## Chunks relayed end to end (closed loop)", "", throughputTable(b.throughput, "chunks"), "");
  if (b.memory.length > 0) {
    out.push(
      "## Memory per open stream (slow streams held open)",
      "",
      table(
        ["target", "door", "streams", "held", "workers", "RSS before MiB", "RSS held MiB", "KiB per stream"],
        b.memory.map((m) => [m.target, m.door, String(m.streams), String(m.held), String(m.workers), f(m.rssBaseMiB, 1), f(m.rssHeldMiB, 1), f(m.kibPerStream, 1)]),
      ),
      "",
    );
  }
  if (b.voice.length > 0) {
    out.push(
      "## Voice turns through the realtime door",
      "",
      `Each turn: a fresh session, speech streamed in 20 ms frames at real-time pace, server VAD, local/stt → mock text → local/tts. Times from \`input_audio_buffer.speech_stopped\`. ${WARMUP_NOTE}`,
      "",
      table(
        ["callers at once", "warm-up (callers × turns)", "turns ok", "errors", "→ transcription p50 ms", "→ first audio p50 ms", "→ first audio p90 ms", "→ first audio max ms", "gateway CPU ms / turn"],
        b.voice.map((v) => [String(v.callers), warmupLabel(v.warmup), String(v.turns), String(v.errors), f(v.transcribed.p50, 1), f(v.firstAudio.p50, 1), f(v.firstAudio.p90, 1), f(v.firstAudio.max, 1), f(v.cpuMsPerTurn, 1)]),
      ),
      "",
    );
  }
  if ((b.voiceProviders ?? []).length > 0) {
    const floor = b.voiceProviders[0]!.floorMs;
    out.push(
      "## Voice turns through streaming speech providers",
      "",
      `As above, through a profile of fake Deepgram → fake text model → fake ElevenLabs (load/speech-fakes.ts, another process): recognizer final 150 ms after the end of input, text model 300 ms to a first token that ends a sentence, synthesis 150 ms to its first byte — ${floor} ms from \`speech_stopped\` for the providers alone. "Added" is the first audio p50 minus that. A fresh gateway per tree, turns per session, warm-up and round. Turns / session (\`--session-turns\`): 1 = a fresh session per turn, which pays its upstream connects every turn; more = calls of that many turns (after each first audio a \`response.cancel\`, then the next turn). ${WARMUP_NOTE}`,
      "",
      table(
        ["tree", "round", "callers at once", "turns / session", "warm-up (callers × turns)", "turns ok", "errors", "→ transcription p50 ms", "→ first audio p50 ms", "→ first audio p90 ms", "added p50 ms", "gateway CPU ms / turn"],
        b.voiceProviders.map((v) => [v.target ?? "spillway", v.round === undefined ? "–" : String(v.round), String(v.callers), String(v.sessionTurns ?? 1), warmupLabel(v.warmup), String(v.turns), String(v.errors), f(v.transcribed.p50, 1), f(v.firstAudio.p50, 1), f(v.firstAudio.p90, 1), f(v.addedP50, 1), f(v.cpuMsPerTurn, 1)]),
      ),
      "",
    );
  }
  if (b.compare.rates.length > 0 || b.compare.throughput.length > 0) {
    out.push("## Side by side: non-streamed chat completions", "");
    if (b.compare.throughput.length > 0) out.push(throughputTable(b.compare.throughput, "requests"), "");
    const sw = b.compare.throughput.find((r) => r.target === "spillway");
    for (const r of b.compare.throughput) {
      if (r.target !== "spillway" && r.target !== "direct" && sw) out.push(`Throughput spillway / ${r.target}: **${f(ratio(sw.streamsPerS, r.streamsPerS))}×**`, "");
    }
    if (b.compare.rates.length > 0) out.push(rateTable(b.compare.rates), "");
    for (const n of b.compare.notes) out.push(`- ${n}`);
    out.push("");
  }
  if (b.ttft && b.ttft.rounds.length > 0) {
    out.push(
      "## Added time to first chunk at a fixed rate (issue 16: p50 ≤ 0.5 ms at 1,000 streams/s, gateway on its own core)",
      "",
      `Open loop, direct to the mock, then the gRPC floor (load/grpc-floor.ts: a bare grpc-js server streaming the same answer, pinned where the gateway runs), then through ${b.ttft.trees && b.ttft.trees.length > 1 ? `each tree (${b.ttft.trees.join(", ")}; their order flips every round)` : "the gateway"} door by door, each round in turn (${b.ttft.pinned ? "pinned: gateway on CPU 0, mock and load generator on CPU 1" : "**not pinned** (add --pin)"}; adaptive concurrency ${b.ttft.adaptive ? "on" : "off"}); "added" = the row's TTFT p50 / p99 minus the direct run's in the same round; "over gRPC floor" = a gRPC door's minus the floor's (what the gateway adds beyond being a grpc-js server; the floor's own "added" is the gRPC client and protocol's share); "p99 after 1st s" counts streams scheduled after the run's first second. Load average ${b.ttft.loadAverage.start.join(", ")} at the start, ${b.ttft.loadAverage.end.join(", ")} at the end.`,
      "",
      ...b.ttft.rounds.flatMap((r, i) => [`Round ${i + 1}:`, "", ttftTable(r), ""]),
    );
  }
  if (b.cpu && b.cpu.rows.length > 0) out.push(cpuMarkdown(b.cpu), "");
  if (b.overload?.loadAverage) out.push(`Load average (1, 5, 15 min) at the start of the overload runs: ${b.overload.loadAverage.start.join(", ")}; at the end: ${b.overload.loadAverage.end.join(", ")}.`, "");
  if (b.overload && b.overload.rows.length > 0) out.push(overloadMarkdown(b.overload.rows, b.overload.adaptiveSettings), "");
  if (b.overload?.refusalCost && b.overload.refusalCost.length > 0) out.push(refusalCostMarkdown(b.overload.refusalCost), "");
  if (b.notes.length > 0) out.push("## Notes", "", ...b.notes.map((n) => `- ${n}`), "");
  return out.join("\n");
}
