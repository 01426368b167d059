// The Hessian of the training loss with respect to the filter (rank >= 2)
// parameters, in evaluation mode, over a whole dataset, as an operator v -> H v
// (method.md, "Hessian curvature"). Each product is exact: one forward-over-
// reverse run per batch on ONNX Runtime (src/autodiff/hvp.ts), accumulated in
// float64 with each batch weighted by its share of the samples.

import { createHvpSession, type GradientTask, type HvpSession } from "../autodiff/hvp.ts";
import { type Dataset, datasetSize, readSamples, sampleSize, targetSize } from "../data/dataset.ts";
import { scoredTargets, type TaskOptions } from "../engine/task.ts";
import type { Model } from "../model/model.ts";

/** Options of a Hessian operator. */
export interface HvpOptions {
  /** Samples per ORT run (default 256). */
  batchSize?: number;
  /** ONNX Runtime intra-op threads (default: all cores). */
  threads?: number;
  /**
   * An open session of the model's Hessian-vector product graph to run on (it is fed the
   * parameters, so one session serves every point of a grid); the operator then leaves it open.
   */
  session?: HvpSession;
  /** The loss (default cross-entropy; mse for regression; mse-onehot has no Hessian here). */
  task?: TaskOptions;
}

/**
 * The gradient-graph form of a task on a dataset, refusing what has no Hessian.
 *
 * @example
 * createHvpSession(model, { task: hessianTask({ ignoreIndex: 0 }, data, "hessian") });
 */
export function hessianTask(task: TaskOptions, data: Dataset, where: string): GradientTask {
  const { loss = "cross-entropy" } = task;
  if (loss === "mse-onehot")
    throw new Error(
      `${where}: the Hessian is of cross-entropy or mse (regression); --loss mse-onehot is not supported`,
    );
  return { ...task, loss, targetShape: data.targetShape ?? [] };
}

/** The Hessian of the mean loss over a dataset at a fixed point, as an operator. */
export interface HessianOperator {
  /** Entries that take part: 1 at filter weights, 0 elsewhere. */
  readonly mask: Uint8Array;
  /** Mean loss and its gradient over the dataset at theta (zero outside the mask). */
  gradient(): Promise<{ loss: number; gradient: Float32Array }>;
  /** H v for a vector over all parameters; entries outside the mask are ignored in v and 0 in the result. */
  hvp(v: Float32Array): Promise<Float32Array>;
  /** Passes over the dataset so far (one per product). */
  readonly passes: number;
  /** Samples in the dataset. */
  readonly samples: number;
  /** Releases the ORT session. */
  dispose(): Promise<void>;
}

/**
 * 1 for every entry of a filter (rank >= 2) parameter.
 *
 * @example
 * const mask = filterMask(model); // Uint8Array(model.size)
 */
export function filterMask(model: Model): Uint8Array {
  const mask = new Uint8Array(model.size);
  for (const p of model.params) if (p.role === "filter") mask.fill(1, p.offset, p.offset + p.size);
  return mask;
}

/**
 * The Hessian of the evaluation-mode mean cross-entropy over `data` at `theta`, w.r.t. filter weights.
 *
 * @example
 * const H = await hessianOperator(model, theta, data, { threads: 2 });
 * const hv = await H.hvp(v);
 * await H.dispose();
 */
export async function hessianOperator(
  model: Model,
  theta: Float32Array,
  data: Dataset,
  options: HvpOptions = {},
): Promise<HessianOperator> {
  const { batchSize = 256, threads, session: shared, task = {} } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new Error(`hessianOperator(): 'batchSize' must be a positive integer, got ${batchSize}`);
  if (theta.length !== model.size) {
    throw new Error(
      `hessianOperator(): 'theta' has ${theta.length} values but model '${model.name}' has ${model.size}`,
    );
  }
  const n = datasetSize(data);
  if (n < 1) throw new Error(`hessianOperator(): dataset '${data.name}' has no samples`);
  const per = sampleSize(data);
  const scratch = data.read ? new Float32Array(Math.min(batchSize, datasetSize(data)) * per) : undefined;
  const want = model.input.shape.reduce((a, b) => a * b, 1);
  if (per !== want) {
    throw new Error(
      `hessianOperator(): dataset '${data.name}' has samples of shape [${data.shape.join(", ")}] but model '${model.name}' takes [${model.input.shape.join(", ")}]`,
    );
  }
  if (model.params.every((p) => p.role !== "filter"))
    throw new Error(`hessianOperator(): model '${model.name}' has no filter (rank >= 2) parameters`);
  if (shared && shared.model !== model) {
    throw new Error(
      `hessianOperator(): 'session' runs model '${shared.model.name}', not the model '${model.name}' given`,
    );
  }
  const session: HvpSession =
    shared ??
    (await createHvpSession(model, {
      ...(threads ? { threads } : {}),
      task: hessianTask(task, data, "hessianOperator()"),
    }));
  // Each batch weighs by its share of the scored targets (all of them unless some are ignored).
  const weights: number[] = [];
  for (let start = 0; start < n; start += batchSize)
    weights.push(
      model.loss
        ? Math.min(batchSize, n - start)
        : scoredTargets(data, start, Math.min(batchSize, n - start), task),
    );
  const scored = weights.reduce((a, b) => a + b, 0);
  // The entries the session differentiates (the filters unless it was opened for others).
  const mask = new Uint8Array(model.size);
  for (const p of model.params)
    if (session.graph.params.includes(p.name)) mask.fill(1, p.offset, p.offset + p.size);
  const positions = targetSize(data);
  let passes = 0;
  let atTheta: { loss: number; gradient: Float32Array } | undefined;

  const pass = async (v: Float32Array): Promise<Float32Array> => {
    if (v.length !== model.size)
      throw new Error(`hvp(): 'v' has ${v.length} values but model '${model.name}' has ${model.size}`);
    passes++;
    const hv = new Float64Array(model.size);
    const g = new Float64Array(model.size);
    let loss = 0;
    for (let start = 0; start < n; start += batchSize) {
      const count = Math.min(batchSize, n - start);
      const s = await session.run(
        theta,
        v,
        readSamples(data, start, count, scratch),
        data.labels.subarray(start * positions, (start + count) * positions),
      );
      const w = weights[start / batchSize]! / Math.max(scored, 1);
      loss += s.loss * w;
      for (let i = 0; i < hv.length; i++) {
        if (!mask[i]) continue;
        hv[i] = hv[i]! + w * s.hvp[i]!;
        g[i] = g[i]! + w * s.gradient[i]!;
      }
    }
    atTheta ??= { loss, gradient: Float32Array.from(g) };
    return Float32Array.from(hv);
  };

  return {
    mask,
    samples: n,
    get passes() {
      return passes;
    },
    async gradient() {
      if (!atTheta) await pass(new Float32Array(model.size));
      return { loss: atTheta!.loss, gradient: atTheta!.gradient.slice() };
    },
    hvp: pass,
    dispose: async () => {
      if (!shared) await session.dispose();
    },
  };
}

/**
 * Runs `use` on the Hessian operator of `model` at `theta` over `data` (the HVP options taken from
 * `options`, the rest passed to `use`), disposes the operator, and adds its number of passes.
 *
 * @example
 * const e = await withHessianOperator(model, theta, data, { threads: 2, tol: 1e-3 }, (H, o) => operatorExtremes(H, o));
 */
export async function withHessianOperator<O extends object, R extends object>(
  model: Model,
  theta: Float32Array,
  data: Dataset,
  options: O & HvpOptions,
  use: (H: HessianOperator, rest: Omit<O, keyof HvpOptions>) => Promise<R>,
): Promise<R & { readonly passes: number }> {
  const { batchSize, threads, session, task, ...rest } = options;
  const H = await hessianOperator(model, theta, data, {
    ...(task !== undefined ? { task } : {}),
    ...(batchSize !== undefined ? { batchSize } : {}),
    ...(threads !== undefined ? { threads } : {}),
    ...(session !== undefined ? { session } : {}),
  });
  try {
    const r = await use(H, rest as Omit<O, keyof HvpOptions>);
    return { ...r, passes: H.passes };
  } finally {
    await H.dispose();
  }
}
