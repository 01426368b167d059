// The one seam between losscape and whatever runs the network. Everything
// above this file (surfaces, trajectories, training) talks to an Engine;
// everything below it knows ONNX Runtime.

import type { Dataset } from "../data/dataset.ts";
import type { Model } from "../model/model.ts";

/** Per-sample loss: softmax cross-entropy, or the MSE between softmax and one-hot targets (as the reference code's `--loss_name mse`). */
export type LossName = "cross-entropy" | "mse";

/** Options of one evaluation. */
export interface EvaluateOptions {
  /** Samples per forward pass (default 256). A model with a fixed batch size in its graph uses that one. */
  batchSize?: number;
  /** Loss function (default cross-entropy). */
  loss?: LossName;
  /** Called after each batch with the number of samples done so far. */
  onProgress?: (done: number, total: number) => void;
}

/** Mean loss and accuracy over a dataset. */
export interface Metrics {
  /** Mean per-sample loss. */
  loss: number;
  /** Fraction of samples whose arg-max logit is the label, in [0, 1]. */
  accuracy: number;
  /** Number of samples evaluated. */
  count: number;
}

/**
 * Runs one model. Create one per model and reuse it across grid points.
 *
 * @example
 * const engine = await createOrtEngine(model, { threads: 2 });
 * const { loss, accuracy } = await engine.evaluate(model.initial, data);
 * await engine.dispose();
 */
export interface Engine {
  /** The model this engine runs. */
  readonly model: Model;
  /** Mean loss and accuracy over `data` with the parameters set to `params` (a flat vector in `model.params` order), in evaluation mode. */
  evaluate(params: Float32Array, data: Dataset, options?: EvaluateOptions): Promise<Metrics>;
  /** Logits of `count` samples starting at sample `start` of `data`, at `params`; [count x classes] row-major. */
  logits(params: Float32Array, data: Dataset, start: number, count: number): Promise<Float32Array>;
  /** Releases native resources; the engine is unusable afterwards. */
  dispose(): Promise<void>;
}

/**
 * Adds the loss and the number of correct predictions of a batch of logits to running sums.
 * Cross-entropy is computed in float64 with the log-sum-exp shift.
 */
export function accumulateLoss(
  logits: Float32Array,
  labels: ArrayLike<number>,
  labelStart: number,
  count: number,
  classes: number,
  loss: LossName,
  sums: { loss: number; correct: number },
): void {
  for (let i = 0; i < count; i++) {
    const row = i * classes;
    const label = labels[labelStart + i] as number;
    let max = -Infinity;
    let arg = 0;
    for (let k = 0; k < classes; k++) {
      const v = logits[row + k] as number;
      if (v > max) {
        max = v;
        arg = k;
      }
    }
    if (arg === label) sums.correct++;
    let z = 0;
    for (let k = 0; k < classes; k++) z += Math.exp((logits[row + k] as number) - max);
    switch (loss) {
      case "cross-entropy":
        sums.loss += Math.log(z) + max - (logits[row + label] as number);
        break;
      case "mse": {
        let s = 0;
        for (let k = 0; k < classes; k++) {
          const p = Math.exp((logits[row + k] as number) - max) / z;
          const t = k === label ? 1 : 0;
          s += (p - t) * (p - t);
        }
        sums.loss += s / classes;
        break;
      }
      default:
        loss satisfies never;
    }
  }
}
