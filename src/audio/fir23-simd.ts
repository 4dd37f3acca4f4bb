/**
 * The 24 → 16 kHz polyphase filter (up 2, down 3, 24 taps per phase) as a
 * tiny hand-written WebAssembly SIMD module: per output sample six f32x4
 * multiply-adds over the taps and a horizontal sum, instead of 24 scalar
 * multiplies in JavaScript. The module's bytes are emitted here (no wat
 * toolchain in the build); it is compiled once per process, on first use.
 *
 * Not bit-identical to the JavaScript loops (they sum in float64, left to
 * right; this sums in float32, four lanes at once): within about 1e-6 on
 * outputs in [-1, 1] (test/fir23-simd.test.ts), which a speech detector
 * cannot tell apart.
 *
 * Memory layout (one page, grown on demand, shared by every converter of
 * the process — JavaScript is single-threaded and each call copies its
 * history in and its output out): the two phases' taps, reversed, at byte
 * 0 and 96; the input window from {@link BUF_AT}; the output after it.
 */

/** Taps per phase the module is written for. */
export const SIMD_TAPS = 24;

/** Byte offset of the input window in the module's memory. */
const BUF_AT = 256;

/** Unsigned LEB128. */
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 (small values). */
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function name(s: string): number[] {
  return [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
}

function f32(v: number): number[] {
  return [...new Uint8Array(new Float32Array([v]).buffer)];
}

// Opcodes used below.
const I32 = 0x7f;
const V128 = 0x7b;
const LOCAL_GET = 0x20;
const LOCAL_SET = 0x21;
const I32_CONST = 0x41;
const SIMD = 0xfd;
const v128load = (offset: number): number[] => [SIMD, ...uleb(0x00), 0, ...uleb(offset)];
const f32x4mul = [SIMD, ...uleb(0xe6)];
const f32x4add = [SIMD, ...uleb(0xe4)];
const lane = (i: number): number[] => [SIMD, ...uleb(0x1f), i];

/**
 * The module: `fir(t, limit, bufPtr, outPtr) → count`. For t = t0, t0 + 3, …
 * below `limit` (positions in upsampled samples), y = Σ_i rt[i] · x[(t >> 1) + i]
 * with rt the phase (t & 1)'s taps reversed, clamped to [-1, 1], stored at
 * outPtr + 4·o. Locals: 0 t, 1 limit, 2 buf, 3 out, 4 o, 5 taps, 6 x (i32), 7 acc (v128).
 */
function moduleBytes(): Uint8Array {
  const T = 0;
  const LIMIT = 1;
  const BUF = 2;
  const OUT = 3;
  const O = 4;
  const TAPS = 5;
  const X = 6;
  const ACC = 7;
  const body: number[] = [
    // Locals: 3 × i32 (o, taps, x), 1 × v128 (acc).
    2,
    3,
    I32,
    1,
    V128,
    0x02, 0x40, // block
    0x03, 0x40, // loop
    LOCAL_GET, T, LOCAL_GET, LIMIT, 0x4e, 0x0d, 1, // br_if 1 (t >= limit)
    // taps = (t & 1) · 96
    LOCAL_GET, T, I32_CONST, ...sleb(1), 0x71, I32_CONST, ...sleb(96), 0x6c, LOCAL_SET, TAPS,
    // x = buf + (t >> 1) · 4
    LOCAL_GET, BUF, LOCAL_GET, T, I32_CONST, ...sleb(1), 0x75, I32_CONST, ...sleb(2), 0x74, 0x6a, LOCAL_SET, X,
    // acc = taps[0..4] · x[0..4]
    LOCAL_GET, TAPS, ...v128load(0), LOCAL_GET, X, ...v128load(0), ...f32x4mul,
  ];
  for (let k = 1; k < SIMD_TAPS / 4; k++) body.push(LOCAL_GET, TAPS, ...v128load(16 * k), LOCAL_GET, X, ...v128load(16 * k), ...f32x4mul, ...f32x4add);
  body.push(
    LOCAL_SET, ACC,
    // out + o · 4 (the store's address), then the lanes' sum
    LOCAL_GET, OUT, LOCAL_GET, O, I32_CONST, ...sleb(2), 0x74, 0x6a,
    LOCAL_GET, ACC, ...lane(0), LOCAL_GET, ACC, ...lane(1), 0x92, LOCAL_GET, ACC, ...lane(2), 0x92, LOCAL_GET, ACC, ...lane(3), 0x92,
    // clamp to [-1, 1]: min(max(s, -1), 1)
    0x43, ...f32(-1), 0x97, 0x43, ...f32(1), 0x96,
    0x38, 2, 0, // f32.store align=4 offset=0
    // o += 1; t += 3
    LOCAL_GET, O, I32_CONST, ...sleb(1), 0x6a, LOCAL_SET, O,
    LOCAL_GET, T, I32_CONST, ...sleb(3), 0x6a, LOCAL_SET, T,
    0x0c, 0, // br 0 (loop)
    0x0b, // end loop
    0x0b, // end block
    LOCAL_GET, O,
    0x0b, // end function
  );
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 4, I32, I32, I32, I32, 1, I32]),
    ...section(3, [1, 0]),
    ...section(5, [1, 0x00, 1]),
    ...section(7, [2, ...name("fir"), 0x00, 0, ...name("mem"), 0x02, 0]),
    ...section(10, [1, ...uleb(body.length), ...body]),
  ];
  return Uint8Array.from(bytes);
}

/** The few WebAssembly API parts used here (the project's `lib` has no WebAssembly types). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { readonly exports: unknown };
}
const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

interface Fir23Exports {
  readonly fir: (t: number, limit: number, buf: number, out: number) => number;
  readonly mem: WasmMemory;
}

let compiled: object | null | undefined;

/** Whether this runtime has WebAssembly SIMD (it validates the module). */
export function simdAvailable(): boolean {
  return module() !== null;
}

function module(): object | null {
  if (compiled === undefined) {
    const bytes = moduleBytes();
    compiled = wasm && wasm.validate(bytes) ? new wasm.Module(bytes) : null;
  }
  return compiled;
}

/** The process's one instance and its taps, by the tap arrays it was given. */
let shared: { exports: Fir23Exports; p0: Float32Array | undefined; p1: Float32Array | undefined } | undefined;

/**
 * The 2/3 filter on WebAssembly SIMD for the phases `p0` and `p1`
 * (TAPS_PER_PHASE = 24 floats each, as RationalResampler designs them).
 * Throws when the runtime has no WebAssembly SIMD ({@link simdAvailable}).
 */
export class Fir23Simd {
  private readonly ex: Fir23Exports;

  constructor(
    private readonly p0: Float32Array,
    private readonly p1: Float32Array,
  ) {
    if (p0.length !== SIMD_TAPS || p1.length !== SIMD_TAPS) throw new Error(`Fir23Simd: ${SIMD_TAPS} taps per phase, not ${p0.length}`);
    const m = module();
    if (!m) throw new Error("Fir23Simd: this runtime has no WebAssembly SIMD");
    if (!shared) shared = { exports: new wasm!.Instance(m).exports as Fir23Exports, p0: undefined, p1: undefined };
    this.ex = shared.exports;
  }

  /**
   * Filters `buf` (the last 23 input samples, then `n` new ones, as floats
   * scaled by the taps) from position `t` (upsampled samples) below
   * `limit`, writing the outputs into `out`; returns how many.
   */
  run(buf: Float32Array, n: number, t: number, limit: number, out: Float32Array): number {
    const count = Math.max(0, Math.ceil((limit - t) / 3));
    const len = SIMD_TAPS - 1 + n;
    // The last output's window reaches (t_last >> 1) + 23 ≤ len - 1; +4 floats of slack for alignment.
    const outAt = BUF_AT + ((len * 4 + 15) & ~15);
    const need = outAt + count * 4;
    const mem = this.ex.mem;
    if (mem.buffer.byteLength < need) mem.grow(Math.ceil((need - mem.buffer.byteLength) / 65536));
    const f = new Float32Array(mem.buffer);
    if (shared!.p0 !== this.p0 || shared!.p1 !== this.p1) {
      // First use, or another filter's taps: load ours, reversed.
      for (let i = 0; i < SIMD_TAPS; i++) {
        f[i] = this.p0[SIMD_TAPS - 1 - i]!;
        f[SIMD_TAPS + i] = this.p1[SIMD_TAPS - 1 - i]!;
      }
      shared!.p0 = this.p0;
      shared!.p1 = this.p1;
    }
    f.set(buf.subarray(0, len), BUF_AT / 4);
    const o = this.ex.fir(t, limit, BUF_AT, outAt);
    out.set(f.subarray(outAt / 4, outAt / 4 + o));
    return o;
  }
}
