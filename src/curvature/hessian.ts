// Curvature of the loss at a point: the extreme eigenvalues of the Hessian
// with respect to the filter weights by Lanczos with full reorthogonalization
// (src/core/lanczos.ts, Golub & Van Loan 10.1), optionally the top-k Ritz
// values and Hutchinson's trace estimate (method.md, "Hessian curvature").

import { hutchinsonTrace, hutchPlusPlusTrace, lanczos } from "../core/lanczos.ts";
import type { Dataset } from "../data/dataset.ts";
import type { Model } from "../model/model.ts";
import { type HessianOperator, type HvpOptions, withHessianOperator } from "./hvp.ts";

/** How the trace is estimated. */
export type TraceMethod = "hutchinson" | "hutch++";

/** All trace methods, for validation and help texts. */
export const TRACE_METHODS: readonly TraceMethod[] = ["hutchinson", "hutch++"];

/** Options of the eigenvalue computation. */
export interface ExtremesOptions {
  /**
   * Stop when the residual bounds of both extreme Ritz pairs are below tol * max(|lambda_max|,
   * |lambda_min|) (default 1e-3). Each extreme eigenvalue then lies within its residual of the
   * reported value.
   */
  tol?: number;
  /** At most this many Hessian-vector products (default 100). */
  maxIterations?: number;
  /** Seed of the Lanczos start vector (default 0). */
  seed?: number;
  /** Also report the k largest Ritz values (default 0). */
  topK?: number;
  /**
   * Also estimate the trace with this many Hessian-vector products (default 0: no trace): Rademacher
   * probes for Hutchinson, or 3k products for Hutch++ (`traceMethod`).
   */
  traceSamples?: number;
  /** "hutchinson" (default: the mean of z^T H z) or "hutch++" (Meyer et al. 2021: a rank-k sketch + Hutchinson on the rest). */
  traceMethod?: TraceMethod;
  /** Called after each Lanczos step with the current extreme Ritz values. */
  onIteration?: (k: number, max: number, min: number) => void;
}

/** Extreme eigenvalues of a Hessian, with what is known about their accuracy. */
export interface HessianExtremes {
  /** Largest eigenvalue (Ritz value). */
  readonly max: number;
  /** Smallest eigenvalue (Ritz value). */
  readonly min: number;
  /** Residual bounds |beta_m s_m|: the true eigenvalue lies within this of max / min. */
  readonly residualMax: number;
  readonly residualMin: number;
  /** The tolerance asked for (relative to max(|max|, |min|)). */
  readonly tol: number;
  /** Whether both residuals met the tolerance (false: maxIterations ran out first). */
  readonly converged: boolean;
  /** Lanczos steps (Hessian-vector products) used. */
  readonly iterations: number;
  /**
   * The topK largest Ritz values, descending (when asked). Inner Ritz values converge after the
   * extremes: only the first is covered by the tolerance, the others are approximations from
   * the same Krylov space (more iterations sharpen them).
   */
  readonly top?: readonly number[];
  /**
   * The trace estimate and its standard error (when asked); `samples` is the number of
   * Hessian-vector products it used, `method` how it was estimated.
   */
  readonly trace?: {
    readonly trace: number;
    readonly stderr: number;
    readonly samples: number;
    readonly method: TraceMethod;
  };
}

function checkOptions(o: ExtremesOptions, where: string): Required<Omit<ExtremesOptions, "onIteration">> {
  const {
    tol = 1e-3,
    maxIterations = 100,
    seed = 0,
    topK = 0,
    traceSamples = 0,
    traceMethod = "hutchinson",
  } = o;
  if (!TRACE_METHODS.includes(traceMethod))
    throw new Error(
      `${where}: unknown 'traceMethod' '${traceMethod as string}'; expected one of ${TRACE_METHODS.join(", ")}`,
    );
  if (traceMethod === "hutch++" && traceSamples > 0 && traceSamples < 3)
    throw new Error(`${where}: Hutch++ needs 'traceSamples' >= 3 products (3k), got ${traceSamples}`);
  if (!(tol > 0 && tol < 1)) throw new Error(`${where}: 'tol' must be in (0, 1), got ${tol}`);
  if (!Number.isInteger(maxIterations) || maxIterations < 2)
    throw new Error(`${where}: 'maxIterations' must be an integer >= 2, got ${maxIterations}`);
  if (!Number.isInteger(seed) || seed < 0)
    throw new Error(`${where}: 'seed' must be a non-negative integer, got ${seed}`);
  if (!Number.isInteger(topK) || topK < 0)
    throw new Error(`${where}: 'topK' must be a non-negative integer, got ${topK}`);
  if (!Number.isInteger(traceSamples) || traceSamples < 0)
    throw new Error(`${where}: 'traceSamples' must be a non-negative integer, got ${traceSamples}`);
  return { tol, maxIterations, seed, topK, traceSamples, traceMethod };
}

/**
 * Extreme eigenvalues (and optionally top-k Ritz values and the trace) of a symmetric operator
 * given by its products, restricted to the entries of `H.mask`.
 *
 * @example
 * const H = await hessianOperator(model, theta, data);
 * const { max, min, residualMax } = await operatorExtremes(H, { tol: 1e-3 });
 */
export async function operatorExtremes(
  H: Pick<HessianOperator, "hvp" | "mask">,
  options: ExtremesOptions = {},
): Promise<HessianExtremes> {
  const { tol, maxIterations, seed, topK, traceSamples, traceMethod } = checkOptions(
    options,
    "operatorExtremes()",
  );
  const n = H.mask.length;
  const r = await lanczos((v) => H.hvp(v), n, {
    seed,
    maxIterations,
    tol,
    mask: H.mask,
    ...(options.onIteration ? { onIteration: options.onIteration } : {}),
  });
  const scale = Math.max(Math.abs(r.max), Math.abs(r.min), 1e-30);
  const dim = H.mask.reduce((a, b) => a + b, 0);
  // An invariant subspace (the Krylov space exhausted) is exact whatever the residuals say.
  const converged = (r.residualMax <= tol * scale && r.residualMin <= tol * scale) || r.iterations >= dim;
  const out: HessianExtremes = {
    max: r.max,
    min: r.min,
    residualMax: r.residualMax,
    residualMin: r.residualMin,
    tol,
    converged,
    iterations: r.iterations,
    ...(topK > 0 ? { top: Array.from(r.ritz.subarray(0, Math.min(topK, r.ritz.length))) } : {}),
  };
  if (traceSamples === 0) return out;
  if (traceMethod === "hutch++") {
    const t = await hutchPlusPlusTrace((v) => H.hvp(v), n, {
      products: traceSamples,
      seed: seed + 1,
      mask: H.mask,
    });
    return { ...out, trace: { trace: t.trace, stderr: t.stderr, samples: t.products, method: traceMethod } };
  }
  const trace = await hutchinsonTrace((v) => H.hvp(v), n, {
    samples: traceSamples,
    seed: seed + 1,
    mask: H.mask,
  });
  return { ...out, trace: { ...trace, method: traceMethod } };
}

/**
 * lambda_max and lambda_min of the Hessian of the evaluation-mode loss over `data` at `theta`,
 * w.r.t. the filter weights, by Lanczos on exact Hessian-vector products.
 *
 * @example
 * const e = await hessianExtremes(model, theta, data, { tol: 1e-3, threads: 2 });
 * console.log(e.max, e.min, Math.abs(e.min / e.max), e.converged);
 */
export async function hessianExtremes(
  model: Model,
  theta: Float32Array,
  data: Dataset,
  options: ExtremesOptions & HvpOptions = {},
): Promise<HessianExtremes & { readonly passes: number }> {
  checkOptions(options, "hessianExtremes()");
  return withHessianOperator(model, theta, data, options, (H, rest) => operatorExtremes(H, rest));
}
