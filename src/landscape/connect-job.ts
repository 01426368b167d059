// A whole mode-connectivity run into one folder: the control point trained
// (checkpointed, resumable), loss and accuracy along the curve and the line
// with their barrier heights (connect.json), the loss surface of the plane
// through the three points (plane.h5, resumable) and the two figures.

import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { axisValues } from "../core/grid.ts";
import type { Dataset } from "../data/dataset.ts";
import type { Engine, EvaluateOptions } from "../engine/engine.ts";
import { createOrtEngine } from "../engine/ort.ts";
import type { TaskOptions } from "../engine/task.ts";
import { writeFileAtomic } from "../formats/atomic.ts";
import { writeDirectionFile } from "../formats/direction-file.ts";
import type { Surface } from "../formats/surface-file.ts";
import type { Model } from "../model/model.ts";
import { connectionFigure, curvePlaneFigure } from "../plot/connect.ts";
import { writeFigure } from "../plot/plot.ts";
import {
  type BatchNormRecalibrator,
  createBatchNormRecalibrator,
  type RecomputeOptions,
  recalibratedEngine,
} from "./bn.ts";
import {
  type Connection,
  type Curve,
  type CurvePlane,
  curvePlane,
  evaluateConnection,
  type ModelCurveTraining,
  trainCurve,
} from "./connect.ts";
import { directionTensors } from "./direction-io.ts";
import { dataHash, hashOf } from "./identity.ts";
import { computeSurface } from "./surface.ts";

/** What connectModels does. */
export interface ConnectJob {
  model: Model;
  /** The two trained models w1, w2. */
  from: Float32Array;
  to: Float32Array;
  /** Training data (curve training, batch-norm recomputation, train loss). */
  train: Dataset;
  /** Test data for the paths' test loss, optional. */
  test?: Dataset;
  /** The curve and its training (folder and task are set by the job). */
  training: Omit<ModelCurveTraining, "folder" | "task" | "threads">;
  /** Points of t in [0, 1] along each path (default 11). */
  points?: number;
  /**
   * Batch norm at evaluated points: recompute from seeded training batches (default for a model with
   * batch norm), or false for the end points' statistics combined like weights.
   */
  bn?: RecomputeOptions | false;
  /** Grid points per axis of the plane surface (default 11; 0: no plane). */
  planePoints?: number;
  /** Training data of the plane surface (default `train`). */
  planeTrain?: Dataset;
  /** Output folder. */
  folder: string;
  threads?: number;
  task?: TaskOptions;
  /** Batch size of evaluations. */
  batchSize?: number;
  /** Labels of the two models in figures (default "w1", "w2"). */
  names?: [string, string];
  log?: (line: string) => void;
  progress?: (label: string, done: number, total: number) => void;
}

/** What connectModels produced. */
export interface ConnectResult {
  curve: Curve;
  connection: Connection;
  plane?: { plane: CurvePlane; surface: Surface };
  files: string[];
  figures: string[];
}

/**
 * Trains the curve between two models and measures it: connect.json (t, loss and accuracy along
 * the curve and the line, barrier heights, settings), curve.safetensors (the control point),
 * plane.h5 and figures connect.svg/png and connect-plane.svg/png. Every step resumes.
 *
 * @example
 * const r = await connectModels({ model, from: w1, to: w2, train, test, folder: "out/connect",
 *   training: { kind: "bezier", steps: 200, lr: 0.05, seed: 0 } });
 */
export async function connectModels(job: ConnectJob): Promise<ConnectResult> {
  const {
    model,
    from,
    to,
    train,
    test,
    training,
    folder,
    threads,
    task = {},
    log = () => {},
    progress = () => {},
  } = job;
  const { points = 11, planePoints = 11, planeTrain = train, names = ["w1", "w2"] } = job;
  const hasBn = model.params.some((p) => p.role === "bn-stat");
  const bnChoice = job.bn === undefined ? (hasBn ? {} : false) : job.bn;
  mkdirSync(folder, { recursive: true });
  const t = threads ? { threads } : {};
  const t0 = performance.now();
  const state = await trainCurve(model, from, to, train, {
    ...training,
    ...t,
    task,
    folder,
    onStep: (done, total) => progress("curve training", done, total),
  });
  const recent = state.losses.slice(-Math.max(1, Math.floor(state.losses.length / 10)));
  log(
    `curve: ${training.kind}, ${state.step} steps (t ~ U(0,1), batch ${training.batchSize ?? 128}, lr ${training.lr}); mean loss of the last ${recent.length} steps ${(recent.reduce((a, b) => a + b, 0) / recent.length).toFixed(4)} (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );
  const curve: Curve = { kind: training.kind, from, to, theta: state.theta };
  let engine: Engine = await createOrtEngine(model, t);
  let bn: BatchNormRecalibrator | undefined;
  if (bnChoice) {
    bn = await createBatchNormRecalibrator(model, train, { ...bnChoice, ...t, task });
    engine = recalibratedEngine(engine, bn);
    log(
      `batch norm: recomputed at every point from ${bn.batches} seeded training batch(es) of ${bn.samples / bn.batches} samples (update_bn semantics)`,
    );
  } else log("batch norm: statistics combined like weights (no recomputation)");
  const evaluate: Omit<EvaluateOptions, "onProgress"> = {
    ...task,
    ...(job.batchSize ? { batchSize: job.batchSize } : {}),
  };
  const files = [join(folder, "curve.safetensors")];
  const figures: string[] = [];
  try {
    const e0 = performance.now();
    const jsonPath = join(folder, "connect.json");
    // What the paths' values depend on: a rerun with the same inputs reads them back from connect.json.
    const identity = {
      points_hash: hashOf(from, to, state.theta),
      train_hash: dataHash(train),
      test_hash: test ? dataHash(test) : "none",
      points,
      evaluate: JSON.stringify(evaluate),
      bn_settings: bn ? bn.meta : { bn: "interpolate" },
    };
    const saved = existsSync(jsonPath)
      ? (JSON.parse(readFileSync(jsonPath, "utf8")) as Record<string, unknown>)
      : {};
    const same = JSON.stringify(saved.identity) === JSON.stringify(identity);
    // The engine recomputes the statistics itself: evaluateConnection is not given `bn` again.
    const connection: Connection = same
      ? ({
          kind: saved.kind,
          t: saved.t,
          curve: saved.curve,
          line: saved.line,
          barriers: saved.barriers,
          bn: saved.bn,
        } as Connection)
      : await evaluateConnection(engine, curve, {
          points,
          train,
          ...(test ? { test } : {}),
          evaluate,
          onProgress: (done, total) => progress("paths", done, total),
        });
    connection.bn = bn ? "recompute" : "interpolate";
    const b = connection.barriers;
    log(
      `barrier (train loss): curve ${b.curve.train_loss!.height.toFixed(4)} at t = ${b.curve.train_loss!.at.toFixed(2)}, line ${b.line.train_loss!.height.toFixed(4)} at t = ${b.line.train_loss!.at.toFixed(2)}${b.curve.test_loss ? `; test loss: curve ${b.curve.test_loss.height.toFixed(4)}, line ${b.line.test_loss!.height.toFixed(4)}` : ""} (${points} points each, ${same ? "read back from connect.json" : `${((performance.now() - e0) / 1000).toFixed(1)} s`})`,
    );
    writeFileAtomic(
      jsonPath,
      `${JSON.stringify(
        {
          model: model.name,
          steps: state.step,
          lr: training.lr,
          seed: training.seed,
          batch_size: training.batchSize ?? 128,
          bn_settings: bn ? bn.meta : { bn: "interpolate" },
          barrier_definition:
            "max over t of value(t) - ((1 - t) value(0) + t value(1)); error = 100 - accuracy (%)",
          ...connection,
          identity,
          training_losses: state.losses,
        },
        null,
        1,
      )}\n`,
    );
    files.push(jsonPath);
    const figure = (name: string, svg: string) => {
      for (const ext of ["svg", "png"]) {
        const path = join(folder, `${name}.${ext}`);
        writeFigure(path, svg);
        figures.push(path);
      }
    };
    figure(
      "connect",
      connectionFigure(connection, {
        title: `${model.name}: ${names[0]} to ${names[1]}, ${training.kind} vs line (BN ${connection.bn})`,
      }),
    );
    let plane: ConnectResult["plane"];
    if (planePoints > 0) {
      const p0 = performance.now();
      const labelsT = Array.from({ length: 41 }, (_, i) => i / 40);
      const geometry = curvePlane(curve, labelsT);
      const ys = [0, 1, ...geometry.y];
      const xs = [0, 1, geometry.alpha, ...geometry.x];
      const margin = (lo: number, hi: number) => ({ min: lo - 0.25 * (hi - lo), max: hi + 0.25 * (hi - lo) });
      const rx = margin(Math.min(...xs), Math.max(...xs));
      const ry = margin(Math.min(...ys), Math.max(...ys));
      const dirFile = join(folder, "plane.directions.h5");
      if (!existsSync(dirFile))
        writeDirectionFile(dirFile, {
          x: directionTensors(model, geometry.u, "states"),
          y: directionTensors(model, geometry.v, "states"),
          meta: {
            kind: "curve-plane",
            curve: training.kind,
            alpha: String(geometry.alpha),
            model: model.name,
          },
        });
      const path = join(folder, "plane.h5");
      const total = planePoints * planePoints;
      const surface = await computeSurface({
        engine,
        theta: from,
        directions: [geometry.u, geometry.v],
        grid: {
          x: axisValues({ ...rx, num: planePoints }),
          y: axisValues({ ...ry, num: planePoints }),
        },
        train: planeTrain,
        path,
        dirFile,
        evaluate,
        meta: {
          kind: "curve-plane",
          curve: training.kind,
          alpha: String(geometry.alpha),
          norm_u: String(geometry.normU),
          norm_v: String(geometry.normV),
          ...(bn ? bn.meta : {}),
        },
        onProgress: (done, todo) => progress("plane", done, todo),
      });
      files.push(path);
      log(
        `plane through ${names[0]}, ${names[1]} and theta: ${total} points -> ${path} (|u| ${geometry.normU.toPrecision(4)}, |v| ${geometry.normV.toPrecision(4)}, theta at (${geometry.alpha.toFixed(3)}, 1); ${((performance.now() - p0) / 1000).toFixed(1)} s)`,
      );
      const labels = labelsT.map((ti) =>
        ti === 0
          ? names[0]
          : ti === 1
            ? names[1]
            : ti === 0.5
              ? training.kind === "polychain"
                ? "theta"
                : "phi(0.5)"
              : "",
      );
      figure(
        "connect-plane",
        curvePlaneFigure(
          { x: surface.x, y: surface.y!, values: surface.values.train_loss!, done: surface.done },
          { x: geometry.x, y: geometry.y, labels },
          { title: `${model.name}: plane of the ${training.kind} curve (train loss; the line is y = 0)` },
        ),
      );
      plane = { plane: geometry, surface };
    }
    return { curve, connection, ...(plane ? { plane } : {}), files, figures };
  } finally {
    await engine.dispose();
  }
}
