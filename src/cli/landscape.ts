// Landscape commands: directions, surface, interpolate, inspect, merge. Each
// parses its options, calls the library (src/landscape), and reports.

import { existsSync } from "node:fs";
import type { Command } from "@commander-js/extra-typings";
import { type DirectionMode, NORMALIZATIONS, type Normalization } from "../core/directions.ts";
import { axisValues, type Grid, gridSize, inShard, parseAxis, parseShard, type Shard } from "../core/grid.ts";
import { norm } from "../core/vector.ts";
import type { Dataset } from "../data/dataset.ts";
import type { Engine } from "../engine/engine.ts";
import { createOrtEngine, type OrtOptions, surfaceEngineOptions } from "../engine/ort.ts";
import { readDirectionFile } from "../formats/direction-file.ts";
import {
  POINT,
  POINT_NAMES,
  readSurface,
  SURFACE_QUANTITIES,
  type Surface,
  writeSurface,
} from "../formats/surface-file.ts";
import {
  type BatchNormHandling,
  batchNormProblems,
  createBatchNormRecalibrator,
  type RecomputeOptions,
  recalibratedEngine,
} from "../landscape/bn.ts";
import { formatCost, probeCost } from "../landscape/cost.ts";
import { directionsAt, makeDirections, makeModelDirection } from "../landscape/plan.ts";
import { computeSurface, mergeSurfaces, resumableSurface } from "../landscape/surface.ts";
import { loadParams } from "../model/checkpoint.ts";
import { readOnnx } from "../model/import.ts";
import type { Model } from "../model/model.ts";
import { checkHessianAxesFlags, DIRECTION_KINDS, type DirectionKind, hessianAxes } from "./_hessian-axes.ts";
import {
  batchNormOptions,
  cacheLimits,
  costOptions,
  dataMeta,
  dataOptions,
  loadFromFlags,
  modelOptions,
  onlyOption,
  onlyPlan,
  openFromFlags,
  taskFromFlags,
} from "./_options.ts";
import { nonNegativeInt, oneOf, positiveInt, positiveNumber } from "./_parse.ts";
import { runPlanes } from "./planes.ts";
import { startProgress } from "./progress.ts";
import { queueOptions, runQueuedSurface } from "./queue.ts";

const MODES = ["weights", "states"] as const satisfies readonly DirectionMode[];

/** Direction-file metadata as surface metadata: direction_seed, direction_normalization, ... */
function prefixed(meta: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(meta).map(([k, v]) => [`direction_${k}`, v]));
}

/** Default direction file beside a surface file: surf.h5 -> surf.directions.h5. */
function defaultDirFile(out: string): string {
  return `${out.replace(/\.h5$/, "")}.directions.h5`;
}

function gridOf(x: string, y: string | undefined): Grid {
  return { x: axisValues(parseAxis(x, "--x")), y: y === undefined ? null : axisValues(parseAxis(y, "--y")) };
}

function summary(s: Surface): string[] {
  const lines: string[] = [];
  const n = s.done.length;
  const done = s.done.filter((v) => v !== POINT.NOT_COMPUTED).length;
  const grid = s.y ? `${s.x.length} x ${s.y.length}` : `${s.x.length}`;
  const range = (a: Float64Array) => `${a[0]} .. ${a[a.length - 1]}`;
  lines.push(
    `${s.y ? "2D" : "1D"} surface, grid ${grid} (x ${range(s.x)}${s.y ? `, y ${range(s.y)}` : ""}), ${done}/${n} points computed`,
  );
  const kinds = [POINT.DIVERGED, POINT.CAPPED, POINT.INTERPOLATED]
    .map((c) => [POINT_NAMES[c], s.done.filter((v) => v === c).length] as const)
    .filter(([, count]) => count > 0);
  if (kinds.length) lines.push(`  status: ${kinds.map(([name, count]) => `${count} ${name}`).join(", ")}`);
  lines.push(`dir_file: ${s.dirFile}`);
  for (const q of SURFACE_QUANTITIES) {
    const a = s.values[q];
    if (!a) continue;
    let min = Infinity;
    let max = -Infinity;
    let nan = 0;
    a.forEach((v, k) => {
      if (!s.done[k]) return;
      if (Number.isFinite(v)) {
        min = Math.min(min, v);
        max = Math.max(max, v);
      } else nan++;
    });
    lines.push(
      `  ${q.padEnd(13)} min ${min === Infinity ? "-" : min.toPrecision(6)}, max ${max === -Infinity ? "-" : max.toPrecision(6)}${nan ? `, ${nan} non-finite` : ""}`,
    );
  }
  for (const [k, v] of Object.entries(s.meta)) lines.push(`  ${k}: ${v}`);
  return lines;
}

/** The points of `grid` (in `shard`) that the surface file at `path` does not hold yet. */
function pendingPoints(path: string, grid: Grid, shard?: Shard): number {
  const done = existsSync(path) ? readSurface(path).done : undefined;
  let n = 0;
  for (let k = 0; k < gridSize(grid); k++) if (inShard(k, shard) && !done?.[k]) n++;
  return n;
}

type EvaluateFlags = Parameters<typeof taskFromFlags>[0] & { batchSize: number; lossCap?: number };

/** Batch size, task and --loss-cap as evaluation options. */
function evaluateFromFlags(o: EvaluateFlags) {
  return {
    batchSize: o.batchSize,
    ...taskFromFlags(o),
    ...(o.lossCap !== undefined ? { lossCap: o.lossCap } : {}),
  };
}

/** The cost and prefix-cache flags of surface and interpolate. */
type CacheFlags = {
  threads?: number;
  cacheMemory: number;
  cacheDisk: number;
  cacheDir?: string;
  prefixCache: boolean;
};

/**
 * Engine options for a surface along `directions`: a prefix cache of the graph part no direction
 * reaches, unless --no-prefix-cache or every parameter moves.
 */
function engineOptions(o: CacheFlags, model: Model, directions: readonly Float32Array[]): OrtOptions {
  return {
    ...(o.threads ? { threads: o.threads } : {}),
    ...surfaceEngineOptions(model, directions, cacheLimits(o)),
  };
}

/** One line on the engine's prefix cache (none when it has none and none was asked for). */
export function prefixLine(engine: Engine, at: "start" | "end"): string | undefined {
  const r = engine.prefix?.();
  if (r === undefined) return undefined;
  if (typeof r === "string") return `prefix cache: off (${r})`;
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  if (at === "start")
    return `prefix cache: ${r.prefixNodes} of ${r.prefixNodes + r.suffixNodes} nodes reach no moving parameter and run once per batch; ${r.suffixNodes} run per point (${r.cuts.length} tensor(s) passed between them)`;
  return `prefix cache: ${r.batches} batch(es) held (${mib(r.memoryBytes)} in memory, ${mib(r.diskBytes)} on disk), ${r.uncached} recomputed for want of room, ${r.hits} reuses`;
}

/** --plan: the estimate for the points still to compute, with nothing written. */
async function printPlan(
  o: EvaluateFlags & CacheFlags,
  model: Model,
  theta: Float32Array,
  directions: readonly Float32Array[],
  train: Dataset,
  test: Dataset | undefined,
  points: number,
  perWorker = false,
  bn?: RecomputeOptions,
): Promise<void> {
  const moving = bn ? [...directions, statisticsMoving(model)] : directions;
  let engine = await createOrtEngine(model, engineOptions(o, model, moving));
  // With --bn recompute the probe includes the recomputation of each point.
  if (bn)
    engine = recalibratedEngine(
      engine,
      await createBatchNormRecalibrator(model, train, {
        ...bn,
        ...(o.threads ? { threads: o.threads } : {}),
        task: taskFromFlags(o),
      }),
    );
  try {
    const line = prefixLine(engine, "start");
    if (line) console.log(line);
    const cost = await probeCost(engine, theta, train, test, points, evaluateFromFlags(o), directions);
    console.log(formatCost(cost, { perWorker }));
  } finally {
    await engine.dispose();
  }
}

/** The --bn flags of surface and interpolate. */
type BatchNormFlags = { bn: BatchNormHandling; bnBatches: number; bnBatchSize: number; bnSeed: number };

/** The recomputation of --bn recompute (undefined for interpolate). */
function recomputeFromFlags(o: BatchNormFlags): RecomputeOptions | undefined {
  return o.bn === "recompute"
    ? { batches: o.bnBatches, batchSize: o.bnBatchSize, seed: o.bnSeed }
    : undefined;
}

/** Every batch-norm statistic as moving (for the prefix cache: they are recomputed at each point). */
function statisticsMoving(model: Model): Float32Array {
  const mask = new Float32Array(model.size);
  for (const p of model.params) if (p.role === "bn-stat") mask.fill(1, p.offset, p.offset + p.size);
  return mask;
}

async function runSurface(
  o: EvaluateFlags & CacheFlags & { flush: number },
  job: Omit<Parameters<typeof computeSurface>[0], "engine" | "onProgress" | "evaluate" | "flushSeconds"> & {
    model: Model;
  },
  bn?: RecomputeOptions,
): Promise<void> {
  const moving = bn ? [...job.directions, statisticsMoving(job.model)] : job.directions;
  let engine = await createOrtEngine(job.model, engineOptions(o, job.model, moving));
  const total = gridSize(job.grid);
  const evaluate = evaluateFromFlags(o);
  if (bn) {
    const recalibrator = await createBatchNormRecalibrator(job.model, job.train, {
      ...bn,
      ...(o.threads ? { threads: o.threads } : {}),
      task: taskFromFlags(o),
    });
    engine = recalibratedEngine(engine, recalibrator);
    job.meta = { ...job.meta, ...recalibrator.meta };
    console.log(
      recalibrator.statistics.length
        ? `batch norm: running statistics of ${recalibrator.statistics.length / 2} layer(s) recomputed at every point from ${recalibrator.batches} seeded training batch(es) of ${recalibrator.samples / recalibrator.batches} samples (--bn-seed ${bn.seed ?? 0})`
        : "batch norm: the model has none; --bn recompute changes nothing",
    );
  }
  try {
    // A resume with another batch-norm handling is refused like one on other inputs.
    if (existsSync(job.path)) {
      const bnMeta = Object.fromEntries(Object.entries(job.meta ?? {}).filter(([k]) => /^bn(_|$)/.test(k)));
      const problems = batchNormProblems(readSurface(job.path).meta, bnMeta);
      if (problems.length)
        throw new Error(
          `cannot resume '${job.path}': it was computed with another batch-norm handling (${problems.join("; ")}). Pass the file's --bn options, use another output file, or delete this one to start over.`,
        );
    }
    // A resume on other inputs is refused before the probe.
    if (existsSync(job.path)) resumableSurface({ ...job, engine, evaluate });
    const cost = await probeCost(
      engine,
      job.theta,
      job.train,
      job.test,
      pendingPoints(job.path, job.grid, job.shard),
      evaluate,
      job.directions,
    );
    const line = prefixLine(engine, "start");
    if (line) console.log(line);
    const bound = job.refine !== undefined ? " (at most: --refine computes a part of them)" : "";
    console.log(`${formatCost(cost)}${bound}`);
    const bar = startProgress("surface", total, { unit: "points" });
    const t0 = performance.now();
    let computed = 0;
    const s = await computeSurface({
      ...job,
      engine,
      evaluate,
      flushSeconds: o.flush,
      onProgress: (done, todo) => {
        computed = done;
        bar.update(total - todo + done);
      },
    });
    bar.stop();
    if (job.refine !== undefined) {
      const interpolated = s.done.filter((v) => v === POINT.INTERPOLATED).length;
      console.log(
        `refined to ${job.refine}: computed ${s.done.filter((v) => v !== POINT.NOT_COMPUTED && v !== POINT.INTERPOLATED).length} of ${total} points, ${interpolated} interpolated`,
      );
    }
    const end = prefixLine(engine, "end");
    if (end && typeof engine.prefix?.() === "object") console.log(end);
    const capped = s.done.filter((v) => v === POINT.CAPPED).length;
    const diverged = s.done.filter((v) => v === POINT.DIVERGED).length;
    if (capped || diverged)
      console.log(
        `${diverged ? `${diverged} diverged point(s) (NaN/Inf, stopped at the first such batch)` : ""}${capped && diverged ? "; " : ""}${capped ? `${capped} point(s) above --loss-cap ${o.lossCap} (stored as lower bounds)` : ""}`,
      );
    const secs = (performance.now() - t0) / 1000;
    console.log(
      `computed ${computed} points in ${secs.toFixed(1)} s (${(computed / Math.max(secs, 1e-9)).toFixed(2)} points/s) -> ${job.path}`,
    );
    for (const line of summary(s)) console.log(line);
  } finally {
    await engine.dispose();
  }
}

/** The random-direction plan of the directions and surface commands' flags. */
function randomPlan(
  o: {
    seed: number;
    norm: Normalization;
    keepBiasbn?: true;
    mode: DirectionMode;
    orthogonal?: true;
    only?: RegExp;
  },
  dims: number,
): Parameters<typeof makeDirections>[2] {
  return {
    dims: dims as 1 | 2,
    seed: o.seed,
    normalization: o.norm,
    ignoreBiasBN: !o.keepBiasbn,
    mode: o.mode,
    orthogonal: Boolean(o.orthogonal),
    ...onlyPlan(o).plan,
  };
}

/** Adds the landscape commands to the program. */
export function registerLandscapeCommands(program: Command): void {
  onlyOption(modelOptions(program.command("directions")))
    .description("create a direction file (seeded Gaussian, filter-normalized by default) for a model")
    .requiredOption("--out <file>", "direction file to write (.h5)")
    .option("--dims <n>", "1 (a line) or 2 (a plane)", oneOf("--dims", ["1", "2"] as const), "2")
    .option(
      "--seed <n>",
      "seed of the first direction (the second uses seed + 1)",
      nonNegativeInt("--seed"),
      0,
    )
    .option(
      "--norm <name>",
      `normalization: ${NORMALIZATIONS.join(", ")}`,
      oneOf("--norm", NORMALIZATIONS),
      "filter" as Normalization,
    )
    .option(
      "--keep-biasbn",
      "give bias and BN entries d = theta instead of zero (the reference code's non-default)",
    )
    .option(
      "--mode <mode>",
      "weights (BN statistics fixed) or states (they move too)",
      oneOf("--mode", MODES),
      "weights" as DirectionMode,
    )
    .option("--orthogonal", "make the second direction orthogonal to the first")
    .action(async (o) => {
      const { model, params } = await openFromFlags(o);
      if (existsSync(o.out))
        throw new Error(
          `--out '${o.out}' exists; directions are never overwritten (delete it or pick another name)`,
        );
      const { directions, meta } = directionsAt(o.out, Number(o.dims), model, () =>
        makeDirections(model, params, randomPlan(o, Number(o.dims))),
      );
      console.log(
        `wrote ${o.out}: ${directions.length} direction(s) moving ${meta.moved_count} tensors, norms ${directions.map((d) => norm(d).toPrecision(5)).join(", ")}`,
      );
    });

  batchNormOptions(
    costOptions(onlyOption(queueOptions(dataOptions(modelOptions(program.command("surface")))))),
    "interpolate",
    "moved by the directions with --mode states, fixed with --mode weights",
  )
    .description("compute a 1D (--x) or 2D (--x and --y) loss surface around the model, resumable")
    .requiredOption("--x <min:max:num>", "coordinates along the first direction, e.g. -1:1:51")
    .option("--y <min:max:num>", "coordinates along the second direction (makes a 2D surface)")
    .requiredOption("--out <file>", "surface file (.h5); rerunning the same command resumes it")
    .option(
      "--dir-file <file>",
      "direction file to use, or to create if missing (default: <out>.directions.h5)",
    )
    .option("--seed <n>", "seed of the directions", nonNegativeInt("--seed"), 0)
    .option(
      "--norm <name>",
      `normalization: ${NORMALIZATIONS.join(", ")}`,
      oneOf("--norm", NORMALIZATIONS),
      "filter" as Normalization,
    )
    .option("--keep-biasbn", "give bias and BN entries d = theta instead of zero")
    .option("--mode <mode>", "weights or states", oneOf("--mode", MODES), "weights" as DirectionMode)
    .option("--orthogonal", "make the second direction orthogonal to the first")
    .option(
      "--directions <kind>",
      "random (seeded, --norm), hessian (top two Hessian eigenvectors) or hessian-min (top and most negative), scaled to ||theta_filters|| (--norm none: unit)",
      oneOf("--directions", DIRECTION_KINDS),
      "random" as DirectionKind,
    )
    .option(
      "--hessian-tol <r>",
      "Lanczos tolerance of the Hessian axes",
      positiveNumber("--hessian-tol"),
      1e-4,
    )
    .option(
      "--hessian-iterations <n>",
      "at most n Lanczos products for the Hessian axes",
      positiveInt("--hessian-iterations"),
      200,
    )
    .option("--test", "also compute test loss and accuracy")
    .option(
      "--planes <k>",
      "compute k random planes (seeds seed + 2i, seed + 2i + 1) into <out>-plane<i>.h5 and report the spread of their sharpness",
      positiveInt("--planes"),
    )
    .option(
      "--planes-radius <r>",
      "radius of the per-plane sharpness (default: half the smaller max |coordinate|, at least sqrt(2) grid steps)",
      positiveNumber("--planes-radius"),
    )
    .option("--shard <i/n>", "compute only shard i of n (then: losscape merge)")
    .option("--flush <seconds>", "seconds between writes of finished points", positiveNumber("--flush"), 10)
    .action(async (o) => {
      const grid = gridOf(o.x, o.y);
      const shard = o.shard ? parseShard(o.shard) : undefined;
      if (o.bn === "recompute" && o.queue)
        throw new Error(
          "--bn recompute is not available with --queue (its workers evaluate points as they are); run without --queue, or split the grid with --shard",
        );
      const train = loadFromFlags(o, "train");
      const test: Dataset | undefined = o.test ? loadFromFlags(o, "test") : undefined;
      const { model, params } = await openFromFlags(o, train);
      const dims = grid.y ? 2 : 1;
      if (o.planes !== undefined) {
        if (o.directions !== "random" || o.bn === "recompute")
          throw new Error("surface: --planes takes random directions and --bn interpolate (the default)");
        const planes = { model, params, grid, train, ...(test ? { test } : {}), plan: randomPlan(o, 2) };
        return runPlanes({ ...o, planes: o.planes }, planes);
      }
      const dirFile = o.dirFile ?? defaultDirFile(o.out);
      // Hessian axes are computed once, before the file exists (--plan estimates with random ones).
      checkHessianAxesFlags(o);
      const hessian =
        o.directions !== "random" && !existsSync(dirFile) && !o.plan
          ? await hessianAxes(o, model, params, train, dims as 1 | 2, taskFromFlags(o))
          : undefined;
      const {
        directions,
        created,
        meta: dirMeta,
      } = directionsAt(
        dirFile,
        dims,
        model,
        () => hessian ?? makeDirections(model, params, randomPlan(o, dims)),
        { ...onlyPlan(o).expected, ...(o.directions !== "random" ? { kind: o.directions } : {}) },
        { write: !o.plan },
      );
      // The queue's estimate is for one worker like this machine, printed before submitting.
      if (o.plan || o.queue)
        await printPlan(
          o,
          model,
          params,
          directions,
          train,
          test,
          pendingPoints(o.out, grid, shard),
          Boolean(o.queue),
          recomputeFromFlags(o),
        );
      if (o.plan) return;
      console.log(
        `${created ? "created" : "using"} direction file ${dirFile}${dirMeta.moved_count ? ` (moves ${dirMeta.moved_count} tensors)` : ""}`,
      );
      const job = {
        model,
        theta: params,
        directions,
        grid,
        train,
        ...(test ? { test } : {}),
        path: o.out,
        dirFile,
        ...(shard ? { shard } : {}),
        ...(o.refine !== undefined ? { refine: o.refine } : {}),
        meta: {
          ...prefixed(dirMeta),
          command: process.argv.slice(2).join(" "),
          model_name: model.name,
          ...dataMeta(o, train, test),
        },
      };
      if (o.queue) {
        const s = await runQueuedSurface({ ...o, queue: o.queue }, job);
        if (s) for (const line of summary(s)) console.log(line);
      } else await runSurface(o, job, recomputeFromFlags(o));
    });

  batchNormOptions(
    costOptions(
      onlyOption(
        dataOptions(modelOptions(program.command("interpolate"))),
        "interpolate only the parameters whose names match; the others stay the first model's",
      ),
    ),
    "interpolate",
    "default; with --mode states",
  )
    .description(
      "1D interpolation (1-a) theta_A + a theta_B between two models, BN statistics interpolated too (or recomputed: --bn recompute)",
    )
    .requiredOption(
      "--to <file>",
      "the second model: a safetensors file for the same graph, or an .onnx file",
    )
    .option("--x <min:max:num>", "values of a", "-0.5:1.5:401")
    .requiredOption("--out <file>", "surface file (.h5)")
    .option("--dir-file <file>", "direction file (default: <out>.directions.h5)")
    .option(
      "--mode <mode>",
      "states (BN statistics interpolated, default) or weights",
      oneOf("--mode", MODES),
      "states" as DirectionMode,
    )
    .option("--test", "also compute test loss and accuracy")
    .option("--flush <seconds>", "seconds between writes of finished points", positiveNumber("--flush"), 10)
    .action(async (o) => {
      const grid = gridOf(o.x, undefined);
      const train = loadFromFlags(o, "train");
      const test: Dataset | undefined = o.test ? loadFromFlags(o, "test") : undefined;
      const { model, params } = await openFromFlags(o, train);
      let target: Float32Array;
      if (o.to.endsWith(".onnx")) {
        const other = await readOnnx(o.to);
        const names = (m: typeof model) => m.params.map((p) => `${p.name}[${p.shape.join(",")}]`).join(" ");
        if (names(other) !== names(model))
          throw new Error(`--to '${o.to}' has other parameters than --model '${o.model}'`);
        target = other.initial;
      } else target = loadParams(model, o.to);
      const dirFile = o.dirFile ?? defaultDirFile(o.out);
      const { directions, meta: dirMeta } = directionsAt(
        dirFile,
        1,
        model,
        () =>
          makeModelDirection(model, params, target, { mode: o.mode, ...(o.only ? { only: o.only } : {}) }),
        { only: o.only?.source ?? "" },
        { write: !o.plan },
      );
      if (o.plan)
        return printPlan(
          o,
          model,
          params,
          directions,
          train,
          test,
          pendingPoints(o.out, grid),
          false,
          recomputeFromFlags(o),
        );
      await runSurface(
        o,
        {
          model,
          theta: params,
          directions,
          grid,
          train,
          ...(test ? { test } : {}),
          path: o.out,
          dirFile,
          ...(o.refine !== undefined ? { refine: o.refine } : {}),
          meta: {
            ...prefixed(dirMeta),
            command: process.argv.slice(2).join(" "),
            model_name: model.name,
            ...dataMeta(o, train, test),
            kind: "interpolation",
            to: o.to,
          },
        },
        recomputeFromFlags(o),
      );
    });

  program
    .command("inspect")
    .description("print what a surface or direction file holds")
    .argument("<file>", "surface or direction file (.h5)")
    .action((file) => {
      if (!existsSync(file)) throw new Error(`file '${file}' does not exist`);
      let surface: Surface | undefined;
      try {
        surface = readSurface(file);
      } catch (surfaceError) {
        let dirs: ReturnType<typeof readDirectionFile>;
        try {
          dirs = readDirectionFile(file);
        } catch {
          throw surfaceError;
        }
        const count = (t: typeof dirs.x) => t.reduce((a, x) => a + x.data.length, 0);
        console.log(
          `direction file: ${dirs.y ? 2 : 1} direction(s), ${dirs.x.length} tensors, ${count(dirs.x)} values each`,
        );
        for (const [k, v] of Object.entries(dirs.meta)) console.log(`  ${k}: ${v}`);
        return;
      }
      for (const line of summary(surface)) console.log(line);
    });

  program
    .command("merge")
    .description("combine shard files of one surface into one file")
    .requiredOption("--out <file>", "merged surface file")
    .argument("<shards...>", "shard files written with --shard i/n")
    .action((shards, o) => {
      if (existsSync(o.out)) throw new Error(`--out '${o.out}' exists; merge never overwrites a file`);
      const merged = mergeSurfaces(
        shards.map((f) => readSurface(f)),
        shards,
      );
      writeSurface(o.out, merged);
      const missing = merged.done.filter((v) => v === POINT.NOT_COMPUTED).length;
      console.log(
        `merged ${shards.length} files into ${o.out}${missing ? `; ${missing} points are still missing (rerun the missing shards or resume on the merged file)` : ""}`,
      );
      for (const line of summary(merged)) console.log(line);
    });
}
