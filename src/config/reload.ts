import type { Config } from "./schema.js";

/**
 * Settings a running gateway cannot change (listen addresses, TLS, Redis,
 * the metrics port, WebSocket frame limits): the names of those that differ
 * between `current` and `next`. A reload applies everything else and logs
 * these as needing a restart.
 */
export function restartOnlyChanges(current: Config, next: Config): string[] {
  const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
  const out: string[] = [];
  if (!same(current.http, next.http)) out.push("http");
  if (!same(current.grpc, next.grpc)) out.push("grpc");
  if (!same(current.redis, next.redis)) out.push("redis");
  if (!same(current.tracing, next.tracing)) out.push("tracing");
  if (!same(current.cache, next.cache)) out.push("cache");
  if (current.metrics.port !== next.metrics.port || current.metrics.host !== next.metrics.host) out.push("metrics.port");
  const { profiles: _a, defaultModel: _b, ...rtNow } = current.realtime;
  const { profiles: _c, defaultModel: _d, ...rtNext } = next.realtime;
  if (!same(rtNow, rtNext)) out.push("realtime (limits)");
  if (current.limits.maxEventLoopUtilization !== next.limits.maxEventLoopUtilization) out.push("limits.maxEventLoopUtilization");
  return out;
}

/** What a reload did. */
export type ReloadOutcome =
  | { readonly ok: true; readonly restartNeeded: readonly string[] }
  | { readonly ok: false; readonly error: string };
