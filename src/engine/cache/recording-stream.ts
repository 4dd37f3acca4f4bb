import { Finish_Reason, type Chunk } from "../../gen/spillway/v1/chunk.js";
import type { EngineStream } from "../active-stream.js";
import type { ChunkPayload } from "../payload.js";
import type { Route } from "../router.js";

/** Rough bytes of a payload while recording (the stored size is measured exactly when it completes). */
function estimate(p: ChunkPayload): number {
  if (p.$case === "audio") return 32 + p.value.data.byteLength;
  let n = 32;
  for (const v of Object.values(p.value as unknown as Record<string, unknown>)) if (typeof v === "string") n += v.length;
  return n;
}

/**
 * A live stream passed through unchanged while its payloads are kept; when
 * its `finish` chunk goes by (a complete, successful stream) `onComplete`
 * gets them. An in-band error, a cancellation, `return()` before the finish,
 * a `CANCELLED` finish or more than `maxBytes` of payloads drop the
 * recording, so a failed or cut stream is never stored.
 */
export class RecordingStream implements EngineStream, AsyncIterator<Chunk> {
  private readonly inner: AsyncIterator<Chunk>;
  private payloads: ChunkPayload[] | undefined = [];
  private bytes = 0;

  constructor(
    private readonly stream: EngineStream,
    private readonly maxBytes: number,
    private readonly onComplete: (payloads: ChunkPayload[]) => void,
  ) {
    this.inner = stream[Symbol.asyncIterator]();
  }

  get id(): string {
    return this.stream.id;
  }
  get route(): Route {
    return this.stream.route;
  }
  get created(): number {
    return this.stream.created;
  }
  get signal(): AbortSignal {
    return this.stream.signal;
  }
  get labels(): Readonly<Record<string, string>> {
    return this.stream.labels;
  }

  [Symbol.asyncIterator](): AsyncIterator<Chunk> {
    return this;
  }

  next(): Promise<IteratorResult<Chunk>> {
    return this.inner.next().then(this.see);
  }

  return(value?: unknown): Promise<IteratorResult<Chunk>> {
    this.payloads = undefined;
    return this.inner.return?.(value) ?? Promise.resolve({ done: true, value: undefined });
  }

  cancel(reason?: unknown): void {
    this.payloads = undefined;
    this.stream.cancel(reason);
  }

  private readonly see = (r: IteratorResult<Chunk>): IteratorResult<Chunk> => {
    const kept = this.payloads;
    if (kept && !r.done && r.value.payload) {
      const p = r.value.payload;
      if (p.$case === "error" || (p.$case === "finish" && p.value.reason === Finish_Reason.REASON_CANCELLED)) {
        this.payloads = undefined;
      } else {
        kept.push(p);
        this.bytes += estimate(p);
        if (this.bytes > this.maxBytes) this.payloads = undefined;
        else if (p.$case === "finish") {
          this.payloads = undefined;
          this.onComplete(kept);
        }
      }
    } else if (r.done) {
      this.payloads = undefined;
    }
    return r;
  };
}
