import { execFile } from "node:child_process";
import { constants, open } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";

const run = promisify(execFile);
/** A raw descriptor (not a FileHandle, which would close it when collected). */
const openFd = promisify(open);

/**
 * A named pipe in a private temporary directory. Some tools (pocketsphinx
 * 5prealpha) only read audio from a path they `fopen`, and Node's stdio
 * pipes are socket pairs, which `/dev/stdin` cannot open; a FIFO gives such
 * a tool a path that streams.
 */
export interface Fifo {
  readonly path: string;
  /** Removes the FIFO and its directory. */
  remove(): Promise<void>;
}

/** Creates a FIFO (with coreutils' `mkfifo`). */
export async function createFifo(): Promise<Fifo> {
  const dir = await mkdtemp(join(tmpdir(), "spillway-fifo-"));
  const path = join(dir, "audio");
  try {
    await run("mkfifo", ["-m", "600", path]);
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return { path, remove: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * Opens the write end of a FIFO as a non-blocking socket once its reader
 * has opened it (a write-only open fails with ENXIO until then), polling
 * while `alive()` says the reader may still come. Returns undefined when it
 * never does.
 */
export async function openFifoWriter(path: string, alive: () => boolean, signal: AbortSignal): Promise<Socket | undefined> {
  for (let wait = 5; alive() && !signal.aborted; wait = Math.min(wait * 2, 100)) {
    try {
      const fd = await openFd(path, constants.O_WRONLY | constants.O_NONBLOCK);
      return new Socket({ fd, readable: false, writable: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENXIO") throw e;
    }
    await sleep(wait);
  }
  return undefined;
}
