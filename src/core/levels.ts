// Contour levels and axis ticks: evenly stepped levels (the reference's
// np.arange(vmin, vmax, vlevel)), "nice" round levels from a count (d3-array's
// ticks), and log-spaced levels. Pure functions of numbers; errors name the
// argument and say what was expected.

/** The most levels any helper returns; more is almost surely a typo in `step`. */
export const MAX_LEVELS = 1000;

/** Rounds away binary noise (0.30000000000000004 -> 0.3) so levels print cleanly. */
function clean(v: number): number {
  return v === 0 ? 0 : Number(v.toPrecision(12));
}

function checkRange(where: string, vmin: number, vmax: number): void {
  if (!Number.isFinite(vmin)) throw new Error(`${where}: 'vmin' must be a finite number, got ${vmin}`);
  if (!Number.isFinite(vmax)) throw new Error(`${where}: 'vmax' must be a finite number, got ${vmax}`);
  if (!(vmax > vmin)) throw new Error(`${where}: 'vmin' (${vmin}) must be less than 'vmax' (${vmax})`);
}

function checkCount(where: string, n: number): void {
  if (n > MAX_LEVELS) {
    throw new Error(`${where}: that gives ${n} levels, at most ${MAX_LEVELS} are allowed (raise the step)`);
  }
}

/**
 * Levels vmin, vmin + step, ... up to vmax (included when it falls on the
 * step, within rounding), like the reference's `np.arange(vmin, vmax, vlevel)`
 * but closed at the top.
 *
 * @example
 * linearLevels(0.1, 2, 0.5); // [0.1, 0.6, 1.1, 1.6]
 */
export function linearLevels(vmin: number, vmax: number, step: number): number[] {
  const where = "linearLevels()";
  checkRange(where, vmin, vmax);
  if (!Number.isFinite(step) || step <= 0) {
    throw new Error(`${where}: 'step' must be a positive number, got ${step}`);
  }
  const n = Math.floor((vmax - vmin) / step + 1e-9) + 1;
  checkCount(where, n);
  return Array.from({ length: n }, (_, k) => clean(vmin + k * step));
}

/**
 * A round step that splits [start, stop] into about `count` intervals:
 * 1, 2 or 5 times a power of ten (d3-array's tickIncrement).
 *
 * @example
 * niceStep(0, 1, 10); // 0.1
 */
export function niceStep(start: number, stop: number, count: number): number {
  const raw = Math.abs(stop - start) / Math.max(1, count);
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const power = Math.floor(Math.log10(raw));
  const error = raw / 10 ** power;
  const factor = error >= Math.sqrt(50) ? 10 : error >= Math.sqrt(10) ? 5 : error >= Math.sqrt(2) ? 2 : 1;
  return clean(factor * 10 ** power);
}

/**
 * Round numbers inside [min, max], about `count` of them (axis ticks, or
 * contour levels from a count).
 *
 * @example
 * ticks(0, 1, 5); // [0, 0.2, 0.4, 0.6, 0.8, 1]
 */
export function ticks(min: number, max: number, count: number): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (min === max) return [clean(min)];
  const lo = Math.min(min, max);
  const hi = Math.max(min, max);
  const step = niceStep(lo, hi, count);
  const first = Math.ceil(lo / step - 1e-9);
  const last = Math.floor(hi / step + 1e-9);
  const out: number[] = [];
  for (let k = first; k <= last && out.length <= MAX_LEVELS; k++) out.push(clean(k * step));
  return out;
}

/**
 * About `count` round contour levels strictly inside (vmin, vmax) when
 * possible, so the lowest and highest lines are not drawn on the extreme
 * points themselves (matplotlib's `levels=N` behaves alike).
 *
 * @example
 * niceLevels(0, 10, 5); // [2, 4, 6, 8]
 */
export function niceLevels(vmin: number, vmax: number, count = 10): number[] {
  const where = "niceLevels()";
  checkRange(where, vmin, vmax);
  if (!Number.isInteger(count) || count < 1) {
    throw new Error(`${where}: 'count' must be a positive integer, got ${count}`);
  }
  checkCount(where, count);
  const all = ticks(vmin, vmax, count);
  const inside = all.filter((v) => v > vmin && v < vmax);
  return inside.length > 0 ? inside : all;
}

/**
 * Log-spaced levels between vmin and vmax (both > 0). With `count`, that many
 * geometrically spaced levels from vmin to vmax inclusive (np.geomspace);
 * without it, round values (1, 2, 5 times powers of ten, or finer steps
 * 1, 1.5, 2, 3, 5, 7 and 1..9 on short ranges, or every power of ten on long
 * ones) chosen to give about 7 to 20 levels.
 *
 * @example
 * logLevels(0.01, 10);    // [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10]
 * logLevels(0.1, 10, 3);  // [0.1, 1, 10]
 */
export function logLevels(vmin: number, vmax: number, count?: number): number[] {
  const where = "logLevels()";
  checkRange(where, vmin, vmax);
  if (!(vmin > 0)) throw new Error(`${where}: log spacing needs 'vmin' > 0, got ${vmin}`);
  if (count !== undefined) {
    if (!Number.isInteger(count) || count < 1) {
      throw new Error(`${where}: 'count' must be a positive integer, got ${count}`);
    }
    checkCount(where, count);
    if (count === 1) return [clean(vmin)];
    const a = Math.log(vmin);
    const b = Math.log(vmax);
    return Array.from({ length: count }, (_, k) => clean(Math.exp(a + ((b - a) * k) / (count - 1))));
  }
  let best: number[] = [];
  for (const mult of [[1], [1, 2, 5], [1, 1.5, 2, 3, 5, 7], [1, 2, 3, 4, 5, 6, 7, 8, 9]]) {
    best = decadeValues(vmin, vmax, mult, 1);
    if (best.length >= 7) break;
  }
  if (best.length > 20) best = decadeValues(vmin, vmax, [1], Math.ceil(best.length / 20));
  return best.length > 0 ? best : [clean(vmin), clean(vmax)];
}

/** m * 10^d inside [lo, hi] for each multiplier m, every `every`-th decade. */
function decadeValues(lo: number, hi: number, mult: readonly number[], every: number): number[] {
  const d0 = Math.floor(Math.log10(lo) + 1e-9);
  const d1 = Math.ceil(Math.log10(hi) - 1e-9);
  const out: number[] = [];
  for (let d = d0; d <= d1; d++) {
    if ((d - d0) % every !== 0) continue;
    for (const m of mult) {
      const v = clean(m * 10 ** d);
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push(v);
    }
  }
  return out;
}

/**
 * Ticks of a log axis over [min, max] (both > 0): 1-2-5 per decade when the
 * range spans at most `fineDecades` decades, else powers of ten (every second
 * or third one when there are many).
 *
 * @example
 * logTicks(1, 100);  // [1, 2, 5, 10, 20, 50, 100]
 * logTicks(1, 1e4);  // [1, 10, 100, 1000, 10000]
 */
export function logTicks(min: number, max: number, fineDecades = 2): number[] {
  if (!(min > 0) || !(max > 0) || !Number.isFinite(min) || !Number.isFinite(max)) return [];
  const lo = Math.min(min, max);
  const hi = Math.max(min, max);
  const decades = Math.ceil(Math.log10(hi) - 1e-9) - Math.floor(Math.log10(lo) + 1e-9);
  const every = decades > 24 ? Math.ceil(decades / 8) : decades > 12 ? 2 : 1;
  return decadeValues(lo, hi, decades <= fineDecades ? [1, 2, 5] : [1], every);
}

/**
 * Options of `focusLevels`.
 *
 * @example
 * const o: FocusLevelOptions = { count: 12, region: valuesInsidePathBox, toward: "min" };
 */
export interface FocusLevelOptions {
  /** About how many levels between the region's low and high quantiles (default 12). */
  count?: number;
  /**
   * The values of the region of interest (e.g. the grid values inside an
   * optimization path's bounding box); its quantiles set the levels' span.
   * Default: all values. Fewer than 4 finite values: all values are used.
   */
  region?: ArrayLike<number>;
  /** Where levels crowd: at the minimum (losses, the default) or the maximum (accuracies). */
  toward?: "min" | "max";
  /** Levels start above this value instead of the data's minimum (for "max": below this high end). */
  from?: number;
  /** No level beyond this value (for "min": above it, for "max": below it). */
  to?: number;
  /** Quantiles of the region's heights above the minimum where the levels start and stop (default [0.02, 0.95]). */
  quantiles?: readonly [number, number];
}

/** The q-quantile (0..1) of sorted values, linear between order statistics. */
function quantileSorted(sorted: readonly number[], q: number): number {
  const pos = q * (sorted.length - 1);
  const k = Math.floor(pos);
  const f = pos - k;
  const a = sorted[k]!;
  return k + 1 < sorted.length ? a + f * (sorted[k + 1]! - a) : a;
}

/**
 * `v` rounded to the coarsest of the steps 10^e, 5·10^(e-1), 2·10^(e-1),
 * 10^(e-1), ... that moves it by at most `tol` (so labels stay short).
 */
function roundWithin(v: number, tol: number): number {
  let e = Math.floor(Math.log10(Math.max(Math.abs(v), tol * 10)));
  for (let tries = 0; tries < 16; tries++, e--) {
    for (const m of [10, 5, 2]) {
      const step = (m / 10) * 10 ** e;
      const r = Math.round(v / step) * step;
      if (Math.abs(r - v) <= tol) return clean(r);
    }
  }
  return clean(v);
}

/**
 * Contour levels where the landscape is: dense near the minimum and spread
 * over the values of a region of interest, not evenly over the whole range
 * (where a steep wall would take every level). Levels sit at heights
 * h_k = h_lo · r^k above the minimum m, geometrically spaced from the region's
 * low quantile of heights (default 2 %, so the lowest ring encloses a few grid
 * points) to its high quantile (default 95 %), in `count` steps; above that,
 * up to `count / 2` more levels continue with ratio max(r, 1.5) towards the
 * largest value, so walls keep a few coarse lines. Each level is rounded to a
 * short decimal within a quarter of its gap to the level below. With
 * `toward: "max"` the same is done from the maximum down. Returns [] when the
 * values have no spread (a constant or empty field).
 *
 * On a paraboloid f = x² + y² the level sets are circles of radius
 * sqrt(h_k): radii spaced geometrically, crowding towards the minimum.
 *
 * @example
 * focusLevels(lossGrid);                                   // ~12 levels, dense near the minimum
 * focusLevels(lossGrid, { region: valuesInPathBox });      // the path's valley gets the levels
 * focusLevels(accGrid, { toward: "max", count: 8 });       // accuracies: dense near the maximum
 */
export function focusLevels(values: ArrayLike<number>, options: FocusLevelOptions = {}): number[] {
  const where = "focusLevels()";
  const { count = 12, region, toward = "min", from, to, quantiles = [0.02, 0.95] } = options;
  if (!Number.isInteger(count) || count < 1) {
    throw new Error(`${where}: 'count' must be a positive integer, got ${count}`);
  }
  checkCount(where, count);
  if (toward !== "min" && toward !== "max") {
    throw new Error(`${where}: 'toward' must be "min" or "max", got '${String(toward)}'`);
  }
  const [qLo, qHi] = quantiles;
  if (!(qLo >= 0 && qHi <= 1 && qLo < qHi)) {
    throw new Error(`${where}: 'quantiles' must be [lo, hi] with 0 <= lo < hi <= 1, got [${qLo}, ${qHi}]`);
  }
  for (const [name, v] of [
    ["from", from],
    ["to", to],
  ] as const) {
    if (v !== undefined && !Number.isFinite(v))
      throw new Error(`${where}: '${name}' must be a finite number, got ${v}`);
  }
  // Work towards the minimum; "max" is the same on negated values.
  const sign = toward === "min" ? 1 : -1;
  const finite = (a: ArrayLike<number>): number[] => {
    const out: number[] = [];
    for (let k = 0; k < a.length; k++) {
      const v = a[k]!;
      if (Number.isFinite(v)) out.push(sign * v);
    }
    return out;
  };
  const all = finite(values);
  if (all.length === 0) return [];
  let roi = region === undefined ? all : finite(region);
  if (roi.length < 4) roi = all;
  let m = Number.POSITIVE_INFINITY;
  let dataMax = Number.NEGATIVE_INFINITY;
  for (const v of all) {
    if (v < m) m = v;
    if (v > dataMax) dataMax = v;
  }
  for (const v of roi) if (v < m) m = v;
  if (from !== undefined) m = sign * from;
  // Levels lie strictly below the largest value (a level there draws nothing) and up to `to`.
  const hData = dataMax - m;
  const hLimit = to === undefined ? hData : Math.min(hData, sign * to - m);
  if (!(hData > 0) || !(hLimit > 0)) return [];
  const heights = roi
    .map((v) => Math.min(v - m, hLimit))
    .filter((h) => h > 0)
    .sort((a, b) => a - b);
  if (heights.length === 0) return [];
  let hLo = quantileSorted(heights, qLo);
  let hHi = quantileSorted(heights, qHi);
  if (!(hHi > hLo)) {
    hLo = heights[0]!;
    hHi = heights[heights.length - 1]!;
  }
  const raw: number[] = [];
  if (count === 1 || !(hHi > hLo)) raw.push(Math.sqrt(hLo * hHi));
  else {
    const r = (hHi / hLo) ** (1 / (count - 1));
    for (let k = 0; k < count; k++) raw.push(hLo * r ** k);
    const up = Math.max(r, 1.5);
    let h = hHi * up;
    for (let extra = 0; extra < Math.ceil(count / 2) && h < hLimit; extra++, h *= up) raw.push(h);
  }
  const fits = (h: number) => h < hData && h <= hLimit * (1 + 1e-12);
  const out: number[] = [];
  let prev = 0;
  for (const h of raw) {
    if (!fits(h)) continue;
    const v = roundWithin(m + h, 0.25 * (h - prev));
    prev = h;
    const last = out[out.length - 1];
    if (v > m && v < dataMax && (last === undefined || v > last)) out.push(v);
  }
  return sign === 1 ? out : out.map((v) => clean(-v)).reverse();
}
