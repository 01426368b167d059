// Adaptive grids (--refine TOL): compute a coarse subgrid of the requested grid, then split each
// cell in two along every axis longer than one step wherever the cell's midpoints (edge midpoints
// and centre) differ by more than TOL / 2 from the interpolation of its corners (cubic along an
// axis where the points one cell beyond are known, else quadratic or linear); a cell whose
// midpoints all pass is accepted, and its remaining points are interpolated from its corners and
// midpoints (and the known points beyond).
// The procedure is a pure function of which points are computed and their values, so a resume,
// a shard or a merge replays it and reaches the same decisions.

/**
 * A cell passes when its midpoints lie within SAFETY x TOL of its corners' interpolation. The points
 * then interpolated from corners and midpoints are typically much closer for a smooth surface; the
 * margin covers surfaces whose curvature changes inside a cell.
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

/** Lagrange interpolation at t through (xs[k], ys[k]). */
function lagrange(xs: readonly number[], ys: readonly number[], t: number): number {
  let sum = 0;
  for (let k = 0; k < xs.length; k++) {
    let w = 1;
    for (let m = 0; m < xs.length; m++) if (m !== k) w *= (t - xs[m]!) / (xs[k]! - xs[m]!);
    sum += w * ys[k]!;
  }
  return sum;
}

/** Stencils along one axis for the interval lo..hi of an axis of n points, richest first. */
function axisStencils(lo: number, hi: number, n: number): number[][] {
  if (hi === lo) return [[lo]];
  const w = hi - lo;
  const left = lo - w >= 0 ? [lo - w] : [];
  const right = hi + w <= n - 1 ? [hi + w] : [];
  const out = [[...left, lo, hi, ...right]];
  if (left.length && right.length) out.push([lo, hi, ...right], [...left, lo, hi]);
  if (left.length || right.length) out.push([lo, hi]);
  return out;
}

/**
 * The interpolation stencil of a cell: the cell's corners plus, where they hold usable values, the
 * points one cell width beyond each side (cubic along an axis with both, quadratic with one, linear
 * with none), as a tensor product of an x and a y stencil.
 */
function stencilFor(
  cell: Cell,
  nx: number,
  ny: number,
  usable: (k: number) => boolean,
): [number[], number[]] {
  const xs = axisStencils(cell.a, cell.b, nx);
  const ys = axisStencils(cell.c, cell.d, ny);
  const pairs: [number[], number[]][] = [];
  for (const sx of xs) for (const sy of ys) pairs.push([sx, sy]);
  pairs.sort((p, q) => q[0].length * q[1].length - p[0].length * p[1].length);
  for (const [sx, sy] of pairs) if (sx.every((i) => sy.every((j) => usable(i * ny + j)))) return [sx, sy];
  return [xs[xs.length - 1]!, ys[ys.length - 1]!];
}

/** The tensor-product Lagrange interpolation of `v` at (i, j) over the stencil (sx, sy). */
function interpolate(
  v: ArrayLike<number>,
  ny: number,
  [sx, sy]: [number[], number[]],
  i: number,
  j: number,
): number {
  const rows = sy.map((y) =>
    lagrange(
      sx,
      sx.map((x) => v[x * ny + y] as number),
      i,
    ),
  );
  return lagrange(sy, rows, j);
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
    const stencil = stencilFor(cell, nx, ny, ok);
    const pass =
      corners.every(ok) &&
      probes.every(([i, j]) => {
        const k = i * ny + j;
        return (
          ok(k) &&
          tested.every((v) => Math.abs((v[k] as number) - interpolate(v, ny, stencil, i, j)) <= SAFETY * tol)
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
 * computed: within each 2 x 2 sub-cell of corners and midpoints, from the sub-cell's stencil (its
 * corners, and the usable points one sub-cell beyond: the cell's other corner or midpoint, so at
 * least quadratic through the exact midpoints). A point on the edge of cells of two sizes takes
 * the smaller cell's value. `usable` must be the refinement's (exact, finite). Returns the indices
 * filled.
 *
 * @example
 * const filled = fillRefined(51, 51, pass.accepted, (k) => done[k] !== 0, usable, [loss, acc]);
 */
export function fillRefined(
  nx: number,
  ny: number,
  accepted: readonly Cell[],
  computed: (k: number) => boolean,
  usable: (k: number) => boolean,
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
        const stencil = stencilFor(sub, nx, ny, usable);
        for (const v of quantities) v[k] = interpolate(v, ny, stencil, i, j);
        filled.add(k);
      }
    }
  }
  return [...filled].sort((x, y) => x - y);
}
