// Contour levels: the focused default rule (dense near the minimum, spread
// over a region of interest) checked on closed forms, the paraboloid
// f = x^2 + y^2 whose sublevel set {f <= c} is a disc of area pi c, and the
// evenly spaced helpers it replaces as a default.

import { describe, expect, it } from "vitest";
import { focusLevels, linearLevels, logLevels, niceLevels } from "../../src/core/levels.ts";

const linspace = (a: number, b: number, n: number) =>
  Array.from({ length: n }, (_, k) => a + ((b - a) * k) / (n - 1));

/** f(x, y) on the grid x, y, row-major [i * ny + j] like a surface file. */
function grid(x: number[], y: number[], f: (x: number, y: number) => number): Float64Array {
  const out = new Float64Array(x.length * y.length);
  for (let i = 0; i < x.length; i++)
    for (let j = 0; j < y.length; j++) out[i * y.length + j] = f(x[i]!, y[j]!);
  return out;
}

const axis = linspace(-1, 1, 61);
const paraboloid = grid(axis, axis, (x, y) => x * x + y * y);
const below = (values: ArrayLike<number>, level: number) =>
  Array.from(values).filter((v) => v < level).length / values.length;

describe("focusLevels on the paraboloid x^2 + y^2 over [-1, 1]^2", () => {
  const levels = focusLevels(paraboloid);

  it("gives about 12 increasing levels, all strictly inside the value range", () => {
    expect(levels.length).toBeGreaterThanOrEqual(12);
    expect(levels.length).toBeLessThanOrEqual(18);
    for (let k = 1; k < levels.length; k++) expect(levels[k]!).toBeGreaterThan(levels[k - 1]!);
    expect(levels[0]!).toBeGreaterThan(0);
    expect(levels.at(-1)!).toBeLessThan(2);
  });

  it("starts at the 2 % quantile: the disc of area pi c holds 2 % of the square for c = 0.08 / pi", () => {
    // Within rounding (a quarter of the first gap) and the grid's discretisation.
    expect(Math.abs(levels[0]! - 0.08 / Math.PI) / (0.08 / Math.PI)).toBeLessThan(0.3);
    expect(below(paraboloid, levels[0]!)).toBeGreaterThan(0.01);
    expect(below(paraboloid, levels[0]!)).toBeLessThan(0.04);
    // The 12th level is the 95 % quantile.
    expect(below(paraboloid, levels[11]!)).toBeGreaterThan(0.9);
    expect(below(paraboloid, levels[11]!)).toBeLessThan(0.98);
  });

  it("spaces the first 12 levels geometrically (within the 8 % that rounding moves them)", () => {
    const r = (levels[11]! / levels[0]!) ** (1 / 11);
    for (let k = 0; k < 12; k++) {
      const want = levels[0]! * r ** k;
      expect(Math.abs(levels[k]! - want) / want).toBeLessThan(0.12);
    }
  });

  it("crowds the level circles (radius sqrt(c)) towards the minimum, unlike evenly spaced levels", () => {
    const inner = (ls: number[]) => ls.filter((c) => Math.sqrt(c) < 0.5).length;
    // Half the focused levels are circles inside radius 0.5, a fifth of the square's area.
    expect(inner(levels)).toBeGreaterThanOrEqual(levels.length / 2);
    expect(inner(niceLevels(0, 2, 10))).toBe(1); // 0.2 only
  });

  it("rounds levels to short decimals", () => {
    for (const v of levels) expect(String(v).replace(/^0\./, "").length).toBeLessThanOrEqual(4);
  });
});

describe("focusLevels with a region of interest", () => {
  it("spreads the levels over the values inside a path's bounding box", () => {
    // The box [0.4, 1] x [0.4, 1] holds values 0.32..2.
    const box: number[] = [];
    for (let i = 0; i < axis.length; i++) {
      for (let j = 0; j < axis.length; j++) {
        if (axis[i]! >= 0.39 && axis[j]! >= 0.39) box.push(paraboloid[i * axis.length + j]!);
      }
    }
    const lo = Math.min(...box);
    const hi = Math.max(...box);
    expect(lo).toBeCloseTo(0.32, 2);
    const levels = focusLevels(paraboloid, { region: box });
    const inside = levels.filter((v) => v > lo && v < hi);
    expect(inside.length).toBeGreaterThanOrEqual(11);
    expect(levels.every((v) => v > lo)).toBe(true);
    // Without the box, the valley around the minimum takes several levels below 0.32.
    expect(focusLevels(paraboloid).filter((v) => v < lo).length).toBeGreaterThanOrEqual(4);
  });

  it("uses every value when the region holds fewer than 4 finite values", () => {
    expect(focusLevels(paraboloid, { region: [1, Number.NaN, 2] })).toEqual(focusLevels(paraboloid));
  });

  it("puts levels in a valley next to a wall that even spacing leaves empty", () => {
    // A valley 0.05 + 2 r^2 (loss < 5 on the path) and a steep wall beyond x = 0.5 up to ~30.
    const wall = grid(
      axis,
      axis,
      (x, y) => 0.05 + 2 * (x * x + y * y) + (x > 0.5 ? 100 * (x - 0.5) ** 2 : 0),
    );
    let max = 0;
    for (const v of wall) max = Math.max(max, v);
    expect(max).toBeGreaterThan(25);
    expect(niceLevels(0.05, max, 10).filter((v) => v < 2).length).toBe(0);
    const levels = focusLevels(wall);
    expect(levels.filter((v) => v < 2).length).toBeGreaterThanOrEqual(7);
    // The wall keeps a few coarse lines.
    expect(levels.filter((v) => v > 6).length).toBeGreaterThanOrEqual(1);
    expect(levels.filter((v) => v > 6).length).toBeLessThanOrEqual(5);
  });
});

describe("focusLevels options and edge cases", () => {
  it("crowds towards the maximum for accuracies (the paraboloid turned upside down)", () => {
    const acc = paraboloid.map((v) => 100 - 10 * v);
    const levels = focusLevels(acc, { toward: "max" });
    const mirrored = focusLevels(paraboloid).map((v) => 100 - 10 * v);
    expect(levels.length).toBe(mirrored.length);
    for (let k = 0; k < levels.length; k++)
      expect(levels[k]!).toBeCloseTo(mirrored[mirrored.length - 1 - k]!, 0);
    for (let k = 1; k < levels.length; k++) expect(levels[k]!).toBeGreaterThan(levels[k - 1]!);
    expect(100 - levels.at(-1)!).toBeLessThan(0.5);
  });

  it("takes the count, and vmin/vmax bounds as 'from' and 'to'", () => {
    expect(focusLevels(paraboloid, { count: 6 }).length).toBeGreaterThanOrEqual(6);
    expect(focusLevels(paraboloid, { count: 6 }).length).toBeLessThanOrEqual(9);
    const capped = focusLevels(paraboloid, { to: 1 });
    expect(capped.every((v) => v > 0 && v <= 1)).toBe(true);
    expect(capped.length).toBeGreaterThanOrEqual(10);
    const from = focusLevels(paraboloid, { from: 0.5 });
    expect(from.every((v) => v > 0.5)).toBe(true);
    expect(from[0]!).toBeLessThan(0.6);
  });

  it("ignores NaN and infinite values, and returns [] for a field without spread", () => {
    const holes = Float64Array.from(paraboloid);
    holes[0] = Number.NaN;
    holes[1] = Number.POSITIVE_INFINITY;
    expect(focusLevels(holes).length).toBeGreaterThanOrEqual(12);
    expect(focusLevels(new Float64Array(9).fill(2))).toEqual([]);
    expect(focusLevels([Number.NaN, Number.NaN])).toEqual([]);
  });

  it("rejects bad options with the argument's name", () => {
    expect(() => focusLevels(paraboloid, { count: 0 })).toThrow(
      /focusLevels\(\): 'count' must be a positive integer, got 0/,
    );
    expect(() => focusLevels(paraboloid, { count: 5000 })).toThrow(/at most 1000/);
    expect(() => focusLevels(paraboloid, { toward: "up" as "min" })).toThrow(
      /'toward' must be "min" or "max", got 'up'/,
    );
    expect(() => focusLevels(paraboloid, { quantiles: [0.5, 0.2] })).toThrow(
      /'quantiles' must be \[lo, hi\]/,
    );
    expect(() => focusLevels(paraboloid, { from: Number.NaN })).toThrow(
      /'from' must be a finite number, got NaN/,
    );
  });
});

describe("evenly spaced helpers (the options the reference uses)", () => {
  it("linearLevels is the reference's vmin:vmax:vlevel, closed at the top", () => {
    expect(linearLevels(0.1, 2, 0.5)).toEqual([0.1, 0.6, 1.1, 1.6]);
    expect(linearLevels(0, 1, 0.25)).toEqual([0, 0.25, 0.5, 0.75, 1]);
  });

  it("niceLevels and logLevels give round values", () => {
    expect(niceLevels(0, 10, 5)).toEqual([2, 4, 6, 8]);
    expect(logLevels(0.1, 10, 3)).toEqual([0.1, 1, 10]);
  });
});
