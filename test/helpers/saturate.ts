/**
 * Load for the overload tests: a busy event loop in this process (which is
 * also the gateway's, for in-process test gateways), and a poll helper.
 */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";

/** Keeps this process's event loop ~95% busy until the returned function is called. */
export function saturate(): () => void {
  const timer = setInterval(() => {
    const end = performance.now() + 95;
    while (performance.now() < end) {
      // Busy: this is the load.
    }
  }, 100);
  return () => clearInterval(timer);
}

/** Polls `check` every 50 ms until it is true; fails the test after ~10 s naming `what`. */
export async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await sleep(50);
  }
  assert.fail(`timed out waiting: ${what}`);
}
