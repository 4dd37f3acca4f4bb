import { spawn } from "node:child_process";
import type { Writable } from "node:stream";
import { Code } from "../engine/code.js";
import { SpillwayError } from "../engine/errors.js";
import { gatewayOutOfDescriptors, outOfDescriptors } from "../engine/limits/out-of-descriptors.js";
import { createFifo, openFifoWriter, type Fifo } from "./fifo.js";

/** Most bytes of a child's stderr kept for error messages. */
const STDERR_TAIL = 4096;

/** The placeholder in {@link ChildSpec.args} replaced by the FIFO's path when `inputFifo` is set. */
export const FIFO_ARG = "{fifo}";

/** How to run one child process through {@link runThrough}. */
export interface ChildSpec {
  readonly command: string;
  readonly args: readonly string[];
  /** Bytes for the child, pulled only as fast as it reads them; the input is closed after. */
  readonly input?: AsyncIterable<Uint8Array> | Iterable<Uint8Array> | undefined;
  /**
   * Deliver `input` through a named pipe whose path replaces {@link FIFO_ARG}
   * in `args`, for tools that open a path rather than read stdin.
   */
  readonly inputFifo?: boolean | undefined;
  /** Kills the child (SIGKILL) when aborted; the generator then throws the reason. */
  readonly signal: AbortSignal;
  /**
   * Turns a non-zero exit into the error to throw, given the tail of stderr.
   * Defaults to an `Internal` error naming the command.
   */
  readonly onFailure?: ((stderr: string, code: number | null) => SpillwayError) | undefined;
}

/**
 * Runs a child process as a stream transform: `input` is written to it
 * (respecting the pipe's backpressure) while its stdout is yielded chunk by
 * chunk as it is produced. Whatever ends the generator — the child exiting,
 * the consumer stopping early (`return()`), an abort, or `input` throwing —
 * the child is killed if still running and awaited, so it is always reaped
 * (no zombies) before the generator settles. An error thrown by `input` is
 * rethrown as is (it usually names bad client audio).
 */
export async function* runThrough(spec: ChildSpec): AsyncGenerator<Buffer> {
  spec.signal.throwIfAborted();
  const fifo: Fifo | undefined = spec.inputFifo ? await createFifo() : undefined;
  const args = fifo ? spec.args.map((a) => (a === FIFO_ARG ? fifo.path : a)) : spec.args;
  const child = spawn(spec.command, args, { stdio: [fifo ? "ignore" : "pipe", "pipe", "pipe"] });
  let running = true;
  const exited = new Promise<{ code: number | null; error?: Error }>((resolve) => {
    child.once("error", (error) => {
      running = false;
      resolve({ code: null, error });
    });
    child.once("close", (code) => {
      running = false;
      resolve({ code });
    });
  });
  if (!child.stdout || !child.stderr) {
    // Spawning failed before the pipes existed (EMFILE/ENFILE: Node emits
    // 'error' on the next tick and leaves stdio unset): throw that error.
    const { error } = await exited;
    await fifo?.remove();
    throw spawnError(spec.command, error);
  }
  const stdout = child.stdout;
  const childStderr = child.stderr;
  let stderr = "";
  childStderr.setEncoding("utf8");
  childStderr.on("data", (s: string) => {
    stderr = (stderr + s).slice(-STDERR_TAIL);
  });
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  spec.signal.addEventListener("abort", kill, { once: true });
  let inputError: Error | undefined;
  let sink: Writable | undefined;
  if (spec.input) {
    const input = spec.input;
    // Not awaited: when the child ends first, the input may still be waiting for bytes.
    void (async () => {
      sink = fifo ? await openFifoWriter(fifo.path, () => running, spec.signal) : child.stdin!;
      if (sink) await feed(sink, input, () => running);
    })().catch((e: unknown) => {
      inputError = e instanceof Error ? e : SpillwayError.from(e);
      kill();
    });
  } else child.stdin?.end();
  try {
    for await (const chunk of stdout as AsyncIterable<Buffer>) {
      if (inputError !== undefined) break;
      yield chunk;
    }
    const { code, error } = await exited;
    spec.signal.throwIfAborted();
    if (inputError !== undefined) throw inputError;
    if (error) throw spawnError(spec.command, error);
    if (code !== 0) {
      throw spec.onFailure?.(stderr.trim(), code) ??
        new SpillwayError(Code.Internal, `${spec.command} failed (exit ${code}): ${lastLine(stderr)}`);
    }
  } finally {
    spec.signal.removeEventListener("abort", kill);
    kill();
    stdout.destroy();
    await exited;
    if (fifo) sink?.destroy();
    await fifo?.remove();
  }
}

/** Writes `input` to `sink`, waiting for `drain`; ends `sink` at the end. */
async function feed(sink: Writable, input: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, alive: () => boolean): Promise<void> {
  // A child that exits early closes the pipe: EPIPE is expected, not a failure of ours.
  sink.on("error", () => undefined);
  for await (const chunk of input) {
    if (sink.destroyed || !alive()) return;
    if (!sink.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          sink.off("drain", done);
          sink.off("close", done);
          resolve();
        };
        sink.on("drain", done);
        sink.on("close", done);
      });
    }
  }
  sink.end();
}

/** The last non-empty line of a text (a tool's final complaint). */
export function lastLine(text: string): string {
  const lines = text.trim().split(/\r?\n/);
  return lines[lines.length - 1] ?? "";
}

/** A child that could not start: this process out of descriptors is its overload (503 server_overloaded, retryable), anything else 503 naming the command. */
function spawnError(command: string, error: Error | undefined): SpillwayError {
  if (outOfDescriptors(error)) return gatewayOutOfDescriptors(command);
  return new SpillwayError(Code.Unavailable, `could not run ${command}: ${error?.message ?? "spawn failed"}`, { cause: error, httpStatus: 503 });
}
