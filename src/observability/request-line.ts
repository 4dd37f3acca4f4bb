import { pino } from "pino";

/** What is read of a pino logger (any pino logger, whatever its custom levels). */
export interface PinoLike {
  isLevelEnabled(level: string): boolean;
  readonly levels: { readonly values: Readonly<Record<string, number>> };
}

/** The fields of the `request finished` line, in the order they are written (undefined ones are left out). */
export interface RequestLineFields {
  requestId: string;
  streamId: string | undefined;
  door: string;
  route: string;
  shape: string | undefined;
  model: string;
  provider: string;
  caller: string | undefined;
  key: string | undefined;
  status: number | string;
  outcome: string;
  ttftMs: number | undefined;
  durationMs: number;
  inputTokens: number | undefined;
  outputTokens: number | undefined;
  reasoningTokens: number | undefined;
  chunks: number | undefined;
  bytesOut: number | undefined;
  clientDisconnected: boolean;
  error: { code: string | undefined; message: string } | undefined;
  cache: string | undefined;
  cachedInputTokens: number | undefined;
  traceId: string | undefined;
  refusedUnlogged: number | undefined;
}

/** The line's field names, for the logger's eligibility check (a serializer on one of them takes the line to pino). */
const FIELD_NAMES: readonly (keyof RequestLineFields)[] = [
  "requestId", "streamId", "door", "route", "shape", "model", "provider", "caller", "key", "status", "outcome", "ttftMs", "durationMs",
  "inputTokens", "outputTokens", "reasoningTokens", "chunks", "bytesOut", "clientDisconnected", "error", "cache", "cachedInputTokens", "traceId", "refusedUnlogged",
];

const MESSAGE = "request finished";
// Typed loosely: pino's typings lag its symbols (no `msgPrefixSym`).
const S = pino.symbols as typeof pino.symbols & { readonly msgPrefixSym: symbol };

/** What {@link writeRequestLine} reads from a logger it can write for (checked once per logger). */
interface Direct {
  /** `{"level":30` as the logger renders it. */
  readonly prefix: string;
  /** `}` and the line end. */
  readonly end: string;
  readonly time: () => string;
  readonly stream: { write(s: string): unknown };
}

const direct = new WeakMap<PinoLike, Direct | null>();

type Internals = Record<symbol, unknown>;

/**
 * Whether `logger` writes the line exactly as {@link renderLine} does: no
 * mixin, log formatter, `logMethod`/`streamWrite` hooks, message prefix,
 * nested key, custom `info` level, multistream metadata, or serializer on
 * one of the line's fields. Anything else goes through pino's own path.
 */
function directOf(logger: PinoLike): Direct | null {
  let d = direct.get(logger);
  if (d !== undefined) return d;
  d = null;
  const l = logger as unknown as Internals;
  const formatters = l[S.formattersSym] as { log?: unknown } | undefined;
  const hooks = l[S.hooksSym] as { logMethod?: unknown; streamWrite?: unknown } | undefined;
  const serializers = (l[S.serializersSym] ?? {}) as Record<string, unknown>;
  const stream = l[S.streamSym] as ({ write(s: string): unknown } & Internals) | undefined;
  const lsCache = l[S.lsCacheSym] as Record<number, string> | undefined;
  const plain =
    !l[S.mixinSym] &&
    !formatters?.log &&
    !hooks?.logMethod &&
    !hooks?.streamWrite &&
    l[S.msgPrefixSym] === undefined &&
    !l[S.nestedKeySym] &&
    l[S.messageKeySym] === "msg" &&
    !FIELD_NAMES.includes(l[S.errorKeySym] as keyof RequestLineFields) &&
    !l[S.useOnlyCustomLevelsSym] &&
    logger.levels.values["info"] === 30 &&
    FIELD_NAMES.every((k) => !serializers[k]) &&
    stream !== undefined &&
    typeof stream.write === "function" &&
    stream[S.needsMetadataGsym] !== true &&
    typeof lsCache?.[30] === "string" &&
    typeof l[S.chindingsSym] === "string" &&
    typeof l[S.endSym] === "string" &&
    typeof l[S.timeSym] === "function";
  if (plain) {
    const time = l[S.timeSym] as () => string;
    d = { prefix: lsCache[30]!, end: l[S.endSym] as string, time: () => time.call(logger), stream: stream };
  }
  direct.set(logger, d);
  return d;
}

/**
 * Writes the `request finished` line at `info` with `fields`, byte for byte
 * as pino 10 writes `logger.info(fields, "request finished")` with no
 * redaction (test/request-line.test.ts compares the two), but without pino's
 * generic walk over the object (a key lookup, serializer and stringifier
 * check and key escape per field): the names are constants and only the
 * values are escaped, with pino's own string escape. About 1 µs a line less
 * (load/hotpath-record.ts). Returns false, writing nothing, when the logger
 * is one it cannot write for exactly (see {@link directOf}); the caller then
 * logs through pino. A level above `info` writes nothing and returns true.
 */
export function writeRequestLine(logger: PinoLike, fields: RequestLineFields): boolean {
  const d = directOf(logger);
  if (!d) return false;
  if (!logger.isLevelEnabled("info")) return true;
  // The bindings are read each time: `setBindings` replaces them (pino precomputes them as text).
  const chindings = (logger as unknown as Internals)[S.chindingsSym] as string;
  d.stream.write(d.prefix + d.time() + chindings + renderFields(fields) + ',"msg":"' + MESSAGE + '"' + d.end);
  return true;
}

/** The line's fields as pino renders them: `,"name":value` for each defined one, in order. */
export function renderFields(f: RequestLineFields): string {
  let s = ',"requestId":' + str(f.requestId);
  if (f.streamId !== undefined) s += ',"streamId":' + str(f.streamId);
  s += ',"door":' + str(f.door) + ',"route":' + str(f.route);
  if (f.shape !== undefined) s += ',"shape":' + str(f.shape);
  s += ',"model":' + str(f.model) + ',"provider":' + str(f.provider);
  if (f.caller !== undefined) s += ',"caller":' + str(f.caller);
  if (f.key !== undefined) s += ',"key":' + str(f.key);
  s += ',"status":' + (typeof f.status === "number" ? num(f.status) : str(f.status));
  s += ',"outcome":' + str(f.outcome);
  if (f.ttftMs !== undefined) s += ',"ttftMs":' + num(f.ttftMs);
  s += ',"durationMs":' + num(f.durationMs);
  if (f.inputTokens !== undefined) s += ',"inputTokens":' + num(f.inputTokens);
  if (f.outputTokens !== undefined) s += ',"outputTokens":' + num(f.outputTokens);
  if (f.reasoningTokens !== undefined) s += ',"reasoningTokens":' + num(f.reasoningTokens);
  if (f.chunks !== undefined) s += ',"chunks":' + num(f.chunks);
  if (f.bytesOut !== undefined) s += ',"bytesOut":' + num(f.bytesOut);
  s += ',"clientDisconnected":' + (f.clientDisconnected ? "true" : "false");
  // pino stringifies an object value with JSON.stringify.
  if (f.error !== undefined) s += ',"error":' + JSON.stringify(f.error);
  if (f.cache !== undefined) s += ',"cache":' + str(f.cache);
  if (f.cachedInputTokens !== undefined) s += ',"cachedInputTokens":' + num(f.cachedInputTokens);
  if (f.traceId !== undefined) s += ',"traceId":' + str(f.traceId);
  if (f.refusedUnlogged !== undefined) s += ',"refusedUnlogged":' + num(f.refusedUnlogged);
  return s;
}

/** pino on Node 25 and later escapes every string with JSON.stringify. */
const JSON_ESCAPE = Number(process.versions.node.split(".")[0]) >= 25;

/** A number as pino writes one: non-finite ones as `null`. */
function num(n: number): string {
  return Number.isFinite(n) ? String(n) : "null";
}

/**
 * A string as pino (Node < 25) escapes one (`_asString` in pino/lib/tools.js,
 * MIT; JSON.stringify from Node 25 on, as there): `"` and `\` escaped in a scan, JSON.stringify for long strings and
 * those with a control character.
 */
function str(s: string): string {
  if (JSON_ESCAPE) return JSON.stringify(s);
  const l = s.length;
  if (l > 100) return JSON.stringify(s);
  let result = "";
  let last = 0;
  let found = false;
  let point = 255;
  for (let i = 0; i < l && point >= 32; i++) {
    point = s.charCodeAt(i);
    if (point === 34 || point === 92) {
      result += s.slice(last, i) + "\\";
      last = i;
      found = true;
    }
  }
  if (!found) result = s;
  else result += s.slice(last);
  return point < 32 ? JSON.stringify(s) : '"' + result + '"';
}
