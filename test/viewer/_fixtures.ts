// Seeded surface folders for the viewer tests: closed-form surfaces (a
// paraboloid and a steeper one), a 1D surface and an interpolation, a PCA
// direction file with its projected trajectory, a plain direction file, and a
// corrupt .h5 file. Values are known exactly, so tests compare what the page
// shows with what the file holds.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeDirectionFile } from "../../src/formats/direction-file.ts";
import { encodeH5 } from "../../src/formats/h5.ts";
import { emptySurface, type Surface, writeSurface } from "../../src/formats/surface-file.ts";

function linspace(a: number, b: number, n: number): Float64Array {
  return Float64Array.from({ length: n }, (_, k) => (n === 1 ? a : a + ((b - a) * k) / (n - 1)));
}

/** loss(x, y) = 0.1 + scale * (x^2 + 2 y^2), on a non-square grid, with eigenvalues and two NaN points. */
export function paraboloid({
  nx = 15,
  ny = 11,
  scale = 1,
  dirFile = "pca.h5",
}: {
  nx?: number;
  ny?: number;
  scale?: number;
  dirFile?: string;
} = {}): Surface {
  const x = linspace(-1, 1, nx);
  const y = linspace(-1, 1, ny);
  const s = emptySurface(
    x,
    y,
    ["train_loss", "train_acc", "test_loss", "test_acc", "max_eig", "min_eig"],
    dirFile,
    { seed: "0", direction_normalization: "filter" },
  );
  for (let i = 0; i < nx; i++) {
    for (let j = 0; j < ny; j++) {
      const k = i * ny + j;
      const loss = 0.1 + scale * (x[i]! ** 2 + 2 * y[j]! ** 2);
      s.values.train_loss![k] = loss;
      s.values.train_acc![k] = 100 - 20 * Math.min(loss, 5);
      s.values.test_loss![k] = loss + 0.05;
      s.values.test_acc![k] = 95 - 20 * Math.min(loss, 4.75);
      s.values.max_eig![k] = 10 + 5 * x[i]!;
      s.values.min_eig![k] = -2 * x[i]! * y[j]!;
      s.done[k] = 1;
    }
  }
  // A diverged point (computed, NaN) and a point not computed yet, in a corner.
  const diverged = (nx - 1) * ny + (ny - 1);
  for (const v of Object.values(s.values)) v[diverged] = Number.NaN;
  const pending = 0;
  for (const v of Object.values(s.values)) v[pending] = Number.NaN;
  s.done[pending] = 0;
  return s;
}

/** A 1D surface: loss 0.2 + x^2 over -1..1 (or an interpolation over -0.5..1.5). */
export function curve({ interpolation = false, n = 21 } = {}): Surface {
  const x = interpolation ? linspace(-0.5, 1.5, n) : linspace(-1, 1, n);
  const s = emptySurface(
    x,
    null,
    ["train_loss", "train_acc", "test_loss", "test_acc"],
    "line.directions.h5",
    {
      ...(interpolation ? { kind: "interpolation" } : {}),
    },
  );
  for (let i = 0; i < n; i++) {
    const loss = interpolation ? 0.3 + 4 * (x[i]! * (x[i]! - 1)) ** 2 + 0.2 * x[i]! : 0.2 + x[i]! ** 2;
    s.values.train_loss![i] = loss;
    s.values.train_acc![i] = Math.max(0, 100 - 30 * loss);
    s.values.test_loss![i] = loss + 0.1;
    s.values.test_acc![i] = Math.max(0, 95 - 30 * loss);
    s.done[i] = 1;
  }
  return s;
}

/** The projected path of 8 checkpoints toward the centre, in a reference projection file. */
export const TRAJECTORY = {
  x: [0.8, 0.62, 0.45, 0.3, 0.18, 0.09, 0.03, 0],
  y: [-0.6, -0.38, -0.2, -0.05, 0.04, 0.06, 0.03, 0],
  ratio: [0.482, 0.153] as const,
};

/**
 * Writes the standard viewer folder:
 * - `paraboloid.h5` (15x11, Hessian, trajectory via `pca.h5`), `steep.h5` (3x steeper, 21x21),
 * - `line.h5` (1D), `interp.h5` (interpolation), `pca.h5` (PCA directions) and
 *   `pca.h5_proj_cos.h5` (trajectory), `plain.directions.h5` (a direction file),
 * - `broken.h5` (not HDF5), `notes.txt` (ignored), and `sub/deeper.h5` (found recursively).
 */
export function writeViewerFolder(dir: string): void {
  mkdirSync(join(dir, "sub"), { recursive: true });
  writeSurface(join(dir, "paraboloid.h5"), paraboloid());
  writeSurface(
    join(dir, "steep.h5"),
    paraboloid({ nx: 21, ny: 21, scale: 3, dirFile: "plain.directions.h5" }),
  );
  writeSurface(join(dir, "sub", "deeper.h5"), paraboloid({ nx: 5, ny: 5, dirFile: "none.h5" }));
  writeSurface(join(dir, "line.h5"), curve());
  writeSurface(join(dir, "interp.h5"), curve({ interpolation: true, n: 41 }));
  const tensor = (v: number) => ({ name: "fc.weight", shape: [2, 2], data: Float32Array.of(v, v, v, v) });
  writeDirectionFile(join(dir, "pca.h5"), {
    x: [tensor(1)],
    y: [tensor(2)],
    meta: {},
    explainedVarianceRatio: Float64Array.from(TRAJECTORY.ratio),
  });
  writeDirectionFile(join(dir, "plain.directions.h5"), { x: [tensor(1)], y: [tensor(3)], meta: {} });
  writeFileSync(
    join(dir, "pca.h5_proj_cos.h5"),
    encodeH5({
      kind: "group",
      children: {
        proj_xcoord: { kind: "dataset", data: Float64Array.from(TRAJECTORY.x), shape: [TRAJECTORY.x.length] },
        proj_ycoord: { kind: "dataset", data: Float64Array.from(TRAJECTORY.y), shape: [TRAJECTORY.y.length] },
      },
    }),
  );
  writeFileSync(join(dir, "broken.h5"), "this is not an HDF5 file\n");
  writeFileSync(join(dir, "notes.txt"), "not a surface\n");
}
