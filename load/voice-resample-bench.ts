/**
 * `npx tsx load/voice-resample-bench.ts`: CPU of the realtime VAD's
 * 24 → 16 kHz conversion per voice turn (4 s of the voice benchmark's audio
 * in 20 ms appends, non-silent throughout): `RationalResampler`'s loops —
 * general polyphase, unrolled 2/3, WebAssembly SIMD (src/audio/fir23-simd.ts) —
 * alternated in one process, 5 rounds of 60 turns each.
 */
import { RationalResampler, type ResampleLoop } from "../src/audio/rational-resample.js";

const x = new Int16Array(24_000 * 4);
for (let i = 0; i < x.length; i++) x[i] = Math.round(8000 * Math.sin(i / 7) * Math.sin(i / 900) + 300 * Math.sin(i * 1.3));
const pieces: Int16Array[] = [];
for (let i = 0; i < x.length; i += 480) pieces.push(x.slice(i, i + 480));

function turns(loop: ResampleLoop, n: number): number {
  const c0 = process.cpuUsage();
  let sink = 0;
  for (let t = 0; t < n; t++) {
    const r = new RationalResampler(24_000, 16_000, { loop });
    for (const p of pieces) sink += r.push(p)[0]!;
  }
  const c = process.cpuUsage(c0);
  if (Number.isNaN(sink)) console.log(sink);
  return (c.user + c.system) / 1000 / n;
}

for (const loop of ["general", "unrolled", "simd"] as const) turns(loop, 20);
for (let round = 1; round <= 5; round++) {
  const general = turns("general", 60);
  const unrolled = turns("unrolled", 60);
  const simd = turns("simd", 60);
  console.log(
    `round ${round}: general ${general.toFixed(3)} ms/turn, unrolled ${unrolled.toFixed(3)} ms/turn (${(general / unrolled).toFixed(2)}×), simd ${simd.toFixed(3)} ms/turn (${(unrolled / simd).toFixed(2)}× under unrolled)`,
  );
}
