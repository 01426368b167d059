// Extreme eigenvalues of a symmetric operator known only through products
// H v (Hessian-vector products): Lanczos with full reorthogonalization
// (Golub & Van Loan, Sec. 10.1), and Hutchinson's trace estimator.

import { symmetricEigen } from "./linalg.ts";
import { Random } from "./random.ts";

/** Result of a Lanczos run. */
export interface LanczosResult {
  /** Largest and smallest Ritz values. */
  max: number;
  min: number;
  /** All Ritz values, descending. */
  ritz: Float64Array;
  /** Residual bounds |beta_m * s_last| of the largest and smallest Ritz pairs. */
  residualMax: number;
  residualMin: number;
  /** Iterations (matrix-vector products) used. */
  iterations: number;
}

/** Options of lanczos(). */
export interface LanczosOptions {
  /** Seed of the random start vector. */
  seed?: number;
  /** At most this many products (default 50). */
  maxIterations?: number;
  /** Stop when both extreme residual bounds are below tol * max(|max|, |min|) (default 1e-4). */
  tol?: number;
  /** Entries allowed to be non-zero (1) in every vector, e.g. the filter parameters; default all. */
  mask?: Uint8Array;
  /** Called after each product with the current extreme Ritz values. */
  onIteration?: (k: number, max: number, min: number) => void;
}

/**
 * Extreme eigenvalues of the symmetric operator `matvec` on vectors of length `n`.
 *
 * @example
 * const { max, min } = await lanczos(async (v) => hvp(v), model.size, { seed: 0, tol: 1e-3 });
 */
export async function lanczos(
  matvec: (v: Float32Array) => Promise<Float32Array> | Float32Array,
  n: number,
  { seed = 0, maxIterations = 50, tol = 1e-4, mask, onIteration }: LanczosOptions = {},
): Promise<LanczosResult> {
  const rng = new Random(seed);
  const basis: Float64Array[] = [];
  const alpha: number[] = [];
  const beta: number[] = [];
  let q = new Float64Array(n);
  for (let i = 0; i < n; i++) q[i] = !mask || mask[i] ? rng.normal() : 0;
  normalizeInPlace(q);
  const dim = mask ? mask.reduce((a, b) => a + b, 0) : n;
  const steps = Math.min(maxIterations, dim);
  let result: LanczosResult | undefined;
  for (let k = 0; k < steps; k++) {
    basis.push(q);
    const w = Float64Array.from(await matvec(Float32Array.from(q)));
    if (w.length !== n) throw new Error(`lanczos(): the product returned ${w.length} values, expected ${n}`);
    if (mask) for (let i = 0; i < n; i++) if (!mask[i]) w[i] = 0;
    const a = dot64(w, q);
    alpha.push(a);
    // Full reorthogonalization (twice, for stability) against every basis vector.
    for (let pass = 0; pass < 2; pass++) {
      for (const b of basis) {
        const c = dot64(w, b);
        for (let i = 0; i < n; i++) w[i] = (w[i] as number) - c * (b[i] as number);
      }
    }
    const b = Math.sqrt(dot64(w, w));
    result = ritz(alpha, beta, b, k + 1);
    onIteration?.(k + 1, result.max, result.min);
    const scale = Math.max(Math.abs(result.max), Math.abs(result.min), 1e-30);
    if (b < 1e-12 * scale || (k >= 1 && result.residualMax < tol * scale && result.residualMin < tol * scale))
      break;
    beta.push(b);
    q = w.map((v) => v / b);
  }
  return result!;
}

function ritz(alpha: number[], beta: number[], nextBeta: number, m: number): LanczosResult {
  const t = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    t[i * m + i] = alpha[i] as number;
    if (i + 1 < m) {
      t[i * m + i + 1] = beta[i] as number;
      t[(i + 1) * m + i] = beta[i] as number;
    }
  }
  const { values, vectors } = symmetricEigen(t, m);
  const last = (col: number) => Math.abs(nextBeta * (vectors[(m - 1) * m + col] as number));
  return {
    max: values[0] as number,
    min: values[m - 1] as number,
    ritz: values,
    residualMax: last(0),
    residualMin: last(m - 1),
    iterations: m,
  };
}

function dot64(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
}

function normalizeInPlace(v: Float64Array): void {
  const s = Math.sqrt(dot64(v, v));
  for (let i = 0; i < v.length; i++) v[i] = (v[i] as number) / s;
}

/**
 * Hutchinson's estimate of the trace: the mean of v^T H v over `samples` Rademacher vectors; returns the
 * estimate and its standard error.
 *
 * @example
 * const { trace, stderr } = await hutchinsonTrace(hvp, model.size, { samples: 20, seed: 1 });
 */
export async function hutchinsonTrace(
  matvec: (v: Float32Array) => Promise<Float32Array> | Float32Array,
  n: number,
  { samples = 20, seed = 0, mask }: { samples?: number; seed?: number; mask?: Uint8Array } = {},
): Promise<{ trace: number; stderr: number; samples: number }> {
  const rng = new Random(seed);
  const values: number[] = [];
  for (let s = 0; s < samples; s++) {
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = !mask || mask[i] ? (rng.uniform() < 0.5 ? -1 : 1) : 0;
    const hv = await matvec(v);
    values.push(dot64(v, hv));
  }
  const mean = values.reduce((a, b) => a + b, 0) / samples;
  const variance = samples > 1 ? values.reduce((a, b) => a + (b - mean) ** 2, 0) / (samples - 1) : 0;
  return { trace: mean, stderr: Math.sqrt(variance / samples), samples };
}
