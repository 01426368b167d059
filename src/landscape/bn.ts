// Batch-norm recalibration: the running mean and variance of every batch-norm
// layer recomputed at a parameter point from a few training batches, as
// mode-connectivity work does before evaluating a point off the trained
// models (Garipov et al. 2018; PyTorch's torch.optim.swa_utils.update_bn).
// The batch statistics come from the gradient graph's training-mode batch norm.

import { createGradientSession, type GradientSession } from "../autodiff/session.ts";
import { updateRunningStat } from "../core/optim.ts";
import { Random } from "../core/random.ts";
import { type Dataset, datasetSize, readSamples, sampleSize, targetSize } from "../data/dataset.ts";
import type { Engine } from "../engine/engine.ts";
import type { TaskOptions } from "../engine/task.ts";
import { type Model, paramView } from "../model/model.ts";

/**
 * How batch-norm running statistics are set at a point off the given models: `interpolate` (the
 * reference code's semantics: they move with the direction like weights, or stay fixed when the
 * direction leaves them out) or `recompute` (recomputed from training batches at every point).
 */
export type BatchNormHandling = "interpolate" | "recompute";

/** The batch-norm handlings, for option parsing. */
export const BATCH_NORM_HANDLINGS = [
  "interpolate",
  "recompute",
] as const satisfies readonly BatchNormHandling[];

/** Default number of batches of a recomputation. */
export const DEFAULT_BN_BATCHES = 8;
/** Default samples per batch of a recomputation. */
export const DEFAULT_BN_BATCH_SIZE = 128;

/** Which batches a recomputation uses. */
export interface RecomputeOptions {
  /** Number of batches K (default 8). */
  batches?: number;
  /** Samples per batch (default 128). */
  batchSize?: number;
  /** Seed of the choice of samples (default 0). */
  seed?: number;
}

/**
 * The seeded choice of samples of a recomputation: the first `batches * batchSize` indices of a
 * seeded permutation of the dataset, cut into `batches` batches (fewer when the dataset is smaller:
 * every batch is full, except a single batch of the whole set when it holds fewer than `batchSize`).
 *
 * @example
 * recalibrationBatches(1000, { batches: 4, batchSize: 64, seed: 0 }); // 4 arrays of 64 indices
 */
export function recalibrationBatches(samples: number, options: RecomputeOptions = {}): Uint32Array[] {
  const { batches = DEFAULT_BN_BATCHES, batchSize = DEFAULT_BN_BATCH_SIZE, seed = 0 } = options;
  if (!Number.isInteger(batches) || batches < 1)
    throw new Error(`recalibrationBatches(): 'batches' must be a positive integer, got ${batches}`);
  if (!Number.isInteger(batchSize) || batchSize < 2)
    throw new Error(
      `recalibrationBatches(): 'batchSize' must be an integer >= 2 (a batch variance needs 2 samples), got ${batchSize}`,
    );
  if (!Number.isInteger(seed) || seed < 0)
    throw new Error(`recalibrationBatches(): 'seed' must be a non-negative integer, got ${seed}`);
  if (samples < 2)
    throw new Error(
      `recalibrationBatches(): the dataset has ${samples} sample(s); batch norm needs at least 2`,
    );
  const order = new Random(seed).permutation(samples);
  const size = Math.min(batchSize, samples);
  const count = Math.min(batches, Math.floor(samples / size));
  return Array.from({ length: count }, (_, b) => order.slice(b * size, (b + 1) * size));
}

/**
 * Running statistics recomputed at a point, as torch.optim.swa_utils.update_bn does: each batch is
 * run in training mode (every batch-norm layer normalizes with its batch statistics) and each
 * layer's running mean and unbiased running variance become the plain average over the batches of
 * its batch mean and unbiased batch variance (PyTorch's cumulative average, momentum None).
 */
export interface BatchNormRecalibrator {
  readonly model: Model;
  /** Batches and samples used at every point. */
  readonly batches: number;
  readonly samples: number;
  /** Names of the running statistics recomputed (empty for a model without batch norm). */
  readonly statistics: readonly string[];
  /** A copy of `params` with every running statistic recomputed at `params`. */
  recompute(params: Float32Array): Promise<Float32Array>;
  /** Metadata a result file records: bn, bn_batches, bn_batch_size, bn_seed, bn_samples. */
  readonly meta: Readonly<Record<string, string>>;
  /** Releases the gradient session. */
  dispose(): Promise<void>;
}

/**
 * A recalibrator of `model`'s batch-norm statistics on the seeded batches of `data`.
 *
 * @example
 * const bn = await createBatchNormRecalibrator(model, train, { batches: 8, batchSize: 128, seed: 0 });
 * const point = await bn.recompute(params); // then engine.evaluate(point, test)
 * await bn.dispose();
 */
export async function createBatchNormRecalibrator(
  model: Model,
  data: Dataset,
  options: RecomputeOptions & { threads?: number; task?: TaskOptions } = {},
): Promise<BatchNormRecalibrator> {
  const { threads, task = {}, ...choice } = options;
  const chosen = recalibrationBatches(datasetSize(data), choice);
  const running = model.params.filter((p) => p.role === "bn-stat");
  const loss = task.loss === "mse" ? "mse" : "cross-entropy";
  // No parameter is differentiated: only the forward pass with batch statistics is needed.
  const session: GradientSession | undefined =
    running.length > 0
      ? await createGradientSession(model, {
          batchNorm: "training",
          trainable: [],
          ...task,
          loss,
          targetShape: data.targetShape ?? [],
          ...(threads ? { threads } : {}),
        })
      : undefined;
  const per = sampleSize(data);
  const perTarget = targetSize(data);
  const size = chosen[0]!.length;
  const inputs =
    data.inputs instanceof Int32Array ? new Int32Array(size * per) : new Float32Array(size * per);
  const labels =
    data.labels instanceof Float32Array
      ? new Float32Array(size * perTarget)
      : new Int32Array(size * perTarget);
  const one = new Float32Array(per);
  const fill = (indices: Uint32Array) => {
    for (let k = 0; k < indices.length; k++) {
      const i = indices[k]!;
      inputs.set(readSamples(data, i, 1, one), k * per);
      labels.set(data.labels.subarray(i * perTarget, (i + 1) * perTarget), k * perTarget);
    }
  };
  const byName = new Map(running.map((p) => [p.name, p]));
  const meta = {
    bn: "recompute",
    bn_batches: String(chosen.length),
    bn_batch_size: String(size),
    bn_seed: String(choice.seed ?? 0),
  };
  return {
    model,
    batches: chosen.length,
    samples: chosen.length * size,
    statistics: running.map((p) => p.name),
    meta,
    async recompute(params) {
      const out = params.slice();
      if (!session) return out;
      const seen = new Set<string>();
      for (const [b, indices] of chosen.entries()) {
        fill(indices);
        const step = await session.step(params, inputs, labels);
        for (const [name, batch] of step.statistics) {
          const p = byName.get(name);
          if (!p) continue;
          // Cumulative average: momentum 1 / (batches so far); the first batch replaces the old value.
          updateRunningStat(paramView(out, p), batch, 1 / (b + 1));
          seen.add(name);
        }
      }
      for (const p of running)
        if (!seen.has(p.name))
          throw new Error(
            `recompute(): no batch statistic for running statistic '${p.name}' of '${model.name}' (its BatchNormalization does not reach the output?)`,
          );
      return out;
    },
    async dispose() {
      await session?.dispose();
    },
  };
}

/**
 * An engine that recomputes the batch-norm statistics of every parameter vector before it
 * evaluates it (the last point's recomputation is reused, so a point's train and test evaluations
 * share one). Disposing it disposes `engine` and `bn`.
 *
 * @example
 * const engine = recalibratedEngine(await createOrtEngine(model), bn);
 * await computeSurface({ engine, ...job });
 */
export function recalibratedEngine(engine: Engine, bn: BatchNormRecalibrator): Engine {
  let last: Float32Array | undefined;
  let lastPoint: Float32Array | undefined;
  const at = async (params: Float32Array): Promise<Float32Array> => {
    if (last && lastPoint && last.length === params.length && last.every((v, i) => Object.is(v, params[i])))
      return lastPoint;
    lastPoint = await bn.recompute(params);
    last = params.slice();
    return lastPoint;
  };
  const wrapped: Engine = {
    model: engine.model,
    evaluate: async (params, data, options) => engine.evaluate(await at(params), data, options),
    logits: async (params, data, start, count) => engine.logits(await at(params), data, start, count),
    dispose: async () => {
      await bn.dispose();
      await engine.dispose();
    },
  };
  if (engine.prefix) wrapped.prefix = () => engine.prefix!();
  return wrapped;
}

/**
 * Refuses to resume a result file made with another batch-norm handling (`meta` of the file;
 * files without `bn` were made with `interpolate`). Returns the lines that differ (empty: same).
 *
 * @example
 * batchNormProblems(readSurface("surf.h5").meta, bn.meta); // ["bn is interpolate in the file but recompute now"]
 */
export function batchNormProblems(
  existing: Readonly<Record<string, string>>,
  now: Readonly<Record<string, string>>,
): string[] {
  const want = { bn: "interpolate", ...now };
  const problems: string[] = [];
  for (const [key, value] of Object.entries(want)) {
    const old = existing[key] ?? (key === "bn" ? "interpolate" : "(missing)");
    if (old !== value) problems.push(`${key} is ${old} in the file but ${value} now`);
  }
  return problems;
}
