/**
 * What every front door (HTTP, WebSocket, gRPC) offers the gateway, so that
 * `gateway.ts` starts and stops them all in one sequence: `drain` (refuse new
 * work, each door in its own way: 503, UNAVAILABLE, a refused upgrade), wait
 * while anything is `active`, then `close(graceMs)` (end what is left with
 * the door's own signal once `graceMs` has passed, and stop listening).
 */
export interface Door {
  /** `http`, `ws`, `grpc`: for logs and metrics. */
  readonly name: string;
  /** Requests, calls or sessions in progress. */
  readonly active: number;
  /** Refuses new work from now on; what is in progress goes on. */
  drain(): void;
  /**
   * Lets what is in progress end on its own for up to `graceMs`, then ends
   * the rest (each door's own signal), closes connections and listeners.
   */
  close(graceMs: number): Promise<void>;
}
