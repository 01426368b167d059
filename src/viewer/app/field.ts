// Quantities of a surface as numbers to draw: raw values (null -> NaN), the
// Hessian ratio |lambda_min / lambda_max| (Li et al. 2018, section 6), and
// the displayed values after clipping at zmax and an optional log10, as the
// reference's VTK export does (values above zmax are set to zmax). Pure
// functions of typed arrays, shared by every view of the page.

import { SURFACE_QUANTITIES, type SurfaceQuantity } from "../../formats/quantities.ts";
import type { SurfaceJson } from "../api.ts";

/** The quantities a page can show: a file's own, and the Hessian ratio derived from max_eig/min_eig. */
export type ViewQuantity = SurfaceQuantity | "hessian_ratio";

/** Human names of the quantities, for axis titles and the details panel. */
export const QUANTITY_LABELS: Record<ViewQuantity, string> = {
  train_loss: "train loss",
  train_acc: "train accuracy (%)",
  test_loss: "test loss",
  test_acc: "test accuracy (%)",
  train_loss_se: "train loss SE",
  test_loss_se: "test loss SE",
  max_eig: "λmax",
  min_eig: "λmin",
  hessian_ratio: "|λmin / λmax|",
};

/** The range the paper draws the Hessian ratio on (0 = locally convex). */
export const HESSIAN_RATIO_RANGE: [number, number] = [0, 0.5];

/**
 * The quantities `s` can show, in page order; the Hessian ratio when both eigenvalues are present.
 *
 * @example
 * viewQuantities(s); // ["train_loss", "train_acc", "hessian_ratio"]
 */
export function viewQuantities(s: Pick<SurfaceJson, "values">): ViewQuantity[] {
  const out: ViewQuantity[] = SURFACE_QUANTITIES.filter((q) => s.values[q] !== undefined);
  if (s.values.max_eig !== undefined && s.values.min_eig !== undefined) out.push("hessian_ratio");
  return out;
}

function toFloat(values: readonly (number | null)[]): Float64Array {
  return Float64Array.from(values, (v) => (v === null ? Number.NaN : v));
}

/**
 * The raw values of quantity `q` (NaN where null), or null when `s` lacks it.
 * The Hessian ratio is |min_eig / max_eig|, NaN where either is missing or max_eig is 0.
 *
 * @example
 * const loss = rawField(s, "train_loss"); // Float64Array, index i*ny + j
 */
export function rawField(s: Pick<SurfaceJson, "values">, q: ViewQuantity): Float64Array | null {
  if (q !== "hessian_ratio") {
    const v = s.values[q];
    return v === undefined ? null : toFloat(v);
  }
  const max = s.values.max_eig;
  const min = s.values.min_eig;
  if (max === undefined || min === undefined) return null;
  return Float64Array.from(max, (hi, k) => {
    const lo = min[k];
    return hi === null || lo === null || lo === undefined || hi === 0 ? Number.NaN : Math.abs(lo / hi);
  });
}

/** How values are displayed. */
export interface DisplayOptions {
  /** log10 of the (clipped) value; values <= 0 become NaN. */
  log: boolean;
  /** Values above this raw value are drawn at it (null: no clipping). */
  zmax: number | null;
}

/**
 * The value drawn for raw value `v`: clipped at zmax, then log10 when asked.
 *
 * @example
 * displayValue(100, { log: true, zmax: 10 }); // 1
 */
export function displayValue(v: number, { log, zmax }: DisplayOptions): number {
  const clipped = zmax !== null && v > zmax ? zmax : v;
  if (!log) return clipped;
  return clipped > 0 ? Math.log10(clipped) : Number.NaN;
}

/**
 * `displayValue` over a whole field.
 *
 * @example
 * const z = displayField(rawField(s, "train_loss")!, { log: false, zmax: 5 });
 */
export function displayField(raw: Float64Array, options: DisplayOptions): Float64Array {
  return raw.map((v) => displayValue(v, options));
}

/**
 * The smallest and largest finite value over several arrays, or null if none is finite.
 *
 * @example
 * finiteRange([a, b]); // [0.02, 7.9]
 */
export function finiteRange(arrays: readonly ArrayLike<number>[]): [number, number] | null {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const a of arrays) {
    for (let k = 0; k < a.length; k++) {
      const v = a[k]!;
      if (!Number.isFinite(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  return lo <= hi ? [lo, hi] : null;
}

/**
 * A colour range that is never empty: a constant field gets +-0.5 (or +-|v|/2).
 *
 * @example
 * paddedRange([3, 3]); // [1.5, 4.5]
 */
export function paddedRange([lo, hi]: [number, number]): [number, number] {
  if (hi > lo) return [lo, hi];
  const pad = lo === 0 ? 0.5 : Math.abs(lo) / 2;
  return [lo - pad, hi + pad];
}

/**
 * The grid index of the coordinate in `axis` nearest to `v`.
 *
 * @example
 * nearestIndex([-1, 0, 1], 0.4); // 1
 */
export function nearestIndex(axis: readonly number[], v: number): number {
  let best = 0;
  for (let k = 1; k < axis.length; k++) {
    if (Math.abs(axis[k]! - v) < Math.abs(axis[best]! - v)) best = k;
  }
  return best;
}

/**
 * Bilinear interpolation of a 2D field (index i*ny + j) at coordinates (px, py),
 * NaN outside the grid or next to a NaN corner. Axes must be increasing.
 *
 * @example
 * bilinear(z, [0, 1], [0, 1], 0.5, 0.5); // mean of the four corners
 */
export function bilinear(
  field: ArrayLike<number>,
  x: readonly number[],
  y: readonly number[],
  px: number,
  py: number,
): number {
  const cell = (axis: readonly number[], v: number): [number, number] | null => {
    const n = axis.length;
    if (n === 1) return Math.abs(v - axis[0]!) < 1e-12 ? [0, 0] : null;
    if (v < axis[0]! || v > axis[n - 1]!) return null;
    let lo = 0;
    let hi = n - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (axis[mid]! <= v) lo = mid;
      else hi = mid;
    }
    return [lo, (v - axis[lo]!) / (axis[hi]! - axis[lo]!)];
  };
  const cx = cell(x, px);
  const cy = cell(y, py);
  if (cx === null || cy === null) return Number.NaN;
  const ny = y.length;
  const [i, fx] = cx;
  const [j, fy] = cy;
  const i1 = Math.min(i + 1, x.length - 1);
  const j1 = Math.min(j + 1, ny - 1);
  const v00 = field[i * ny + j]!;
  const v10 = field[i1 * ny + j]!;
  const v01 = field[i * ny + j1]!;
  const v11 = field[i1 * ny + j1]!;
  return (v00 * (1 - fx) + v10 * fx) * (1 - fy) + (v01 * (1 - fx) + v11 * fx) * fy;
}

/**
 * A number for people: 6 significant digits, exponent form for very large or small magnitudes.
 *
 * @example
 * formatValue(0.123456789); // "0.123457"
 */
export function formatValue(v: number | null | undefined): string {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  if (!Number.isFinite(v)) return v > 0 ? "∞" : "−∞";
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(4);
  return String(Number(v.toPrecision(6)));
}
