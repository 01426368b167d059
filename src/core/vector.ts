// Flat-vector arithmetic on parameter vectors, accumulated in float64.

/**
 * Dot product of two equally long vectors.
 *
 * @example
 * dot(new Float32Array([1, 2]), new Float32Array([3, 4])); // 11
 */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`dot(): lengths differ (${a.length} vs ${b.length})`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
}

/** Euclidean norm. */
export function norm(a: ArrayLike<number>): number {
  return Math.sqrt(dot(a, a));
}

/**
 * theta + sum_k coords[k] * dirs[k], written into `out` (allocated when omitted).
 *
 * @example
 * const p = combine(theta, [d1, d2], [0.5, -0.25]);
 */
export function combine(
  theta: Float32Array,
  dirs: readonly Float32Array[],
  coords: readonly number[],
  out: Float32Array = new Float32Array(theta.length),
): Float32Array {
  if (dirs.length !== coords.length)
    throw new Error(`combine(): ${dirs.length} directions but ${coords.length} coordinates`);
  for (const d of dirs) {
    if (d.length !== theta.length)
      throw new Error(`combine(): a direction has ${d.length} values but theta has ${theta.length}`);
  }
  const n = theta.length;
  if (dirs.length === 1) {
    const d = dirs[0]!;
    const a = coords[0]!;
    for (let i = 0; i < n; i++) out[i] = (theta[i] as number) + a * (d[i] as number);
  } else if (dirs.length === 2) {
    const [d1, d2] = dirs as [Float32Array, Float32Array];
    const [a, b] = coords as [number, number];
    for (let i = 0; i < n; i++) out[i] = (theta[i] as number) + a * (d1[i] as number) + b * (d2[i] as number);
  } else {
    for (let i = 0; i < n; i++) {
      let v = theta[i] as number;
      for (let k = 0; k < dirs.length; k++) v += (coords[k] as number) * (dirs[k]![i] as number);
      out[i] = v;
    }
  }
  return out;
}
