// losscape surface --planes K: K seeded random planes with one engine, each a
// resumable surface file, and the spread of their sharpness (mean loss increase
// within a radius, curvatures of a quadratic fit). Called by the surface command.

import type { Grid } from "../core/grid.ts";
import { gridSize } from "../core/grid.ts";
import type { Dataset } from "../data/dataset.ts";
import { createOrtEngine, surfaceEngineOptions } from "../engine/ort.ts";
import { writeFileAtomic } from "../formats/atomic.ts";
import { type DirectionPlan, makeDirections } from "../landscape/plan.ts";
import { computePlanes, type Spread } from "../landscape/planes.ts";
import type { Model } from "../model/model.ts";
import { cacheLimits, type DataFlags, dataMeta, taskFromFlags } from "./_options.ts";
import { startProgress } from "./progress.ts";

/** The surface command's flags that --planes uses. */
export type PlanesFlags = Parameters<typeof taskFromFlags>[0] &
  DataFlags & {
    out: string;
    planes: number;
    planesRadius?: number;
    batchSize: number;
    lossCap?: number;
    threads?: number;
    cacheMemory: number;
    cacheDisk: number;
    cacheDir?: string;
    prefixCache: boolean;
    flush: number;
    refine?: string;
    dirFile?: string;
    shard?: string;
    queue?: string;
    plan?: true;
  };

const fmt = (v: number) => (Number.isFinite(v) ? v.toPrecision(4) : "-");
const row = (name: string, s: Spread) =>
  `| ${name} | ${fmt(s.mean)} | ${fmt(s.sd)} | ${fmt(s.min)} | ${fmt(s.max)} |`;

/**
 * Runs `losscape surface --planes K`: the planes, one line per plane and a table of the spread,
 * written beside them as <out>-planes.json.
 *
 * @example
 * await runPlanes(o, { model, params, grid, train, plan: { dims: 2, seed: 0 } });
 */
export async function runPlanes(
  o: PlanesFlags,
  job: {
    model: Model;
    params: Float32Array;
    grid: Grid;
    train: Dataset;
    test?: Dataset;
    plan: DirectionPlan;
  },
): Promise<void> {
  if (!job.grid.y) throw new Error("surface: --planes needs a 2D grid; give --y too");
  for (const [flag, given] of [
    ["--dir-file", o.dirFile],
    ["--shard", o.shard],
    ["--queue", o.queue],
    ["--plan", o.plan],
  ] as const)
    if (given !== undefined)
      throw new Error(
        `surface: --planes makes one direction file per plane and runs here; ${flag} does not apply`,
      );
  const { model, params } = job;
  // Every plane moves the same parameters (one plan, other seeds): one engine and prefix cache serve all.
  const first = makeDirections(model, params, job.plan).directions;
  const engine = await createOrtEngine(model, {
    ...(o.threads ? { threads: o.threads } : {}),
    ...surfaceEngineOptions(model, first, cacheLimits(o)),
  });
  const total = gridSize(job.grid);
  let bar: ReturnType<typeof startProgress> | undefined;
  const t0 = performance.now();
  try {
    const r = await computePlanes({
      model,
      engine,
      theta: params,
      grid: job.grid,
      train: job.train,
      ...(job.test ? { test: job.test } : {}),
      plan: job.plan,
      planes: o.planes,
      out: o.out,
      ...(o.planesRadius !== undefined ? { radius: o.planesRadius } : {}),
      ...(o.refine !== undefined ? { refine: o.refine } : {}),
      evaluate: {
        batchSize: o.batchSize,
        ...taskFromFlags(o),
        ...(o.lossCap !== undefined ? { lossCap: o.lossCap } : {}),
      },
      flushSeconds: o.flush,
      meta: {
        command: process.argv.slice(2).join(" "),
        model_name: model.name,
        ...dataMeta(o, job.train, job.test),
      },
      onPlane: (k, f) => {
        bar?.stop();
        bar = undefined;
        console.log(
          `plane ${k + 1}/${o.planes}: seeds ${f.seed}, ${f.seed + 1}; ${f.created ? "created" : "using"} ${f.dirFile} -> ${f.path}`,
        );
        bar = startProgress(`plane ${k + 1}/${o.planes}`, total, { unit: "points" });
      },
      onProgress: (_k, done, todo) => bar?.update(total - todo + done),
    });
    bar?.stop();
    bar = undefined;
    console.log(
      `${o.planes} planes in ${((performance.now() - t0) / 1000).toFixed(1)} s. Sharpness per plane within radius ${Number(r.radius.toPrecision(4))} of the centre (train loss): mean increase L - L(0), and the curvatures of a least-squares quadratic fit`,
    );
    for (const [k, p] of r.planes.entries())
      console.log(
        `  plane ${k} (seed ${p.seed}): mean increase ${fmt(p.meanIncrease)} over ${p.points - (p.centreFrom === "grid" ? 1 : 0)} points, curvatures ${fmt(p.curvatures[0])}, ${fmt(p.curvatures[1])} (fit rms ${fmt(p.fitRms)}, centre ${fmt(p.centre)} from the ${p.centreFrom})`,
      );
    console.log("");
    console.log(`| across ${o.planes} planes | mean | sd | min | max |`);
    console.log("|---|---|---|---|---|");
    console.log(row("mean increase", r.meanIncrease));
    console.log(row("curvature (larger)", r.curvatureMax));
    console.log(row("curvature (smaller)", r.curvatureMin));
    const summary = `${o.out.replace(/\.h5$/, "")}-planes.json`;
    writeFileAtomic(summary, `${JSON.stringify({ model: model.name, ...r }, null, 1)}\n`);
    console.log(`\nsummary -> ${summary}`);
  } finally {
    bar?.stop();
    await engine.dispose();
  }
}
