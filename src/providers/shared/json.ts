/**
 * Defensive readers for upstream JSON: upstreams are not trusted to send
 * the types their docs promise, so every field is read through these.
 */

/** A JSON object. */
export type Obj = Record<string, unknown>;

/** Whether `v` is a JSON object (not null, not an array). */
export const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** `v` when it is an object, else an empty one. */
export const obj = (v: unknown): Obj => (isObj(v) ? v : {});

/** `v` when it is a string, else "". */
export const str = (v: unknown): string => (typeof v === "string" ? v : "");

/** `v` as a non-negative whole count (tokens), else 0. */
export const count = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? Math.floor(v) : 0);

/** `v` as a non-negative number (seconds), else 0. */
export const amount = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : 0);
