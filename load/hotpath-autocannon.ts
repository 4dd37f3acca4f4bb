/**
 * autocannon 8 (a devDependency without type declarations), typed as far as
 * the hot path drivers (`hotpath-cpu.ts`, `hotpath-profile.ts`) use it.
 */
import { createRequire } from "node:module";

/** One autocannon run's options (the subset used). */
export interface AutocannonOptions {
  readonly url: string;
  readonly connections: number;
  /** Seconds. */
  readonly duration: number;
  readonly method: "POST" | "GET";
  readonly headers: Record<string, string>;
  readonly body: string;
  /** Requests per second over all connections; as fast as possible when absent. */
  readonly overallRate?: number;
}

/** One run's results (the subset used). */
export interface AutocannonResult {
  readonly "2xx": number;
  readonly non2xx: number;
  readonly errors: number;
  readonly latency: { readonly p50: number; readonly p99: number };
}

/** Runs autocannon once; rejects if it cannot run. */
export function autocannon(o: AutocannonOptions): Promise<AutocannonResult> {
  const run = createRequire(import.meta.url)("autocannon") as (o: AutocannonOptions, cb: (err: Error | null, r: AutocannonResult) => void) => void;
  return new Promise((resolve, reject) => run(o, (err, r) => (err ? reject(err) : resolve(r))));
}
