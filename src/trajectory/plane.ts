// The trajectory figure of Li et al. (2018, Sec. 7): the loss surface around
// the final model on the plane of the first two PCA directions of the
// checkpoints, the projected path drawn on its contours, and, as the paper's
// contrast, the same path projected on two random filter-normalized directions.

import { join } from "node:path";
import { randomDirection } from "../core/directions.ts";
import { axisValues } from "../core/grid.ts";
import type { Dataset } from "../data/dataset.ts";
import type { Engine, EvaluateOptions } from "../engine/engine.ts";
import type { TaskOptions } from "../engine/task.ts";
import { writeDirectionFile } from "../formats/direction-file.ts";
import type { Surface } from "../formats/surface-file.ts";
import { directionTensors } from "../landscape/direction-io.ts";
import { computeSurface } from "../landscape/surface.ts";
import { loadParams } from "../model/checkpoint.ts";
import { trajectoryFigure } from "../plot/contour.ts";
import { projectTrajectory, type TrajectoryOptions, trajectoryPca, writeProjection } from "./trajectory.ts";

/** What a trajectory run needs besides the model. */
export interface TrajectoryPlaneJob extends TrajectoryOptions {
  engine: Engine;
  /** Checkpoint files in training order; the last one is the centre. */
  files: readonly string[];
  /** Labels of the checkpoints on the figure (e.g. epochs). */
  labels?: readonly string[];
  train: Dataset;
  test?: Dataset;
  /** Output prefix: <out>.directions.h5, <out>.projection.h5, <out>.surface.h5. */
  out: string;
  /** Grid points per axis (default 21). */
  points?: number;
  /** Extra room around the path, as a fraction of its extent (default 0.3). */
  margin?: number;
  /** Seed of the random directions of the contrast (default 0). */
  seed?: number;
  evaluate?: Pick<EvaluateOptions, "batchSize" | keyof TaskOptions>;
  onProgress?: (done: number, total: number) => void;
}

/** Everything a trajectory run produced. */
export interface TrajectoryPlane {
  surface: Surface;
  x: Float64Array;
  y: Float64Array;
  explainedVarianceRatio: Float64Array;
  /** The path projected on two random filter-normalized directions (least squares). */
  random: { x: Float64Array; y: Float64Array };
  files: { directions: string; projection: string; surface: string };
  /** Axis labels carrying the explained variance ("1st PC: 48.21 %"). */
  axisLabels: [string, string];
}

function range(values: Float64Array, margin: number): { min: number; max: number } {
  let min = 0;
  let max = 0;
  for (const v of values) {
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const pad = Math.max((max - min) * margin, 1e-6);
  return { min: min - pad, max: max + pad };
}

/**
 * PCA directions, projected path, and the surface around the final checkpoint covering the path.
 *
 * @example
 * const t = await trajectoryPlane(model, { engine, files, train, out: "runs/cnn/trajectory" });
 */
export async function trajectoryPlane(
  model: Parameters<typeof trajectoryPca>[0],
  job: TrajectoryPlaneJob,
): Promise<TrajectoryPlane> {
  const { files, out, points = 21, margin = 0.3, seed = 0 } = job;
  const options = { ...(job.ignoreBiasBN !== undefined ? { ignoreBiasBN: job.ignoreBiasBN } : {}) };
  if (files.length < 3) {
    throw new Error(
      `trajectory: ${files.length} checkpoints span a line, not a plane; a PCA plane needs at least 3 (train for 2 epochs or more)`,
    );
  }
  const pca = await trajectoryPca(model, files, options);
  const { x, y } = projectTrajectory(model, files, pca.directions, "orthogonal", options);
  const final = loadParams(model, files[files.length - 1]!);
  const paths = {
    directions: `${out}.directions.h5`,
    projection: `${out}.projection.h5`,
    surface: `${out}.surface.h5`,
  };
  const pct = (r: number) => (100 * r).toFixed(2);
  const axisLabels: [string, string] = [
    `1st PC: ${pct(pca.explainedVarianceRatio[0]!)} %`,
    `2nd PC: ${pct(pca.explainedVarianceRatio[1]!)} %`,
  ];
  writeDirectionFile(paths.directions, {
    x: directionTensors(model, pca.directions[0]!, "weights"),
    y: directionTensors(model, pca.directions[1]!, "weights"),
    meta: {
      kind: "pca",
      checkpoints: JSON.stringify(files),
      model: model.name,
      ignore: options.ignoreBiasBN === false ? "none" : "biasbn",
    },
    explainedVarianceRatio: pca.explainedVarianceRatio,
    singularValues: pca.singularValues,
    explainedVariance: pca.explainedVariance,
  });
  writeProjection(paths.projection, x, y, files, { method: "orthogonal" });
  const rx = range(x, margin);
  const ry = range(y, margin);
  const surface = await computeSurface({
    engine: job.engine,
    theta: final,
    directions: pca.directions,
    grid: { x: axisValues({ ...rx, num: points }), y: axisValues({ ...ry, num: points }) },
    train: job.train,
    ...(job.test ? { test: job.test } : {}),
    path: paths.surface,
    dirFile: paths.directions,
    meta: {
      kind: "trajectory",
      projection: paths.projection,
      x_label: axisLabels[0],
      y_label: axisLabels[1],
    },
    ...(job.evaluate ? { evaluate: job.evaluate } : {}),
    ...(job.onProgress ? { onProgress: job.onProgress } : {}),
  });
  // The contrast: random filter-normalized directions at the final point barely see the path.
  const r1 = randomDirection(final, model.params, { seed });
  const r2 = randomDirection(final, model.params, { seed: seed + 1 });
  const random = projectTrajectory(model, files, [r1, r2], "least-squares", options);
  return {
    surface,
    x,
    y,
    explainedVarianceRatio: pca.explainedVarianceRatio,
    random,
    files: paths,
    axisLabels,
  };
}

/**
 * The trajectory figure as SVG: loss contours on the PCA plane with the path and its labels.
 *
 * @example
 * writeFigure("trajectory.png", trajectorySvg(t, { labels: ["0", "1", "2", "3"] }));
 */
export function trajectorySvg(
  t: TrajectoryPlane,
  { labels, title }: { labels?: readonly string[]; title?: string } = {},
): string {
  const s = t.surface;
  return trajectoryFigure(
    { x: s.x, y: s.y!, values: s.values.train_loss!, done: s.done },
    { x: t.x, y: t.y, ...(labels ? { labels: [...labels] } : {}) },
    { xlabel: t.axisLabels[0], ylabel: t.axisLabels[1], ...(title ? { title } : {}) },
  );
}

/** Where trajectory outputs go for a run folder. */
export function trajectoryPrefix(folder: string): string {
  return join(folder, "trajectory");
}
