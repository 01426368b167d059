import { describe, expect, it } from "vitest";
import { type GridPoint, isolines, isoRegions, ringArea } from "../../src/core/contour.ts";
import { linearLevels, logLevels, logTicks, niceLevels, ticks } from "../../src/core/levels.ts";

/** values[i*ny + j] = f(x_i, y_j) on an evenly spaced grid over [-r, r]^2. */
function sampled(nx: number, ny: number, f: (x: number, y: number) => number, r = 1) {
  const x = Array.from({ length: nx }, (_, i) => -r + (2 * r * i) / (nx - 1));
  const y = Array.from({ length: ny }, (_, j) => -r + (2 * r * j) / (ny - 1));
  const values = new Float64Array(nx * ny);
  for (let i = 0; i < nx; i++) for (let j = 0; j < ny; j++) values[i * ny + j] = f(x[i]!, y[j]!);
  const toData = ([gi, gj]: GridPoint): [number, number] => [
    -r + (2 * r * gi) / (nx - 1),
    -r + (2 * r * gj) / (ny - 1),
  ];
  return { values, toData };
}

const first = <T>(list: T[]): T => list[0]!;

const closed = (line: GridPoint[]) => line[0]![0] === line.at(-1)![0] && line[0]![1] === line.at(-1)![1];

describe("isolines (marching squares)", () => {
  it("a paraboloid's contours are closed circles of radius sqrt(level)", () => {
    const { values, toData } = sampled(61, 61, (x, y) => x * x + y * y);
    const levels = [0.04, 0.25, 0.5, 0.81];
    const iso = isolines(values, 61, 61, levels);
    expect(iso.map((l) => l.threshold)).toEqual(levels);
    for (const { threshold, lines } of iso) {
      expect(lines).toHaveLength(1);
      const line = lines[0]!;
      expect(closed(line)).toBe(true);
      for (const p of line) {
        const [x, y] = toData(p);
        // Linear interpolation of x^2 along a cell edge of width h errs by at most h^2/4.
        expect(Math.abs(Math.hypot(x, y) - Math.sqrt(threshold))).toBeLessThan(0.002);
      }
    }
  });

  it("orients lines with the region above the level on their left", () => {
    // Above = outside the circle, so the circle runs clockwise (negative area).
    const { values } = sampled(31, 31, (x, y) => x * x + y * y);
    const { lines } = first(isolines(values, 31, 31, [0.3]));
    expect(ringArea(lines[0]!)).toBeLessThan(0);
    // Negating the field puts the region above inside: counter-clockwise.
    const { lines: inside } = first(
      isolines(
        values.map((v) => -v),
        31,
        31,
        [-0.3],
      ),
    );
    expect(ringArea(inside[0]!)).toBeGreaterThan(0);
  });

  it("a level that leaves the grid gives open lines ending on the border", () => {
    const { values } = sampled(21, 11, (x, y) => x + 0.1 * y);
    const { lines } = first(isolines(values, 21, 11, [0.25]));
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    expect(closed(line)).toBe(false);
    expect([line[0]![1], line.at(-1)![1]].sort()).toEqual([0, 10]);
  });

  it("leaves out cells with a NaN or infinite corner", () => {
    const { values } = sampled(21, 21, (x, y) => x * x + y * y);
    values[10 * 21 + 16] = Number.NaN; // (0, 0.6), on the circle of radius 0.6
    values[4 * 21 + 10] = Number.POSITIVE_INFINITY; // (-0.6, 0)
    const { lines } = first(isolines(values, 21, 21, [0.36]));
    expect(lines.length).toBe(2); // the circle is cut twice
    for (const p of lines.flat()) {
      expect(Math.abs(p[0] - 10) >= 1 || Math.abs(p[1] - 16) >= 1).toBe(true);
      expect(Math.abs(p[0] - 4) >= 1 || Math.abs(p[1] - 10) >= 1).toBe(true);
    }
  });

  it("resolves saddle cells by the cell's mean", () => {
    // Corners (0,0)=1, (1,0)=0, (1,1)=1, (0,1)=0: mean 0.5.
    const v = [1, 0, 0, 1]; // i*2 + j: (0,0)=1 (0,1)=0 (1,0)=0 (1,1)=1
    const low = isolines(v, 2, 2, [0.4])[0]!.lines; // mean above: the two low corners are cut off
    const high = isolines(v, 2, 2, [0.6])[0]!.lines; // mean below: the two high corners are cut off
    expect(low).toHaveLength(2);
    expect(high).toHaveLength(2);
    const near = (lines: GridPoint[][], c: GridPoint) =>
      lines.some((l) => l.every((p) => Math.hypot(p[0] - c[0], p[1] - c[1]) < 0.7));
    expect(near(low, [1, 0]) && near(low, [0, 1])).toBe(true);
    expect(near(high, [0, 0]) && near(high, [1, 1])).toBe(true);
  });

  it("returns one entry per threshold, empty when the level misses the data", () => {
    const { values } = sampled(5, 5, (x, y) => x + y);
    const iso = isolines(values, 5, 5, [-5, 0, 5]);
    expect(iso.map((l) => l.lines.length)).toEqual([0, 1, 0]);
  });

  it("checks its arguments", () => {
    expect(() => isolines([1, 2, 3], 2, 2, [0])).toThrow(/'values' has 3 entries but the 2 x 2 grid has 4/);
    expect(() => isolines([1, 2, 3, 4], 2, 2, [Number.NaN])).toThrow(/'thresholds\[0\]' is NaN/);
    expect(() => isoRegions([1], 0, 1, [0])).toThrow(/'nx' must be a positive integer, got 0/);
  });
});

describe("isoRegions (filled contours)", () => {
  it("the region above a paraboloid level is the square minus a disc", () => {
    const n = 81;
    const { values } = sampled(n, n, (x, y) => x * x + y * y);
    const h = 2 / (n - 1);
    const [region] = isoRegions(values, n, n, [0.25]);
    const area = region!.rings.reduce((a, r) => a + ringArea(r), 0) * h * h;
    expect(area).toBeCloseTo(4 - Math.PI * 0.25, 2);
    // One outer ring (counter-clockwise) and one hole (clockwise).
    expect(region!.rings.map((r) => Math.sign(ringArea(r))).sort()).toEqual([-1, 1]);
  });

  it("threshold -Infinity gives the finite cells, holes where points are missing", () => {
    const { values } = sampled(11, 11, (x, y) => x + y);
    values[5 * 11 + 5] = Number.NaN;
    const [all] = isoRegions(values, 11, 11, [Number.NEGATIVE_INFINITY]);
    const area = all!.rings.reduce((a, r) => a + ringArea(r), 0);
    expect(area).toBeCloseTo(100 - 4, 9);
  });

  it("nested regions shrink as the threshold rises", () => {
    const { values } = sampled(31, 31, (x, y) => Math.exp(-(x * x + y * y)));
    const regions = isoRegions(values, 31, 31, [0.2, 0.5, 0.8]);
    const areas = regions.map((r) => r.rings.reduce((a, ring) => a + ringArea(ring), 0));
    expect(areas[0]!).toBeGreaterThan(areas[1]!);
    expect(areas[1]!).toBeGreaterThan(areas[2]!);
    for (const r of regions) for (const ring of r.rings) expect(closed(ring)).toBe(true);
  });
});

describe("levels", () => {
  it("linearLevels matches the reference's np.arange(0.1, 10, 0.5) and closes at vmax", () => {
    const levels = linearLevels(0.1, 10, 0.5);
    expect(levels).toHaveLength(20);
    expect(levels[0]).toBe(0.1);
    expect(levels[19]).toBe(9.6);
    expect(linearLevels(0, 1, 0.25)).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(linearLevels(0.1, 0.7, 0.2)).toEqual([0.1, 0.3, 0.5, 0.7]);
  });

  it("niceLevels gives round levels inside the range", () => {
    expect(niceLevels(0, 10, 5)).toEqual([2, 4, 6, 8]);
    expect(niceLevels(0.13, 4.2, 10)).toEqual([0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4]);
    expect(ticks(0, 1, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
  });

  it("logLevels: geometric with a count, round 1-2-5 values without", () => {
    expect(logLevels(0.1, 10, 3)).toEqual([0.1, 1, 10]);
    expect(logLevels(0.01, 10)).toEqual([0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10]);
    expect(logLevels(0.15, 4).length).toBeGreaterThanOrEqual(7);
    expect(logLevels(1e-6, 1e6).length).toBeLessThanOrEqual(20);
    expect(logTicks(1, 100)).toEqual([1, 2, 5, 10, 20, 50, 100]);
  });

  it("rejects bad ranges and steps, naming the argument", () => {
    expect(() => linearLevels(1, 1, 0.1)).toThrow(/'vmin' \(1\) must be less than 'vmax' \(1\)/);
    expect(() => linearLevels(0, 1, 0)).toThrow(/'step' must be a positive number, got 0/);
    expect(() => linearLevels(0, 1, 1e-4)).toThrow(/10001 levels, at most 1000/);
    expect(() => logLevels(0, 1)).toThrow(/log spacing needs 'vmin' > 0, got 0/);
    expect(() => niceLevels(0, 1, 0)).toThrow(/'count' must be a positive integer, got 0/);
  });
});
