// Extreme eigenvalues of a symmetric operator known only through products
// H v (Hessian-vector products): Lanczos with full reorthogonalization
// (Golub & Van Loan, Sec. 10.1), its Ritz vectors, the Lanczos quadrature of
// one start vector (Golub & Meurant; the building block of stochastic Lanczos
// quadrature), Hutchinson's trace estimator and Hutch++ (Meyer et al. 2021).

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

/** A probe distribution: Rademacher (+-1 entries) or standard Gaussian. */
export type ProbeDistribution = "rademacher" | "gaussian";

/** All probe distributions, for validation and help texts. */
export const PROBE_DISTRIBUTIONS: readonly ProbeDistribution[] = ["rademacher", "gaussian"];

/**
 * `count` seeded probe vectors of length `n` (zero outside `mask`): i.i.d. +-1 (Rademacher) or N(0, 1)
 * entries drawn in order from `new Random(seed)`, probe after probe, so both sides of a comparison
 * (e.g. a PyTorch fixture) can use the very same vectors.
 *
 * @example
 * const [z1, z2] = probeVectors(model.size, 2, { seed: 0, distribution: "rademacher", mask });
 */
export function probeVectors(
  n: number,
  count: number,
  {
    seed = 0,
    distribution = "rademacher",
    mask,
  }: { seed?: number; distribution?: ProbeDistribution; mask?: Uint8Array } = {},
): Float32Array[] {
  if (!PROBE_DISTRIBUTIONS.includes(distribution))
    throw new Error(
      `probeVectors(): unknown distribution '${distribution as string}'; expected one of ${PROBE_DISTRIBUTIONS.join(", ")}`,
    );
  const rng = new Random(seed);
  const out: Float32Array[] = [];
  for (let p = 0; p < count; p++) {
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      if (mask && !mask[i]) continue;
      v[i] = distribution === "rademacher" ? (rng.uniform() < 0.5 ? -1 : 1) : rng.normal();
    }
    out.push(v);
  }
  return out;
}

/** The tridiagonal matrix of a Lanczos run from one start vector, and its basis. */
export interface LanczosTridiagonal {
  /** Diagonal alpha_1..alpha_m. */
  alpha: Float64Array;
  /** Off-diagonal beta_1..beta_{m-1}. */
  beta: Float64Array;
  /** The norm of the residual after the last step (beta_m): 0 when the Krylov space is invariant. */
  nextBeta: number;
  /** The orthonormal Lanczos vectors q_1..q_m (float64). */
  basis: Float64Array[];
}

/**
 * `steps` Lanczos steps with full reorthogonalization (twice) from the start vector `start`
 * (normalized here), on a symmetric operator restricted to `mask`. Stops early when the Krylov
 * space is invariant (beta below 1e-12 of the largest |alpha|, beta). `stop(k, alpha, beta, nextBeta)`
 * may end the run after step k.
 *
 * @example
 * const { alpha, beta } = await lanczosTridiagonal(matvec, z, 30);
 */
export async function lanczosTridiagonal(
  matvec: (v: Float32Array) => Promise<Float32Array> | Float32Array,
  start: ArrayLike<number>,
  steps: number,
  {
    mask,
    stop,
  }: {
    mask?: Uint8Array;
    stop?: (k: number, alpha: readonly number[], beta: readonly number[], nextBeta: number) => boolean;
  } = {},
): Promise<LanczosTridiagonal> {
  const n = start.length;
  if (!Number.isInteger(steps) || steps < 1)
    throw new Error(`lanczosTridiagonal(): 'steps' must be a positive integer, got ${steps}`);
  let q = new Float64Array(n);
  for (let i = 0; i < n; i++) q[i] = !mask || mask[i] ? (start[i] as number) : 0;
  const s0 = Math.sqrt(dot64(q, q));
  if (!(s0 > 0)) throw new Error("lanczosTridiagonal(): the start vector is zero (inside the mask)");
  for (let i = 0; i < n; i++) q[i] = (q[i] as number) / s0;
  const basis: Float64Array[] = [];
  const alpha: number[] = [];
  const beta: number[] = [];
  let nextBeta = 0;
  let scale = 0;
  for (let k = 0; k < steps; k++) {
    basis.push(q);
    const w = Float64Array.from(await matvec(Float32Array.from(q)));
    if (w.length !== n)
      throw new Error(`lanczosTridiagonal(): the product returned ${w.length} values, expected ${n}`);
    if (mask) for (let i = 0; i < n; i++) if (!mask[i]) w[i] = 0;
    const a = dot64(w, q);
    alpha.push(a);
    for (let pass = 0; pass < 2; pass++) {
      for (const b of basis) {
        const c = dot64(w, b);
        for (let i = 0; i < n; i++) w[i] = (w[i] as number) - c * (b[i] as number);
      }
    }
    nextBeta = Math.sqrt(dot64(w, w));
    scale = Math.max(scale, Math.abs(a), nextBeta);
    if (nextBeta <= 1e-12 * Math.max(scale, 1e-300)) {
      nextBeta = 0;
      break;
    }
    if (k + 1 === steps || stop?.(k + 1, alpha, beta, nextBeta)) break;
    beta.push(nextBeta);
    q = w.map((v) => v / nextBeta);
  }
  return { alpha: Float64Array.from(alpha), beta: Float64Array.from(beta), nextBeta, basis };
}

/** Eigenvalues (descending) and eigenvectors (columns, row-major m x m) of a symmetric tridiagonal matrix. */
function tridiagonalEigen(alpha: ArrayLike<number>, beta: ArrayLike<number>) {
  const m = alpha.length;
  const t = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    t[i * m + i] = alpha[i] as number;
    if (i + 1 < m) {
      t[i * m + i + 1] = beta[i] as number;
      t[(i + 1) * m + i] = beta[i] as number;
    }
  }
  return symmetricEigen(t, m);
}

/** The Gauss quadrature of one start vector: nodes (Ritz values) and weights (squared first components). */
export interface LanczosQuadrature {
  /** Ritz values of the tridiagonal, descending. */
  nodes: Float64Array;
  /** (e_1^T s_j)^2 for each Ritz vector s_j: they sum to 1. */
  weights: Float64Array;
}

/**
 * Nodes and weights of the Gauss quadrature a Lanczos tridiagonal defines (Golub & Meurant): for
 * a unit start vector q, sum_j w_j f(t_j) approximates q^T f(H) q, exactly for polynomials of degree
 * below 2m.
 *
 * @example
 * const { nodes, weights } = lanczosQuadrature(await lanczosTridiagonal(matvec, z, 30));
 */
export function lanczosQuadrature({
  alpha,
  beta,
}: Pick<LanczosTridiagonal, "alpha" | "beta">): LanczosQuadrature {
  const m = alpha.length;
  const { values, vectors } = tridiagonalEigen(alpha, beta);
  const weights = new Float64Array(m);
  for (let j = 0; j < m; j++) weights[j] = (vectors[j] as number) ** 2;
  return { nodes: Float64Array.from(values), weights };
}

/** Options of lanczosEigenpairs(). */
export interface EigenpairsOptions {
  /** How many of the largest eigenpairs (default 1). */
  largest?: number;
  /** How many of the smallest (most negative) eigenpairs (default 0). */
  smallest?: number;
  /** Seed of the N(0, 1) start vector (default 0). */
  seed?: number;
  /** At most this many products (default 100). */
  maxIterations?: number;
  /** Stop when every requested residual bound is below tol * max |Ritz value| (default 1e-4). */
  tol?: number;
  /** Entries allowed to be non-zero in every vector. */
  mask?: Uint8Array;
  /** Called after each product with the number of products so far. */
  onIteration?: (k: number) => void;
}

/** Eigenpairs from Lanczos: the largest first (descending), then the smallest (ascending). */
export interface Eigenpairs {
  /** Ritz values. */
  values: number[];
  /** Unit Ritz vectors (float32, zero outside the mask), sign fixed: the largest-|entry| is positive. */
  vectors: Float32Array[];
  /** Residual bounds |beta_m s_{m,j}| = ||H y_j - t_j y_j|| (in exact arithmetic) of each pair. */
  residuals: number[];
  /** Products used. */
  iterations: number;
  /** Whether every residual met the tolerance (or the Krylov space was exhausted). */
  converged: boolean;
}

/**
 * The largest and/or smallest eigenpairs of a symmetric operator by Lanczos with full
 * reorthogonalization, Ritz vectors y = Q s assembled from the kept basis.
 *
 * @example
 * const { values, vectors, residuals } = await lanczosEigenpairs(matvec, n, { largest: 2, tol: 1e-4 });
 */
export async function lanczosEigenpairs(
  matvec: (v: Float32Array) => Promise<Float32Array> | Float32Array,
  n: number,
  {
    largest = 1,
    smallest = 0,
    seed = 0,
    maxIterations = 100,
    tol = 1e-4,
    mask,
    onIteration,
  }: EigenpairsOptions = {},
): Promise<Eigenpairs> {
  const where = "lanczosEigenpairs()";
  if (
    !Number.isInteger(largest) ||
    !Number.isInteger(smallest) ||
    largest < 0 ||
    smallest < 0 ||
    largest + smallest < 1
  )
    throw new Error(
      `${where}: 'largest' and 'smallest' must be non-negative integers, at least one positive; got ${largest}, ${smallest}`,
    );
  if (!(tol > 0)) throw new Error(`${where}: 'tol' must be positive, got ${tol}`);
  const dim = mask ? mask.reduce((a, b) => a + b, 0) : n;
  const want = largest + smallest;
  if (want > dim)
    throw new Error(`${where}: asked for ${want} eigenpairs of an operator of dimension ${dim}`);
  const rng = new Random(seed);
  const start = new Float64Array(n);
  for (let i = 0; i < n; i++) start[i] = !mask || mask[i] ? rng.normal() : 0;
  const steps = Math.min(Math.max(maxIterations, want), dim);
  /** Indices (in descending order) of the requested Ritz pairs of an m x m tridiagonal. */
  const picked = (m: number): number[] => {
    const top = Array.from({ length: Math.min(largest, m) }, (_, j) => j);
    const bottom = Array.from({ length: Math.min(smallest, m) }, (_, j) => m - 1 - j);
    return [...top, ...bottom];
  };
  const residualsOf = (alpha: ArrayLike<number>, beta: ArrayLike<number>, nextBeta: number) => {
    const m = alpha.length;
    const { values, vectors } = tridiagonalEigen(alpha, beta);
    const idx = picked(m);
    return {
      values,
      vectors,
      idx,
      residuals: idx.map((j) => Math.abs(nextBeta * (vectors[(m - 1) * m + j] as number))),
    };
  };
  const t = await lanczosTridiagonal(matvec, start, steps, {
    ...(mask ? { mask } : {}),
    stop: (k, alpha, beta, nextBeta) => {
      onIteration?.(k);
      if (k < want + 1) return false;
      const r = residualsOf(alpha, beta, nextBeta);
      const scale = Math.max(Math.abs(r.values[0] as number), Math.abs(r.values[k - 1] as number), 1e-30);
      return r.residuals.every((x) => x < tol * scale);
    },
  });
  const m = t.alpha.length;
  const r = residualsOf(t.alpha, t.beta, t.nextBeta);
  const scale = Math.max(Math.abs(r.values[0] as number), Math.abs(r.values[m - 1] as number), 1e-30);
  const vectors = r.idx.map((j) => {
    const y = new Float64Array(n);
    for (let k = 0; k < m; k++) {
      const s = r.vectors[k * m + j] as number;
      const q = t.basis[k] as Float64Array;
      for (let i = 0; i < n; i++) y[i] = (y[i] as number) + s * (q[i] as number);
    }
    const len = Math.sqrt(dot64(y, y));
    let big = 0;
    for (let i = 0; i < n; i++) if (Math.abs(y[i] as number) > Math.abs(y[big] as number)) big = i;
    const sign = (y[big] as number) < 0 ? -1 : 1;
    return Float32Array.from(y, (v) => (v === 0 ? 0 : (sign * v) / len));
  });
  return {
    values: r.idx.map((j) => r.values[j] as number),
    vectors,
    residuals: r.residuals,
    iterations: m,
    converged: t.nextBeta === 0 || m >= dim || r.residuals.every((x) => x <= tol * scale),
  };
}

/** Hutch++'s trace estimate with what it cost. */
export interface HutchPlusPlusTrace {
  /** tr(Q^T A Q) + the Hutchinson estimate of the deflated rest. */
  trace: number;
  /** The part captured exactly by the sketch: tr(Q^T A Q). */
  lowRank: number;
  /** Standard error of the Hutchinson part (0 when the sketch captured everything). */
  stderr: number;
  /** Products used: 3k in all (k sketch, k on the basis, k deflated probes), fewer when Q is rank deficient. */
  products: number;
  /** Rank of the sketch's basis Q. */
  rank: number;
}

/**
 * Hutch++ (Meyer, Musco, Musco & Woodruff 2021): a rank-k sketch Q = orth(A S) captures the top of the
 * spectrum exactly, tr(Q^T A Q) (k products), and Hutchinson with k probes G estimates the rest,
 * tr((I - QQ^T) A (I - QQ^T)) (k products); `products` = 3k in all (rounded down to a multiple of 3).
 * Exact when A's rank is at most k. Probes from `probeVectors(n, 2k, { seed, distribution })`: S first.
 *
 * @example
 * const { trace, products } = await hutchPlusPlusTrace(hvp, n, { products: 30, seed: 0, mask });
 */
export async function hutchPlusPlusTrace(
  matvec: (v: Float32Array) => Promise<Float32Array> | Float32Array,
  n: number,
  {
    products = 30,
    seed = 0,
    mask,
    distribution = "rademacher",
  }: { products?: number; seed?: number; mask?: Uint8Array; distribution?: ProbeDistribution } = {},
): Promise<HutchPlusPlusTrace> {
  if (!Number.isInteger(products) || products < 3)
    throw new Error(`hutchPlusPlusTrace(): 'products' must be an integer >= 3, got ${products}`);
  const k = Math.floor(products / 3);
  const probes = probeVectors(n, 2 * k, { seed, distribution, ...(mask ? { mask } : {}) });
  const apply = async (v: Float64Array | Float32Array): Promise<Float64Array> => {
    const w = Float64Array.from(await matvec(Float32Array.from(v)));
    if (w.length !== n)
      throw new Error(`hutchPlusPlusTrace(): the product returned ${w.length} values, expected ${n}`);
    if (mask) for (let i = 0; i < n; i++) if (!mask[i]) w[i] = 0;
    return w;
  };
  // Q = orth(A S): Gram-Schmidt twice; columns left with less than 1e-5 of the largest column's
  // norm (A of rank < k, up to the float32 rounding of the products) are dropped: their part of the
  // trace falls to the Hutchinson remainder, which stays unbiased.
  const q: Float64Array[] = [];
  let used = 0;
  let biggest = 0;
  for (let j = 0; j < k; j++) {
    const w = await apply(probes[j] as Float32Array);
    used++;
    const before = Math.sqrt(dot64(w, w));
    biggest = Math.max(biggest, before);
    for (let pass = 0; pass < 2; pass++)
      for (const b of q) {
        const c = dot64(w, b);
        for (let i = 0; i < n; i++) w[i] = (w[i] as number) - c * (b[i] as number);
      }
    const len = Math.sqrt(dot64(w, w));
    if (len > 1e-5 * Math.max(biggest, 1e-300)) q.push(w.map((x) => x / len));
  }
  let lowRank = 0;
  for (const b of q) {
    lowRank += dot64(b, await apply(b));
    used++;
  }
  const project = (g: Float32Array): Float64Array => {
    const w = Float64Array.from(g);
    for (const b of q) {
      const c = dot64(w, b);
      for (let i = 0; i < n; i++) w[i] = (w[i] as number) - c * (b[i] as number);
    }
    return w;
  };
  const rest: number[] = [];
  for (let j = 0; j < k; j++) {
    const g = project(probes[k + j] as Float32Array);
    const ag = await apply(g);
    used++;
    // (P g)^T A (P g) = g^T (I - QQ^T) A (I - QQ^T) g.
    rest.push(dot64(g, ag));
  }
  const mean = rest.reduce((a, b) => a + b, 0) / k;
  const variance = k > 1 ? rest.reduce((a, b) => a + (b - mean) ** 2, 0) / (k - 1) : 0;
  return { trace: lowRank + mean, lowRank, stderr: Math.sqrt(variance / k), products: used, rank: q.length };
}
