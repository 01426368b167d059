// Marching squares on a flat row-major grid, in the spirit of d3-contour: the
// input is values[i*ny + j] sampled at grid point (i, j), the output is plain
// arrays of points in grid coordinates ([i, j], fractional along cell edges).
// Drawing and mapping to data coordinates happen elsewhere (src/plot).
//
// Edge cases. A cell (the square between (i, j) and (i+1, j+1)) is left out
// when any of its four corners is not finite (NaN: not computed or diverged;
// +-Inf: diverged), so contours stop at the border of missing data instead of
// inventing values there. A corner counts as "above" a threshold t when
// value >= t (d3's convention). Saddle cells are resolved by the mean of the
// four corners (the value of the bilinear interpolant at the cell centre).

/** A point in grid coordinates: [i, j] with i along x (first axis) and j along y. */
export type GridPoint = [number, number];

/**
 * The isolines of one threshold. Each line is a list of points; a closed line
 * repeats its first point at the end (GeoJSON convention). Lines are oriented
 * with the region above the threshold on their left.
 */
export interface Isoline {
  threshold: number;
  lines: GridPoint[][];
}

/**
 * The region where value >= threshold, as closed rings (first point repeated
 * at the end). Outer rings run counter-clockwise in (i, j) and holes clockwise,
 * so the nonzero fill rule draws the region exactly.
 */
export interface IsoRegion {
  threshold: number;
  rings: GridPoint[][];
}

function checkGrid(where: string, values: ArrayLike<number>, nx: number, ny: number): void {
  if (!Number.isInteger(nx) || nx < 1)
    throw new Error(`${where}: 'nx' must be a positive integer, got ${nx}`);
  if (!Number.isInteger(ny) || ny < 1)
    throw new Error(`${where}: 'ny' must be a positive integer, got ${ny}`);
  if (values.length !== nx * ny) {
    throw new Error(
      `${where}: 'values' has ${values.length} entries but the ${nx} x ${ny} grid has ${nx * ny}`,
    );
  }
}

function checkThresholds(where: string, thresholds: readonly number[]): void {
  const bad = thresholds.findIndex((t) => Number.isNaN(t));
  if (bad >= 0) throw new Error(`${where}: 'thresholds[${bad}]' is NaN, expected a number`);
}

/**
 * Vertex ids: corner (i, j) -> 3k, crossing on the edge from (i, j) to
 * (i+1, j) -> 3k+1, crossing on the edge from (i, j) to (i, j+1) -> 3k+2, with
 * k = i*ny + j. Cells sharing an edge name its crossing alike, which is what
 * lets cell pieces be stitched into lines and rings exactly.
 */
interface CellWalk {
  /** Vertex coordinates by id. */
  points: Map<number, GridPoint>;
  /** Directed polygon edges of every cell piece, as from -> to ids (region boundary candidates). */
  edges: Array<[number, number]>;
  /** Directed iso-segments (crossing -> crossing), region above on the left. */
  segments: Array<[number, number]>;
}

/**
 * Walks every valid cell and emits its "above" piece as counter-clockwise
 * polygon(s) through corners and edge crossings.
 */
function walkCells(values: ArrayLike<number>, nx: number, ny: number, t: number): CellWalk {
  const points = new Map<number, GridPoint>();
  const edges: Array<[number, number]> = [];
  const segments: Array<[number, number]> = [];
  const cornerId = (i: number, j: number) => 3 * (i * ny + j);
  const corner = (i: number, j: number): number => {
    const id = cornerId(i, j);
    if (!points.has(id)) points.set(id, [i, j]);
    return id;
  };
  // Crossing on the edge from (i, j) along axis `axis` (0: to (i+1, j), 1: to (i, j+1)).
  // Always interpolated from the lower-index end, so both cells get the same point.
  const crossing = (i: number, j: number, axis: 0 | 1): number => {
    const id = cornerId(i, j) + 1 + axis;
    if (!points.has(id)) {
      const a = values[i * ny + j]!;
      const b = axis === 0 ? values[(i + 1) * ny + j]! : values[i * ny + j + 1]!;
      const s = a === b ? 0.5 : Math.min(1, Math.max(0, (t - a) / (b - a)));
      points.set(id, axis === 0 ? [i + s, j] : [i, j + s]);
    }
    return id;
  };
  const polygon = (ids: number[]) => {
    for (let k = 0; k < ids.length; k++) {
      const from = ids[k]!;
      const to = ids[(k + 1) % ids.length]!;
      edges.push([from, to]);
      // Both ends crossings (not corners) and not the same grid edge: an iso-segment.
      if (from % 3 !== 0 && to % 3 !== 0 && from !== to) segments.push([from, to]);
    }
  };

  for (let i = 0; i + 1 < nx; i++) {
    for (let j = 0; j + 1 < ny; j++) {
      // Corners counter-clockwise: c0 (i,j), c1 (i+1,j), c2 (i+1,j+1), c3 (i,j+1).
      const v0 = values[i * ny + j]!;
      const v1 = values[(i + 1) * ny + j]!;
      const v2 = values[(i + 1) * ny + j + 1]!;
      const v3 = values[i * ny + j + 1]!;
      if (!Number.isFinite(v0) || !Number.isFinite(v1) || !Number.isFinite(v2) || !Number.isFinite(v3))
        continue;
      const a0 = v0 >= t;
      const a1 = v1 >= t;
      const a2 = v2 >= t;
      const a3 = v3 >= t;
      if (!a0 && !a1 && !a2 && !a3) continue;
      const c = [
        () => corner(i, j),
        () => corner(i + 1, j),
        () => corner(i + 1, j + 1),
        () => corner(i, j + 1),
      ];
      // Edge k joins corner k and k+1: e0 bottom, e1 right, e2 top, e3 left.
      const e = [
        () => crossing(i, j, 0),
        () => crossing(i + 1, j, 1),
        () => crossing(i, j + 1, 0),
        () => crossing(i, j, 1),
      ];
      const above = [a0, a1, a2, a3];
      const saddle = a0 === a2 && a1 === a3 && a0 !== a1;
      if (saddle && (v0 + v1 + v2 + v3) / 4 < t) {
        // The two above corners are separate: one triangle around each.
        for (let k = 0; k < 4; k++) {
          if (above[k]) polygon([e[(k + 3) % 4]!(), c[k]!(), e[k]!()]);
        }
        continue;
      }
      const ids: number[] = [];
      for (let k = 0; k < 4; k++) {
        if (above[k]) ids.push(c[k]!());
        if (above[k] !== above[(k + 1) % 4]) ids.push(e[k]!());
      }
      polygon(ids);
    }
  }
  return { points, edges, segments };
}

/** Chains directed edges (each vertex with as many in as out) into closed rings of ids. */
function chainRings(edges: Array<[number, number]>): number[][] {
  const out = new Map<number, number[]>();
  for (const [a, b] of edges) {
    const list = out.get(a);
    if (list) list.push(b);
    else out.set(a, [b]);
  }
  const rings: number[][] = [];
  for (const [start] of edges) {
    if (!out.get(start)?.length) continue;
    const ring = [start];
    let at = start;
    for (;;) {
      const next = out.get(at)?.pop();
      if (next === undefined) break;
      ring.push(next);
      at = next;
      if (at === start) break;
    }
    rings.push(ring);
  }
  return rings;
}

/** Drops vertices that lie on the straight segment between their neighbours (closed ring). */
function dropCollinear(ring: GridPoint[]): GridPoint[] {
  if (ring.length <= 4) return ring;
  const open = ring.slice(0, -1);
  const kept: GridPoint[] = [];
  const n = open.length;
  for (let k = 0; k < n; k++) {
    const p = open[(k + n - 1) % n]!;
    const q = open[k]!;
    const r = open[(k + 1) % n]!;
    const cross = (q[0] - p[0]) * (r[1] - q[1]) - (q[1] - p[1]) * (r[0] - q[0]);
    const dot = (q[0] - p[0]) * (r[0] - q[0]) + (q[1] - p[1]) * (r[1] - q[1]);
    if (Math.abs(cross) > 1e-12 || dot <= 0) kept.push(q);
  }
  if (kept.length < 3) return ring;
  kept.push(kept[0]!);
  return kept;
}

/**
 * Isolines (contour lines) of a grid at each threshold, by marching squares.
 * Cells with a non-finite corner are left out, so lines end at missing data.
 *
 * @example
 * // values[i*ny + j] = x_i^2 + y_j^2 on a 51 x 51 grid
 * const [ring] = isolines(values, 51, 51, [0.25]);
 * ring.lines[0]; // a closed circle, in grid coordinates [i, j]
 */
export function isolines(
  values: ArrayLike<number>,
  nx: number,
  ny: number,
  thresholds: readonly number[],
): Isoline[] {
  checkGrid("isolines()", values, nx, ny);
  checkThresholds("isolines()", thresholds);
  return thresholds.map((threshold) => {
    const { points, segments } = walkCells(values, nx, ny, threshold);
    const next = new Map<number, number>();
    const hasIncoming = new Set<number>();
    for (const [a, b] of segments) {
      next.set(a, b);
      hasIncoming.add(b);
    }
    const used = new Set<number>();
    const lines: GridPoint[][] = [];
    const follow = (start: number) => {
      const ids = [start];
      used.add(start);
      let at = start;
      for (;;) {
        const b = next.get(at);
        if (b === undefined) break;
        ids.push(b);
        if (b === start || used.has(b)) break;
        used.add(b);
        at = b;
      }
      lines.push(ids.map((id) => points.get(id)!));
    };
    // Open lines start where nothing comes in; what remains are closed loops.
    for (const [a] of segments) if (!hasIncoming.has(a) && !used.has(a)) follow(a);
    for (const [a] of segments) if (!used.has(a)) follow(a);
    return { threshold, lines };
  });
}

/**
 * The regions value >= threshold for each threshold, as rings in grid
 * coordinates (d3-contour's `contours()` with grid points at integer
 * coordinates). Drawing them in increasing threshold order over the region of
 * finite data gives filled contours. Cells with a non-finite corner belong to
 * no region, so holes appear where data is missing. A threshold of -Infinity
 * gives the region of finite data itself.
 *
 * @example
 * const regions = isoRegions(values, 51, 51, [-Infinity, 0.5, 1]);
 * regions[1].rings; // where values >= 0.5
 */
export function isoRegions(
  values: ArrayLike<number>,
  nx: number,
  ny: number,
  thresholds: readonly number[],
): IsoRegion[] {
  checkGrid("isoRegions()", values, nx, ny);
  checkThresholds("isoRegions()", thresholds);
  return thresholds.map((threshold) => {
    const { points, edges } = walkCells(values, nx, ny, threshold);
    // An edge shared by two cell pieces is walked once each way: interior, it cancels.
    const span = 3 * nx * ny;
    const count = new Map<number, number>();
    for (const [a, b] of edges) {
      if (a === b) continue;
      const k = a * span + b;
      count.set(k, (count.get(k) ?? 0) + 1);
    }
    const boundary: Array<[number, number]> = [];
    for (const [k, n] of count) {
      const a = Math.floor(k / span);
      const b = k - a * span;
      const net = n - (count.get(b * span + a) ?? 0);
      for (let c = 0; c < net; c++) boundary.push([a, b]);
    }
    const rings = chainRings(boundary)
      .filter((ids) => ids.length >= 4)
      .map((ids) => dropCollinear(ids.map((id) => points.get(id)!)));
    return { threshold, rings };
  });
}

/**
 * Signed area of a closed ring (first point repeated at the end); positive
 * when counter-clockwise.
 *
 * @example
 * ringArea([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]); // 1
 */
export function ringArea(ring: readonly GridPoint[]): number {
  let a = 0;
  for (let k = 0; k + 1 < ring.length; k++) {
    const p = ring[k]!;
    const q = ring[k + 1]!;
    a += p[0] * q[1] - q[0] * p[1];
  }
  return a / 2;
}
