// PCA directions of an optimization trajectory (Li et al. 2018, Sec. 7)
// without a dense parameter covariance: the n x n Gram matrix of the
// checkpoints' differences is accumulated block by block (a block = some
// parameter entries of every checkpoint), so parameters can be streamed.
// Matches scikit-learn's PCA on the rows theta_i - theta_final (columns centered).

import { symmetricEigen } from "./linalg.ts";

/** The same block of parameter entries from every checkpoint, as differences theta_i - theta_final. */
export interface TrajectoryBlock {
  /** Index of the block's first entry in the full parameter vector. */
  offset: number;
  /** One array per checkpoint, all the same length. */
  rows: readonly Float32Array[];
}

/** Blocks covering the parameter vector; iterated twice (Gram matrix, then components). */
export type BlockSource = () => AsyncIterable<TrajectoryBlock> | Iterable<TrajectoryBlock>;

/** PCA result, with the reference code's (scikit-learn's) names. */
export interface PcaResult {
  /** Unit principal directions over the full parameter vector. */
  directions: Float32Array[];
  explainedVarianceRatio: Float64Array;
  explainedVariance: Float64Array;
  singularValues: Float64Array;
}

/**
 * The first `components` principal directions of the rows theta_i - theta_final (size = parameter count).
 *
 * @example
 * const pca = await pcaDirections(() => blocksOf(checkpoints), 270_000, 10, 2);
 */
export async function pcaDirections(
  source: BlockSource,
  size: number,
  count: number,
  components = 2,
): Promise<PcaResult> {
  if (count < 2) throw new Error(`pcaDirections(): needs at least 2 checkpoints, got ${count}`);
  if (components > count)
    throw new Error(
      `pcaDirections(): ${components} components need at least as many checkpoints, got ${count}`,
    );
  const gram = new Float64Array(count * count);
  for await (const { rows } of source()) {
    if (rows.length !== count)
      throw new Error(`pcaDirections(): a block has ${rows.length} rows, expected ${count}`);
    for (let i = 0; i < count; i++) {
      const ri = rows[i]!;
      for (let j = i; j < count; j++) {
        const rj = rows[j]!;
        let s = 0;
        for (let k = 0; k < ri.length; k++) s += (ri[k] as number) * (rj[k] as number);
        gram[i * count + j] = (gram[i * count + j] as number) + s;
      }
    }
  }
  for (let i = 0; i < count; i++)
    for (let j = 0; j < i; j++) gram[i * count + j] = gram[j * count + i] as number;
  // Column-centering of the rows is H G H with H = I - 11^T / n.
  const rowMean = new Float64Array(count);
  let allMean = 0;
  for (let i = 0; i < count; i++) {
    let s = 0;
    for (let j = 0; j < count; j++) s += gram[i * count + j] as number;
    rowMean[i] = s / count;
    allMean += s;
  }
  allMean /= count * count;
  const centered = new Float64Array(count * count);
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < count; j++)
      centered[i * count + j] =
        (gram[i * count + j] as number) - (rowMean[i] as number) - (rowMean[j] as number) + allMean;
  }
  const { values, vectors } = symmetricEigen(centered, count);
  const total = values.reduce((a, v) => a + Math.max(v, 0), 0);
  const lambda = Array.from({ length: components }, (_, k) => Math.max(values[k] as number, 0));
  const sigma = lambda.map(Math.sqrt);
  // u_k is orthogonal to the ones vector (centered Gram), so v_k = D_c^T u_k / sigma_k = D^T u_k / sigma_k.
  const directions = lambda.map(() => new Float32Array(size));
  for await (const { offset, rows } of source()) {
    const len = rows[0]?.length ?? 0;
    for (let c = 0; c < components; c++) {
      if (!(sigma[c]! > 0)) continue;
      const out = directions[c]!;
      for (let i = 0; i < count; i++) {
        const w = (vectors[i * count + c] as number) / sigma[c]!;
        const r = rows[i]!;
        for (let k = 0; k < len; k++) out[offset + k] = (out[offset + k] as number) + w * (r[k] as number);
      }
    }
  }
  return {
    directions,
    explainedVarianceRatio: Float64Array.from(lambda, (l) => (total > 0 ? l / total : 0)),
    explainedVariance: Float64Array.from(lambda, (l) => l / (count - 1)),
    singularValues: Float64Array.from(sigma),
  };
}

/**
 * Coordinates of a difference vector w = theta_i - theta_final on directions: `orthogonal` gives
 * <w, d_k> / ||d_k||^2 per direction (exact for orthonormal PCA directions), `least-squares` solves
 * min ||w - sum_k c_k d_k|| (right for non-orthogonal, e.g. random, directions).
 *
 * @example
 * const [x, y] = projectPoint(diff, [d1, d2], "orthogonal");
 */
export function projectPoint(
  w: Float32Array,
  directions: readonly Float32Array[],
  method: "orthogonal" | "least-squares",
): number[] {
  const m = directions.length;
  const gram = new Float64Array(m * m);
  const rhs = new Float64Array(m);
  for (let a = 0; a < m; a++) {
    const da = directions[a]!;
    rhs[a] = dot(w, da);
    for (let b = 0; b < m; b++) gram[a * m + b] = dot(da, directions[b]!);
  }
  if (method === "orthogonal")
    return Array.from({ length: m }, (_, a) => (rhs[a] as number) / (gram[a * m + a] as number));
  return solve(gram, rhs, m);
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
}

/** Gaussian elimination with partial pivoting for a small system. */
function solve(a: Float64Array, b: Float64Array, n: number): number[] {
  const m = a.slice();
  const x = b.slice();
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++)
      if (Math.abs(m[r * n + c] as number) > Math.abs(m[p * n + c] as number)) p = r;
    if (Math.abs(m[p * n + c] as number) < 1e-300)
      throw new Error("projectPoint(): the directions are linearly dependent");
    for (let k = 0; k < n; k++)
      [m[c * n + k], m[p * n + k]] = [m[p * n + k] as number, m[c * n + k] as number];
    [x[c], x[p]] = [x[p] as number, x[c] as number];
    for (let r = c + 1; r < n; r++) {
      const f = (m[r * n + c] as number) / (m[c * n + c] as number);
      for (let k = c; k < n; k++) m[r * n + k] = (m[r * n + k] as number) - f * (m[c * n + k] as number);
      x[r] = (x[r] as number) - f * (x[c] as number);
    }
  }
  const out = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = x[r] as number;
    for (let k = r + 1; k < n; k++) s -= (m[r * n + k] as number) * out[k]!;
    out[r] = s / (m[r * n + r] as number);
  }
  return out;
}
