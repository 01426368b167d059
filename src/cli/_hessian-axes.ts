// `losscape surface --directions hessian | hessian-min`: the flags, their checks, and the run
// that makes Hessian-eigenvector directions (src/landscape/plan.ts makeHessianDirections) with
// progress and a report of the eigenvalues and their residuals.

import type { Normalization } from "../core/directions.ts";
import type { Dataset } from "../data/dataset.ts";
import type { TaskOptions } from "../engine/task.ts";
import { HESSIAN_AXES, type HessianAxes, makeHessianDirections } from "../landscape/plan.ts";
import type { Model } from "../model/model.ts";
import { startProgress } from "./progress.ts";

/** What --directions takes. */
export const DIRECTION_KINDS = ["random", ...HESSIAN_AXES] as const;
/** A --directions value. */
export type DirectionKind = (typeof DIRECTION_KINDS)[number];

/** The flags that bear on Hessian axes. */
export interface HessianAxesFlags {
  directions: DirectionKind;
  hessianTol: number;
  hessianIterations: number;
  norm: Normalization;
  keepBiasbn?: true | undefined;
  mode: string;
  only?: RegExp | undefined;
  batchSize: number;
  threads?: number | undefined;
}

/**
 * Refuses the flags that have no meaning for Hessian axes (they are eigenvectors of the filter
 * weights' Hessian: no bias/BN entries, no --only, filter or unit length).
 *
 * @example
 * checkHessianAxesFlags(o); // throws on --directions hessian --keep-biasbn
 */
export function checkHessianAxesFlags(o: HessianAxesFlags): void {
  if (o.directions === "random") return;
  const bad: string[] = [];
  if (o.keepBiasbn) bad.push("--keep-biasbn (the Hessian is w.r.t. the filter weights only)");
  if (o.mode !== "weights") bad.push(`--mode ${o.mode} (BN statistics stay fixed)`);
  if (o.only) bad.push("--only (the eigenvectors are the whole model's filter weights')");
  if (o.norm !== "filter" && o.norm !== "none")
    bad.push(`--norm ${o.norm} (expected filter: scaled to ||theta_filters||, or none: unit eigenvectors)`);
  if (!(o.hessianTol > 0 && o.hessianTol < 1))
    bad.push(`--hessian-tol ${o.hessianTol} (expected a number in (0, 1))`);
  if (o.hessianIterations < 3) bad.push(`--hessian-iterations ${o.hessianIterations} (expected at least 3)`);
  if (bad.length) throw new Error(`surface: --directions ${o.directions} does not take ${bad.join("; ")}`);
}

/**
 * Computes the Hessian-eigenvector directions for a surface, reporting progress and the result.
 *
 * @example
 * const made = await hessianAxes(o, model, params, train, 2, task);
 */
export async function hessianAxes(
  o: HessianAxesFlags,
  model: Model,
  theta: Float32Array,
  train: Dataset,
  dims: 1 | 2,
  task: TaskOptions,
): Promise<Awaited<ReturnType<typeof makeHessianDirections>>> {
  checkHessianAxesFlags(o);
  const axes = o.directions as HessianAxes;
  const bar = startProgress("hessian axes", o.hessianIterations, { unit: "products" });
  const made = await makeHessianDirections(model, theta, train, {
    axes,
    dims,
    scale: o.norm === "none" ? "none" : "filter",
    tol: o.hessianTol,
    maxIterations: o.hessianIterations,
    batchSize: o.batchSize,
    task,
    ...(o.threads ? { threads: o.threads } : {}),
    onIteration: (k) => bar.update(k),
  });
  bar.stop();
  const scale = Math.max(...made.eigenvalues.map(Math.abs));
  console.log(
    `Hessian axes (${axes}): eigenvalues ${made.eigenvalues.map((v) => v.toPrecision(6)).join(", ")}; residuals ||H u - lambda u|| ${made.residuals.map((r) => r.toExponential(1)).join(", ")} (${made.residuals.map((r) => (r / scale).toExponential(1)).join(", ")} of max |lambda|); ${made.iterations} Lanczos products, ${made.converged ? "converged" : `NOT converged to --hessian-tol ${o.hessianTol} (raise --hessian-iterations)`}; ${o.norm === "none" ? "unit eigenvectors" : `scaled to ||theta_filters|| = ${Number(made.file.meta.scale).toPrecision(6)}`}`,
  );
  return made;
}
