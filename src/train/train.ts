// Training of a model with ONNX Runtime gradients: seeded shuffling and
// augmentation, SGD/Nesterov/Adam with weight decay and step decay, batch-norm
// running statistics updated as PyTorch does, per-epoch checkpoints and a JSON
// log, and an exact resume after an interruption.

import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createGradientSession } from "../autodiff/session.ts";
import {
  learningRate,
  type OptimizerConfig,
  optimizerState,
  type StepSchedule,
  updateRunningStat,
} from "../core/optim.ts";
import { Random } from "../core/random.ts";
import { type Dataset, datasetSize, readSamples, sampleSize, targetSize } from "../data/dataset.ts";
import type { Metrics } from "../engine/engine.ts";
import { createOrtEngine } from "../engine/ort.ts";
import {
  accumulateTask,
  emptySums,
  isRegression,
  outputLayout,
  type TaskOptions,
  type TaskSums,
} from "../engine/task.ts";
import { writeFileAtomic } from "../formats/atomic.ts";
import { readSafetensors, serializeSafetensors, tensorToFloat32 } from "../formats/safetensors.ts";
import { onnxWithParams, paramsToSafetensors } from "../model/checkpoint.ts";
import type { Model } from "../model/model.ts";

/** Data augmentation for image batches: none, or a random 4-pixel-padded crop plus horizontal flip (CIFAR recipe). */
export type Augmentation = "none" | "crop-flip";

/** What to train and how. */
export interface TrainConfig {
  epochs: number;
  batchSize: number;
  optimizer: OptimizerConfig;
  schedule: StepSchedule;
  /** Seed of shuffling and augmentation. */
  seed: number;
  augment?: Augmentation;
  /** Save parameters every this many epochs (default 1, the trajectory granularity). */
  checkpointEvery?: number;
  /** ONNX Runtime threads. */
  threads?: number;
  /** The loss (default cross-entropy; mse for regression); a model's own loss (Model.loss) is used as it is. */
  task?: TaskOptions;
}

/** One line of the training log. */
export interface EpochLog {
  epoch: number;
  lr: number;
  /** Mean loss and accuracy over the epoch's training batches (train mode, as they were seen). */
  train_loss: number;
  train_acc: number;
  /** Evaluation mode, on the test set (when given). */
  test_loss?: number;
  test_acc?: number;
  seconds: number;
  samples_per_s: number;
  checkpoint?: string;
}

/** Progress callbacks. */
export interface TrainHooks {
  /** After every batch: epoch (1-based), batch index, batches per epoch, running loss and accuracy, samples/s. */
  onBatch?: (p: {
    epoch: number;
    batch: number;
    batches: number;
    loss: number;
    accuracy: number;
    samplesPerSecond: number;
  }) => void;
  onEpoch?: (log: EpochLog) => void;
  /** Called when a run resumes from an earlier checkpoint. */
  onResume?: (epoch: number) => void;
}

/** What a finished (or resumed-and-finished) run returns. */
export interface TrainResult {
  params: Float32Array;
  log: EpochLog[];
  folder: string;
}

const RESUME = "resume.safetensors";
const LOG = "log.json";

/** File name of the checkpoint after `epoch` epochs (epoch 0: the initial parameters). */
export function checkpointName(epoch: number): string {
  return `epoch-${String(epoch).padStart(3, "0")}.safetensors`;
}

/** A seeded shuffle and augmentation stream for one epoch, independent of earlier epochs (so a resume repeats it exactly). */
function epochRandom(seed: number, epoch: number): Random {
  return new Random((Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b)) | 0);
}

/** Fills `out` with the samples at `indices`, augmented (random crop after zero padding 4, then a horizontal flip). */
function gatherBatch(
  data: Dataset,
  indices: ArrayLike<number>,
  out: Float32Array,
  augment: Augmentation,
  rng: Random,
): void {
  const per = sampleSize(data);
  const [c, h, w] = data.shape.length === 3 ? (data.shape as [number, number, number]) : [1, 1, per];
  const one = new Float32Array(per);
  for (let b = 0; b < indices.length; b++) {
    // The sample, from memory or (streamed data) read from disk.
    const sample = readSamples(data, indices[b] as number, 1, one);
    const src = 0;
    const dst = b * per;
    if (augment === "none") {
      out.set(sample, dst);
      continue;
    }
    const dy = rng.int(9) - 4;
    const dx = rng.int(9) - 4;
    const flip = rng.uniform() < 0.5;
    for (let ch = 0; ch < c; ch++) {
      for (let y = 0; y < h; y++) {
        const sy = y + dy;
        for (let x = 0; x < w; x++) {
          const sx0 = x + dx;
          const sx = flip ? w - 1 - sx0 : sx0;
          const inside = sy >= 0 && sy < h && sx0 >= 0 && sx0 < w;
          out[dst + (ch * h + y) * w + x] = inside ? (sample[src + (ch * h + sy) * w + sx] as number) : 0;
        }
      }
    }
  }
}

function configKey(model: Model, config: TrainConfig, data: Dataset): string {
  const { threads: _threads, ...rest } = config;
  return JSON.stringify({
    model: model.name,
    size: model.size,
    data: data.name,
    n: datasetSize(data),
    ...rest,
  });
}

/**
 * Trains `model` from `initial` on `train`, writing into `folder`: `model.onnx` (the graph), `epoch-000.safetensors`
 * (the initial parameters) and a checkpoint every `checkpointEvery` epochs, `log.json`, and `resume.safetensors`
 * (parameters + optimizer state) after every epoch. If `folder` holds a resume file of the same configuration,
 * training continues after its epoch; another configuration is refused.
 *
 * @example
 * const r = await train(model, model.initial, trainData, testData, { epochs: 3, batchSize: 128, seed: 0,
 *   optimizer: { kind: "sgd", momentum: 0.9, weightDecay: 5e-4 }, schedule: paperSchedule(0.1, 3) }, "runs/cnn");
 */
export async function train(
  model: Model,
  initial: Float32Array,
  trainData: Dataset,
  testData: Dataset | undefined,
  config: TrainConfig,
  folder: string,
  hooks: TrainHooks = {},
): Promise<TrainResult> {
  const {
    epochs,
    batchSize,
    optimizer,
    schedule,
    seed,
    augment = "none",
    checkpointEvery = 1,
    threads,
  } = config;
  if (!Number.isInteger(epochs) || epochs < 1)
    throw new Error(`train(): 'epochs' must be a positive integer, got ${epochs}`);
  if (!Number.isInteger(batchSize) || batchSize < 2)
    throw new Error(
      `train(): 'batchSize' must be an integer >= 2 (batch norm needs 2 samples), got ${batchSize}`,
    );
  if (augment === "crop-flip" && trainData.shape.length !== 3) {
    throw new Error(
      `train(): 'augment' crop-flip needs image samples [c, h, w]; dataset '${trainData.name}' has shape [${trainData.shape.join(", ")}]`,
    );
  }
  const n = datasetSize(trainData);
  mkdirSync(folder, { recursive: true });
  const key = configKey(model, config, trainData);
  const params = initial.slice();
  let state = optimizerState(optimizer, model.size);
  let log: EpochLog[] = [];
  let start = 0;
  const resumePath = join(folder, RESUME);
  if (existsSync(resumePath)) {
    const saved = readSafetensors(resumePath);
    if (saved.metadata.config !== key) {
      throw new Error(
        `train(): '${folder}' holds a run with another configuration (${saved.metadata.config}); use another folder or delete it`,
      );
    }
    params.set(tensorToFloat32(saved.tensors.get("params")!));
    state = {
      step: Number(saved.metadata.step),
      m: tensorToFloat32(saved.tensors.get("m")!).slice(),
      v: tensorToFloat32(saved.tensors.get("v")!).slice(),
    };
    start = Number(saved.metadata.epoch);
    log = (JSON.parse(readFileSync(join(folder, LOG), "utf8")) as { epochs: EpochLog[] }).epochs.slice(
      0,
      start,
    );
    hooks.onResume?.(start);
  } else {
    writeFileAtomic(join(folder, "model.onnx"), onnxWithParams(model, initial));
    writeFileAtomic(join(folder, checkpointName(0)), paramsToSafetensors(model, initial, { epoch: "0" }));
  }
  const runningStats = new Map(model.params.filter((p) => p.role === "bn-stat").map((p) => [p.name, p]));

  // The optimizer update runs inside the gradient graph on ORT (multithreaded, no gradient copy).
  const task = config.task ?? {};
  const { loss = "cross-entropy" } = task;
  if (loss === "mse-onehot")
    throw new Error("train(): 'task.loss' mse-onehot is evaluated, not trained; use cross-entropy or mse");
  const session = await createGradientSession(model, {
    batchNorm: "training",
    optimizer,
    ...task,
    loss,
    targetShape: trainData.targetShape ?? [],
    ...(threads ? { threads } : {}),
  });
  const graphLogits = session.graph.logits
    ? session.graph.proto.graph.outputs.find((v) => v.name === session.graph.logits)
    : undefined;
  const layout =
    graphLogits && !isRegression(trainData)
      ? outputLayout(
          graphLogits.shape!.slice(1) as number[],
          trainData,
          task,
          `train(): model '${model.name}' output '${model.output}'`,
        )
      : undefined;
  const perTarget = targetSize(trainData);
  const evaluator = testData ? await createOrtEngine(model, threads ? { threads } : {}) : undefined;
  const per = sampleSize(trainData);
  const batches = Math.ceil(n / batchSize);
  const inputs = new Float32Array(batchSize * per);
  const labels = isRegression(trainData)
    ? new Float32Array(batchSize * perTarget)
    : new Int32Array(batchSize * perTarget);
  try {
    for (let epoch = start; epoch < epochs; epoch++) {
      const t0 = performance.now();
      const lr = learningRate(schedule, epoch);
      const rng = epochRandom(seed, epoch);
      const order = rng.permutation(n);
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      let scored = 0;
      let judged = 0;
      for (let b = 0; b < batches; b++) {
        const idx = order.subarray(b * batchSize, Math.min(n, (b + 1) * batchSize));
        const count = idx.length;
        if (count < 2) continue; // a single-sample batch has no batch variance (PyTorch raises); skip it
        gatherBatch(trainData, idx, inputs, augment, rng);
        for (let k = 0; k < count; k++) {
          const at = (idx[k] as number) * perTarget;
          labels.set(trainData.labels.subarray(at, at + perTarget), k * perTarget);
        }
        const targets = labels.subarray(0, count * perTarget);
        const step = await session.update(params, state, inputs.subarray(0, count * per), targets, lr);
        if (!Number.isFinite(step.loss))
          throw new Error(
            `train(): the loss diverged (${step.loss}) at epoch ${epoch + 1}, batch ${b + 1}; lower the learning rate`,
          );
        // The batch's loss is a mean over its scored targets: weighted by them in the epoch's mean.
        const sums: TaskSums = emptySums();
        if (layout) accumulateTask(step.logits, layout, targets, 0, count, task, sums, trainData.name);
        // Weights: a model's own loss is a mean over samples, ours over scored targets.
        const weight = model.loss ? count : layout ? sums.targets : count * perTarget;
        lossSum += step.loss * weight;
        scored += weight;
        correct += sums.correct;
        judged += layout ? sums.targets : 0;
        seen += count;
        for (const [name, batchStat] of step.statistics) {
          const p = runningStats.get(name);
          if (p) updateRunningStat(params.subarray(p.offset, p.offset + p.size), batchStat, 0.1);
        }
        hooks.onBatch?.({
          epoch: epoch + 1,
          batch: b + 1,
          batches,
          loss: lossSum / scored,
          accuracy: judged > 0 ? correct / judged : Number.NaN,
          samplesPerSecond: seen / ((performance.now() - t0) / 1000),
        });
      }
      const seconds = (performance.now() - t0) / 1000;
      let test: Metrics | undefined;
      if (evaluator && testData) test = await evaluator.evaluate(params, testData, task);
      const entry: EpochLog = {
        epoch: epoch + 1,
        lr,
        train_loss: lossSum / scored,
        train_acc: judged > 0 ? (100 * correct) / judged : Number.NaN,
        ...(test ? { test_loss: test.loss, test_acc: 100 * test.accuracy } : {}),
        seconds,
        samples_per_s: seen / seconds,
      };
      if ((epoch + 1) % checkpointEvery === 0 || epoch + 1 === epochs) {
        entry.checkpoint = checkpointName(epoch + 1);
        writeFileAtomic(
          join(folder, entry.checkpoint),
          paramsToSafetensors(model, params, { epoch: String(epoch + 1) }),
        );
      }
      log.push(entry);
      writeFileAtomic(
        join(folder, LOG),
        `${JSON.stringify({ model: model.name, config: JSON.parse(key), epochs: log }, null, 1)}\n`,
      );
      writeFileAtomic(
        resumePath,
        serializeSafetensors(
          [
            { name: "params", shape: [model.size], data: params },
            { name: "m", shape: [state.m.length], data: state.m },
            { name: "v", shape: [state.v.length], data: state.v },
          ],
          { config: key, epoch: String(epoch + 1), step: String(state.step) },
        ),
      );
      hooks.onEpoch?.(entry);
    }
  } finally {
    await session.dispose();
    await evaluator?.dispose();
  }
  return { params, log, folder };
}
