// Adaptive grids (--refine TOL): compute a coarse subgrid of the requested grid, then split each
// cell in two along every axis longer than one step wherever the cell's midpoints (edge midpoints
// and centre) differ from the bilinear interpolation of its corners by more than TOL / 2; a cell
// whose midpoints all pass is accepted, and its remaining points are interpolated from the 3 x 3
// points it has (corners and midpoints) -- a quarter of the tested error for a smooth surface.
// The procedure is a pure function of which points are computed and their values, so a resume,
// a shard or a merge replays it and reaches the same decisions.

/**
 * A cell passes when its midpoints lie within SAFETY x TOL of its corners' interpolation. The points
 * then interpolated from corners and midpoints are typically a quarter of that off for a smooth
 * surface; the margin covers surfaces whose curvature changes inside a cell.
 */
export const SAFETY = 0.5;

/** A cell of the index grid: x indices a..b, y indices c..d (c = d = 0 for 1D). */
export interface Cell {
  readonly a: number;
  readonly b: number;
  readonly c: number;
  readonly d: number;
}

/** What refinement needs to know of a grid. */
export interface RefineInput {
  nx: number;
  /** 1 for a 1D grid. */
  ny: number;
  /** Whether point k (flat index i * ny + j) has been evaluated (exactly, diverged or capped). */
  computed: (k: number) => boolean;
  /** Whether point k holds an exact mean (default: every evaluated point); others are never interpolated across. */
  exact?: (k: number) => boolean;
  /** The quantities tested (train loss, and test loss when present), flat i * ny + j. */
  tested: readonly ArrayLike<number>[];
  /** Absolute tolerance, in loss units. */
  tol: number;
  /** Only the coarse cells for which this returns true (a shard's); default all. */
  owns?: (coarseCell: number) => boolean;
}

/** The result of one pass: the points still to compute, or (none left) the accepted cells. */
export interface RefinePass {
  /** Flat indices to compute next (sorted, distinct). */
  needed: number[];
  /** Accepted cells, largest first: their other points are interpolated. */
  accepted: Cell[];
}

/** The coarse stride: a power of two giving at least 4 steps along the longer axis. */
export function coarseStride(n: number): number {
  let s = 1;
  while (s * 2 <= (n - 1) / 4) s *= 2;
  return s;
}

/** Breakpoints 0, s, 2s, ... and n - 1 along an axis of n points. */
function breakpoints(n: number, s: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n - 1; i += s) out.push(i);
  out.push(n - 1);
  return out;
}

/**
 * The coarse cells of an nx x ny grid, in a fixed order (shards own cells by their index in it).
 *
 * @example
 * coarseCells(51, 51).length; // 49: 7 x 7 cells of 8 steps (the last ones of 2)
 */
export function coarseCells(nx: number, ny: number): Cell[] {
  const s = coarseStride(Math.max(nx, ny));
  const xs = breakpoints(nx, s);
  const ys = ny === 1 ? [0, 0] : breakpoints(ny, s);
  const cells: Cell[] = [];
  for (let p = 0; p + 1 < xs.length; p++)
    for (let q = 0; q + 1 < ys.length; q++)
      cells.push({ a: xs[p]!, b: xs[p + 1]!, c: ys[q]!, d: ys[q + 1]! });
  return cells;
}

function mid(lo: number, hi: number): number | null {
  return hi - lo > 1 ? lo + Math.floor((hi - lo) / 2) : null;
}

/** Bilinear interpolation at (i, j) from the corners of cell (a, b, c, d) of `v`. */
function bilinear(v: ArrayLike<number>, ny: number, cell: Cell, i: number, j: number): number {
  const { a, b, c, d } = cell;
  const u = b === a ? 0 : (i - a) / (b - a);
  const w = d === c ? 0 : (j - c) / (d - c);
  const at = (x: number, y: number) => v[x * ny + y] as number;
  return (1 - u) * (1 - w) * at(a, c) + u * (1 - w) * at(b, c) + (1 - u) * w * at(a, d) + u * w * at(b, d);
}

/**
 * One pass of the refinement: walks every (owned) coarse cell down to the cells that are accepted
 * or whose corners and midpoints are not all computed yet, and returns the points to compute.
 * When `needed` is empty, the surface is refined and `accepted` lists the cells to interpolate.
 *
 * @example
 * let pass = refinePass(input);
 * while (pass.needed.length) { compute(pass.needed); pass = refinePass(input); }
 * fillRefined(input.ny, pass.accepted, computed, quantities);
 */
export function refinePass(input: RefineInput): RefinePass {
  const { nx, ny, computed, tested, tol, owns, exact = computed } = input;
  if (!(tol >= 0)) throw new Error(`refinePass(): 'tol' must be a non-negative number, got ${tol}`);
  const needed = new Set<number>();
  const accepted: Cell[] = [];
  const ok = (k: number) => exact(k) && tested.every((v) => Number.isFinite(v[k] as number));
  const visit = (cell: Cell): void => {
    const { a, b, c, d } = cell;
    const corners = [a * ny + c, b * ny + c, a * ny + d, b * ny + d];
    const mx = mid(a, b);
    const my = mid(c, d);
    if (mx === null && my === null) {
      for (const k of corners) if (!computed(k)) needed.add(k);
      return;
    }
    const probes: [number, number][] = [];
    if (mx !== null) probes.push([mx, c], [mx, d]);
    if (my !== null) probes.push([a, my], [b, my]);
    if (mx !== null && my !== null) probes.push([mx, my]);
    let missing = false;
    for (const k of [...corners, ...probes.map(([i, j]) => i * ny + j)])
      if (!computed(k)) {
        needed.add(k);
        missing = true;
      }
    if (missing) return;
    // Non-finite values (diverged, capped) are never interpolated across: refine to single steps.
    const pass =
      corners.every(ok) &&
      probes.every(([i, j]) => {
        const k = i * ny + j;
        return (
          ok(k) &&
          tested.every((v) => Math.abs((v[k] as number) - bilinear(v, ny, cell, i, j)) <= SAFETY * tol)
        );
      });
    if (pass) {
      accepted.push(cell);
      return;
    }
    const xs =
      mx === null
        ? [[a, b]]
        : [
            [a, mx],
            [mx, b],
          ];
    const ys =
      my === null
        ? [[c, d]]
        : [
            [c, my],
            [my, d],
          ];
    for (const [p, q] of xs) for (const [r, s] of ys) visit({ a: p!, b: q!, c: r!, d: s! });
  };
  coarseCells(nx, ny).forEach((cell, n) => {
    if (!owns || owns(n)) visit(cell);
  });
  accepted.sort((x, y) => (y.b - y.a + 1) * (y.d - y.c + 1) - (x.b - x.a + 1) * (x.d - x.c + 1));
  return { needed: [...needed].sort((x, y) => x - y), accepted };
}

/**
 * Interpolates, in every array of `quantities`, the points of the accepted cells that are not
 * computed, from the 2 x 2 sub-cells formed by each cell's corners and midpoints (bilinear); a
 * point on the edge of cells of two sizes takes the smaller cell's value. Returns the indices
 * filled.
 *
 * @example
 * const filled = fillRefined(51, pass.accepted, (k) => done[k] === 1, [loss, acc]);
 */
export function fillRefined(
  ny: number,
  accepted: readonly Cell[],
  computed: (k: number) => boolean,
  quantities: readonly Float64Array[],
): number[] {
  const filled = new Set<number>();
  for (const cell of accepted) {
    const { a, b, c, d } = cell;
    const mx = mid(a, b) ?? a;
    const my = mid(c, d) ?? c;
    for (let i = a; i <= b; i++) {
      for (let j = c; j <= d; j++) {
        const k = i * ny + j;
        if (computed(k)) continue;
        const sub: Cell = {
          a: i <= mx ? a : mx,
          b: i <= mx ? (mx === a ? b : mx) : b,
          c: j <= my ? c : my,
          d: j <= my ? (my === c ? d : my) : d,
        };
        for (const v of quantities) v[k] = bilinear(v, ny, sub, i, j);
        filled.add(k);
      }
    }
  }
  return [...filled].sort((x, y) => x - y);
}
