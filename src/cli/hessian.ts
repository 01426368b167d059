// losscape hessian: lambda_max and lambda_min (optionally the top-k and the
// trace) of the loss Hessian w.r.t. the filter weights at the model, or over a
// 1D/2D grid into a surface file (max_eig, min_eig) for the paper's
// |lambda_min / lambda_max| map. Parses options, calls src/curvature, reports.

import { existsSync } from "node:fs";
import type { Command } from "@commander-js/extra-typings";
import { NORMALIZATIONS, type Normalization } from "../core/directions.ts";
import { axisValues, type Grid, gridSize, inShard, parseAxis, parseShard } from "../core/grid.ts";
import { formatHessianCost, probeHessianCost } from "../curvature/cost.ts";
import { hessianExtremes, TRACE_METHODS, type TraceMethod } from "../curvature/hessian.ts";
import { hessianSurface } from "../curvature/surface.ts";
import { datasetSize } from "../data/dataset.ts";
import { taskIdentity } from "../engine/task.ts";
import { readSurface } from "../formats/surface-file.ts";
import { directionsAt, makeDirections } from "../landscape/plan.ts";
import {
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
import { startProgress } from "./progress.ts";

/** Default direction file beside a surface file: surf.h5 -> surf.directions.h5. */
function defaultDirFile(out: string): string {
  return `${out.replace(/\.h5$/, "")}.directions.h5`;
}

/** The direction file of a grid: --dir-file, the one an existing --out records, or the default. */
function dirFileFor(out: string, given: string | undefined): string {
  if (given) return given;
  if (existsSync(out)) {
    const recorded = readSurface(out).dirFile;
    if (recorded && existsSync(recorded)) return recorded;
  }
  return defaultDirFile(out);
}

const fmt = (v: number): string => v.toPrecision(6);

/**
 * Adds `losscape hessian` to the program.
 *
 * @example
 * registerHessianCommand(program); // losscape hessian --model cnn --subset 1000
 */
export function registerHessianCommand(program: Command): void {
  onlyOption(
    dataOptions(modelOptions(program.command("hessian"))),
    "new directions move only the parameters whose names match (the Hessian stays the whole model's)",
  )
    .description(
      "extreme eigenvalues of the loss Hessian w.r.t. the filter weights (Lanczos on exact Hessian-vector products, eval mode), at the model or over a grid (--x [--y] --out)",
    )
    .option(
      "--tol <r>",
      "stop when both residual bounds are below r * max |lambda|",
      positiveNumber("--tol"),
      1e-3,
    )
    .option(
      "--iterations <n>",
      "at most n Hessian-vector products per point",
      positiveInt("--iterations"),
      100,
    )
    .option("--lanczos-seed <n>", "seed of the Lanczos start vector", nonNegativeInt("--lanczos-seed"), 0)
    .option("--top-k <k>", "also print the k largest Ritz values (single point)", positiveInt("--top-k"))
    .option(
      "--trace [products]",
      "also estimate the trace with this many Hessian-vector products (default 20 probes for Hutchinson, 30 for Hutch++; single point)",
    )
    .option(
      "--trace-method <name>",
      `trace estimator: ${TRACE_METHODS.join(", ")} (Hutch++: rank-k sketch + Hutchinson on the rest, 3k products)`,
      oneOf("--trace-method", TRACE_METHODS),
      "hutchinson" as TraceMethod,
    )
    .option("--json", "print the result as one JSON line (single point)")
    .option(
      "--plan",
      "print points x Hessian-vector products x samples and the estimated time (from a short timed probe), then exit",
    )
    .option("--x <min:max:num>", "grid along the first direction (makes a Hessian surface; needs --out)")
    .option("--y <min:max:num>", "grid along the second direction (2D)")
    .option("--out <file>", "surface file to create, resume, or add max_eig/min_eig to (a loss surface)")
    .option("--dir-file <file>", "direction file to use, or create if missing (default: <out>.directions.h5)")
    .option("--seed <n>", "seed of new directions", nonNegativeInt("--seed"), 0)
    .option(
      "--norm <name>",
      `normalization of new directions: ${NORMALIZATIONS.join(", ")}`,
      oneOf("--norm", NORMALIZATIONS),
      "filter" as Normalization,
    )
    .option("--shard <i/n>", "compute only shard i of n (then: losscape merge)")
    .option("--flush <seconds>", "seconds between writes of finished points", positiveNumber("--flush"), 10)
    .action(async (o) => {
      const task = taskFromFlags(o);
      if (o.loss === "mse-onehot")
        throw new Error(
          "hessian: the Hessian is of cross-entropy or mse (regression); --loss mse-onehot is not supported",
        );
      if (!(o.tol < 1)) throw new Error(`hessian: --tol expects a number in (0, 1), got ${o.tol}`);
      if (o.iterations < 2) throw new Error(`hessian: --iterations expects at least 2, got ${o.iterations}`);
      let traceSamples = 0;
      if (o.trace !== undefined) {
        const hutchpp = o.traceMethod === "hutch++";
        traceSamples = o.trace === true ? (hutchpp ? 30 : 20) : Number(o.trace);
        if (!Number.isInteger(traceSamples) || traceSamples < (hutchpp ? 3 : 1))
          throw new Error(
            `hessian: --trace expects ${hutchpp ? "at least 3 products for Hutch++" : "a positive number of probes"}, got '${o.trace}'`,
          );
      }
      const grid = o.x !== undefined;
      if (!grid && (o.y !== undefined || o.out !== undefined || o.shard !== undefined)) {
        throw new Error("hessian: --y, --out and --shard describe a grid; give --x too");
      }
      if (grid && o.out === undefined) throw new Error("hessian: a grid (--x) needs --out <file>");
      if (grid && (traceSamples > 0 || o.topK !== undefined || o.json)) {
        throw new Error("hessian: --trace, --top-k and --json apply to a single point, not to a grid");
      }

      const data = loadFromFlags(o, "train");
      const { model, params } = await openFromFlags(o, data);
      const filters = model.params.filter((p) => p.role === "filter");
      const count = filters.reduce((a, p) => a + p.size, 0);
      const about = `${model.name}: Hessian of the mean ${taskIdentity(task, model)} over ${data.name} (${datasetSize(data)} samples) w.r.t. ${filters.length} filter tensors (${count} parameters), eval mode`;
      const hessian = { tol: o.tol, maxIterations: o.iterations, seed: o.lanczosSeed };
      const run = { batchSize: o.batchSize, task, ...(o.threads ? { threads: o.threads } : {}) };

      const plan = async (points: number): Promise<void> => {
        const cost = await probeHessianCost(model, params, data, {
          points,
          maxProducts: o.iterations + traceSamples,
          batchSize: o.batchSize,
          task,
          ...(o.threads ? { threads: o.threads } : {}),
        });
        console.log(formatHessianCost(cost));
      };

      if (!grid) {
        if (!o.json) console.log(about);
        if (o.plan || !o.json) await plan(1);
        if (o.plan) return;
        const t0 = performance.now();
        const e = await hessianExtremes(model, params, data, {
          ...hessian,
          ...run,
          ...(o.topK ? { topK: o.topK } : {}),
          traceSamples,
          traceMethod: o.traceMethod,
        });
        const seconds = (performance.now() - t0) / 1000;
        if (o.json) {
          console.log(
            JSON.stringify({ model: model.name, data: data.name, samples: datasetSize(data), ...e, seconds }),
          );
          return;
        }
        console.log(`lambda_max ${fmt(e.max)} (within ${e.residualMax.toExponential(1)})`);
        console.log(`lambda_min ${fmt(e.min)} (within ${e.residualMin.toExponential(1)})`);
        console.log(`|lambda_min / lambda_max| ${fmt(Math.abs(e.min / e.max))}`);
        if (e.top) console.log(`top ${e.top.length} Ritz values: ${e.top.map(fmt).join(", ")}`);
        if (e.trace)
          console.log(
            `trace ${fmt(e.trace.trace)} +- ${e.trace.stderr.toPrecision(2)} (${e.trace.method === "hutch++" ? `Hutch++, ${e.trace.samples} products` : `Hutchinson, ${e.trace.samples} probes`})`,
          );
        console.log(
          `Lanczos: ${e.iterations} products, tol ${o.tol} of max |lambda|, ${e.converged ? "converged" : "NOT converged (raise --iterations)"}; ${e.passes} passes over the data in ${seconds.toFixed(1)} s`,
        );
        return;
      }

      const out = o.out!;
      const g: Grid = {
        x: axisValues(parseAxis(o.x!, "--x")),
        y: o.y === undefined ? null : axisValues(parseAxis(o.y, "--y")),
      };
      const dims = g.y ? 2 : 1;
      const shard = o.shard ? parseShard(o.shard) : undefined;
      // Points still without eigenvalues (of this shard): an upper bound of the work left.
      const existing = existsSync(out) ? readSurface(out) : undefined;
      let pending = 0;
      for (let k = 0; k < gridSize(g); k++)
        if (inShard(k, shard) && !Number.isFinite(existing?.values.max_eig?.[k] ?? Number.NaN)) pending++;
      console.log(about);
      await plan(pending);
      if (o.plan) return;
      const dirFile = dirFileFor(out, o.dirFile);
      const { directions, created } = directionsAt(
        dirFile,
        dims,
        model,
        () =>
          makeDirections(model, params, {
            dims: dims as 1 | 2,
            seed: o.seed,
            normalization: o.norm,
            ...onlyPlan(o).plan,
          }),
        onlyPlan(o).expected,
      );
      console.log(`${created ? "created" : "using"} direction file ${dirFile}`);
      const total = gridSize(g);
      const bar = startProgress("hessian", total, { unit: "points" });
      const t0 = performance.now();
      let done = 0;
      const r = await hessianSurface({
        model,
        theta: params,
        directions,
        grid: g,
        data,
        path: out,
        dirFile,
        hessian,
        ...run,
        flushSeconds: o.flush,
        ...(shard ? { shard } : {}),
        meta: { command: process.argv.slice(2).join(" "), model_name: model.name, ...dataMeta(o, data) },
        onProgress: (n, _todo, e) => {
          done = n;
          bar.update(n, `|min/max| ${fmt(Math.abs(e.min / e.max))}`);
        },
      });
      bar.stop();
      const seconds = (performance.now() - t0) / 1000;
      console.log(
        `computed ${done} points in ${seconds.toFixed(1)} s -> ${out}${r.skipped ? `; ${r.skipped} points skipped (their loss is not computed yet)` : ""}`,
      );
      if (r.unconverged > 0)
        console.log(`${r.unconverged} points did not reach --tol ${o.tol} within ${o.iterations} products`);
      const ratio: number[] = [];
      const s = r.surface;
      for (let k = 0; k < s.done.length; k++) {
        const v = Math.abs(s.values.min_eig![k]! / s.values.max_eig![k]!);
        if (s.done[k] && Number.isFinite(v)) ratio.push(v);
      }
      if (ratio.length)
        console.log(
          `|lambda_min / lambda_max| over ${ratio.length} points: min ${fmt(Math.min(...ratio))}, max ${fmt(Math.max(...ratio))}; draw it: losscape plot ${out} --kind hessian`,
        );
    });
}
