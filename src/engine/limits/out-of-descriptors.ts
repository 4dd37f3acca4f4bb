/**
 * This process out of file descriptors (`EMFILE`, `ENFILE`) — on an upstream
 * connect, an upstream WebSocket, or a local engine's child process — is an
 * overload of the gateway, answered as one, never an upstream or internal
 * failure.
 */
import { Code } from "../code.js";
import { SpillwayError } from "../errors.js";

/** Whether a connect failure is this process's own file limit (`EMFILE`, `ENFILE`), not the upstream's. */
export function outOfDescriptors(e: unknown): boolean {
  for (let x: unknown = e, depth = 0; x instanceof Error && depth < 4; x = x.cause, depth++) {
    const code = (x as NodeJS.ErrnoException).code;
    if (code === "EMFILE" || code === "ENFILE") return true;
  }
  return false;
}

/**
 * The gateway cannot open a socket (out of file descriptors): an overload of
 * this process, answered as one — 503 `server_overloaded` (Retry-After 1 s), retryable, not the
 * upstream's fault (it does not count against the provider's circuit).
 */
export function gatewayOutOfDescriptors(provider: string): SpillwayError {
  return new SpillwayError(Code.Unavailable, `${provider}: the gateway is out of file descriptors (too many open connections or processes); retry shortly`, {
    httpStatus: 503,
    reason: "server_overloaded",
    retryable: true,
    retryAfterMs: 1000,
  });
}

