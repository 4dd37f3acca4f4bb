/**
 * The CPU-per-request tables (issue 16) as markdown, ready to paste into
 * docs/PERFORMANCE.md: µs per request per target (median over the rounds,
 * with the range), ratios against nginx's relay, the tree compared before
 * (`--compare spillway@DIR`) and Portkey, the fake upstream's own cost per
 * target, per-chunk costs, and the issue's aims read off the same run.
 */
import { perChunkUs, type CpuRow } from "./cpu.js";
import type { Door } from "./loadgen.js";

/** What the CPU section of a run holds (in the JSON file). */
export interface CpuResults {
  readonly plan: { readonly rounds: number; readonly seconds: number; readonly connections: number };
  readonly rows: CpuRow[];
  readonly notes: string[];
}

const LABELS: Record<string, string> = {
  json: "non-streamed chat",
  sse: "streamed chat (22 events)",
  grpc: "gRPC Generate (20 chunks)",
  ws: "realtime text response (20 deltas, a session each)",
};
const PER_CHUNK: ReadonlyArray<[Door, boolean, string]> = [
  ["sse", false, "per chunk: SSE (events 1 ms apart)"],
  ["grpc", false, "per chunk: gRPC (events 1 ms apart)"],
  ["ws", false, "per chunk: realtime (events 1 ms apart)"],
  ["sse", true, "per chunk: SSE (burst)"],
  ["grpc", true, "per chunk: gRPC (burst)"],
  ["ws", true, "per chunk: realtime (burst)"],
];

const us = (v: number | undefined): string => (v === undefined ? "–" : v >= 100 ? String(Math.round(v)) : v.toFixed(1));
const x = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined || b <= 0 ? "–" : `${(a / b).toFixed(2)}×`);

function cell(r: CpuRow | undefined, pick: "cpuUs" | "mockCpuUs"): string {
  if (!r || r[pick] === undefined) return r && r.samples.length === 0 ? "failed" : "–";
  const vs = r.samples.map((s) => s[pick]);
  const lo = Math.min(...vs);
  const hi = Math.max(...vs);
  return vs.length > 1 && us(lo) !== us(hi) ? `${us(r[pick])} (${us(lo)}–${us(hi)})` : us(r[pick]);
}

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

/** Target columns in a fixed order: direct, nginx, compared Spillway trees, this tree, Portkey. */
function columns(rows: readonly CpuRow[]): string[] {
  const names = [...new Set(rows.map((r) => r.target))];
  const rank = (n: string): number => (n === "direct" ? 0 : n === "nginx" ? 1 : n === "node-floor" ? 1.5 : n.startsWith("spillway@") ? 2 : n === "spillway" ? 3 : 4);
  return names.sort((a, b) => rank(a) - rank(b));
}

/** The CPU section as markdown. */
export function cpuMarkdown(c: CpuResults): string {
  const rows = c.rows;
  const cols = columns(rows);
  const before = cols.find((n) => n.startsWith("spillway@"));
  const has = (n: string): boolean => cols.includes(n);
  const get = (mode: string, target: string): CpuRow | undefined => rows.find((r) => r.mode === mode && r.target === target);
  const modes = Object.keys(LABELS).filter((m) => rows.some((r) => r.mode === m));
  const out: string[] = [];
  out.push(
    "## CPU per request",
    "",
    `User+system CPU µs per completed request of each target's processes (/proc), closed loop of ${c.plan.connections} connections, ${c.plan.seconds} s per turn, targets in turns over ${c.plan.rounds} round${c.plan.rounds > 1 ? "s" : ""}: median (range). \`direct\` is the fake upstream alone.`,
    "",
  );
  const head = ["mode", ...cols.map((n) => (n === "nginx" ? "nginx relay" : n === "spillway" && before ? "spillway (this tree)" : n))];
  if (before) head.push(`this tree / ${before}`);
  if (has("nginx")) head.push(before ? `${before} / nginx` : "", "spillway / nginx");
  const floor = has("node-floor");
  if (floor) head.push(...(before ? [`${before} / node-floor`] : []), "spillway / node-floor", ...(has("nginx") ? ["node-floor / nginx"] : []));
  if (has("portkey")) head.push("portkey / spillway");
  const cleanHead = head.filter((h) => h !== "");
  const body: string[][] = [];
  for (const m of modes) {
    const sw = get(m, "spillway")?.cpuUs;
    const ng = get(m, "nginx")?.cpuUs;
    const line = [LABELS[m]!, ...cols.map((n) => cell(get(m, n), "cpuUs"))];
    if (before) line.push(x(sw, get(m, before)?.cpuUs));
    if (has("nginx")) {
      if (before) line.push(x(get(m, before)?.cpuUs, ng));
      line.push(x(sw, ng));
    }
    if (floor) {
      const fl = get(m, "node-floor")?.cpuUs;
      if (before) line.push(x(get(m, before)?.cpuUs, fl));
      line.push(x(sw, fl));
      if (has("nginx")) line.push(x(fl, ng));
    }
    if (has("portkey")) line.push(x(get(m, "portkey")?.cpuUs, sw));
    body.push(line);
  }
  for (const [door, burst, label] of PER_CHUNK) {
    const per = (n: string): number | undefined => perChunkUs(rows, door, n, burst);
    if (!cols.some((n) => per(n) !== undefined)) continue;
    const sw = per("spillway");
    const line = [label, ...cols.map((n) => us(per(n)))];
    if (before) line.push(x(sw, per(before)));
    if (has("nginx")) {
      if (before) line.push(x(per(before), per("nginx")));
      line.push(x(sw, per("nginx")));
    }
    if (floor) {
      if (before) line.push(x(per(before), per("node-floor")));
      line.push(x(sw, per("node-floor")));
      if (has("nginx")) line.push(x(per("node-floor"), per("nginx")));
    }
    if (has("portkey")) line.push("–");
    body.push(line);
  }
  out.push(table(cleanHead, body), "");
  const anyPerChunk = rows.some((r) => r.mode.endsWith("-c200"));
  out.push(
    (anyPerChunk
      ? "Per chunk: (CPU per request of a 200-chunk stream − that of a 2-chunk stream) / 198, from the medians: one more chunk without the per-request part. Two upstream paces: each event its own write 1 ms apart (a read per event), and a burst (the whole answer in one write: parse and encode only). "
      : "") +
      "Streamed answers: role, 20 content chunks, finish, usage, `[DONE]`, each event its own write, 1 ms apart.",
    "",
  );

  const mockHead = ["mode", ...cols.map((n) => (n === "direct" ? "direct" : `through ${n}`))];
  const mockBody = modes.map((m) => [LABELS[m]!, ...cols.map((n) => cell(get(m, n), "mockCpuUs"))]);
  out.push("### The fake upstream's own CPU per request", "", "What each target makes its upstream pay (a non-streamed request sent upstream as a stream costs the upstream a stream).", "", table(mockHead, mockBody), "");

  const tput = modes.map((m) => [LABELS[m]!, ...cols.map((n) => String(get(m, n)?.requestsPerS ?? "–"))]);
  out.push("### Requests/s in the same turns (shared cores: context, not a result)", "", table(["mode", ...cols], tput), "");

  // The issue's aims, read off this run.
  const aims: string[] = [];
  const aim = (what: string, value: number | undefined, bound: number, unit = "×"): void => {
    if (value === undefined) aims.push(`- ${what}: not measured in this run`);
    else aims.push(`- ${what}: ${value.toFixed(2)}${unit} — **${value <= bound ? "met" : "missed"}** (aim ≤ ${bound}${unit})`);
  };
  const r = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined || b === undefined || b <= 0 ? undefined : a / b);
  aim("non-streamed chat, spillway / nginx", r(get("json", "spillway")?.cpuUs, get("json", "nginx")?.cpuUs), 4);
  const pk = r(get("json", "spillway")?.cpuUs, get("json", "portkey")?.cpuUs);
  if (pk === undefined) aims.push("- non-streamed chat, spillway / portkey: not measured in this run (`--compare portkey`)");
  else aims.push(`- non-streamed chat, spillway / portkey: 1/${(1 / pk).toFixed(1)} — **${pk <= 1 / 12 ? "met" : "missed"}** (aim ≤ 1/12)`);
  aim("streamed chat (22 events), spillway / nginx", r(get("sse", "spillway")?.cpuUs, get("sse", "nginx")?.cpuUs), 1.5);
  aim("gRPC per chunk / SSE per chunk (spillway, events 1 ms apart)", r(perChunkUs(rows, "grpc", "spillway"), perChunkUs(rows, "sse", "spillway")), 1.5);
  aim("gRPC per chunk / SSE per chunk (spillway, burst)", r(perChunkUs(rows, "grpc", "spillway", true), perChunkUs(rows, "sse", "spillway", true)), 1.5);
  // What bounds the aims: the part of the gap to nginx that a Node relay with the same parts pays too.
  for (const [m, what] of [["json", "non-streamed chat"], ["sse", "streamed chat (22 events)"]] as const) {
    const fl = get(m, "node-floor")?.cpuUs;
    const sw = get(m, "spillway")?.cpuUs;
    const ng = get(m, "nginx")?.cpuUs;
    if (fl === undefined || sw === undefined) continue;
    aims.push(`- ${what}: spillway / node-floor ${x(sw, fl)}${ng !== undefined ? `, node-floor / nginx ${x(fl, ng)} (the runtime's share of the gap)` : ""}`);
  }
  out.push("### Aims of issue 16 in this run", "", ...aims, "");
  const failed = rows.filter((x) => x.failed > 0 || x.errorSamples.length > 0);
  for (const f of failed) out.push(`- ${f.target} ${LABELS[f.mode] ?? f.mode}: ${f.failed} failed requests${f.errorSamples.length ? ` (${f.errorSamples.slice(0, 2).join("; ")})` : ""}`);
  for (const n of c.notes) out.push(`- ${n}`);
  out.push("");
  return out.join("\n");
}
