// Grids of surface coordinates and their points: axis syntax "min:max:num",
// point k <-> (x_i, y_j) with k = i*ny + j (the surface file's [i][j] order),
// and the deterministic share of points a shard computes.

/** One axis: `num` evenly spaced values from `min` to `max` inclusive (numpy.linspace). */
export interface Axis {
  readonly min: number;
  readonly max: number;
  readonly num: number;
}

/** The coordinates of a 1D (y = null) or 2D surface. */
export interface Grid {
  readonly x: Float64Array;
  readonly y: Float64Array | null;
}

/**
 * Parses "min:max:num" (e.g. "-1:1:51"); `option` names the argument in errors.
 *
 * @example
 * parseAxis("-1:1:51", "--x"); // { min: -1, max: 1, num: 51 }
 */
export function parseAxis(text: string, option: string): Axis {
  const parts = text.split(":");
  const nums = parts.map((p) => Number(p.trim()));
  const expected = `expected min:max:num like -1:1:51`;
  if (parts.length !== 3 || parts.some((p) => p.trim() === "") || !nums.every(Number.isFinite)) {
    throw new Error(`${option} '${text}': ${expected}`);
  }
  const [min, max, num] = nums as [number, number, number];
  if (!Number.isInteger(num) || num < 1)
    throw new Error(`${option} '${text}': the number of points must be a positive integer, got ${num}`);
  if (num > 1 && !(max > min)) throw new Error(`${option} '${text}': max must be greater than min`);
  return { min, max, num };
}

/**
 * The values of an axis, as numpy.linspace(min, max, num).
 *
 * @example
 * axisValues({ min: -1, max: 1, num: 5 }); // [-1, -0.5, 0, 0.5, 1]
 */
export function axisValues({ min, max, num }: Axis): Float64Array {
  const v = new Float64Array(num);
  if (num === 1) {
    v[0] = min;
    return v;
  }
  const step = (max - min) / (num - 1);
  for (let i = 0; i < num; i++) v[i] = min + i * step;
  v[num - 1] = max;
  return v;
}

/** Number of points of a grid. */
export function gridSize(grid: Grid): number {
  return grid.x.length * (grid.y?.length ?? 1);
}

/**
 * Coordinates of point k: [x_i] for 1D, [x_i, y_j] with k = i*ny + j for 2D.
 *
 * @example
 * pointCoords({ x: new Float64Array([0, 1]), y: new Float64Array([5, 6, 7]) }, 4); // [1, 6]
 */
export function pointCoords(grid: Grid, k: number): number[] {
  if (!grid.y) return [grid.x[k] as number];
  const ny = grid.y.length;
  return [grid.x[Math.floor(k / ny)] as number, grid.y[k % ny] as number];
}

/** Shard `index` of `count` (0-based). */
export interface Shard {
  readonly index: number;
  readonly count: number;
}

/**
 * Parses "i/n" (0 <= i < n).
 *
 * @example
 * parseShard("2/8"); // { index: 2, count: 8 }
 */
export function parseShard(text: string, option = "--shard"): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!m) throw new Error(`${option} '${text}': expected i/n like 0/4 (shard i of n, counting from 0)`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || index >= count)
    throw new Error(`${option} '${text}': need 0 <= i < n, got i = ${index}, n = ${count}`);
  return { index, count };
}

/**
 * Whether point k belongs to a shard: points are dealt round-robin (k mod n = i), so every shard gets
 * an even mix of the grid and the shards of one grid never overlap.
 *
 * @example
 * inShard(5, { index: 1, count: 4 }); // true
 */
export function inShard(k: number, shard: Shard | undefined): boolean {
  return shard === undefined || k % shard.count === shard.index;
}
