// The one seam between losscape and whatever runs the network. Everything
// above this file (surfaces, trajectories, training) talks to an Engine;
// everything below it knows ONNX Runtime.

import type { Dataset } from "../data/dataset.ts";
import type { Model } from "../model/model.ts";
import type { CacheStats } from "./_prefix-cache.ts";
import type { TaskOptions } from "./task.ts";

/** What a prefix cache splits and holds. */
export interface PrefixReport extends CacheStats {
  /** Nodes computed once per batch, and per point. */
  prefixNodes: number;
  suffixNodes: number;
  /** Tensors passed from the prefix to the suffix. */
  cuts: readonly string[];
}

export type { LossName, TaskOptions } from "./task.ts";

/** Options of one evaluation: the task (loss, ignore index, class axis) and how to run it. */
export interface EvaluateOptions extends TaskOptions {
  /** Samples per forward pass (default 256). A model with a fixed batch size in its graph uses that one. */
  batchSize?: number;
  /**
   * Stop as soon as the loss summed so far proves the mean exceeds this (losses are non-negative,
   * so partial sum / scored targets of the whole set is a lower bound); the result is then that
   * bound, marked `stopped: "capped"`. Values below the cap are unchanged.
   */
  lossCap?: number;
  /** Called after each batch with the number of samples done so far. */
  onProgress?: (done: number, total: number) => void;
}

/** Mean loss and accuracy over a dataset. */
export interface Metrics {
  /** Mean loss per scored target (per sample for classifiers, per token / pixel for dense targets, per value for regression). */
  loss: number;
  /** Fraction of scored targets whose arg-max logit is the label, in [0, 1]; NaN for regression and model losses without logits. */
  accuracy: number;
  /** Number of samples evaluated. */
  count: number;
  /**
   * Standard error of `loss` over the samples (sample standard deviation / sqrt(n) for one target
   * per sample; the ratio estimator's for several). NaN for one sample, a model's own loss (one
   * mean per batch), and points stopped early.
   */
  lossSe: number;
  /**
   * Why the point's value is not an exact mean: "diverged" (the loss is NaN or infinite; the
   * evaluation stopped at the first batch that made it so, accuracy NaN), "capped" (`loss` is a
   * lower bound above `lossCap`, accuracy NaN). Absent for an exact value.
   */
  stopped?: "diverged" | "capped";
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
  /**
   * The prefix cache (engines created with one): what the graph split computes once per batch and
   * what the cache holds; a string saying why the graph could not be split; undefined without one.
   */
  prefix?(): PrefixReport | string | undefined;
  /** Releases native resources; the engine is unusable afterwards. */
  dispose(): Promise<void>;
}
