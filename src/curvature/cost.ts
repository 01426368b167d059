// What a Hessian computation will cost before it runs: points x Hessian-vector products x samples,
// with the time of one product over the data read off a short timed probe (one batch, then two) of
// the same HVP session. Lanczos stops once --tol is met, so the product count is an upper bound.

import { createHvpSession } from "../autodiff/hvp.ts";
import { Random } from "../core/random.ts";
import { type Dataset, datasetSize } from "../data/dataset.ts";
import type { TaskOptions } from "../engine/task.ts";
import { formatDuration, head } from "../landscape/cost.ts";
import type { Model } from "../model/model.ts";
import { hessianOperator, hessianTask } from "./hvp.ts";

/** The work of a Hessian computation and its estimated time. */
export interface HessianCost {
  points: number;
  /** Samples per pass over the data. */
  samples: number;
  /** Hessian-vector products per point at most (--iterations, plus --trace probes). */
  maxProducts: number;
  /** Seconds of one product over all the samples, from the probe. */
  secondsPerProduct: number;
  /** points x maxProducts x secondsPerProduct: an upper bound. */
  seconds: number;
}

/**
 * Times Hessian-vector products on the first samples of `data` (one batch, then two, after an
 * untimed warm-up) and extrapolates to `points` points of at most `maxProducts` products each.
 *
 * @example
 * const c = await probeHessianCost(model, theta, data, { points: 441, maxProducts: 100, threads: 2 });
 * console.log(formatHessianCost(c));
 */
export async function probeHessianCost(
  model: Model,
  theta: Float32Array,
  data: Dataset,
  options: { points: number; maxProducts: number; batchSize?: number; threads?: number; task?: TaskOptions },
): Promise<HessianCost> {
  const { points, maxProducts, batchSize = 256, threads, task = {} } = options;
  const n = datasetSize(data);
  const batch = Math.min(n, batchSize);
  const session = await createHvpSession(model, {
    ...(threads ? { threads } : {}),
    task: hessianTask(task, data, "probeHessianCost()"),
  });
  try {
    const rng = new Random(0);
    const v = Float32Array.from({ length: model.size }, () => rng.normal());
    const timed = async (part: Dataset, warm: boolean): Promise<number> => {
      const H = await hessianOperator(model, theta, part, { session, task, batchSize });
      try {
        if (warm) await H.hvp(v);
        const t0 = performance.now();
        await H.hvp(v);
        return (performance.now() - t0) / 1000;
      } finally {
        await H.dispose();
      }
    };
    const t1 = await timed(head(data, batch), true);
    let perProduct = (t1 / batch) * n;
    if (n >= 2 * batch) {
      const t2 = await timed(head(data, 2 * batch), false);
      // Per-batch cost from the second batch; noise that makes it look free falls back to the mean.
      perProduct = t2 > t1 ? Math.max(0, 2 * t1 - t2) + ((t2 - t1) / batch) * n : (t2 / (2 * batch)) * n;
    }
    return {
      points,
      samples: n,
      maxProducts,
      secondsPerProduct: perProduct,
      seconds: points * maxProducts * perProduct,
    };
  } finally {
    await session.dispose();
  }
}

/**
 * The estimate as one line.
 *
 * @example
 * formatHessianCost(c); // "plan: 441 points x at most 100 Hessian-vector products x 1000 samples; ..."
 */
export function formatHessianCost(c: HessianCost): string {
  return `plan: ${c.points} point(s) x at most ${c.maxProducts} Hessian-vector products x ${c.samples} samples; one product takes ${c.secondsPerProduct.toPrecision(3)} s; at most ${formatDuration(c.seconds)} on this machine (Lanczos stops earlier once --tol is met)`;
}
