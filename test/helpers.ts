// Shared test helpers: tolerance comparisons, temporary folders and the CLI as a user runs it.

import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "vitest";

/** Asserts |a - b| <= atol + rtol * |b| elementwise, reporting the worst index. */
export function expectAllClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { rtol = 1e-6, atol = 0 }: { rtol?: number; atol?: number } = {},
): void {
  expect(actual.length).toBe(expected.length);
  let worst = -1;
  let excess = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i] as number;
    const b = expected[i] as number;
    const over = Math.abs(a - b) - (atol + rtol * Math.abs(b));
    if (over > excess || Number.isNaN(over)) {
      excess = Number.isNaN(over) ? Infinity : over;
      worst = i;
    }
  }
  if (worst >= 0) {
    throw new Error(
      `values differ at index ${worst}: ${actual[worst]} vs ${expected[worst]} (rtol ${rtol}, atol ${atol})`,
    );
  }
}

/** A fresh temporary folder, removed by the returned cleanup function. */
export function tempDir(prefix = "losscape-test-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Largest |a - b| over max |b| (the largest |a - b| itself where b is all zeros). */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return scale === 0 ? diff : diff / scale;
}

const BIN = new URL("../bin/losscape.js", import.meta.url).pathname;

/** Runs `losscape ...args` (bin/losscape.js, CI=true: plain progress lines); exit code, stdout, stderr. */
export function runCli(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: "utf8",
    env: { ...process.env, CI: "true" },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
