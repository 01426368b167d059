// The main job on the embedded defaults: a small CNN trained on the embedded
// Fashion-MNIST subset with per-epoch checkpoints, then its landscape — the
// 1D interpolation initial -> trained (batch norm recomputed at every point), a
// filter-normalized 2D surface, the PCA trajectory, a mode-connectivity curve to a
// second run of another seed, a small Hessian-ratio map, a sharpness table of both runs — as HDF5
// files, figures (SVG + PNG), sharpness.md/.json and an HTML report.
// Every step resumes: rerunning the demo on the same folder finishes what is missing.

import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { axisValues, gridSize } from "./core/grid.ts";
import { paperSchedule } from "./core/optim.ts";
import { sharpnessMarkdown, sharpnessTable } from "./curvature/sharpness.ts";
import { hessianSurface } from "./curvature/surface.ts";
import { datasetSize } from "./data/dataset.ts";
import { loadEmbedded } from "./data/embedded.ts";
import { subset } from "./data/transform.ts";
import type { Metrics } from "./engine/engine.ts";
import { createOrtEngine } from "./engine/ort.ts";
import { writeFileAtomic } from "./formats/atomic.ts";
import { readSurface, type Surface } from "./formats/surface-file.ts";
import { batchNormProblems, createBatchNormRecalibrator, recalibratedEngine } from "./landscape/bn.ts";
import { connectModels } from "./landscape/connect-job.ts";
import { directionsAt, makeDirections, makeModelDirection } from "./landscape/plan.ts";
import { computeSurface } from "./landscape/surface.ts";
import { plotSurfaces, writeFigure } from "./plot/plot.ts";
import { train } from "./train/train.ts";
import { trajectoryPlane, trajectorySvg } from "./trajectory/plane.ts";
import { writeReport } from "./viewer/report.ts";
import { zooModel } from "./zoo/zoo.ts";

/** Options of the demo. */
export interface DemoOptions {
  /** Output folder (default "out/demo"). */
  out?: string;
  /** ONNX Runtime threads (default: all cores). */
  threads?: number;
  /** Seed of the model's initial parameters, the shuffling and the directions (default 0). */
  seed?: number;
  /** Training epochs (default 3). */
  epochs?: number;
  /** Grid points per axis of the 2D surface (default 15). */
  points?: number;
  /** Receives one line per step. */
  log?: (line: string) => void;
  /** Receives progress of long steps. */
  progress?: (label: string, done: number, total: number) => void;
}

/** What the demo produced. */
export interface DemoResult {
  files: string[];
  figures: string[];
  report: string;
  train: Metrics & { seconds: number };
  test: Metrics & { seconds: number };
}

/**
 * Runs the demo.
 *
 * @example
 * const result = await runDemo({ out: "out/demo", log: console.log });
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const {
    out = "out/demo",
    threads,
    seed = 0,
    epochs = 3,
    points = 15,
    log = () => {},
    progress = () => {},
  } = options;
  const t = threads === undefined ? {} : { threads };
  mkdirSync(join(out, "figures"), { recursive: true });
  const trainData = loadEmbedded("train");
  const testData = loadEmbedded("test");
  log(
    `data: embedded Fashion-MNIST subset, ${datasetSize(trainData)} train / ${datasetSize(testData)} test samples of [${trainData.shape.join(", ")}]`,
  );
  const model = zooModel("cnn", { inputShape: trainData.shape, classes: trainData.classes, seed });
  log(`model: zoo 'cnn', ${model.params.length} tensors, ${model.size} parameters (seed ${seed})`);

  // 1. Train with a checkpoint per epoch (resumes if the folder holds a run).
  const runDir = join(out, "run");
  const t0 = performance.now();
  const run = await train(
    model,
    model.initial,
    trainData,
    testData,
    {
      epochs,
      batchSize: 128,
      seed,
      optimizer: { kind: "sgd", momentum: 0.9, weightDecay: 5e-4 },
      schedule: paperSchedule(0.05, epochs),
      ...t,
    },
    runDir,
    {
      onBatch: (p) => progress(`train epoch ${p.epoch}/${epochs}`, p.batch, p.batches),
      onEpoch: (l) =>
        log(
          `epoch ${l.epoch}/${epochs}: train loss ${l.train_loss.toFixed(4)}, acc ${l.train_acc.toFixed(2)} %; test loss ${l.test_loss?.toFixed(4)}, acc ${l.test_acc?.toFixed(2)} % (${l.samples_per_s.toFixed(0)} samples/s)`,
        ),
      onResume: (e) => log(`resuming the training run in ${runDir} after epoch ${e}`),
    },
  );
  log(`trained in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const trained = run.params;

  const engine = await createOrtEngine(model, t);
  const files: string[] = [];
  const figures: string[] = [];
  let metrics: { train: DemoResult["train"]; test: DemoResult["test"] };
  try {
    const timed = async (data: typeof trainData) => {
      const s = performance.now();
      const m = await engine.evaluate(trained, data);
      return { ...m, seconds: (performance.now() - s) / 1000 };
    };
    metrics = { train: await timed(trainData), test: await timed(testData) };
    for (const [name, m] of Object.entries(metrics)) {
      log(
        `trained cnn, ${name}: loss ${m.loss.toFixed(4)}, accuracy ${(100 * m.accuracy).toFixed(2)} % on ${m.count} samples in ${m.seconds.toFixed(2)} s (${(m.count / m.seconds).toFixed(0)} samples/s)`,
      );
    }

    // Surfaces are evaluated on fixed, seeded subsets to keep the demo short.
    const trainSub = subset(trainData, { count: 1000, seed });
    const testSub = subset(testData, { count: 1000, seed });
    const surface = async (
      label: string,
      job: Omit<Parameters<typeof computeSurface>[0], "engine" | "onProgress">,
    ): Promise<Surface> => {
      const s0 = performance.now();
      const total = gridSize(job.grid);
      const s = await computeSurface({
        ...job,
        engine,
        onProgress: (done, todo) => progress(label, total - todo + done, total),
      });
      log(`${label}: ${total} points -> ${job.path} (${((performance.now() - s0) / 1000).toFixed(1)} s)`);
      files.push(job.path);
      return s;
    };

    // 2. Interpolation initial -> trained. Interpolated BN running variances turn negative beyond
    // a = 1.05, so the statistics are recomputed at every point (--bn recompute) from 2 seeded
    // batches of 128 training samples: the landscape itself, not an artefact of the statistics.
    const interpDirs = join(out, "interpolation.directions.h5");
    const interp = directionsAt(interpDirs, 1, model, () =>
      makeModelDirection(model, model.initial, trained),
    );
    const interpPath = join(out, "interpolation.h5");
    const bn = await createBatchNormRecalibrator(model, trainSub, { batches: 2, batchSize: 128, seed, ...t });
    if (existsSync(interpPath)) {
      const problems = batchNormProblems(readSurface(interpPath).meta, bn.meta);
      if (problems.length)
        throw new Error(
          `runDemo(): '${interpPath}' was computed with another batch-norm handling (${problems.join("; ")}); delete it to recompute`,
        );
    }
    const interpEngine = recalibratedEngine(await createOrtEngine(model, t), bn);
    let interpolation: Surface;
    try {
      const s0 = performance.now();
      const grid = { x: axisValues({ min: -0.5, max: 1.5, num: 21 }), y: null };
      interpolation = await computeSurface({
        engine: interpEngine,
        theta: model.initial,
        directions: interp.directions,
        grid,
        train: trainSub,
        test: testSub,
        path: interpPath,
        dirFile: interpDirs,
        meta: { kind: "interpolation", from: "epoch-000", to: `epoch-${epochs}`, ...bn.meta },
        onProgress: (done, todo) => progress("interpolation", gridSize(grid) - todo + done, gridSize(grid)),
      });
      files.push(interpPath);
      log(
        `interpolation: ${gridSize(grid)} points -> ${interpPath}, batch norm recomputed at every point (--bn recompute: ${bn.batches} seeded batches of ${bn.samples / bn.batches} training samples; interpolated statistics would turn negative) (${((performance.now() - s0) / 1000).toFixed(1)} s)`,
      );
    } finally {
      await interpEngine.dispose();
    }

    // 3. A filter-normalized 2D surface around the trained model.
    const planeDirs = join(out, "surface.directions.h5");
    const plane = directionsAt(planeDirs, 2, model, () => makeDirections(model, trained, { dims: 2, seed }));
    const axis = axisValues({ min: -1, max: 1, num: points });
    const surf = await surface("2D surface", {
      theta: trained,
      directions: plane.directions,
      grid: { x: axis, y: axis },
      train: subset(trainData, { count: 500, seed }),
      path: join(out, "surface.h5"),
      dirFile: planeDirs,
      meta: { kind: "random", normalization: "filter", seed: String(seed) },
    });

    // 4. The optimization path on the PCA plane of the checkpoints (needs 3 of them, i.e. 2 epochs).
    const checkpoints = Array.from({ length: epochs + 1 }, (_, e) =>
      join(runDir, `epoch-${String(e).padStart(3, "0")}.safetensors`),
    );
    const s0 = performance.now();
    const traj =
      epochs < 2
        ? undefined
        : await trajectoryPlane(model, {
            engine,
            files: checkpoints,
            train: subset(trainData, { count: 500, seed }),
            out: join(out, "trajectory"),
            points: 11,
            seed,
            onProgress: (done, total) => progress("trajectory", done, total),
          });
    if (traj) {
      files.push(traj.files.directions, traj.files.projection, traj.files.surface);
      log(
        `trajectory: ${traj.axisLabels.join(", ")} -> ${traj.files.surface} (${((performance.now() - s0) / 1000).toFixed(1)} s)`,
      );
    } else log("trajectory: skipped (a PCA plane needs at least 2 epochs)");

    // 5. A small map of |lambda_min / lambda_max| on the same plane (the paper's convexity check).
    const h0 = performance.now();
    const hessianAxis = axisValues({ min: -1, max: 1, num: 3 });
    const curvature = await hessianSurface({
      model,
      theta: trained,
      directions: plane.directions,
      grid: { x: hessianAxis, y: hessianAxis },
      data: subset(trainData, { count: 100, seed }),
      path: join(out, "hessian.h5"),
      dirFile: planeDirs,
      hessian: { tol: 1e-2, maxIterations: 20, seed },
      ...t,
      onProgress: (done, total) => progress("hessian", done, total),
    });
    files.push(join(out, "hessian.h5"));
    log(
      `hessian: |lambda_min/lambda_max| on a 3 x 3 grid -> ${join(out, "hessian.h5")} (${((performance.now() - h0) / 1000).toFixed(1)} s)`,
    );

    // 5c. Mode connectivity, kept small (about a quarter of the demo's time): a second run from
    // another seed (initial parameters and shuffling; 1 epoch on 5000 training samples), a Bezier
    // curve between the two runs trained for 40 steps of 64 samples, loss along it and along the
    // straight line (9 points each on 500 train / 500 test samples, BN recomputed from 2 batches
    // of 128), and the plane of the curve (5 x 5 on 250 samples).
    const c0 = performance.now();
    const model2 = zooModel("cnn", {
      inputShape: trainData.shape,
      classes: trainData.classes,
      seed: seed + 1,
    });
    const run2 = await train(
      model2,
      model2.initial,
      subset(trainData, { count: 5000, seed: seed + 1 }),
      undefined,
      {
        epochs: 1,
        batchSize: 128,
        seed: seed + 1,
        optimizer: { kind: "sgd", momentum: 0.9, weightDecay: 5e-4 },
        schedule: paperSchedule(0.05, 1),
        ...t,
      },
      join(out, `run-seed${seed + 1}`),
      { onBatch: (p) => progress(`train seed ${seed + 1}`, p.batch, p.batches) },
    );
    log(
      `second run (seed ${seed + 1}, 1 epoch on 5000 samples) for the connectivity curve (${((performance.now() - c0) / 1000).toFixed(1)} s)`,
    );
    const connection = await connectModels({
      model,
      from: trained,
      to: run2.params,
      train: subset(trainData, { count: 500, seed }),
      test: subset(testData, { count: 500, seed }),
      training: { kind: "bezier", steps: 40, lr: 0.02, seed, batchSize: 64, checkpointEvery: 20 },
      points: 9,
      bn: { batches: 2, batchSize: 128, seed },
      planePoints: 5,
      planeTrain: subset(trainData, { count: 250, seed }),
      folder: join(out, "connect"),
      ...t,
      names: [`seed ${seed}`, `seed ${seed + 1}`],
      log: (line) => log(`connect: ${line}`),
      progress: (label, done, total) => progress(`connect ${label}`, done, total),
    });
    files.push(...connection.files.filter((f) => f.endsWith(".h5")));
    figures.push(...connection.figures);
    log(
      `mode connectivity -> ${join(out, "connect")} (${((performance.now() - c0) / 1000).toFixed(1)} s in all)`,
    );

    // 5d. Sharpness of the two trained runs, one table: few steps, draws and Lanczos products on 64
    // samples so that it adds only seconds (all stated in the table's note).
    const sh0 = performance.now();
    const sharpness = await sharpnessTable(
      model,
      [
        { label: `cnn seed ${seed} (${epochs} epoch${epochs === 1 ? "" : "s"})`, params: trained },
        { label: `cnn seed ${seed + 1} (1 epoch, 5000 samples)`, params: run2.params },
      ],
      subset(trainData, { count: 64, seed }),
      { steps: 3, samples: 4, lanczosIterations: 8, lanczosTol: 1e-2, traceSamples: 3, seed, ...t },
    );
    const sharpnessText = sharpnessMarkdown(sharpness);
    writeFileAtomic(join(out, "sharpness.md"), sharpnessText);
    writeFileAtomic(join(out, "sharpness.json"), `${JSON.stringify(sharpness, null, 1)}\n`);
    log(
      `sharpness of the ${sharpness.rows.length} trained runs -> ${join(out, "sharpness.md")} (${((performance.now() - sh0) / 1000).toFixed(1)} s):\n${sharpnessText}`,
    );

    // 6. Figures, SVG and PNG.
    const figure = (name: string, svg: string) => {
      for (const ext of ["svg", "png"]) {
        const path = join(out, "figures", `${name}.${ext}`);
        writeFigure(path, svg);
        figures.push(path);
      }
    };
    figure(
      "interpolation",
      plotSurfaces([interpolation], {
        kind: "1d",
        title: "cnn: initial (0) to trained (1), BN recomputed",
        xlabel: "interpolation coefficient",
      }),
    );
    figure(
      "surface-contour",
      plotSurfaces([surf], { kind: "contour", title: "cnn: filter-normalized 2D surface (train loss)" }),
    );
    figure("surface-filled", plotSurfaces([surf], { kind: "filled", title: "cnn: filled contours" }));
    figure("surface-3d", plotSurfaces([surf], { kind: "surface3d", title: "cnn: loss surface" }));
    figure(
      "hessian-ratio",
      plotSurfaces([curvature.surface], { kind: "hessian", title: "cnn: |lambda_min / lambda_max|" }),
    );
    if (traj)
      figure(
        "trajectory",
        trajectorySvg(traj, {
          labels: checkpoints.map((_, e) => String(e)),
          title: "cnn: SGD path on the PCA plane",
        }),
      );
  } finally {
    await engine.dispose();
  }
  const report = join(out, "report.html");
  await writeReport({ paths: [out], out: report, title: "losscape demo: cnn on Fashion-MNIST" });
  return { files, figures, report, ...metrics };
}
