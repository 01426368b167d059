// Many random planes around one model: K seeded filter-normalized 2D surfaces,
// each a normal resumable surface file, and the spread of a per-plane
// sharpness across them, so that a single random plane is not over-read
// (docs/landscapes.md, "Many random planes").

import type { Surface } from "../formats/surface-file.ts";
import type { Model } from "../model/model.ts";
import { type DirectionPlan, directionsAt, makeDirections } from "./plan.ts";
import { computeSurface, type SurfaceJob } from "./surface.ts";

/** The sharpness of one plane's loss around its centre. */
export interface PlaneSharpness {
  /** Loss at the centre: the grid point (0, 0), or the fit's constant when the grid lacks it. */
  readonly centre: number;
  readonly centreFrom: "grid" | "fit";
  /** Mean of L(a, b) - centre over the points with 0 < sqrt(a^2 + b^2) <= radius. */
  readonly meanIncrease: number;
  /** Points within the radius used (the centre included in the fit, not in the mean). */
  readonly points: number;
  /**
   * Eigenvalues (descending) of the Hessian of the least-squares quadratic
   * c + g.x + x^T A x / 2 fitted to the points within the radius: curvatures along the plane,
   * per unit of the (filter-normalized) direction coordinates. NaN with fewer than 6 points.
   */
  readonly curvatures: readonly [number, number];
  /** Root-mean-square residual of that fit. */
  readonly fitRms: number;
}

/** Solves the n x n system M x = r (row-major, copied) by Gaussian elimination with partial pivoting. */
function solve(m: Float64Array, r: Float64Array, n: number): Float64Array | undefined {
  const a = m.slice();
  const b = r.slice();
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let i = c + 1; i < n; i++) if (Math.abs(a[i * n + c]!) > Math.abs(a[p * n + c]!)) p = i;
    if (Math.abs(a[p * n + c]!) < 1e-300) return undefined;
    if (p !== c) {
      for (let j = 0; j < n; j++) [a[c * n + j], a[p * n + j]] = [a[p * n + j]!, a[c * n + j]!];
      [b[c], b[p]] = [b[p]!, b[c]!];
    }
    for (let i = c + 1; i < n; i++) {
      const f = a[i * n + c]! / a[c * n + c]!;
      for (let j = c; j < n; j++) a[i * n + j] = a[i * n + j]! - f * a[c * n + j]!;
      b[i] = b[i]! - f * b[c]!;
    }
  }
  const x = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = b[i]!;
    for (let j = i + 1; j < n; j++) s -= a[i * n + j]! * x[j]!;
    x[i] = s / a[i * n + i]!;
  }
  return x;
}

/**
 * The sharpness of a 2D surface around its centre (see PlaneSharpness), from the computed, finite
 * values of `quantity` within `radius` of (0, 0).
 *
 * @example
 * const s = planeSharpness(readSurface("surf.h5"), 0.5); // { meanIncrease, curvatures: [k1, k2], ... }
 */
export function planeSharpness(
  surface: Surface,
  radius: number,
  quantity: "train_loss" | "test_loss" = "train_loss",
): PlaneSharpness {
  const where = "planeSharpness()";
  if (!surface.y) throw new Error(`${where}: 'surface' is 1D; a plane needs a 2D surface`);
  if (!(radius > 0)) throw new Error(`${where}: 'radius' must be a positive number, got ${radius}`);
  const values = surface.values[quantity];
  if (!values) throw new Error(`${where}: the surface has no '${quantity}'`);
  const ny = surface.y.length;
  const pts: { a: number; b: number; v: number }[] = [];
  let atCentre: number | undefined;
  for (let i = 0; i < surface.x.length; i++)
    for (let j = 0; j < ny; j++) {
      const k = i * ny + j;
      const a = surface.x[i]!;
      const b = surface.y[j]!;
      const v = values[k]!;
      if (!surface.done[k] || !Number.isFinite(v) || Math.hypot(a, b) > radius * (1 + 1e-12)) continue;
      pts.push({ a, b, v });
      if (Math.abs(a) < 1e-12 && Math.abs(b) < 1e-12) atCentre = v;
    }
  // Least squares on the basis 1, a, b, a^2/2, ab, b^2/2.
  const basis = (a: number, b: number) => [1, a, b, (a * a) / 2, a * b, (b * b) / 2];
  const M = new Float64Array(36);
  const r = new Float64Array(6);
  for (const p of pts) {
    const f = basis(p.a, p.b);
    for (let i = 0; i < 6; i++) {
      r[i] = r[i]! + f[i]! * p.v;
      for (let j = 0; j < 6; j++) M[i * 6 + j] = M[i * 6 + j]! + f[i]! * f[j]!;
    }
  }
  const coef = pts.length >= 6 ? solve(M, r, 6) : undefined;
  let curvatures: [number, number] = [Number.NaN, Number.NaN];
  let fitRms = Number.NaN;
  if (coef) {
    const [h11, h12, h22] = [coef[3]!, coef[4]!, coef[5]!];
    const mid = (h11 + h22) / 2;
    const rad = Math.hypot((h11 - h22) / 2, h12);
    curvatures = [mid + rad, mid - rad];
    let s = 0;
    for (const p of pts) {
      const f = basis(p.a, p.b);
      s += (f.reduce((acc, x, i) => acc + x * coef[i]!, 0) - p.v) ** 2;
    }
    fitRms = Math.sqrt(s / pts.length);
  }
  const centre = atCentre ?? coef?.[0] ?? Number.NaN;
  const around = pts.filter((p) => Math.abs(p.a) >= 1e-12 || Math.abs(p.b) >= 1e-12);
  const meanIncrease = around.length
    ? around.reduce((s, p) => s + p.v - centre, 0) / around.length
    : Number.NaN;
  return {
    centre,
    centreFrom: atCentre !== undefined ? "grid" : "fit",
    meanIncrease,
    points: pts.length,
    curvatures,
    fitRms,
  };
}

/** Mean, sample standard deviation, min and max of some numbers (non-finite ones left out). */
export interface Spread {
  readonly mean: number;
  readonly sd: number;
  readonly min: number;
  readonly max: number;
  readonly count: number;
}

/**
 * The spread of a list of values: mean, sample standard deviation (n - 1; NaN for one value), min, max.
 *
 * @example
 * spread([1, 2, 3]); // { mean: 2, sd: 1, min: 1, max: 3, count: 3 }
 */
export function spread(values: readonly number[]): Spread {
  const v = values.filter(Number.isFinite);
  const n = v.length;
  if (n === 0) return { mean: Number.NaN, sd: Number.NaN, min: Number.NaN, max: Number.NaN, count: 0 };
  const mean = v.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(v.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1)) : Number.NaN;
  return { mean, sd, min: Math.min(...v), max: Math.max(...v), count: n };
}

/**
 * File names of plane k of a --planes run on `out`: surf.h5 -> surf-plane0.h5 with its direction
 * file surf-plane0.directions.h5.
 *
 * @example
 * planeFiles("surf.h5", 2); // { path: "surf-plane2.h5", dirFile: "surf-plane2.directions.h5" }
 */
export function planeFiles(out: string, k: number): { path: string; dirFile: string } {
  const stem = `${out.replace(/\.h5$/, "")}-plane${k}`;
  return { path: `${stem}.h5`, dirFile: `${stem}.directions.h5` };
}

/** K random planes around one model. */
export interface PlanesJob
  extends Omit<SurfaceJob, "directions" | "path" | "dirFile" | "onProgress" | "shard"> {
  model: Model;
  /** The random-direction plan of the first plane (dims 2); plane k uses seed + 2k, so no two planes share a direction. */
  plan: DirectionPlan;
  /** Number of planes K. */
  planes: number;
  /** Base surface file name; the planes go to planeFiles(out, k). */
  out: string;
  /**
   * Radius of the per-plane sharpness (default: half the smaller of max |x| and max |y| of the grid,
   * at least sqrt(2) grid steps, so that the 3 x 3 block around the centre counts and the fit is determined).
   */
  radius?: number;
  /** Called before plane k is computed (its files and seed), and after every point of it. */
  onPlane?: (k: number, files: { path: string; dirFile: string; seed: number; created: boolean }) => void;
  onProgress?: (k: number, done: number, total: number) => void;
}

/** What a planes run produced. */
export interface PlanesResult {
  readonly radius: number;
  readonly planes: readonly ({ path: string; dirFile: string; seed: number } & PlaneSharpness)[];
  readonly meanIncrease: Spread;
  readonly curvatureMax: Spread;
  readonly curvatureMin: Spread;
}

/**
 * Computes K seeded random planes around `theta` with one engine (each plane a resumable surface
 * file with its own direction file), and the spread of their sharpness.
 *
 * @example
 * const r = await computePlanes({ model, engine, theta, grid, train, out: "surf.h5", planes: 8, plan: { dims: 2, seed: 0 } });
 * console.log(r.meanIncrease.mean, r.meanIncrease.sd);
 */
export async function computePlanes(job: PlanesJob): Promise<PlanesResult> {
  const { model, plan, planes, out, grid, onPlane, onProgress, radius: given, ...rest } = job;
  if (!Number.isInteger(planes) || planes < 1)
    throw new Error(`computePlanes(): 'planes' must be a positive integer, got ${planes}`);
  if (!grid.y) throw new Error("computePlanes(): the grid is 1D; planes need a 2D grid (x and y)");
  if (plan.dims !== 2) throw new Error(`computePlanes(): 'plan.dims' must be 2, got ${plan.dims}`);
  const extent = (a: Float64Array) => Math.max(...Array.from(a, Math.abs));
  const step = (a: Float64Array) => (a.length > 1 ? Math.abs(a[1]! - a[0]!) : 0);
  // At least the 3 x 3 block around the centre (its corners at sqrt(2) steps): enough points for the fit.
  const radius =
    given ??
    Math.max(Math.min(extent(grid.x), extent(grid.y)) / 2, Math.SQRT2 * Math.max(step(grid.x), step(grid.y)));
  if (!(radius > 0)) throw new Error(`computePlanes(): 'radius' must be a positive number, got ${radius}`);
  const results: PlanesResult["planes"][number][] = [];
  for (let k = 0; k < planes; k++) {
    const seed = plan.seed + 2 * k;
    const files = planeFiles(out, k);
    const { directions, created, meta } = directionsAt(
      files.dirFile,
      2,
      model,
      () => makeDirections(model, job.theta, { ...plan, seed }),
      { seed: String(seed), ...(plan.only ? { only: plan.only.source } : { only: "" }) },
    );
    onPlane?.(k, { ...files, seed, created });
    const surface = await computeSurface({
      ...rest,
      directions,
      grid,
      path: files.path,
      dirFile: files.dirFile,
      meta: {
        ...Object.fromEntries(Object.entries(meta).map(([key, v]) => [`direction_${key}`, v])),
        ...rest.meta,
        plane: `${k} of ${planes}`,
      },
      ...(onProgress ? { onProgress: (done: number, total: number) => onProgress(k, done, total) } : {}),
    });
    results.push({ ...files, seed, ...planeSharpness(surface, radius) });
  }
  return {
    radius,
    planes: results,
    meanIncrease: spread(results.map((p) => p.meanIncrease)),
    curvatureMax: spread(results.map((p) => p.curvatures[0])),
    curvatureMin: spread(results.map((p) => p.curvatures[1])),
  };
}
