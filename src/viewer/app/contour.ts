// Contour lines of a 2D field for the viewer, in the field's coordinates and
// ready for a Plotly line trace (lines separated by nulls): the plotly.js gl3d
// bundle has no contour trace, so the contour map is drawn from these lines
// over a shaded image. The lines are the figures' (src/core/contour.ts).

import { isolines } from "../../core/contour.ts";

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
