// Atomic file writes: bytes go to a temporary file beside the target, which is
// then renamed over it, so a crash or a bad input never leaves a half-written
// or clobbered result. A process killed mid-write (kill -9) leaves its
// temporary behind; the next writer of the same file removes it.

import { readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";

/** Files whose stale temporaries this process has already looked for. */
const swept = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Removes `path.tmp-PID` files left by processes that no longer run (once per path and process). */
function sweepTemporaries(path: string): void {
  if (swept.has(path)) return;
  swept.add(path);
  const prefix = `${basename(path)}.tmp-`;
  let names: string[];
  try {
    names = readdirSync(dirname(path));
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length));
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !alive(pid))
      rmSync(join(dirname(path), name), { force: true });
  }
}

/**
 * Writes `bytes` to `path` atomically (temporary file + rename).
 *
 * @example
 * writeFileAtomic("surface.h5", bytes);
 */
export function writeFileAtomic(path: string, bytes: Uint8Array | string): void {
  sweepTemporaries(path);
  const temporary = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(temporary, bytes);
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}
