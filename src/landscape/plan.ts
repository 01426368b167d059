// Directions for a surface, created from a seed or read from a direction
// file, and stored so that every shard and every rerun uses the same ones.

import { existsSync } from "node:fs";
import {
  type DirectionMode,
  modelDirection,
  movedParameters,
  type Normalization,
  orthogonalize,
  randomDirection,
} from "../core/directions.ts";
import { lanczosEigenpairs } from "../core/lanczos.ts";
import { type HvpOptions, hessianOperator } from "../curvature/hvp.ts";
import { type Dataset, datasetSize } from "../data/dataset.ts";
import { type DirectionFile, readDirectionFile, writeDirectionFile } from "../formats/direction-file.ts";
import type { Model } from "../model/model.ts";
import { directionFromTensors, directionTensors } from "./direction-io.ts";

/** How to make random directions. */
export interface DirectionPlan {
  /** 1 for a line, 2 for a plane. */
  dims: 1 | 2;
  /** Seed of the first direction; the second uses seed + 1. */
  seed: number;
  normalization?: Normalization;
  ignoreBiasBN?: boolean;
  mode?: DirectionMode;
  /** Make the second direction orthogonal to the first (Gram-Schmidt). */
  orthogonal?: boolean;
  /** Move only the tensors whose names match. */
  only?: RegExp;
}

/**
 * Random directions (filter-normalized by default) around theta, with the file that stores them.
 *
 * @example
 * const { directions, file } = makeDirections(model, theta, { dims: 2, seed: 0 });
 */
export function makeDirections(
  model: Model,
  theta: Float32Array,
  plan: DirectionPlan,
): { directions: Float32Array[]; file: DirectionFile } {
  const {
    dims,
    seed,
    normalization = "filter",
    ignoreBiasBN = true,
    mode = "weights",
    orthogonal = false,
    only,
  } = plan;
  const options = { normalization, ignoreBiasBN, mode, ...(only ? { only } : {}) };
  const d1 = randomDirection(theta, model.params, { seed, ...options });
  const directions = [d1];
  let cosine = "";
  if (dims === 2) {
    const d2 = randomDirection(theta, model.params, { seed: seed + 1, ...options });
    if (orthogonal) cosine = String(orthogonalize(d2, d1));
    directions.push(d2);
  }
  const meta: Record<string, string> = {
    kind: "random",
    seed: String(seed),
    normalization,
    ignore: ignoreBiasBN ? "biasbn" : "none",
    mode,
    model: model.name,
    orthogonal: String(orthogonal),
    ...(cosine ? { cosine_before_orthogonalization: cosine } : {}),
    ...(only ? { only: only.source } : {}),
  };
  return { directions, file: directionFileOf(model, directions, mode, meta) };
}

/**
 * The direction from model A's parameters to model B's (for interpolation), with its file.
 *
 * @example
 * const { directions } = makeModelDirection(model, initial, trained);
 */
export function makeModelDirection(
  model: Model,
  thetaA: Float32Array,
  thetaB: Float32Array,
  {
    normalization = "none",
    mode = "states",
    only,
  }: { normalization?: Normalization; mode?: DirectionMode; only?: RegExp } = {},
): { directions: Float32Array[]; file: DirectionFile } {
  const d = modelDirection(thetaA, thetaB, model.params, { normalization, mode, ...(only ? { only } : {}) });
  const meta: Record<string, string> = {
    kind: "between-models",
    normalization,
    mode,
    model: model.name,
    ...(only ? { only: only.source } : {}),
  };
  return { directions: [d], file: directionFileOf(model, [d], mode, meta) };
}

/**
 * Hessian-eigenvector axes: `hessian` takes the eigenvectors of the two largest eigenvalues,
 * `hessian-min` those of the largest and the smallest (most negative) one; a 1D line takes the
 * largest (`hessian`) or the smallest (`hessian-min`).
 */
export type HessianAxes = "hessian" | "hessian-min";

/** All Hessian axis kinds, for validation and help texts. */
export const HESSIAN_AXES: readonly HessianAxes[] = ["hessian", "hessian-min"];

/** How to make Hessian-eigenvector directions. */
export interface HessianDirectionPlan extends HvpOptions {
  axes: HessianAxes;
  dims: 1 | 2;
  /**
   * Length of each direction: "filter" (default) scales the unit eigenvector to the norm of the
   * filter weights, ||theta_filters||, the total norm a filter-normalized random direction has, so
   * that a = 1 is as long a step as on a random filter-normalized plane (the eigenvector is not
   * rescaled filter by filter: that would turn it off the eigenvector); "none" keeps unit norm.
   */
  scale?: "filter" | "none";
  /** Lanczos tolerance on each requested pair's residual bound, relative to max |Ritz value| (default 1e-4). */
  tol?: number;
  /** At most this many Lanczos products (default 200). */
  maxIterations?: number;
  /** Seed of the Lanczos start vector (default 0). */
  seed?: number;
  /** Called after each Lanczos product. */
  onIteration?: (k: number) => void;
}

/**
 * Directions along Hessian eigenvectors at theta (filter weights, eval mode, the loss over `data`),
 * by Lanczos with full reorthogonalization on exact Hessian-vector products, with the file that
 * stores them. Each eigenpair's residual ||H u - lambda u|| (unit u) is computed with one more product
 * and recorded beside the Lanczos bound.
 *
 * @example
 * const { directions, eigenvalues, residuals } = await makeHessianDirections(model, theta, data, { axes: "hessian", dims: 2 });
 */
export async function makeHessianDirections(
  model: Model,
  theta: Float32Array,
  data: Dataset,
  plan: HessianDirectionPlan,
): Promise<{
  directions: Float32Array[];
  file: DirectionFile;
  eigenvalues: number[];
  residuals: number[];
  iterations: number;
  converged: boolean;
}> {
  const {
    axes,
    dims,
    scale = "filter",
    tol = 1e-4,
    maxIterations = 200,
    seed = 0,
    onIteration,
    ...hvp
  } = plan;
  const where = "makeHessianDirections()";
  if (!HESSIAN_AXES.includes(axes))
    throw new Error(
      `${where}: unknown 'axes' '${axes as string}'; expected one of ${HESSIAN_AXES.join(", ")}`,
    );
  if (scale !== "filter" && scale !== "none")
    throw new Error(`${where}: 'scale' must be "filter" or "none", got '${scale as string}'`);
  const largest = axes === "hessian" ? dims : dims === 2 ? 1 : 0;
  const smallest = axes === "hessian-min" ? 1 : 0;
  const H = await hessianOperator(model, theta, data, hvp);
  try {
    const e = await lanczosEigenpairs((v) => H.hvp(v), model.size, {
      largest,
      smallest,
      seed,
      tol,
      maxIterations,
      mask: H.mask,
      ...(onIteration ? { onIteration } : {}),
    });
    const residuals: number[] = [];
    for (const [k, u] of e.vectors.entries()) {
      const hu = await H.hvp(u);
      let r = 0;
      for (let i = 0; i < u.length; i++)
        r += ((hu[i] as number) - (e.values[k] as number) * (u[i] as number)) ** 2;
      residuals.push(Math.sqrt(r));
    }
    let thetaNorm = 0;
    for (let i = 0; i < theta.length; i++) if (H.mask[i]) thetaNorm += (theta[i] as number) ** 2;
    const length = scale === "filter" ? Math.sqrt(thetaNorm) : 1;
    const directions = e.vectors.map((u) => u.map((v) => v * length));
    const meta: Record<string, string> = {
      kind: axes,
      normalization: scale === "filter" ? "eigenvector x ||theta_filters||" : "unit eigenvector",
      scale: String(length),
      eigenvalues: JSON.stringify(e.values),
      residuals: JSON.stringify(residuals),
      lanczos_residual_bounds: JSON.stringify(e.residuals),
      lanczos_tol: String(tol),
      lanczos_iterations: String(e.iterations),
      lanczos_converged: String(e.converged),
      lanczos_seed: String(seed),
      hessian_data: data.name,
      hessian_samples: String(datasetSize(data)),
      ignore: "biasbn",
      mode: "weights",
      model: model.name,
    };
    return {
      directions,
      file: directionFileOf(model, directions, "weights", meta),
      eigenvalues: e.values,
      residuals,
      iterations: e.iterations,
      converged: e.converged,
    };
  } finally {
    await H.dispose();
  }
}

function directionFileOf(
  model: Model,
  directions: Float32Array[],
  mode: DirectionMode,
  meta: Record<string, string>,
): DirectionFile {
  const moved = movedParameters(model.params, directions);
  return {
    x: directionTensors(model, directions[0]!, mode),
    y: directions[1] ? directionTensors(model, directions[1], mode) : null,
    // Which tensors move, for every file made from these directions (surfaces copy it).
    meta: { ...meta, moved: JSON.stringify(moved), moved_count: `${moved.length} of ${model.params.length}` },
  };
}

/**
 * Flat directions for `model` from a direction file (losscape's, or the reference code's matched by position and shape).
 *
 * @example
 * const [d1, d2] = loadDirections(model, "resnet56_dirs.h5");
 */
export function loadDirections(model: Model, path: string): Float32Array[] {
  const file = readDirectionFile(path);
  const out = [directionFromTensors(model, file.x, `${path} xdirection`)];
  if (file.y) out.push(directionFromTensors(model, file.y, `${path} ydirection`));
  return out;
}

/**
 * Uses the direction file at `path` if it exists (checking it has `dims` directions), else creates it
 * with `create` and writes it atomically (unless `write` is false: --plan writes nothing). Returns the directions and the file's metadata (seed, normalization, ...).
 *
 * @example
 * const dirs = directionsAt("dirs.h5", 2, model, () => makeDirections(model, theta, { dims: 2, seed: 0 }));
 */
export function directionsAt(
  path: string,
  dims: number,
  model: Model,
  create: () => { directions: Float32Array[]; file: DirectionFile },
  expected: Record<string, string> = {},
  { write = true }: { write?: boolean } = {},
): { directions: Float32Array[]; created: boolean; meta: Record<string, string> } {
  if (existsSync(path)) {
    const directions = loadDirections(model, path);
    if (directions.length !== dims) {
      throw new Error(
        `direction file '${path}' holds ${directions.length} direction(s) but a ${dims}D surface needs ${dims}`,
      );
    }
    const meta = readDirectionFile(path).meta;
    for (const [key, want] of Object.entries(expected)) {
      const have = meta[key] ?? "";
      if (have !== want)
        throw new Error(
          `direction file '${path}' was made with ${key} '${have || "(none)"}', not '${want || "(none)"}'; delete it or give another --dir-file`,
        );
    }
    return { directions, created: false, meta };
  }
  const made = create();
  if (write) writeDirectionFile(path, made.file);
  return { directions: made.directions, created: true, meta: made.file.meta };
}
