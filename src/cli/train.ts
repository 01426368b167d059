// The train command: parses a typed training config, calls train(), reports
// progress (epoch, batch, loss, accuracy, samples/s, time left).

import type { Command } from "@commander-js/extra-typings";
import { type OptimizerConfig, paperSchedule, type StepSchedule } from "../core/optim.ts";
import { taskIdentity } from "../engine/task.ts";
import { type Augmentation, train } from "../train/train.ts";
import { dataOptions, loadFromFlags, modelOptions, openFromFlags, taskFromFlags } from "./_options.ts";
import { nonNegativeInt, oneOf, positiveInt, positiveNumber } from "./_parse.ts";
import { formatDuration, startProgress } from "./progress.ts";

const OPTIMIZERS = ["sgd", "nesterov", "adam"] as const;
const AUGMENTS = ["none", "crop-flip"] as const satisfies readonly Augmentation[];

function milestones(text: string): number[] {
  const parts = text.split(",").map((s) => s.trim());
  if (!parts.every((p) => /^\d+$/.test(p)))
    throw new Error(`--milestones expects epochs like 150,225,270, got '${text}'`);
  return parts.map(Number);
}

/** Adds `losscape train`. */
export function registerTrainCommand(program: Command): void {
  dataOptions(modelOptions(program.command("train")))
    .description("train a model (SGD, Nesterov or Adam) with per-epoch checkpoints; rerun to resume")
    .requiredOption(
      "--out <dir>",
      "run folder: model.onnx, epoch-NNN.safetensors, log.json, resume.safetensors",
    )
    .option("--epochs <n>", "epochs", positiveInt("--epochs"), 10)
    .option(
      "--optimizer <name>",
      "sgd, nesterov or adam",
      oneOf("--optimizer", OPTIMIZERS),
      "sgd" as (typeof OPTIMIZERS)[number],
    )
    .option("--lr <rate>", "initial learning rate", positiveNumber("--lr"), 0.1)
    .option("--momentum <m>", "SGD momentum", Number, 0.9)
    .option("--weight-decay <wd>", "L2 weight decay", Number, 5e-4)
    .option(
      "--milestones <epochs>",
      "epochs at which the rate is divided by 10 (default: 50/75/90 % of training)",
    )
    .option(
      "--augment <kind>",
      "none or crop-flip (random crop with padding 4 and horizontal flip)",
      oneOf("--augment", AUGMENTS),
      "none" as Augmentation,
    )
    .option("--seed <n>", "seed of shuffling and augmentation", nonNegativeInt("--seed"), 0)
    .option("--init-seed <n>", "seed of a zoo model's initial parameters", nonNegativeInt("--init-seed"), 0)
    .option("--checkpoint-every <n>", "save parameters every n epochs", positiveInt("--checkpoint-every"), 1)
    .option("--no-test", "skip the test-set evaluation after each epoch")
    .action(async (o) => {
      if (!Number.isFinite(o.momentum) || o.momentum < 0 || o.momentum >= 1)
        throw new Error(`--momentum expects a number in [0, 1), got '${o.momentum}'`);
      if (!Number.isFinite(o.weightDecay) || o.weightDecay < 0)
        throw new Error(`--weight-decay expects a non-negative number, got '${o.weightDecay}'`);
      const trainData = loadFromFlags(o, "train");
      const testData = o.test ? loadFromFlags(o, "test") : undefined;
      const { model, params } = await openFromFlags(o, trainData);
      const optimizer: OptimizerConfig =
        o.optimizer === "adam"
          ? { kind: "adam", weightDecay: o.weightDecay }
          : {
              kind: "sgd",
              momentum: o.momentum,
              nesterov: o.optimizer === "nesterov",
              weightDecay: o.weightDecay,
            };
      const schedule: StepSchedule = o.milestones
        ? { lr: o.lr, gamma: 0.1, milestones: milestones(o.milestones) }
        : paperSchedule(o.lr, o.epochs);
      let bar: ReturnType<typeof startProgress> | undefined;
      const t0 = performance.now();
      const result = await train(
        model,
        params,
        trainData,
        testData,
        {
          epochs: o.epochs,
          batchSize: o.batchSize,
          optimizer,
          schedule,
          seed: o.seed,
          augment: o.augment,
          checkpointEvery: o.checkpointEvery,
          ...(o.threads ? { threads: o.threads } : {}),
          // Recorded in the run's configuration only when it is not the default (older runs resume).
          ...(taskIdentity(taskFromFlags(o)) !== "cross-entropy" ? { task: taskFromFlags(o) } : {}),
        },
        o.out,
        {
          onResume: (epoch) => console.log(`resuming ${o.out} after epoch ${epoch}`),
          onBatch: (p) => {
            if (p.batch === 1)
              bar = startProgress(`epoch ${p.epoch}/${o.epochs}`, p.batches, { unit: "batches" });
            bar?.update(
              p.batch,
              `loss ${p.loss.toFixed(4)}${Number.isNaN(p.accuracy) ? "" : `, acc ${(100 * p.accuracy).toFixed(2)} %`}, ${p.samplesPerSecond.toFixed(0)} samples/s`,
            );
            if (p.batch === p.batches) bar?.stop();
          },
          onEpoch: (l) => {
            const test =
              l.test_loss !== undefined
                ? `, test loss ${l.test_loss.toFixed(4)} acc ${l.test_acc?.toFixed(2)} %`
                : "";
            const left = ((performance.now() - t0) / 1000 / l.epoch) * (o.epochs - l.epoch);
            console.log(
              `epoch ${l.epoch}/${o.epochs}: lr ${l.lr.toPrecision(3)}, train loss ${l.train_loss.toFixed(4)} acc ${l.train_acc.toFixed(2)} %${test}, ${l.samples_per_s.toFixed(0)} samples/s, ~${formatDuration(left)} left`,
            );
          },
        },
      );
      console.log(`trained ${model.name} for ${result.log.length} epochs -> ${o.out}`);
    });
}
