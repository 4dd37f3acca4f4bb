/** Types for the part of autocannon 8 the CPU benchmark uses (the package ships none). */
declare module "autocannon" {
  /** Options of one run (see autocannon's README). */
  export interface Options {
    url: string;
    connections?: number;
    duration?: number;
    method?: string;
    body?: string;
    headers?: Record<string, string>;
    timeout?: number;
    /** Called with each complete body; a falsy answer counts as a mismatch. */
    verifyBody?: (body: string) => boolean;
  }
  /** What a run counted. */
  export interface Result {
    "2xx": number;
    non2xx: number;
    errors: number;
    timeouts: number;
    mismatches: number;
    duration: number;
    requests: { total: number; average: number };
    latency: { p50: number; p99: number; average: number };
  }
  /** Runs `opts`; resolves when the duration is over. */
  export default function autocannon(opts: Options): Promise<Result>;
}
