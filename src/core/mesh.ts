// A loss surface as a polygon mesh, for VTK/STL/OBJ export: the reference's
// z transform (clip at zmax, then ln(z + 0.1) for log), bicubic resampling
// (its `--interp`), and the grid's cells as quads (or triangles where one
// corner is missing). Pure: typed arrays in, typed arrays out.
//
// Edge cases. Points whose z is not finite have no vertex; a cell with all
// four corners becomes a quad, with exactly three a triangle, with fewer
// nothing. Resampling near missing points falls back from bicubic to
// bilinear, and gives NaN where a surrounding corner is missing.

/**
 * A mesh over a grid: vertex positions (x, y, z per finite grid point) and
 * faces counter-clockwise seen from +z.
 *
 * @example
 * const m = gridMesh(x, y, z);
 * m.positions.length / 3; // number of vertices
 */
export interface GridMesh {
  nx: number;
  ny: number;
  /** x, y, z of each vertex, 3 numbers per vertex. */
  positions: Float64Array;
  /** Grid point i*ny + j -> its vertex index, -1 where z is not finite. */
  vertexOf: Int32Array;
  /** Faces as vertex indices: 4 (a quad) or 3 (a triangle where one corner is missing). */
  faces: number[][];
}

/**
 * The reference's z transform (h52vtp.py): finite values above `zmax` are
 * clipped to it (and +Inf too, when zmax is given), then with `log` z becomes
 * ln(z + 0.1). Values that cannot be placed become NaN.
 *
 * @example
 * landscapeZ(Float64Array.of(0.5, 20), { zmax: 10, log: true }); // [ln 0.6, ln 10.1]
 */
export function landscapeZ(
  values: ArrayLike<number>,
  { zmax, log = false }: { zmax?: number | undefined; log?: boolean } = {},
): Float64Array {
  const out = new Float64Array(values.length);
  for (let k = 0; k < values.length; k++) {
    let v = values[k]!;
    if (zmax !== undefined && v > zmax) v = zmax;
    if (log) v = v + 0.1 > 0 ? Math.log(v + 0.1) : Number.NaN;
    out[k] = Number.isFinite(v) ? v : Number.NaN;
  }
  return out;
}

/**
 * A mesh of the grid values z[i*ny + j] at (x[i], y[j]).
 *
 * @example
 * const m = gridMesh(Float64Array.of(0, 1), Float64Array.of(0, 1), Float64Array.of(0, 1, 1, 2));
 * m.faces; // [[0, 2, 3, 1]]
 */
export function gridMesh(x: ArrayLike<number>, y: ArrayLike<number>, z: ArrayLike<number>): GridMesh {
  const nx = x.length;
  const ny = y.length;
  if (z.length !== nx * ny) {
    throw new Error(`gridMesh(): 'z' has ${z.length} entries but the ${nx} x ${ny} grid has ${nx * ny}`);
  }
  const vertexOf = new Int32Array(nx * ny).fill(-1);
  const pos: number[] = [];
  let n = 0;
  for (let i = 0; i < nx; i++) {
    for (let j = 0; j < ny; j++) {
      const v = z[i * ny + j]!;
      if (!Number.isFinite(v)) continue;
      vertexOf[i * ny + j] = n++;
      pos.push(x[i]!, y[j]!, v);
    }
  }
  const faces: number[][] = [];
  for (let i = 0; i + 1 < nx; i++) {
    for (let j = 0; j + 1 < ny; j++) {
      // Counter-clockwise with x to the right and y up: (i,j), (i+1,j), (i+1,j+1), (i,j+1).
      const corners = [
        vertexOf[i * ny + j]!,
        vertexOf[(i + 1) * ny + j]!,
        vertexOf[(i + 1) * ny + j + 1]!,
        vertexOf[i * ny + j + 1]!,
      ];
      const present = corners.filter((c) => c >= 0);
      if (present.length >= 3) faces.push(present);
    }
  }
  return { nx, ny, positions: Float64Array.from(pos), vertexOf, faces };
}

/**
 * Faces split into triangles (quads along their (0, 2) diagonal), orientation kept.
 *
 * @example
 * triangles([[0, 1, 2, 3]]); // [[0, 1, 2], [0, 2, 3]]
 */
export function triangles(faces: readonly (readonly number[])[]): [number, number, number][] {
  const out: [number, number, number][] = [];
  for (const f of faces) {
    for (let k = 1; k + 1 < f.length; k++) out.push([f[0]!, f[k]!, f[k + 1]!]);
  }
  return out;
}

/** Fractional index of v in increasing coords (clamped to the ends). */
function fractionalIndex(coords: ArrayLike<number>, v: number): number {
  const n = coords.length;
  if (n === 1 || v <= coords[0]!) return 0;
  if (v >= coords[n - 1]!) return n - 1;
  let lo = 0;
  let hi = n - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (coords[mid]! <= v) lo = mid;
    else hi = mid;
  }
  return lo + (v - coords[lo]!) / (coords[hi]! - coords[lo]!);
}

/** Catmull-Rom (Keys a = -0.5) weights for offsets -1, 0, 1, 2 at fraction f. */
function cubicWeights(f: number): [number, number, number, number] {
  const f2 = f * f;
  const f3 = f2 * f;
  return [
    -0.5 * f3 + f2 - 0.5 * f,
    1.5 * f3 - 2.5 * f2 + 1,
    -1.5 * f3 + 2 * f2 + 0.5 * f,
    0.5 * f3 - 0.5 * f2,
  ];
}

/**
 * Resamples a grid to nxOut x nyOut evenly spaced points over the same
 * extent, by bicubic (Catmull-Rom) interpolation in index space: the
 * reference's `--interp` (scipy interp2d, cubic). It passes through the
 * original points where they coincide. Near missing values it falls back to
 * bilinear, and gives NaN inside a cell with a missing corner.
 *
 * @example
 * const fine = resampleGrid(s.x, s.y!, loss, 200, 200);
 */
export function resampleGrid(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  values: ArrayLike<number>,
  nxOut: number,
  nyOut: number,
): { x: Float64Array; y: Float64Array; values: Float64Array } {
  const where = "resampleGrid()";
  const nx = x.length;
  const ny = y.length;
  if (values.length !== nx * ny) {
    throw new Error(
      `${where}: 'values' has ${values.length} entries but the ${nx} x ${ny} grid has ${nx * ny}`,
    );
  }
  for (const [name, n] of [
    ["nxOut", nxOut],
    ["nyOut", nyOut],
  ] as const) {
    if (!Number.isInteger(n) || n < 2)
      throw new Error(`${where}: '${name}' must be an integer >= 2, got ${n}`);
  }
  const line = (c: ArrayLike<number>, n: number) => {
    const out = new Float64Array(n);
    const a = c[0]!;
    const b = c[c.length - 1]!;
    for (let k = 0; k < n; k++) out[k] = a + ((b - a) * k) / (n - 1);
    out[n - 1] = b;
    return out;
  };
  const xo = line(x, nxOut);
  const yo = line(y, nyOut);
  const at = (i: number, j: number) =>
    values[Math.max(0, Math.min(nx - 1, i)) * ny + Math.max(0, Math.min(ny - 1, j))]!;
  const out = new Float64Array(nxOut * nyOut);
  for (let a = 0; a < nxOut; a++) {
    const gi = fractionalIndex(x, xo[a]!);
    const i0 = Math.min(Math.floor(gi), Math.max(0, nx - 2));
    const fi = gi - i0;
    const wi = cubicWeights(fi);
    for (let b = 0; b < nyOut; b++) {
      const gj = fractionalIndex(y, yo[b]!);
      const j0 = Math.min(Math.floor(gj), Math.max(0, ny - 2));
      const fj = gj - j0;
      const wj = cubicWeights(fj);
      let sum = 0;
      let finite = true;
      for (let di = -1; di <= 2 && finite; di++) {
        for (let dj = -1; dj <= 2; dj++) {
          const v = at(i0 + di, j0 + dj);
          if (!Number.isFinite(v)) {
            finite = false;
            break;
          }
          sum += wi[di + 1]! * wj[dj + 1]! * v;
        }
      }
      if (!finite) {
        // Bilinear from the cell's corners, if they are all there.
        const c00 = at(i0, j0);
        const c10 = at(i0 + 1, j0);
        const c01 = at(i0, j0 + 1);
        const c11 = at(i0 + 1, j0 + 1);
        const need = [
          [fi < 1 && fj < 1, c00],
          [fi > 0 && fj < 1, c10],
          [fi < 1 && fj > 0, c01],
          [fi > 0 && fj > 0, c11],
        ] as const;
        sum = need.every(([used, v]) => !used || Number.isFinite(v))
          ? (1 - fi) * (1 - fj) * (fi < 1 && fj < 1 ? c00 : 0) +
            fi * (1 - fj) * (fi > 0 && fj < 1 ? c10 : 0) +
            (1 - fi) * fj * (fi < 1 && fj > 0 ? c01 : 0) +
            fi * fj * (fi > 0 && fj > 0 ? c11 : 0)
          : Number.NaN;
      }
      out[a * nyOut + b] = sum;
    }
  }
  return { x: xo, y: yo, values: out };
}
