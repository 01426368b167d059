// Seeded synthetic surfaces for the figure tests: a paraboloid with a random
// bump, a non-square grid, a grid with diverged and not-computed points, and
// 1D curves. Deterministic: same seed, same numbers, same goldens.

import { axisValues } from "../../src/core/grid.ts";
import { Random } from "../../src/core/random.ts";
import type { Surface } from "../../src/formats/surface-file.ts";

/** loss(x, y) = 2 (x^2 + y^2) + a seeded Gaussian bump + small seeded noise. */
export function bumpySurface(nx: number, ny: number, seed = 1): Surface {
  const rng = new Random(seed);
  const x = axisValues({ min: -1, max: 1, num: nx });
  const y = axisValues({ min: -1, max: 1, num: ny });
  const bx = rng.range(-0.6, 0.6);
  const by = rng.range(-0.6, 0.6);
  const height = rng.range(0.5, 1);
  const loss = new Float64Array(nx * ny);
  const acc = new Float64Array(nx * ny);
  for (let i = 0; i < nx; i++) {
    for (let j = 0; j < ny; j++) {
      const xi = x[i]!;
      const yj = y[j]!;
      const v =
        0.1 +
        2 * (xi * xi + yj * yj) +
        height * Math.exp(-((xi - bx) ** 2 + (yj - by) ** 2) / 0.04) +
        0.02 * rng.uniform();
      loss[i * ny + j] = v;
      acc[i * ny + j] = 100 * Math.exp(-v / 2);
    }
  }
  return {
    x,
    y,
    values: { train_loss: loss, train_acc: acc },
    done: new Uint8Array(nx * ny).fill(1),
    dirFile: "synthetic.directions.h5",
    meta: { seed: String(seed) },
  };
}

/** The paraboloid x^2 + y^2 exactly. */
export function paraboloid(nx: number, ny: number, range = 1): Surface {
  const x = axisValues({ min: -range, max: range, num: nx });
  const y = axisValues({ min: -range, max: range, num: ny });
  const loss = new Float64Array(nx * ny);
  for (let i = 0; i < nx; i++) for (let j = 0; j < ny; j++) loss[i * ny + j] = x[i]! ** 2 + y[j]! ** 2;
  return { x, y, values: { train_loss: loss }, done: new Uint8Array(nx * ny).fill(1), dirFile: "", meta: {} };
}

/** The bumpy surface with a diverged corner region (NaN and Inf) and a not-computed strip. */
export function holeySurface(nx: number, ny: number, seed = 2): Surface {
  const s = bumpySurface(nx, ny, seed);
  const loss = s.values.train_loss!;
  const acc = s.values.train_acc!;
  for (let i = 0; i < nx; i++) {
    for (let j = 0; j < ny; j++) {
      const k = i * ny + j;
      if (i >= nx - 3 && j >= ny - 3) {
        loss[k] = (i + j) % 2 === 0 ? Number.NaN : Number.POSITIVE_INFINITY;
        acc[k] = Number.NaN;
      }
      if (j === 1 && i < nx / 2) {
        loss[k] = Number.NaN;
        acc[k] = Number.NaN;
        s.done[k] = 0;
      }
    }
  }
  return s;
}

/** A 1D surface: train/test loss and accuracy along one direction, seeded noise, optional NaN gap. */
export function curve1D(n: number, seed = 3, { sharpness = 4, gap = false } = {}): Surface {
  const rng = new Random(seed);
  const x = axisValues({ min: -1, max: 1, num: n });
  const trainLoss = new Float64Array(n);
  const testLoss = new Float64Array(n);
  const trainAcc = new Float64Array(n);
  const testAcc = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const a = x[i]!;
    trainLoss[i] = 0.05 + sharpness * a * a + 0.02 * rng.uniform();
    testLoss[i] = 0.3 + sharpness * a * a * 1.1 + 0.02 * rng.uniform();
    trainAcc[i] = 100 / (1 + trainLoss[i]! ** 2);
    testAcc[i] = 92 / (1 + testLoss[i]! ** 2);
  }
  const done = new Uint8Array(n).fill(1);
  if (gap) {
    const k = Math.floor(n * 0.8);
    trainLoss[k] = Number.NaN;
    testLoss[k] = Number.POSITIVE_INFINITY;
    trainAcc[k] = Number.NaN;
    testAcc[k] = Number.NaN;
  }
  return {
    x,
    y: null,
    values: { train_loss: trainLoss, test_loss: testLoss, train_acc: trainAcc, test_acc: testAcc },
    done,
    dirFile: "",
    meta: {},
  };
}
