// What a model's output is scored against: the loss, where the class axis of the
// output lies relative to the targets (classifiers, language models, dense
// prediction), which targets are ignored, and the running sums that make a
// dataset's mean exact whatever the batch size (per target, not per batch).

import { type Dataset, targetSize } from "../data/dataset.ts";
import type { Model } from "../model/model.ts";

/**
 * Per-target loss: softmax cross-entropy against class indices; `mse-onehot`, the mean squared
 * error between the softmax and the one-hot target (the reference code's `--loss_name mse`);
 * `mse`, the mean squared error between the output and real-valued targets (regression).
 */
export type LossName = "cross-entropy" | "mse-onehot" | "mse";

/** The losses, for option parsing and messages. */
export const LOSS_NAMES = ["cross-entropy", "mse-onehot", "mse"] as const satisfies readonly LossName[];

/** PyTorch's default `ignore_index` (nn.CrossEntropyLoss): targets equal to it count for nothing. */
export const DEFAULT_IGNORE_INDEX = -100;

/**
 * How outputs meet targets.
 *
 * @example
 * const lm: TaskOptions = { loss: "cross-entropy", ignoreIndex: -100 }; // [N, T, V] logits, [N, T] targets
 * const seg: TaskOptions = { classAxis: 1 }; // [N, C, H, W] logits, [N, H, W] targets
 */
export interface TaskOptions {
  /** Loss (default cross-entropy). */
  loss?: LossName;
  /** Class-index targets equal to this are left out of the loss and the accuracy (default -100). */
  ignoreIndex?: number;
  /**
   * Axis of the output that holds the classes, for outputs with more axes than [batch, classes]:
   * -1 (last: [N, T, V] language-model logits) or 1 (after the batch: [N, C, H, W] segmentation
   * logits, as PyTorch's CrossEntropyLoss takes them). Default: the one whose other axes match the
   * targets' shape, the last when both do.
   */
  classAxis?: 1 | -1;
}

/**
 * Where the scores of one sample's targets lie in its slice of the output.
 *
 * @example
 * const l: OutputLayout = { kind: "classes", classes: 10, positions: 1, classStride: 1, positionStride: 10 };
 */
export type OutputLayout =
  | {
      readonly kind: "classes";
      readonly classes: number;
      /** Target positions per sample (1 for a classifier). */
      readonly positions: number;
      /** Distance between the scores of consecutive classes of one position. */
      readonly classStride: number;
      /** Distance between the first scores of consecutive positions. */
      readonly positionStride: number;
    }
  | {
      readonly kind: "regression";
      /** Output (= target) values per sample. */
      readonly size: number;
    };

/**
 * Running sums over batches: total loss, correct predictions, scored targets, and the per-sample
 * moments of the standard error (sample i adds loss s_i over c_i scored targets).
 */
export interface TaskSums {
  loss: number;
  correct: number;
  /** Targets scored: non-ignored class targets, or output values for regression. */
  targets: number;
  /** Samples seen. */
  samples: number;
  /** Sum of s_i^2. */
  lossSq: number;
  /** Sum of s_i c_i. */
  lossTargets: number;
  /** Sum of c_i^2. */
  targetsSq: number;
}

/**
 * Sums with nothing added yet.
 *
 * @example
 * const sums = emptySums();
 */
export function emptySums(): TaskSums {
  return { loss: 0, correct: 0, targets: 0, samples: 0, lossSq: 0, lossTargets: 0, targetsSq: 0 };
}

/** Adds one sample's loss `s` over `c` scored targets to the moments of `sums` (not to its totals). */
function addSample(sums: TaskSums, s: number, c: number): void {
  sums.samples++;
  sums.lossSq += s * s;
  sums.lossTargets += s * c;
  sums.targetsSq += c * c;
}

/**
 * The standard error of the mean loss `sums.loss / sums.targets` over the samples: the sample
 * standard deviation of the per-sample losses / sqrt(n) when every sample has one target; for
 * several targets per sample (tokens, pixels), the ratio estimator's (delta method):
 * sqrt(n / (n - 1) * sum_i (s_i - m c_i)^2) / sum_i c_i, with the samples (not the correlated
 * targets within one) as the independent draws. NaN for fewer than two samples.
 *
 * @example
 * standardError(sums); // 0.012
 */
export function standardError(sums: TaskSums): number {
  const { samples: n, targets } = sums;
  if (n < 2 || targets === 0) return Number.NaN;
  const m = sums.loss / targets;
  const spread = Math.max(0, sums.lossSq - 2 * m * sums.lossTargets + m * m * sums.targetsSq);
  return Math.sqrt((n / (n - 1)) * spread) / targets;
}

/** Whether a dataset's targets are real values (regression) rather than class indices. */
export function isRegression(data: Dataset): boolean {
  return data.labels instanceof Float32Array;
}

/**
 * The layout of an output of per-sample shape `dims` (without the batch axis) against the targets
 * of `data`, checked: class scores along the class axis for class targets, values matching the
 * targets one to one for regression. Errors name the output, its shape and what the data needs.
 *
 * @example
 * outputLayout([10], data, {}, "model 'cnn' output 'logits'"); // { kind: "classes", classes: 10, ... }
 * outputLayout([64, 256], tokens, {}, "..."); // classes 256 along the last axis, 64 positions
 */
export function outputLayout(
  dims: readonly number[],
  data: Dataset,
  task: TaskOptions,
  where: string,
): OutputLayout {
  const { loss = "cross-entropy", classAxis } = task;
  const targets = data.targetShape ?? [];
  const show = (s: readonly number[]): string => `[${s.join(", ")}]`;
  const size = dims.reduce((a, b) => a * b, 1);
  if (isRegression(data) || loss === "mse") {
    if (!isRegression(data))
      throw new Error(
        `${where}: --loss mse is regression against real-valued targets, but dataset '${data.name}' has class indices (use --loss mse-onehot for the MSE between softmax and one-hot targets)`,
      );
    if (loss !== "mse")
      throw new Error(
        `${where}: dataset '${data.name}' has real-valued targets (regression); the loss must be mse, got ${loss}`,
      );
    if (size !== targetSize(data))
      throw new Error(
        `${where}: output of shape [batch, ${dims.join(", ")}] (${size} values per sample) does not match dataset '${data.name}''s targets of shape ${show(targets)} (${targetSize(data)} values per sample)`,
      );
    return { kind: "regression", size };
  }
  const same = (a: readonly number[], b: readonly number[]): boolean =>
    a.length === b.length && a.every((v, i) => v === b[i]);
  const expected = `[batch, classes] logits for one class index per sample, [batch, ${targets.join(", ")}, classes] or [batch, classes, ${targets.join(", ")}] for targets of shape ${show(targets)}`;
  if (dims.length !== targets.length + 1)
    throw new Error(
      `${where}: output has shape [batch, ${dims.join(", ")}] but dataset '${data.name}' has targets of shape ${show(targets)} per sample; expected ${expected}`,
    );
  const lastFits = same(dims.slice(0, -1), targets);
  const firstFits = same(dims.slice(1), targets);
  let axis: 1 | -1;
  if (classAxis === undefined) {
    if (!lastFits && !firstFits)
      throw new Error(
        `${where}: output has shape [batch, ${dims.join(", ")}] but dataset '${data.name}' has targets of shape ${show(targets)}; expected ${expected}`,
      );
    axis = lastFits ? -1 : 1;
  } else {
    if (classAxis !== 1 && classAxis !== -1)
      throw new Error(`${where}: 'classAxis' must be 1 or -1, got ${JSON.stringify(classAxis)}`);
    if ((classAxis === -1 && !lastFits) || (classAxis === 1 && !firstFits))
      throw new Error(
        `${where}: with the classes on axis ${classAxis}, output [batch, ${dims.join(", ")}] does not fit targets of shape ${show(targets)}`,
      );
    axis = classAxis;
  }
  const classes = (axis === -1 ? dims[dims.length - 1] : dims[0]) as number;
  const positions = size / classes;
  // A dataset's class count may end at its ignore index (255 in segmentation masks): other targets
  // beyond the output's classes are named one by one by accumulateTask.
  if (classes < data.classes && data.classes - 1 !== (task.ignoreIndex ?? DEFAULT_IGNORE_INDEX))
    throw new Error(
      `${where}: output has ${classes} class scores per ${positions > 1 ? "position" : "sample"} but dataset '${data.name}' has ${data.classes} classes`,
    );
  return axis === -1
    ? { kind: "classes", classes, positions, classStride: 1, positionStride: classes }
    : { kind: "classes", classes, positions, classStride: positions, positionStride: 1 };
}

/**
 * Adds the loss, correct predictions and scored targets of `count` samples' outputs (`out`, one
 * sample's slice after another) to `sums`. Cross-entropy in float64 with the log-sum-exp shift;
 * class targets outside [0, classes) other than the ignore index are an error naming the target.
 *
 * @example
 * const sums = emptySums();
 * accumulateTask(logits, layout, data.labels, 0, 128, {}, sums, data.name);
 * const mean = sums.loss / sums.targets;
 */
export function accumulateTask(
  out: Float32Array,
  layout: OutputLayout,
  targets: ArrayLike<number>,
  firstSample: number,
  count: number,
  task: TaskOptions,
  sums: TaskSums,
  dataName: string,
): void {
  const { loss = "cross-entropy", ignoreIndex = DEFAULT_IGNORE_INDEX } = task;
  if (layout.kind === "regression") {
    const { size } = layout;
    for (let s = 0; s < count; s++) {
      const t0 = (firstSample + s) * size;
      let sq = 0;
      for (let i = 0; i < size; i++) {
        const d = (out[s * size + i] as number) - (targets[t0 + i] as number);
        sq += d * d;
      }
      sums.loss += sq;
      addSample(sums, sq, size);
    }
    sums.targets += count * size;
    sums.correct = Number.NaN;
    return;
  }
  const { classes, positions, classStride, positionStride } = layout;
  const per = classes * positions;
  for (let s = 0; s < count; s++) {
    let sampleLoss = 0;
    let sampleTargets = 0;
    for (let p = 0; p < positions; p++) {
      const at = (firstSample + s) * positions + p;
      const label = targets[at] as number;
      if (label === ignoreIndex) continue;
      if (!(Number.isInteger(label) && label >= 0 && label < classes))
        throw targetError(dataName, at, label, classes, ignoreIndex);
      const base = s * per + p * positionStride;
      let max = -Infinity;
      let arg = 0;
      for (let k = 0; k < classes; k++) {
        const v = out[base + k * classStride] as number;
        if (v > max) {
          max = v;
          arg = k;
        }
      }
      if (arg === label) sums.correct++;
      sampleTargets++;
      let z = 0;
      for (let k = 0; k < classes; k++) z += Math.exp((out[base + k * classStride] as number) - max);
      switch (loss) {
        case "cross-entropy":
          sampleLoss += Math.log(z) + max - (out[base + label * classStride] as number);
          break;
        case "mse-onehot": {
          let sq = 0;
          for (let k = 0; k < classes; k++) {
            const q = Math.exp((out[base + k * classStride] as number) - max) / z - (k === label ? 1 : 0);
            sq += q * q;
          }
          sampleLoss += sq / classes;
          break;
        }
        case "mse":
          throw new Error("internal: mse with class targets");
        default:
          loss satisfies never;
      }
    }
    sums.loss += sampleLoss;
    sums.targets += sampleTargets;
    addSample(sums, sampleLoss, sampleTargets);
  }
}

/**
 * Adds the log-probabilities of the targets' classes, as the graph gathered them (`logProb[i]`
 * for target first + i), and the arg-max classes to `sums`, `positions` targets per sample:
 * cross-entropy is minus the log-probability; ignored targets are skipped.
 *
 * @example
 * addLogProbs(logProb, argmax, data.labels, 0, 32, 64, -100, sums);
 */
export function addLogProbs(
  logProb: Float32Array,
  argmax: BigInt64Array,
  labels: ArrayLike<number>,
  first: number,
  samples: number,
  positions: number,
  ignoreIndex: number,
  sums: TaskSums,
): void {
  for (let s = 0; s < samples; s++) {
    let sampleLoss = 0;
    let sampleTargets = 0;
    for (let p = 0; p < positions; p++) {
      const i = s * positions + p;
      const label = labels[first + i] as number;
      if (label === ignoreIndex) continue;
      sampleLoss -= logProb[i] as number;
      sampleTargets++;
      if (Number(argmax[i]) === label) sums.correct++;
    }
    sums.loss += sampleLoss;
    sums.targets += sampleTargets;
    addSample(sums, sampleLoss, sampleTargets);
  }
}

/**
 * The error for class target number `at` of a dataset, `label`, outside [0, classes) and not the
 * ignore index.
 *
 * @example
 * throw targetError("tokens", 17, 300, 256, -100);
 */
export function targetError(
  dataName: string,
  at: number,
  label: number,
  classes: number,
  ignoreIndex: number,
): Error {
  return new Error(
    `dataset '${dataName}': target ${at} is ${label}; expected a class index in 0..${classes - 1} or the ignore index ${ignoreIndex}`,
  );
}

/**
 * Number of targets of samples [start, start + count) that are scored (not the ignore index):
 * the weight of a batch in a dataset mean.
 *
 * @example
 * scoredTargets(data, 0, 128, {}); // 128 * T for a language model without padding
 */
export function scoredTargets(data: Dataset, start: number, count: number, task: TaskOptions): number {
  const per = targetSize(data);
  if (isRegression(data)) return count * per;
  const { ignoreIndex = DEFAULT_IGNORE_INDEX } = task;
  let n = 0;
  for (let i = start * per; i < (start + count) * per; i++) if (data.labels[i] !== ignoreIndex) n++;
  return n;
}

/**
 * The task as one string, recorded as a surface's `loss` (and compared on resume): the loss name,
 * then what differs from the defaults; a model's own loss is named by its output.
 *
 * @example
 * taskIdentity({}); // "cross-entropy"
 * taskIdentity({ loss: "cross-entropy", ignoreIndex: 0, classAxis: 1 }); // "cross-entropy ignore-index=0 class-axis=1"
 */
export function taskIdentity(task: TaskOptions, model?: Model): string {
  if (model?.loss) return `model-loss ${model.loss.output}`;
  const { loss = "cross-entropy", ignoreIndex = DEFAULT_IGNORE_INDEX, classAxis } = task;
  return [
    loss,
    ...(ignoreIndex !== DEFAULT_IGNORE_INDEX && loss !== "mse" ? [`ignore-index=${ignoreIndex}`] : []),
    ...(classAxis !== undefined && loss !== "mse" ? [`class-axis=${classAxis}`] : []),
  ].join(" ");
}
