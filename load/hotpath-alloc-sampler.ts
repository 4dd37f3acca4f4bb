/**
 * Preloaded into a gateway by `load/hotpath-alloc.ts` (`--import`): V8's sampling heap profiler,
 * counting objects already collected too (what a request allocates and drops, the garbage the GC
 * pays for, not only what stays live); `ALLOC_SURVIVORS=1`: only what outlived a scavenge
 * (promoted to the old generation, where it costs a mark-compact to free). The first SIGUSR2
 * starts it, the second stops it and writes the profile to `ALLOC_OUT` (JSON), so the driver's
 * exact request count covers the window; a third starts it again, a fourth writes the next window's
 * profile to the same file (load/alloc-doors.ts deletes it first and waits for it). Issue 16.
 */
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";

const session = new Session();
session.connect();
const post = (method: string, params: object = {}): Promise<unknown> =>
  new Promise((resolve, reject) => session.post(method, params, (err, res) => (err ? reject(err) : resolve(res))));
let running = false;
process.on("SIGUSR2", () => {
  if (!running) {
    running = true;
    void post("HeapProfiler.enable").then(() =>
      post("HeapProfiler.startSampling", {
        samplingInterval: Number(process.env["ALLOC_INTERVAL"] ?? "256"),
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: process.env["ALLOC_SURVIVORS"] !== "1",
      }),
    );
    return;
  }
  running = false;
  void post("HeapProfiler.stopSampling").then((r) => {
    writeFileSync(process.env["ALLOC_OUT"] ?? "alloc.json", JSON.stringify((r as { profile: unknown }).profile));
  });
});
