// Golden-file checks for figures (Observable Plot's snapshot tests): an SVG is
// compared with test/plot/golden/<name>.svg; on a mismatch the new SVG is
// written beside it as <name>-changed.svg and the test fails. Goldens are
// written only with UPDATE_GOLDENS=1, and never when CI is set (in CI a
// missing golden is a failure).

import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const DIR = new URL("./golden/", import.meta.url).pathname;

/** Re-rounds every number to 3 decimals, so goldens compare after rounding. */
export function normalizeSvg(svg: string): string {
  return svg.replace(/-?\d+\.\d+(?:e[-+]?\d+)?/g, (m) => {
    const r = Math.round(Number(m) * 1000) / 1000;
    return r === 0 ? "0" : String(r);
  });
}

/** Compares `svg` with the golden `name`; throws with a clear message on a mismatch. */
export function expectGolden(name: string, svg: string): void {
  const golden = join(DIR, `${name}.svg`);
  const changed = join(DIR, `${name}-changed.svg`);
  const update = process.env["UPDATE_GOLDENS"] === "1" && !process.env["CI"];
  if (!existsSync(golden)) {
    if (update) {
      writeFileSync(golden, svg);
      return;
    }
    writeFileSync(changed, svg);
    throw new Error(
      `golden ${name}.svg is missing (wrote ${name}-changed.svg); create it with UPDATE_GOLDENS=1 npx vitest run test/plot${process.env["CI"] ? " (never in CI)" : ""}`,
    );
  }
  const want = readFileSync(golden, "utf8");
  if (normalizeSvg(want) === normalizeSvg(svg)) {
    rmSync(changed, { force: true });
    return;
  }
  if (update) {
    writeFileSync(golden, svg);
    rmSync(changed, { force: true });
    return;
  }
  writeFileSync(changed, svg);
  const a = want.split("\n");
  const b = svg.split("\n");
  const line = a.findIndex((l, k) => l !== b[k]);
  throw new Error(
    `figure ${name} differs from its golden at line ${line + 1}:\n  golden:  ${a[line]?.slice(0, 200)}\n  now:     ${b[line]?.slice(0, 200)}\nwrote ${changed}; if the change is intended, rerun with UPDATE_GOLDENS=1`,
  );
}
