import { Redis } from "ioredis";
import type { KeyLimits, LimitRejection, LimitStore } from "./limit-store.js";

/**
 * Checks and counts in one atomic step. Requests and tokens are counted in
 * one-second buckets (`<prefix>:req:<sec>`, `<prefix>:tok:<sec>`, expiring
 * after 61 s) summed over the last 60; open streams are a sorted set of
 * lease ids scored by their expiry, so a crashed instance's leases lapse.
 * Returns {0} when admitted, else {1|2|3, retry-after ms} for streams, rpm, tpm.
 */
const ADMIT = `
local prefix = KEYS[1]
local now = tonumber(ARGV[1])
local rpm = tonumber(ARGV[2])
local tpm = tonumber(ARGV[3])
local maxStreams = tonumber(ARGV[4])
local lease = ARGV[5]
local ttl = tonumber(ARGV[6])
local sec = math.floor(now / 1000)
local streams = prefix .. ':streams'
redis.call('ZREMRANGEBYSCORE', streams, '-inf', now)
if maxStreams >= 0 and redis.call('ZCARD', streams) >= maxStreams then return {1, 1000} end
local function window(kind)
  local keys = {}
  for s = sec - 59, sec do keys[#keys + 1] = prefix .. ':' .. kind .. ':' .. s end
  local values = redis.call('MGET', unpack(keys))
  local total, oldest = 0, -1
  for i, v in ipairs(values) do
    if v then
      total = total + tonumber(v)
      if oldest < 0 then oldest = sec - 60 + i end
    end
  end
  return total, oldest
end
if rpm >= 0 then
  local total, oldest = window('req')
  if total >= rpm then return {2, math.max(1000, (oldest + 60) * 1000 - now)} end
end
if tpm >= 0 then
  local total, oldest = window('tok')
  if total >= tpm then return {3, math.max(1000, (oldest + 60) * 1000 - now)} end
end
local req = prefix .. ':req:' .. sec
redis.call('INCR', req)
redis.call('EXPIRE', req, 61)
redis.call('ZADD', streams, now + ttl, lease)
redis.call('PEXPIRE', streams, ttl)
return {0, 0}
`;

const RELEASE = `
local prefix = KEYS[1]
redis.call('ZREM', prefix .. ':streams', ARGV[1])
local tokens = tonumber(ARGV[2])
if tokens > 0 then
  local tok = prefix .. ':tok:' .. math.floor(tonumber(ARGV[3]) / 1000)
  redis.call('INCRBY', tok, tokens)
  redis.call('EXPIRE', tok, 61)
end
return 0
`;

const LIMITS: ReadonlyArray<LimitRejection["limit"]> = ["streams", "rpm", "tpm"];

/** Settings of a {@link RedisLimitStore}. */
export interface RedisLimitStoreOptions {
  /** `redis://host:port/db`. */
  readonly url: string;
  /** Prefix of every key Spillway writes. */
  readonly keyPrefix: string;
  /** How long one command may take before the store counts Redis as down (ms). */
  readonly commandTimeoutMs: number;
}

type Scripted = Redis & {
  spillwayAdmit(prefix: string, now: number, rpm: number, tpm: number, maxStreams: number, lease: string, ttl: number): Promise<[number, number]>;
  spillwayRelease(prefix: string, lease: string, tokens: number, now: number): Promise<number>;
};

/**
 * A {@link LimitStore} in Redis, so that every worker and every instance of
 * the gateway count a key's requests, tokens and streams together. Each
 * check is one Lua script, atomic on the server. Commands fail fast (no
 * offline queue, a command timeout) so a Redis outage surfaces at once; the
 * caller decides whether to fail open.
 */
export class RedisLimitStore implements LimitStore {
  private readonly redis: Scripted;

  constructor(private readonly opts: RedisLimitStoreOptions) {
    const redis = new Redis(opts.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: opts.commandTimeoutMs,
      lazyConnect: false,
    });
    // Connection errors also reject the commands that need it; the event itself is only noise.
    redis.on("error", () => undefined);
    redis.defineCommand("spillwayAdmit", { numberOfKeys: 1, lua: ADMIT });
    redis.defineCommand("spillwayRelease", { numberOfKeys: 1, lua: RELEASE });
    this.redis = redis as Scripted;
  }

  private prefix(key: string): string {
    return `${this.opts.keyPrefix}:key:{${key}}`;
  }

  async admit(key: string, limits: KeyLimits, leaseId: string, leaseTtlMs: number): Promise<LimitRejection | undefined> {
    const [code, retryAfterMs] = await this.redis.spillwayAdmit(
      this.prefix(key),
      Date.now(),
      limits.rpm ?? -1,
      limits.tpm ?? -1,
      limits.maxConcurrentStreams ?? -1,
      leaseId,
      leaseTtlMs,
    );
    return code === 0 ? undefined : { limit: LIMITS[code - 1]!, retryAfterMs };
  }

  async release(key: string, leaseId: string, tokens: number): Promise<void> {
    await this.redis.spillwayRelease(this.prefix(key), leaseId, tokens, Date.now());
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
