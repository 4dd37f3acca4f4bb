/** Small helpers shared by the benchmark's processes. */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Whether the module at `metaUrl` is the process's entry point. */
export function isMain(metaUrl: string): boolean {
  return !!process.argv[1] && resolve(process.argv[1]) === fileURLToPath(metaUrl);
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Only loopback targets are allowed: throws for any other host. */
export function assertLoopback(host: string): void {
  const h = host.replace(/^\[|\]$/g, "");
  if (!(h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h))) {
    throw new Error(`refusing to send load to ${host}: the benchmark only targets loopback addresses`);
  }
}
