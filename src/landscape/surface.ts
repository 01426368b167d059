// Computes a 1D or 2D loss surface f(a, b) = L(theta + a d1 + b d2) point by
// point into a resumable surface file: finished points are flushed atomically
// at regular intervals, a rerun computes only the points still missing, and a
// rerun with other inputs is refused instead of mixing results.

import { existsSync } from "node:fs";
import { type Grid, gridSize, inShard, pointCoords, type Shard } from "../core/grid.ts";
import { niceStep } from "../core/levels.ts";
import { coarseCells, fillRefined, type RefineInput, type RefinePass, refinePass } from "../core/refine.ts";
import { combine } from "../core/vector.ts";
import type { Dataset } from "../data/dataset.ts";
import type { Engine, EvaluateOptions, Metrics } from "../engine/engine.ts";
import { type TaskOptions, taskIdentity } from "../engine/task.ts";
import {
  emptySurface,
  POINT,
  type PointStatus,
  readSurface,
  type Surface,
  type SurfaceQuantity,
  writeSurface,
} from "../formats/surface-file.ts";
import { dataHash, directionsHash, modelHash } from "./identity.ts";

/** What to compute and where to write it. */
export interface SurfaceJob {
  /** Runs the model (created for the model the parameters belong to). */
  engine: Engine;
  /** The centre point theta (a flat parameter vector). */
  theta: Float32Array;
  /** One direction (1D) or two (2D). */
  directions: readonly Float32Array[];
  /** Coordinates; `y` null for 1D. */
  grid: Grid;
  /** Training data (loss and accuracy always computed on it). */
  train: Dataset;
  /** Test data, optional. */
  test?: Dataset;
  /** Surface file to create or resume. */
  path: string;
  /** Direction file recorded as `dir_file`. */
  dirFile: string;
  /** Extra metadata stored with the surface (seed, normalization, command, ...). */
  meta?: Record<string, string>;
  /** Compute only this shard's points. */
  shard?: Shard;
  /** Batch size and task (loss, ignore index, class axis) of each evaluation. */
  evaluate?: Pick<EvaluateOptions, "batchSize" | "lossCap" | keyof TaskOptions>;
  /**
   * Adaptive grid (core/refine.ts): a tolerance in loss units ("0.01") or a percentage of the
   * contour spacing ("10%"); points whose cell passes are interpolated (status INTERPOLATED).
   */
  refine?: string;
  /** Seconds between flushes of finished points to the file (default 10). */
  flushSeconds?: number;
  /** Called after every point with the number done (of this shard) and the total to do. */
  onProgress?: (done: number, total: number) => void;
}

/** Metadata keys that must agree for a resume or a merge. */
export const IDENTITY_KEYS = [
  "model_hash",
  "directions_hash",
  "train_hash",
  "test_hash",
  "loss",
  "shard",
] as const;

/**
 * The identity metadata of a job: hashes of model, parameters, directions and data, loss and shard.
 *
 * @example
 * const id = jobIdentity(job); // { model_hash: "...", directions_hash: "...", ... }
 */
export function jobIdentity(job: SurfaceJob): Record<(typeof IDENTITY_KEYS)[number], string> {
  return {
    model_hash: modelHash(job.engine.model, job.theta),
    directions_hash: directionsHash(job.directions),
    train_hash: dataHash(job.train),
    test_hash: job.test ? dataHash(job.test) : "none",
    loss: taskIdentity(job.evaluate ?? {}, job.engine.model),
    shard: job.shard ? `${job.shard.index}/${job.shard.count}` : "all",
  };
}

/**
 * The quantities of a loss surface: loss, accuracy and the loss's standard error on the training
 * set, and on the test set when there is one.
 *
 * @example
 * lossQuantities(false); // ["train_loss", "train_acc", "train_loss_se"]
 */
export function lossQuantities(test: boolean): SurfaceQuantity[] {
  const train: SurfaceQuantity[] = ["train_loss", "train_acc", "train_loss_se"];
  return test ? [...train, "test_loss", "test_acc", "test_loss_se"] : train;
}

function quantitiesOf(job: SurfaceJob): SurfaceQuantity[] {
  return lossQuantities(job.test !== undefined);
}

/** The point's status from its evaluations: diverged over capped over computed. */
function statusOf(...metrics: Metrics[]): PointStatus {
  if (metrics.some((m) => m.stopped === "diverged")) return POINT.DIVERGED;
  if (metrics.some((m) => m.stopped === "capped")) return POINT.CAPPED;
  return POINT.COMPUTED;
}

/**
 * Evaluates one point (`params`) on the training set and the test set when given: the values a
 * surface stores there and its status. Shared by computeSurface and the queue's workers, so both
 * store the same bits.
 *
 * @example
 * const { values, status } = await evaluatePoint(engine, params, train, test, { batchSize: 128 });
 */
export async function evaluatePoint(
  engine: Engine,
  params: Float32Array,
  train: Dataset,
  test: Dataset | undefined,
  evaluate: SurfaceJob["evaluate"],
): Promise<{ values: Partial<Record<SurfaceQuantity, number>>; status: PointStatus }> {
  const a = await engine.evaluate(params, train, evaluate);
  const values: Partial<Record<SurfaceQuantity, number>> = {
    train_loss: a.loss,
    train_acc: 100 * a.accuracy,
    train_loss_se: a.lossSe,
  };
  if (!test) return { values, status: statusOf(a) };
  const b = await engine.evaluate(params, test, evaluate);
  values.test_loss = b.loss;
  values.test_acc = 100 * b.accuracy;
  values.test_loss_se = b.lossSe;
  return { values, status: statusOf(a, b) };
}

function sameArray(a: Float64Array | null, b: Float64Array | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * Why a surface file does not match expected metadata and grid: one line per differing metadata key, and one
 * per differing axis. Empty when they match. The building block of every resume and merge check.
 *
 * @example
 * resumeProblems(readSurface("surf.h5"), grid, { model_hash: "3f2a..." }); // ["model_hash is 1b0c... in the file but 3f2a... now"]
 */
export function resumeProblems(existing: Surface, grid: Grid, expected: Record<string, string>): string[] {
  const problems: string[] = [];
  for (const [key, value] of Object.entries(expected)) {
    const old = existing.meta[key];
    if (old !== value) problems.push(`${key} is ${old ?? "(missing)"} in the file but ${value} now`);
  }
  if (!sameArray(existing.x, grid.x))
    problems.push(`x coordinates differ (${existing.x.length} in the file, ${grid.x.length} now)`);
  if (!sameArray(existing.y, grid.y))
    problems.push(
      `y coordinates differ (${existing.y?.length ?? "1D"} in the file, ${grid.y?.length ?? "1D"} now)`,
    );
  return problems;
}

/**
 * Refuses to resume the surface file `existing` (at `path`) with inputs that differ, naming every difference:
 * identity fields, grid, quantities. Shared by single-process, sharded and queued surfaces. A file
 * without the standard-error quantities (older losscape) is given them, NaN where computed.
 *
 * @example
 * checkResume("surf.h5", readSurface("surf.h5"), grid, ["train_loss", "train_acc"], identity);
 */
export function checkResume(
  path: string,
  existing: Surface,
  grid: Grid,
  quantities: readonly SurfaceQuantity[],
  identity: Record<string, string>,
): void {
  const problems = resumeProblems(existing, grid, identity);
  for (const q of quantities) {
    if (existing.values[q]) continue;
    // Files from before standard errors gain them: NaN at the points computed then.
    if (q.endsWith("_se")) existing.values[q] = new Float64Array(existing.done.length).fill(Number.NaN);
    else problems.push(`the file has no '${q}'`);
  }
  if (problems.length) {
    throw new Error(
      `cannot resume '${path}': it was computed from other inputs (${problems.join("; ")}). Use another output file, or delete this one to start over.`,
    );
  }
}

/**
 * Makes the capped points of a resumed surface computable again when the loss cap differs from the
 * one they were stopped at (`loss_cap` in the metadata; "none" without a cap): a bound above the old
 * cap says nothing about the mean under the new one. Exact values are kept. Returns how many points
 * were reopened.
 *
 * @example
 * reopenCapped(surface, 10); // 0 when the file was made with --loss-cap 10
 */
export function reopenCapped(surface: Surface, lossCap: number | undefined): number {
  const now = lossCap === undefined ? "none" : String(lossCap);
  if ((surface.meta["loss_cap"] ?? "none") === now) return 0;
  surface.meta["loss_cap"] = now;
  let reopened = 0;
  for (let k = 0; k < surface.done.length; k++) {
    if (surface.done[k] !== POINT.CAPPED) continue;
    surface.done[k] = POINT.NOT_COMPUTED;
    for (const a of Object.values(surface.values)) a[k] = Number.NaN;
    reopened++;
  }
  return reopened;
}

/**
 * The surface file of `job` as it is, checked to hold the same surface (checkResume); undefined when
 * there is none yet. Lets a caller refuse a mismatched resume before any other work.
 *
 * @example
 * resumableSurface(job); // throws "cannot resume 'surf.h5': ..." on other inputs
 */
export function resumableSurface(job: SurfaceJob): Surface {
  const surface = readSurface(job.path);
  checkResume(job.path, surface, job.grid, quantitiesOf(job), jobIdentity(job));
  return surface;
}

/**
 * Computes (or resumes) a surface and returns it; the file at `job.path` holds every finished point.
 *
 * @example
 * const s = await computeSurface({ engine, theta, directions: [d1, d2], grid, train, path: "surf.h5", dirFile: "dirs.h5" });
 */
export async function computeSurface(job: SurfaceJob): Promise<Surface> {
  const { grid, directions, theta } = job;
  const dims = grid.y ? 2 : 1;
  if (directions.length !== dims) {
    throw new Error(`computeSurface(): a ${dims}D grid needs ${dims} direction(s), got ${directions.length}`);
  }
  for (const [k, d] of directions.entries()) {
    if (d.length !== theta.length)
      throw new Error(
        `computeSurface(): direction ${k + 1} has ${d.length} values but theta has ${theta.length}`,
      );
  }
  const identity = jobIdentity(job);
  let surface: Surface;
  if (existsSync(job.path)) {
    surface = resumableSurface(job);
    reopenCapped(surface, job.evaluate?.lossCap);
  } else {
    surface = emptySurface(grid.x, grid.y, quantitiesOf(job), job.dirFile, {
      ...job.meta,
      ...identity,
      loss_cap: job.evaluate?.lossCap === undefined ? "none" : String(job.evaluate.lossCap),
    });
    writeSurface(job.path, surface);
  }
  const params = new Float32Array(theta.length);
  const flushMs = (job.flushSeconds ?? 10) * 1000;
  let lastFlush = performance.now();
  let dirty = false;
  let finished = 0;
  const v = surface.values;
  const evaluateAll = async (todo: readonly number[], total: () => number): Promise<void> => {
    for (const k of todo) {
      combine(theta, directions, pointCoords(grid, k), params);
      const point = await evaluatePoint(job.engine, params, job.train, job.test, job.evaluate);
      for (const [q, value] of Object.entries(point.values)) v[q as SurfaceQuantity]![k] = value;
      surface.done[k] = point.status;
      dirty = true;
      job.onProgress?.(++finished, total());
      if (performance.now() - lastFlush >= flushMs) {
        writeSurface(job.path, surface);
        lastFlush = performance.now();
        dirty = false;
      }
    }
  };
  if (job.refine === undefined) {
    // Interpolated points of an earlier --refine run are computed now.
    const todo: number[] = [];
    for (let k = 0; k < gridSize(grid); k++)
      if (inShard(k, job.shard) && (!surface.done[k] || surface.done[k] === POINT.INTERPOLATED)) todo.push(k);
    await evaluateAll(todo, () => todo.length);
  } else {
    surface.meta["refine"] = job.refine;
    // Rounds of refinement until every cell passes; progress counts the points known so far.
    for (;;) {
      const round = refineStep(surface, job.refine, job.shard);
      if (round.length === 0) {
        dirty = true;
        break;
      }
      const before = finished;
      await evaluateAll(round, () => before + round.length);
    }
  }
  if (dirty) writeSurface(job.path, surface);
  return surface;
}

/**
 * Parses a refinement tolerance: an absolute loss difference ("0.01") or a percentage of the
 * contour spacing ("10%": of the step of about ten round levels over the coarse grid's loss range).
 *
 * @example
 * parseRefine("0.01"); // "0.01"
 */
export function parseRefine(text: string, option = "--refine"): string {
  const m = /^\s*(\d+(?:\.\d*)?|\.\d+)(?:e(-?\d+))?\s*(%?)\s*$/i.exec(text);
  const value = m ? Number(`${m[1]}${m[2] ? `e${m[2]}` : ""}`) : Number.NaN;
  if (!m || !(value > 0))
    throw new Error(
      `${option} '${text}': expected a positive tolerance in loss units (0.01) or a percentage of the contour spacing (10%)`,
    );
  return `${value}${m[3] ?? ""}`;
}

/** The absolute tolerance of `spec` for `surface`: a percentage scales the coarse grid's level step. */
export function refineTolerance(spec: string, surface: Surface): number {
  if (!spec.endsWith("%")) return Number(spec);
  const loss = surface.values.train_loss!;
  const ny = surface.y?.length ?? 1;
  let lo = Infinity;
  let hi = -Infinity;
  for (const cell of coarseCells(surface.x.length, ny))
    for (const k of [cell.a * ny + cell.c, cell.b * ny + cell.d]) {
      const value = loss[k]!;
      if (surface.done[k] === POINT.COMPUTED && Number.isFinite(value)) {
        lo = Math.min(lo, value);
        hi = Math.max(hi, value);
      }
    }
  // Before the coarse grid is known nothing is compared; 0 then refines nothing by mistake.
  if (!(hi > lo)) return 0;
  return (Number(spec.slice(0, -1)) / 100) * niceStep(lo, hi, 10);
}

/**
 * One round of `--refine spec` on `surface` (of `shard`): the points its cells need computed next, in
 * order; when none are needed, the accepted cells' points are interpolated into the surface (status
 * INTERPOLATED) and the result is empty. A pure function of the computed points: a resume, a shard
 * or a queue's collector replays it.
 *
 * @example
 * for (let todo = refineStep(s, "0.01"); todo.length; todo = refineStep(s, "0.01")) await compute(todo);
 */
export function refineStep(surface: Surface, spec: string, shard?: Shard): number[] {
  const pass = refinePass(refineInput(surface, spec, shard));
  if (pass.needed.length === 0) fillSurface(surface, pass);
  return [...pass.needed];
}

function refineInput(surface: Surface, spec: string, shard?: Shard): RefineInput {
  const done = surface.done;
  const tested = [
    surface.values.train_loss!,
    ...(surface.values.test_loss ? [surface.values.test_loss] : []),
  ];
  return {
    nx: surface.x.length,
    ny: surface.y?.length ?? 1,
    computed: (k) => done[k] !== POINT.NOT_COMPUTED && done[k] !== POINT.INTERPOLATED,
    exact: (k) => done[k] === POINT.COMPUTED,
    tested,
    tol: refineTolerance(spec, surface),
    ...(shard ? { owns: (cell: number) => inShard(cell, shard) } : {}),
  };
}

/**
 * Marks every interpolated point of `surface` not computed again (values NaN), in place: before the
 * interpolation is replayed, and when a refined file is resumed without --refine. Returns how many.
 *
 * @example
 * reopenInterpolated(surface); // 2034: the full grid is computed next
 */
export function reopenInterpolated(surface: Surface): number {
  const done = surface.done;
  let reopened = 0;
  for (let k = 0; k < done.length; k++)
    if (done[k] === POINT.INTERPOLATED) {
      done[k] = POINT.NOT_COMPUTED;
      for (const a of Object.values(surface.values)) a[k] = Number.NaN;
      reopened++;
    }
  return reopened;
}

/** Interpolates the accepted cells' points into every quantity, marking them INTERPOLATED. */
function fillSurface(surface: Surface, pass: RefinePass): void {
  const done = surface.done;
  reopenInterpolated(surface);
  const tested = [
    surface.values.train_loss!,
    ...(surface.values.test_loss ? [surface.values.test_loss] : []),
  ];
  const filled = fillRefined(
    surface.x.length,
    surface.y?.length ?? 1,
    pass.accepted,
    (k) => done[k] !== POINT.NOT_COMPUTED,
    (k) => done[k] === POINT.COMPUTED && tested.every((v) => Number.isFinite(v[k]!)),
    Object.values(surface.values),
  );
  for (const k of filled) done[k] = POINT.INTERPOLATED;
}

/**
 * Combines shard files of one grid into one surface. Shards must share inputs and grid, and no point
 * may be computed by two of them.
 *
 * @example
 * const merged = mergeSurfaces(["s.0.h5", "s.1.h5"].map(readSurface), ["s.0.h5", "s.1.h5"]);
 */
export function mergeSurfaces(parts: readonly Surface[], names: readonly string[]): Surface {
  const first = parts[0];
  if (!first) throw new Error("merge: no surface files given");
  const keys = IDENTITY_KEYS.filter((k) => k !== "shard");
  const out: Surface = {
    x: first.x,
    y: first.y,
    values: Object.fromEntries(
      Object.entries(first.values).map(([q, a]) => [q, new Float64Array(a.length).fill(Number.NaN)]),
    ),
    done: new Uint8Array(first.done.length),
    dirFile: first.dirFile,
    meta: { ...first.meta, shard: "all" },
  };
  const owner = new Int32Array(first.done.length).fill(-1);
  const refined = first.meta["refine"];
  parts.forEach((s, p) => {
    const name = names[p] ?? `file ${p}`;
    for (const k of keys) {
      if (s.meta[k] !== first.meta[k]) {
        throw new Error(
          `merge: '${name}' has ${k} = ${s.meta[k] ?? "(missing)"} but '${names[0]}' has ${first.meta[k] ?? "(missing)"}; they are not shards of one surface`,
        );
      }
    }
    if (!sameArray(s.x, first.x) || !sameArray(s.y, first.y))
      throw new Error(`merge: '${name}' has another grid than '${names[0]}'`);
    for (const q of Object.keys(first.values)) {
      if (!(q in s.values)) throw new Error(`merge: '${name}' has no '${q}' but '${names[0]}' has`);
    }
    for (let k = 0; k < s.done.length; k++) {
      if (!s.done[k]) continue;
      // Shards of a refined grid share the edges of their cells: a computed value wins over an
      // interpolated one, else the first file's is kept.
      if (refined && owner[k]! >= 0) {
        if (!(out.done[k] === POINT.INTERPOLATED && s.done[k] !== POINT.INTERPOLATED)) continue;
      } else if (owner[k]! >= 0) {
        throw new Error(
          `merge: point ${k} (${describePoint(s, k)}) was computed by both '${names[owner[k]!]}' and '${name}'; shards overlap`,
        );
      }
      owner[k] = p;
      out.done[k] = s.done[k]!;
      for (const [q, a] of Object.entries(s.values)) out.values[q as SurfaceQuantity]![k] = a[k]!;
    }
  });
  return out;
}

function describePoint(s: Surface, k: number): string {
  return pointCoords({ x: s.x, y: s.y }, k)
    .map((c, i) => `${i === 0 ? "x" : "y"} = ${c}`)
    .join(", ");
}
