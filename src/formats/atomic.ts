// Atomic file writes: bytes go to a temporary file beside the target, which is
// then renamed over it, so a crash or a bad input never leaves a half-written
// or clobbered result.

import { renameSync, rmSync, writeFileSync } from "node:fs";

/**
 * Writes `bytes` to `path` atomically (temporary file + rename).
 *
 * @example
 * writeFileAtomic("surface.h5", bytes);
 */
export function writeFileAtomic(path: string, bytes: Uint8Array | string): void {
  const temporary = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(temporary, bytes);
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}
