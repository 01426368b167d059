// Contour lines of a 2D field for the viewer, in the field's coordinates and
// ready for a Plotly line trace (lines separated by nulls): the plotly.js gl3d
// bundle has no contour trace, so the contour map is drawn from these lines
// over a shaded image. The lines are the figures' (src/core/contour.ts), and so
// are the default levels: focused on the minimum and the trajectory's box
// (src/core/levels.ts focusLevels).

import { isolines } from "../../core/contour.ts";
import { focusLevels } from "../../core/levels.ts";

/** Segments of one or more levels, as a line trace's x and y with null between segments. */
export interface ContourPaths {
  x: (number | null)[];
  y: (number | null)[];
}

/**
 * `count` levels spaced evenly strictly inside (lo, hi).
 *
 * @example
 * contourLevels(0, 1, 3); // [0.25, 0.5, 0.75]
 */
export function contourLevels(lo: number, hi: number, count: number): number[] {
  if (!(hi > lo) || count < 1) return [];
  return Array.from({ length: count }, (_, k) => lo + ((k + 1) * (hi - lo)) / (count + 1));
}

/**
 * About `count` contour levels of a displayed field where the landscape is:
 * dense near its minimum (near its maximum with `toward: "max"`, for
 * accuracies), spread over the values inside the trajectory's bounding box
 * when there is one (the figures' rule, src/core/levels.ts `focusLevels`).
 * A field without spread falls back to `contourLevels` over [lo, hi].
 *
 * @example
 * const levels = focusedLevels(view.z, view.x, view.y, { count: 12, trajectory: view.trajectory, lo: 0, hi: 5 });
 */
export function focusedLevels(
  field: ArrayLike<number>,
  x: readonly number[],
  y: readonly number[],
  {
    count,
    trajectory = null,
    toward = "min",
    lo,
    hi,
  }: {
    count: number;
    trajectory?: { x: readonly number[]; y: readonly number[] } | null;
    toward?: "min" | "max";
    lo: number;
    hi: number;
  },
): number[] {
  const region = trajectory === null ? undefined : boxValues(field, x, y, trajectory);
  const levels = focusLevels(field, {
    count: Math.max(1, Math.round(count)),
    toward,
    ...(region !== undefined ? { region } : {}),
  });
  return levels.length > 0 ? levels : contourLevels(lo, hi, count);
}

/** Finite values at the grid points inside the path's bounding box (5 % margin); undefined when fewer than 4. */
function boxValues(
  field: ArrayLike<number>,
  x: readonly number[],
  y: readonly number[],
  path: { x: readonly number[]; y: readonly number[] },
): number[] | undefined {
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (let k = 0; k < path.x.length; k++) {
    const a = path.x[k]!;
    const b = path.y[k]!;
    if (!Number.isFinite(a) || !Number.isFinite(b)) continue;
    x0 = Math.min(x0, a);
    x1 = Math.max(x1, a);
    y0 = Math.min(y0, b);
    y1 = Math.max(y1, b);
  }
  if (!(x1 >= x0)) return undefined;
  const px = 0.05 * (x1 - x0);
  const py = 0.05 * (y1 - y0);
  const out: number[] = [];
  for (let i = 0; i < x.length; i++) {
    if (x[i]! < x0 - px || x[i]! > x1 + px) continue;
    for (let j = 0; j < y.length; j++) {
      if (y[j]! < y0 - py || y[j]! > y1 + py) continue;
      const v = field[i * y.length + j]!;
      if (Number.isFinite(v)) out.push(v);
    }
  }
  return out.length >= 4 ? out : undefined;
}

/**
 * The contour lines of `field` (index i*ny + j = value at (x[i], y[j])) at each level, traced by
 * the figures' marching squares (src/core/contour.ts) and mapped from grid to field coordinates;
 * one polyline per line, nulls between them. Cells with a non-finite corner are skipped, so lines
 * stop at uncomputed or diverged points.
 *
 * @example
 * const { x, y } = contourPaths(z, xs, ys, contourLevels(0, 2, 10));
 * const trace = { type: "scatter", mode: "lines", x, y };
 */
export function contourPaths(
  field: ArrayLike<number>,
  x: readonly number[],
  y: readonly number[],
  levels: readonly number[],
): ContourPaths {
  const out: ContourPaths = { x: [], y: [] };
  if (x.length < 2 || y.length < 2 || levels.length === 0) return out;
  for (const { lines } of isolines(field, x.length, y.length, levels)) {
    for (const line of lines) {
      for (const [i, j] of line) {
        out.x.push(gridToAxis(x, i));
        out.y.push(gridToAxis(y, j));
      }
      out.x.push(null);
      out.y.push(null);
    }
  }
  return out;
}

/** The axis value at fractional grid index `t` (linear between neighbouring grid values). */
function gridToAxis(axis: readonly number[], t: number): number {
  const i = Math.min(Math.max(Math.floor(t), 0), axis.length - 2);
  return axis[i]! + (t - i) * (axis[i + 1]! - axis[i]!);
}
