// The trajectory command: PCA directions of a run's checkpoints, the projected
// path, the surface on the PCA plane, and the figure (optionally several runs
// side by side, and the contrast with random directions).

import { readdirSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "@commander-js/extra-typings";
import { createOrtEngine } from "../engine/ort.ts";
import { formatCost, probeCost } from "../landscape/cost.ts";
import { sideBySide } from "../plot/compose.ts";
import { lineFigure } from "../plot/lines.ts";
import { writeFigure } from "../plot/plot.ts";
import { type TrajectoryPlane, trajectoryPlane, trajectorySvg } from "../trajectory/plane.ts";
import { dataOptions, loadFromFlags, modelOptions, openFromFlags, taskFromFlags } from "./_options.ts";
import { nonNegativeInt, positiveInt, positiveNumber } from "./_parse.ts";
import { startProgress } from "./progress.ts";

/** The checkpoints of a run folder (epoch-NNN.safetensors), in epoch order, with their epoch labels. */
export function runCheckpoints(folder: string): { files: string[]; labels: string[] } {
  const names = readdirSync(folder)
    .filter((f) => /^epoch-\d+\.safetensors$/.test(f))
    .sort((a, b) => Number(/\d+/.exec(a)![0]) - Number(/\d+/.exec(b)![0]));
  if (names.length < 2)
    throw new Error(
      `--run '${folder}' has ${names.length} checkpoint(s) epoch-NNN.safetensors; a trajectory needs at least 2`,
    );
  return {
    files: names.map((f) => join(folder, f)),
    labels: names.map((f) => String(Number(/\d+/.exec(f)![0]))),
  };
}

/** The path on the PCA plane next to the same path on two random directions, on one scale. */
export function contrastSvg(t: TrajectoryPlane): string {
  return lineFigure(
    [
      { x: t.x, y: t.y, label: "PCA directions" },
      { x: t.random.x, y: t.random.y, label: "random filter-normalized directions", dash: "6 4" },
    ],
    {
      title: "Trajectory projected on PCA vs random directions",
      xlabel: "first direction",
      ylabel: "second direction",
    },
  );
}

/** Adds `losscape trajectory`. */
export function registerTrajectoryCommand(program: Command): void {
  dataOptions(modelOptions(program.command("trajectory")))
    .description(
      "PCA directions of a training run's checkpoints, the projected path and the loss contours around it",
    )
    .requiredOption(
      "--run <dirs...>",
      "run folder(s) with epoch-NNN.safetensors (several: figures side by side)",
    )
    .option("--out <prefix>", "output prefix (default: <run>/trajectory)")
    .option("--figure <file>", "figure file (.svg, .png or .pdf; default: <prefix>.png)")
    .option("--points <n>", "grid points per axis", positiveInt("--points"), 21)
    .option(
      "--margin <f>",
      "room around the path, as a fraction of its extent",
      positiveNumber("--margin"),
      0.3,
    )
    .option("--keep-biasbn", "include bias and BN parameters in the PCA")
    .option("--seed <n>", "seed of the random directions of the contrast", nonNegativeInt("--seed"), 0)
    .option("--test", "also compute test loss and accuracy")
    .option("--plan", "print points x samples and the estimated time (from a short timed probe), then exit")
    .action(async (o) => {
      const train = loadFromFlags(o, "train");
      const test = o.test ? loadFromFlags(o, "test") : undefined;
      const { model, params } = await openFromFlags(o, train);
      const engine = await createOrtEngine(model, o.threads ? { threads: o.threads } : {});
      const figures: string[] = [];
      try {
        const cost = await probeCost(engine, params, train, test, o.points * o.points * o.run.length, {
          batchSize: o.batchSize,
          ...taskFromFlags(o),
        });
        console.log(formatCost(cost));
        if (o.plan) return;
        for (const run of o.run) {
          const { files, labels } = runCheckpoints(run);
          const prefix = o.run.length === 1 && o.out ? o.out : join(run, "trajectory");
          const bar = startProgress(`trajectory ${run}`, o.points * o.points, { unit: "points" });
          const t = await trajectoryPlane(model, {
            engine,
            files,
            train,
            ...(test ? { test } : {}),
            out: prefix,
            points: o.points,
            margin: o.margin,
            seed: o.seed,
            ignoreBiasBN: !o.keepBiasbn,
            evaluate: { batchSize: o.batchSize, ...taskFromFlags(o) },
            onProgress: (done, total) => bar.update(o.points * o.points - total + done),
          });
          bar.stop();
          const svg = trajectorySvg(t, { labels, title: run });
          figures.push(svg);
          const own = o.run.length === 1 && o.figure ? o.figure : `${prefix}.png`;
          writeFigure(own, svg);
          writeFigure(`${prefix}.random.png`, contrastSvg(t));
          const extent = (a: Float64Array) => Math.max(...a) - Math.min(...a);
          console.log(
            `${run}: ${files.length} checkpoints, ${t.axisLabels.join(", ")}; path extent ${extent(t.x).toPrecision(3)} x ${extent(t.y).toPrecision(3)} on the PCs vs ${extent(t.random.x).toPrecision(3)} x ${extent(t.random.y).toPrecision(3)} on random directions`,
          );
          console.log(
            `wrote ${t.files.directions}, ${t.files.projection}, ${t.files.surface}, ${own}, ${prefix}.random.png`,
          );
        }
        if (o.run.length > 1) {
          const path = o.figure ?? "trajectories.png";
          writeFigure(path, sideBySide(figures));
          console.log(`wrote ${path} (${o.run.length} runs side by side)`);
        }
      } finally {
        await engine.dispose();
      }
    });
}
