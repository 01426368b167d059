// Contour lines of a 2D field by marching squares (Lorensen & Cline's 2D
// case table; saddle cells decided by the cell's mean value), returned as
// polyline segments in the field's coordinates, ready for a Plotly line trace
// (segments separated by nulls). The plotly.js gl3d bundle has no contour
// trace, so the contour map is drawn from these lines over a shaded image.

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
 * The contour lines of `field` (index i*ny + j = value at (x[i], y[j])) at
 * each level. Cells with a NaN corner are skipped, so lines stop at
 * uncomputed or diverged points.
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
  const nx = x.length;
  const ny = y.length;
  const out: ContourPaths = { x: [], y: [] };
  if (nx < 2 || ny < 2) return out;
  const at = (i: number, j: number) => field[i * ny + j]!;
  for (const level of levels) {
    for (let i = 0; i < nx - 1; i++) {
      for (let j = 0; j < ny - 1; j++) {
        // Corners counter-clockwise from (i, j): a (x0,y0), b (x1,y0), c (x1,y1), d (x0,y1).
        const a = at(i, j);
        const b = at(i + 1, j);
        const c = at(i + 1, j + 1);
        const d = at(i, j + 1);
        if (Number.isNaN(a) || Number.isNaN(b) || Number.isNaN(c) || Number.isNaN(d)) continue;
        const code = (a > level ? 1 : 0) | (b > level ? 2 : 0) | (c > level ? 4 : 0) | (d > level ? 8 : 0);
        if (code === 0 || code === 15) continue;
        const x0 = x[i]!;
        const x1 = x[i + 1]!;
        const y0 = y[j]!;
        const y1 = y[j + 1]!;
        const t = (p: number, q: number) => (level - p) / (q - p);
        // Crossing points on the four edges.
        const bottom = (): [number, number] => [x0 + t(a, b) * (x1 - x0), y0];
        const right = (): [number, number] => [x1, y0 + t(b, c) * (y1 - y0)];
        const top = (): [number, number] => [x0 + t(d, c) * (x1 - x0), y1];
        const left = (): [number, number] => [x0, y0 + t(a, d) * (y1 - y0)];
        const segments: [[number, number], [number, number]][] = [];
        switch (code) {
          case 1:
          case 14:
            segments.push([left(), bottom()]);
            break;
          case 2:
          case 13:
            segments.push([bottom(), right()]);
            break;
          case 3:
          case 12:
            segments.push([left(), right()]);
            break;
          case 4:
          case 11:
            segments.push([right(), top()]);
            break;
          case 6:
          case 9:
            segments.push([bottom(), top()]);
            break;
          case 7:
          case 8:
            segments.push([left(), top()]);
            break;
          case 5:
          case 10: {
            // Saddle: a and c on one side, b and d on the other; the mean decides which pair connects.
            const centreHigh = (a + b + c + d) / 4 > level;
            const aHigh = code === 5;
            if (centreHigh === aHigh) {
              segments.push([left(), top()], [bottom(), right()]);
            } else {
              segments.push([left(), bottom()], [right(), top()]);
            }
            break;
          }
        }
        for (const [p, q] of segments) {
          out.x.push(p[0], q[0], null);
          out.y.push(p[1], q[1], null);
        }
      }
    }
  }
  return out;
}
