/**
 * Preloaded into a gateway by `load/hotpath-alloc.ts` (`--import`): V8's sampling heap profiler
 * over a window, counting objects already collected too (what a request allocates and drops, the
 * garbage the GC pays for, not only what stays live); `ALLOC_SURVIVORS=1`: only what outlived a
 * scavenge (promoted to the old generation, where it costs a mark-compact to free). Starts `ALLOC_FROM_S` seconds after load,
 * stops `ALLOC_FOR_S` seconds later and writes the profile to `ALLOC_OUT` (JSON). Issue 16.
 */
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";

const session = new Session();
session.connect();
const post = (method: string, params: object = {}): Promise<unknown> =>
  new Promise((resolve, reject) => session.post(method, params, (err, res) => (err ? reject(err) : resolve(res))));
const from = Number(process.env["ALLOC_FROM_S"] ?? "4") * 1000;
const span = Number(process.env["ALLOC_FOR_S"] ?? "4") * 1000;
setTimeout(() => {
  void post("HeapProfiler.enable")
    .then(() => post("HeapProfiler.startSampling", { samplingInterval: Number(process.env["ALLOC_INTERVAL"] ?? "512"), includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: process.env["ALLOC_SURVIVORS"] !== "1" }))
    .then(() => {
      setTimeout(() => {
        void post("HeapProfiler.stopSampling").then((r) => {
          writeFileSync(process.env["ALLOC_OUT"] ?? "alloc.json", JSON.stringify((r as { profile: unknown }).profile));
        });
      }, span).unref();
    });
}, from).unref();

// `ALLOC_SNAPSHOT=FILE`: also a heap snapshot at the window's end (what the live graph holds, and through what).
const snapshot = process.env["ALLOC_SNAPSHOT"];
if (snapshot) {
  const { writeHeapSnapshot } = await import("node:v8");
  setTimeout(() => writeHeapSnapshot(snapshot), from + span - 500).unref();
}
