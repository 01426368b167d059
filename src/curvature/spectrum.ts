// The whole Hessian spectrum at a point, by stochastic Lanczos quadrature (Ghorbani, Krishnan &
// Xiao 2019; Lin, Saad & Yang 2016): m Lanczos steps from each of several seeded probe vectors
// give Gauss quadrature nodes (Ritz values) and weights (squared first components of the
// tridiagonal's eigenvectors); averaged over probes they approximate the eigenvalue distribution,
// drawn as a Gaussian-broadened density. Also Hutch++ for the trace (Meyer et al. 2021).

import {
  type HutchPlusPlusTrace,
  hutchPlusPlusTrace,
  lanczosQuadrature,
  lanczosTridiagonal,
  PROBE_DISTRIBUTIONS,
  type ProbeDistribution,
  probeVectors,
} from "../core/lanczos.ts";
import type { Dataset } from "../data/dataset.ts";
import type { Model } from "../model/model.ts";
import { type HessianOperator, type HvpOptions, withHessianOperator } from "./hvp.ts";

/** Options of a stochastic Lanczos quadrature. */
export interface SpectrumOptions {
  /** Probe vectors (default 4). */
  probes?: number;
  /** Lanczos steps per probe: Hessian-vector products per probe (default 40). */
  steps?: number;
  /** Seed of the probes (default 0): `probeVectors(n, probes, { seed, distribution, mask })`. */
  seed?: number;
  /** Entries of the probes (default "rademacher"). */
  distribution?: ProbeDistribution;
  /** Called after each product with the probe (0-based) and the step within it (1-based). */
  onStep?: (probe: number, step: number) => void;
}

/** The quadrature of a stochastic Lanczos run, per probe. */
export interface SpectrumQuadrature {
  /** Per probe: nodes (Ritz values, descending). */
  readonly nodes: readonly Float64Array[];
  /** Per probe: weights (sum 1 per probe). */
  readonly weights: readonly Float64Array[];
  /** Per probe: ||z||^2 of the raw probe (for Hutchinson's z^T H z = ||z||^2 q^T H q). */
  readonly probeNorms2: readonly number[];
  /** Dimension of the operator (entries inside the mask). */
  readonly dimension: number;
  /** Lanczos steps asked per probe (a probe stops earlier when its Krylov space is invariant). */
  readonly steps: number;
  readonly seed: number;
  readonly distribution: ProbeDistribution;
  /** Hessian-vector products used in all. */
  readonly products: number;
}

/** A density on a grid. */
export interface SpectralDensity {
  /** Eigenvalue grid, ascending. */
  readonly grid: Float64Array;
  /** phi(t) = mean over probes of sum_j w_j N(t; t_j, sigma^2): integrates to 1 (times dimension: eigenvalue counts). */
  readonly density: Float64Array;
  /** Standard deviation of the Gaussian broadening. */
  readonly sigma: number;
}

function checkSpectrum(o: SpectrumOptions, where: string): Required<Omit<SpectrumOptions, "onStep">> {
  const { probes = 4, steps = 40, seed = 0, distribution = "rademacher" } = o;
  if (!Number.isInteger(probes) || probes < 1)
    throw new Error(`${where}: 'probes' must be a positive integer, got ${probes}`);
  if (!Number.isInteger(steps) || steps < 1)
    throw new Error(`${where}: 'steps' must be a positive integer, got ${steps}`);
  if (!Number.isInteger(seed) || seed < 0)
    throw new Error(`${where}: 'seed' must be a non-negative integer, got ${seed}`);
  if (!PROBE_DISTRIBUTIONS.includes(distribution))
    throw new Error(
      `${where}: unknown 'distribution' '${distribution as string}'; expected one of ${PROBE_DISTRIBUTIONS.join(", ")}`,
    );
  return { probes, steps, seed, distribution };
}

/**
 * Stochastic Lanczos quadrature of a symmetric operator restricted to `H.mask`: `probes` x
 * at most `steps` products.
 *
 * @example
 * const H = await hessianOperator(model, theta, data);
 * const q = await operatorSpectrum(H, { probes: 4, steps: 40, seed: 0 });
 * const { grid, density } = spectralDensity(q);
 */
export async function operatorSpectrum(
  H: Pick<HessianOperator, "hvp" | "mask">,
  options: SpectrumOptions = {},
): Promise<SpectrumQuadrature> {
  const { probes, steps, seed, distribution } = checkSpectrum(options, "operatorSpectrum()");
  const n = H.mask.length;
  const dimension = H.mask.reduce((a, b) => a + b, 0);
  if (dimension < 1) throw new Error("operatorSpectrum(): the operator's mask selects no entry");
  const m = Math.min(steps, dimension);
  const zs = probeVectors(n, probes, { seed, distribution, mask: H.mask });
  const nodes: Float64Array[] = [];
  const weights: Float64Array[] = [];
  const probeNorms2: number[] = [];
  let products = 0;
  for (const [p, z] of zs.entries()) {
    let step = 0;
    const t = await lanczosTridiagonal(
      (v) => {
        products++;
        options.onStep?.(p, ++step);
        return H.hvp(v);
      },
      z,
      m,
      { mask: H.mask },
    );
    const q = lanczosQuadrature(t);
    nodes.push(q.nodes);
    weights.push(q.weights);
    probeNorms2.push(z.reduce((a, b) => a + b * b, 0));
  }
  return { nodes, weights, probeNorms2, dimension, steps: m, seed, distribution, products };
}

/**
 * The k-th moments of the quadrature, averaged over probes: mean_p sum_j w_pj t_pj^k for k = 0..maxK.
 * For each probe's unit vector q this is q^T H^k q exactly while k < 2 x its Lanczos steps; its
 * expectation over probes is tr(H^k) / dimension.
 *
 * @example
 * spectrumMoments(q, 4); // [1, tr(H)/n, tr(H^2)/n, ...] estimates
 */
export function spectrumMoments(q: Pick<SpectrumQuadrature, "nodes" | "weights">, maxK: number): number[] {
  if (!Number.isInteger(maxK) || maxK < 0)
    throw new Error(`spectrumMoments(): 'maxK' must be a non-negative integer, got ${maxK}`);
  const out = new Array<number>(maxK + 1).fill(0);
  q.nodes.forEach((t, p) => {
    const w = q.weights[p] as Float64Array;
    for (let k = 0; k <= maxK; k++) {
      let s = 0;
      for (let j = 0; j < t.length; j++) s += (w[j] as number) * (t[j] as number) ** k;
      out[k] = (out[k] as number) + s / q.nodes.length;
    }
  });
  return out;
}

/**
 * Hutchinson's trace estimate from the quadrature's own probes: z^T H z = ||z||^2 alpha_1 for
 * each probe z (no extra products), with its standard error.
 *
 * @example
 * const { trace, stderr } = spectrumTrace(q);
 */
export function spectrumTrace(q: SpectrumQuadrature): { trace: number; stderr: number; samples: number } {
  const values = q.nodes.map((t, p) => {
    const w = q.weights[p] as Float64Array;
    let s = 0;
    for (let j = 0; j < t.length; j++) s += (w[j] as number) * (t[j] as number);
    return s * (q.probeNorms2[p] as number);
  });
  const k = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / k;
  const variance = k > 1 ? values.reduce((a, b) => a + (b - mean) ** 2, 0) / (k - 1) : 0;
  return { trace: mean, stderr: Math.sqrt(variance / k), samples: k };
}

/**
 * The Gaussian-broadened density of a quadrature on an even grid: by default sigma is 1 % of the
 * nodes' range and the grid (1000 points) spans the nodes +- 5 sigma.
 *
 * @example
 * const { grid, density, sigma } = spectralDensity(q, { sigma: 0.05, points: 500 });
 */
export function spectralDensity(
  q: Pick<SpectrumQuadrature, "nodes" | "weights">,
  {
    sigma,
    points = 1000,
    range,
  }: { sigma?: number; points?: number; range?: readonly [number, number] } = {},
): SpectralDensity {
  const where = "spectralDensity()";
  let lo = Infinity;
  let hi = -Infinity;
  for (const t of q.nodes)
    for (const v of t) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  if (!Number.isFinite(lo) || !Number.isFinite(hi))
    throw new Error(`${where}: the quadrature has no finite nodes`);
  const s = sigma ?? Math.max((hi - lo) / 100, Math.abs(hi) * 1e-6, 1e-12);
  if (!(s > 0) || !Number.isFinite(s))
    throw new Error(`${where}: 'sigma' must be a positive number, got ${sigma}`);
  if (!Number.isInteger(points) || points < 2)
    throw new Error(`${where}: 'points' must be an integer >= 2, got ${points}`);
  const [a, b] = range ?? [lo - 5 * s, hi + 5 * s];
  if (!(a < b)) throw new Error(`${where}: 'range' must be [low, high] with low < high, got [${a}, ${b}]`);
  const grid = Float64Array.from({ length: points }, (_, i) => a + ((b - a) * i) / (points - 1));
  const density = new Float64Array(points);
  const c = 1 / (Math.sqrt(2 * Math.PI) * s * q.nodes.length);
  q.nodes.forEach((t, p) => {
    const w = q.weights[p] as Float64Array;
    for (let j = 0; j < t.length; j++) {
      const node = t[j] as number;
      const wj = (w[j] as number) * c;
      for (let i = 0; i < points; i++) {
        const d = ((grid[i] as number) - node) / s;
        if (d * d < 1400) density[i] = (density[i] as number) + wj * Math.exp(-0.5 * d * d);
      }
    }
  });
  return { grid, density, sigma: s };
}

/** The spectrum of a Hessian at a point. */
export interface HessianSpectrum extends SpectrumQuadrature {
  /** Hutchinson's trace from the same probes. */
  readonly trace: { readonly trace: number; readonly stderr: number; readonly samples: number };
  /** Passes over the data (one per product). */
  readonly passes: number;
}

/**
 * Stochastic Lanczos quadrature of the Hessian of the evaluation-mode loss over `data` at `theta`,
 * w.r.t. the filter weights, on exact Hessian-vector products.
 *
 * @example
 * const s = await hessianSpectrum(model, theta, data, { probes: 4, steps: 40, threads: 2 });
 * const { grid, density } = spectralDensity(s);
 */
export async function hessianSpectrum(
  model: Model,
  theta: Float32Array,
  data: Dataset,
  options: SpectrumOptions & HvpOptions = {},
): Promise<HessianSpectrum> {
  checkSpectrum(options, "hessianSpectrum()");
  return withHessianOperator(model, theta, data, options, async (H, rest) => {
    const q = await operatorSpectrum(H, rest);
    return { ...q, trace: spectrumTrace(q) };
  });
}

/**
 * Hutch++'s estimate of the Hessian's trace (filter weights, eval mode) with `products` products.
 *
 * @example
 * const t = await hessianTraceHutchPlusPlus(model, theta, data, { products: 30, threads: 2 });
 * console.log(t.trace, t.stderr, t.products);
 */
export async function hessianTraceHutchPlusPlus(
  model: Model,
  theta: Float32Array,
  data: Dataset,
  options: { products?: number; seed?: number; distribution?: ProbeDistribution } & HvpOptions = {},
): Promise<HutchPlusPlusTrace & { readonly passes: number }> {
  return withHessianOperator(model, theta, data, options, (H, rest) =>
    hutchPlusPlusTrace((v) => H.hvp(v), H.mask.length, { ...rest, mask: H.mask }),
  );
}
