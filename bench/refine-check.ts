// Check of --refine against a fully computed surface: replays the refinement on the file's values
// (the same rounds and interpolation computeSurface runs, src/landscape/surface.ts refineStep),
// and prints, per tolerance, the points it would compute and the max / mean error of the points it
// interpolates. Make the full plane with `npm run bench:figure -- --keep plane.h5` (--model cnn for
// the demo's CNN), then: npx tsx bench/refine-check.ts plane.h5 0.01 0.05 10%

import { POINT, readSurface, type Surface, type SurfaceQuantity } from "../src/formats/surface-file.ts";
import { parseRefine, refineStep } from "../src/landscape/surface.ts";

const [path, ...specs] = process.argv.slice(2);
if (!path || specs.length === 0)
  throw new Error("usage: bench/refine-check.ts <full surface.h5> <tol> [<tol> ...]");
const full = readSurface(path);
const n = full.done.length;
if (full.done.some((v) => v !== POINT.COMPUTED))
  throw new Error(`'${path}' is not fully computed: every point must have status computed`);
const loss = full.values.train_loss!;
console.log(
  `${path}: ${full.x.length} x ${full.y?.length ?? 1} points, train loss ${Math.min(...loss).toFixed(3)} .. ${Math.max(...loss).toFixed(3)}`,
);
console.log("| --refine | rounds | points computed | max error | mean error |");
console.log("|---|---|---|---|---|");
for (const spec of specs.map((s) => parseRefine(s))) {
  const sim: Surface = {
    ...full,
    done: new Uint8Array(n),
    values: Object.fromEntries(
      Object.entries(full.values).map(([q, a]) => [q, new Float64Array(a.length).fill(Number.NaN)]),
    ),
    meta: { ...full.meta },
  };
  let rounds = 0;
  for (let todo = refineStep(sim, spec); todo.length > 0; todo = refineStep(sim, spec)) {
    rounds++;
    for (const k of todo) {
      for (const [q, a] of Object.entries(full.values)) sim.values[q as SurfaceQuantity]![k] = a[k]!;
      sim.done[k] = full.done[k]!;
    }
  }
  let worst = 0;
  let sum = 0;
  let interpolated = 0;
  for (let k = 0; k < n; k++) {
    if (sim.done[k] !== POINT.INTERPOLATED) continue;
    const e = Math.abs(sim.values.train_loss![k]! - loss[k]!);
    worst = Math.max(worst, e);
    sum += e;
    interpolated++;
  }
  const computed = n - interpolated;
  console.log(
    `| ${spec} | ${rounds} | ${computed} of ${n} (${((100 * computed) / n).toFixed(1)} %) | ${worst.toExponential(2)} | ${(interpolated ? sum / interpolated : 0).toExponential(2)} |`,
  );
}
