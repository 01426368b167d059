// Hessian extreme eigenvalues over a 1D or 2D grid, theta + a d1 + b d2, stored
// as `max_eig` / `min_eig` in a surface file (the paper's |lambda_min /
// lambda_max| maps): resumable like loss surfaces (finished points flushed
// atomically, a rerun computes only what is missing, other inputs refused),
// either in a file of its own or added to an existing loss surface.

import { existsSync } from "node:fs";
import { createHvpSession } from "../autodiff/hvp.ts";
import { type Grid, gridSize, inShard, pointCoords, type Shard } from "../core/grid.ts";
import { combine } from "../core/vector.ts";
import type { Dataset } from "../data/dataset.ts";
import { type TaskOptions, taskIdentity } from "../engine/task.ts";
import { emptySurface, readSurface, type Surface, writeSurface } from "../formats/surface-file.ts";
import { dataHash, directionsHash, modelHash } from "../landscape/identity.ts";
import { resumeProblems } from "../landscape/surface.ts";
import type { Model } from "../model/model.ts";
import { type ExtremesOptions, type HessianExtremes, operatorExtremes } from "./hessian.ts";
import { hessianOperator, hessianTask } from "./hvp.ts";

/** What to compute and where. */
export interface HessianSurfaceJob {
  model: Model;
  /** The centre point. */
  theta: Float32Array;
  /** One direction (1D) or two (2D). */
  directions: readonly Float32Array[];
  grid: Grid;
  /** The data the Hessian is taken over (the training set or a seeded subset of it). */
  data: Dataset;
  /**
   * Surface file. Missing: created with `max_eig` and `min_eig` only. An existing loss surface of
   * the same model, parameters, directions and grid: the eigenvalues are added to it, at the
   * points whose loss is computed. An existing file with eigenvalues: resumed.
   */
  path: string;
  /** Direction file recorded as `dir_file` (new files). */
  dirFile: string;
  /** Extra metadata for a new file. */
  meta?: Record<string, string>;
  /** Compute only this shard's points. */
  shard?: Shard;
  /** Lanczos settings at every point (the seed is the same at every point). */
  hessian?: Pick<ExtremesOptions, "tol" | "maxIterations" | "seed">;
  /** Samples per ORT run (default 256). */
  batchSize?: number;
  /** The loss (default cross-entropy). */
  task?: TaskOptions;
  /** ONNX Runtime threads (default: all cores). */
  threads?: number;
  /** Seconds between flushes of finished points (default 10). */
  flushSeconds?: number;
  /** Called after every point with the number done (of this run) and the number to do. */
  onProgress?: (done: number, total: number, last: HessianExtremes) => void;
}

/** What a run did. */
export interface HessianSurfaceResult {
  /** The surface as written (every finished point included). */
  readonly surface: Surface;
  /** Points computed by this run. */
  readonly computed: number;
  /** Points of a loss surface skipped because their loss is not computed yet. */
  readonly skipped: number;
  /** Points (over all runs) where Lanczos ran out of iterations before the tolerance. */
  readonly unconverged: number;
}

/** Metadata keys that must agree to resume (or extend) the eigenvalues of a file. */
export const HESSIAN_IDENTITY_KEYS = [
  "hessian_data_hash",
  "hessian_tol",
  "hessian_max_iterations",
  "hessian_seed",
] as const;

/**
 * Computes (or resumes) lambda_max and lambda_min of the Hessian (filter weights, eval mode) at
 * every grid point; the file at `job.path` holds every finished point. Points whose eigenvalues
 * are NaN in a loss surface count as not computed.
 *
 * @example
 * const r = await hessianSurface({ model, theta, directions: [d1, d2], grid, data, path: "surf.h5", dirFile: "dirs.h5" });
 * r.surface.values.max_eig; // Float64Array(nx * ny)
 */
export async function hessianSurface(job: HessianSurfaceJob): Promise<HessianSurfaceResult> {
  const { grid, directions, theta, model } = job;
  const { tol = 1e-3, maxIterations = 100, seed = 0 } = job.hessian ?? {};
  const dims = grid.y ? 2 : 1;
  if (directions.length !== dims) {
    throw new Error(`hessianSurface(): a ${dims}D grid needs ${dims} direction(s), got ${directions.length}`);
  }
  if (theta.length !== model.size) {
    throw new Error(
      `hessianSurface(): 'theta' has ${theta.length} values but model '${model.name}' has ${model.size}`,
    );
  }
  for (const [k, d] of directions.entries()) {
    if (d.length !== theta.length)
      throw new Error(
        `hessianSurface(): direction ${k + 1} has ${d.length} values but theta has ${theta.length}`,
      );
  }
  const base = {
    model_hash: modelHash(model, theta),
    directions_hash: directionsHash(directions),
  };
  const settings: Record<(typeof HESSIAN_IDENTITY_KEYS)[number], string> = {
    hessian_data_hash: dataHash(job.data),
    hessian_tol: String(tol),
    hessian_max_iterations: String(maxIterations),
    hessian_seed: String(seed),
  };

  let surface: Surface;
  let lossSurface = false;
  if (existsSync(job.path)) {
    surface = readSurface(job.path);
    lossSurface = surface.values.train_loss !== undefined;
    const has = surface.values.max_eig !== undefined && surface.values.min_eig !== undefined;
    const shard = job.shard ? `${job.shard.index}/${job.shard.count}` : "all";
    // Eigenvalues already there: their settings must match too. A loss surface being extended keeps its own shard.
    const expected = {
      ...base,
      ...(has ? settings : {}),
      ...(lossSurface ? {} : { shard }),
      loss: taskIdentity(job.task ?? {}, model),
    };
    const problems = resumeProblems(surface, grid, expected);
    if (!has && !lossSurface) problems.push("the file has neither a loss nor Hessian eigenvalues");
    if (problems.length) {
      throw new Error(
        `cannot ${has ? "resume" : "add Hessian eigenvalues to"} '${job.path}': it was computed from other inputs (${problems.join("; ")}). Use another output file, or delete this one to start over.`,
      );
    }
    if (!has) {
      surface.values.max_eig = new Float64Array(surface.done.length).fill(Number.NaN);
      surface.values.min_eig = new Float64Array(surface.done.length).fill(Number.NaN);
      surface.meta = { ...surface.meta, ...settings, hessian_unconverged: "0" };
      writeSurface(job.path, surface);
    }
  } else {
    // A file of its own: the same identity keys as a loss surface (so shards merge), the data
    // being the Hessian's.
    surface = emptySurface(grid.x, grid.y, ["max_eig", "min_eig"], job.dirFile, {
      ...job.meta,
      ...base,
      train_hash: settings.hessian_data_hash,
      test_hash: "none",
      loss: taskIdentity(job.task ?? {}, model),
      shard: job.shard ? `${job.shard.index}/${job.shard.count}` : "all",
      ...settings,
      hessian_unconverged: "0",
    });
    writeSurface(job.path, surface);
  }

  const maxEig = surface.values.max_eig!;
  const minEig = surface.values.min_eig!;
  const todo: number[] = [];
  let skipped = 0;
  for (let k = 0; k < gridSize(grid); k++) {
    if (!inShard(k, job.shard)) continue;
    if (!lossSurface) {
      if (!surface.done[k]) todo.push(k);
    } else if (!surface.done[k]) skipped++;
    else if (Number.isNaN(maxEig[k]!) || Number.isNaN(minEig[k]!)) todo.push(k);
  }
  let unconverged = Number(surface.meta["hessian_unconverged"] ?? "0") || 0;
  if (todo.length === 0) return { surface, computed: 0, skipped, unconverged };

  const session = await createHvpSession(model, {
    ...(job.threads ? { threads: job.threads } : {}),
    task: hessianTask(job.task ?? {}, job.data, "hessianSurface()"),
  });
  const params = new Float32Array(theta.length);
  const flushMs = (job.flushSeconds ?? 10) * 1000;
  let lastFlush = performance.now();
  let dirty = false;
  const flush = (): void => {
    surface.meta["hessian_unconverged"] = String(unconverged);
    writeSurface(job.path, surface);
    lastFlush = performance.now();
    dirty = false;
  };
  try {
    for (const [n, k] of todo.entries()) {
      combine(theta, directions, pointCoords(grid, k), params);
      const H = await hessianOperator(model, params, job.data, {
        session,
        ...(job.task ? { task: job.task } : {}),
        ...(job.batchSize ? { batchSize: job.batchSize } : {}),
      });
      let e: HessianExtremes;
      try {
        e = await operatorExtremes(H, { tol, maxIterations, seed });
      } finally {
        await H.dispose();
      }
      maxEig[k] = e.max;
      minEig[k] = e.min;
      if (!e.converged) unconverged++;
      surface.done[k] = 1;
      dirty = true;
      job.onProgress?.(n + 1, todo.length, e);
      if (performance.now() - lastFlush >= flushMs) flush();
    }
  } finally {
    if (dirty) flush();
    await session.dispose();
  }
  return { surface, computed: todo.length, skipped, unconverged };
}
