// The connect command: trains a Bezier curve or polygonal chain between two
// models (mode connectivity, Garipov et al. 2018) and reports loss, accuracy
// and barrier heights along it and along the straight line.

import { readFileSync } from "node:fs";
import type { Command } from "@commander-js/extra-typings";
import type { OptimizerConfig } from "../core/optim.ts";
import type { Dataset } from "../data/dataset.ts";
import { CURVE_KINDS, type CurveKind } from "../landscape/connect.ts";
import { connectModels } from "../landscape/connect-job.ts";
import { loadParams } from "../model/checkpoint.ts";
import { writeFigure } from "../plot/plot.ts";
import {
  batchNormOptions,
  dataOptions,
  loadFromFlags,
  modelOptions,
  openFromFlags,
  taskFromFlags,
} from "./_options.ts";
import { nonNegativeInt, oneOf, positiveInt, positiveNumber } from "./_parse.ts";
import { startProgress } from "./progress.ts";

const OPTIMIZERS = ["sgd", "adam"] as const;

/** Adds `losscape connect`. */
export function registerConnectCommand(program: Command): void {
  batchNormOptions(
    dataOptions(modelOptions(program.command("connect"))),
    "recompute",
    "combined like weights",
  )
    .description(
      "mode connectivity: train a Bezier curve or polygonal chain between two models, then loss, accuracy and barrier heights along it and along the straight line",
    )
    .requiredOption("--from <file>", "the first model's parameters (safetensors for --model's graph)")
    .requiredOption("--to <file>", "the second model's parameters")
    .requiredOption(
      "--out <dir>",
      "folder: curve.safetensors, connect.json, plane.h5, figures; rerunning resumes it",
    )
    .option("--curve <kind>", "bezier or polychain", oneOf("--curve", CURVE_KINDS), "bezier" as CurveKind)
    .option(
      "--steps <n>",
      "training steps of the control point (one t ~ U(0,1) and one batch each)",
      positiveInt("--steps"),
      1000,
    )
    .option("--train-batch-size <n>", "samples per training step", positiveInt("--train-batch-size"), 128)
    .option(
      "--optimizer <name>",
      "sgd (momentum) or adam",
      oneOf("--optimizer", OPTIMIZERS),
      "sgd" as (typeof OPTIMIZERS)[number],
    )
    .option(
      "--lr <rate>",
      "initial learning rate (constant for half the steps, then down to 1 %)",
      positiveNumber("--lr"),
      0.05,
    )
    .option("--momentum <m>", "SGD momentum", Number, 0.9)
    .option("--weight-decay <wd>", "L2 weight decay on the control point", Number, 0)
    .option("--seed <n>", "seed of t and of the batches", nonNegativeInt("--seed"), 0)
    .option(
      "--checkpoint-every <n>",
      "steps between checkpoints of the control point",
      positiveInt("--checkpoint-every"),
      50,
    )
    .option("--points <n>", "values of t in [0, 1] along each path", positiveInt("--points"), 21)
    .option(
      "--plane-points <n>",
      "grid points per axis of the plane surface (0: none)",
      nonNegativeInt("--plane-points"),
      11,
    )
    .option("--test", "also compute test loss and accuracy along the paths")
    .option("--pdf", "also write each figure as a vector PDF (fonts embedded) beside its SVG")
    .action(async (o) => {
      if (!Number.isFinite(o.momentum) || o.momentum < 0 || o.momentum >= 1)
        throw new Error(`--momentum expects a number in [0, 1), got '${o.momentum}'`);
      if (!Number.isFinite(o.weightDecay) || o.weightDecay < 0)
        throw new Error(`--weight-decay expects a non-negative number, got '${o.weightDecay}'`);
      if (o.points < 2) throw new Error(`--points expects at least 2 (t = 0 and t = 1), got ${o.points}`);
      if (o.planePoints === 1) throw new Error("--plane-points expects 0 (no plane) or at least 2, got 1");
      const train = loadFromFlags(o, "train");
      const test: Dataset | undefined = o.test ? loadFromFlags(o, "test") : undefined;
      const { model } = await openFromFlags(o, train);
      const from = loadParams(model, o.from);
      const to = loadParams(model, o.to);
      const optimizer: OptimizerConfig =
        o.optimizer === "adam"
          ? { kind: "adam", weightDecay: o.weightDecay }
          : { kind: "sgd", momentum: o.momentum, weightDecay: o.weightDecay };
      let bar: ReturnType<typeof startProgress> | undefined;
      let current = "";
      const t0 = performance.now();
      const r = await connectModels({
        model,
        from,
        to,
        train,
        ...(test ? { test } : {}),
        training: {
          kind: o.curve,
          steps: o.steps,
          lr: o.lr,
          optimizer,
          seed: o.seed,
          batchSize: o.trainBatchSize,
          checkpointEvery: o.checkpointEvery,
        },
        points: o.points,
        planePoints: o.planePoints,
        bn: o.bn === "recompute" ? { batches: o.bnBatches, batchSize: o.bnBatchSize, seed: o.bnSeed } : false,
        folder: o.out,
        task: taskFromFlags(o),
        batchSize: o.batchSize,
        ...(o.threads ? { threads: o.threads } : {}),
        names: ["from", "to"],
        log: (line) => {
          bar?.stop();
          bar = undefined;
          current = "";
          console.log(line);
        },
        progress: (label, done, total) => {
          if (label !== current) {
            bar?.stop();
            bar = startProgress(label, total, { unit: label === "curve training" ? "steps" : "points" });
            current = label;
          }
          bar?.update(done);
        },
      });
      bar?.stop();
      if (o.pdf)
        for (const svg of r.figures.filter((f) => f.endsWith(".svg"))) {
          const pdf = `${svg.slice(0, -".svg".length)}.pdf`;
          writeFigure(pdf, readFileSync(svg, "utf8"));
          r.figures.push(pdf);
        }
      const c = r.connection;
      const row = (name: string, m: typeof c.curve) =>
        `  ${name.padEnd(6)} ${m.train_loss.map((v) => v.toFixed(3)).join(" ")}`;
      console.log(`train loss at t = ${c.t.map((v) => v.toFixed(2)).join(" ")}`);
      console.log(row("curve", c.curve));
      console.log(row("line", c.line));
      for (const [path, barriers] of Object.entries(c.barriers))
        for (const [q, b] of Object.entries(barriers))
          console.log(
            `barrier ${path.padEnd(5)} ${q.padEnd(11)} ${b.height.toFixed(4)} at t = ${b.at.toFixed(2)}`,
          );
      console.log(`files: ${[...r.files, ...r.figures].join(", ")}`);
      console.log(`connect finished in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    });
}
