// The viewer app's pure parts, in Node: contour lines, shading, colour maps,
// display transforms, and the orientation of the Plotly figures (a non-square
// grid must not come out transposed).

import { describe, expect, test } from "vitest";
import type { SurfaceListOk } from "../../src/viewer/api.ts";
import { firstViewRank, mainSurface } from "../../src/viewer/app/choose.ts";
import { colormapTable, plotlyColorscale } from "../../src/viewer/app/colormaps.ts";
import { contourLevels, contourPaths, focusedLevels } from "../../src/viewer/app/contour.ts";
import {
  bilinear,
  displayValue,
  finiteRange,
  formatValue,
  nearestIndex,
  paddedRange,
  rawField,
  viewQuantities,
} from "../../src/viewer/app/field.ts";
import {
  contourFigure,
  curvesFigure,
  type PlaneView,
  surface3dFigure,
} from "../../src/viewer/app/figures.ts";
import { shadeField } from "../../src/viewer/app/shading.ts";
import { surfaceToJson } from "../../src/viewer/surface-json.ts";
import { paraboloid } from "./_fixtures.ts";

const linspace = (a: number, b: number, n: number) =>
  Array.from({ length: n }, (_, k) => a + ((b - a) * k) / (n - 1));

function field(x: number[], y: number[], f: (x: number, y: number) => number): Float64Array {
  return Float64Array.from({ length: x.length * y.length }, (_, k) =>
    f(x[Math.floor(k / y.length)]!, y[k % y.length]!),
  );
}

describe("contour lines", () => {
  test("contour points of a plane lie exactly on its level sets", () => {
    const x = linspace(-1, 1, 9);
    const y = linspace(-2, 2, 7);
    const z = field(x, y, (a, b) => 2 * a + 3 * b);
    const levels = contourLevels(-8, 8, 7);
    const { x: px, y: py } = contourPaths(z, x, y, levels);
    // Polylines separated by nulls; all points of a line are on one level.
    const lines: number[][] = [[]];
    for (let k = 0; k < px.length; k++) {
      if (px[k] === null) {
        expect(py[k]).toBeNull();
        lines.push([]);
      } else lines.at(-1)!.push(2 * px[k]! + 3 * py[k]!);
    }
    lines.pop();
    // A plane's level sets are straight lines across the grid: one polyline per level in range.
    expect(lines.length).toBe(levels.filter((l) => l > -8 && l < 8).length);
    for (const values of lines) {
      expect(values.length).toBeGreaterThanOrEqual(2);
      expect(levels.some((l) => values.every((v) => Math.abs(v - l) < 1e-12))).toBe(true);
    }
  });

  test("a saddle cell gives two segments, decided by the cell's mean", () => {
    const x = [0, 1];
    const y = [0, 1];
    // (0,0)=1, (0,1)=0, (1,0)=0, (1,1)=1: high corners on one diagonal, mean 0.5.
    const z = Float64Array.of(1, 0, 0, 1);
    expect(contourPaths(z, x, y, [0.4]).x.filter((v) => v === null)).toHaveLength(2);
    expect(contourPaths(z, x, y, [0.6]).x.filter((v) => v === null)).toHaveLength(2);
  });

  test("cells with a NaN corner (not computed or diverged) draw no line", () => {
    const x = [0, 1, 2];
    const y = [0, 1];
    const z = Float64Array.of(0, 1, Number.NaN, 1, 0, 1);
    const { x: px } = contourPaths(z, x, y, [0.5]);
    // Only the second cell (i = 1) is complete, and it has no NaN; the first touches the NaN.
    expect(px.every((v) => v === null || v >= 1)).toBe(true);
  });

  test("levels lie strictly inside the range", () => {
    expect(contourLevels(0, 1, 3)).toEqual([0.25, 0.5, 0.75]);
    expect(contourLevels(1, 1, 5)).toEqual([]);
  });
});

describe("display", () => {
  test("values are clipped at zmax, then put on log10; non-positive logs are NaN", () => {
    expect(displayValue(100, { log: true, zmax: 10 })).toBe(1);
    expect(displayValue(3, { log: false, zmax: 2 })).toBe(2);
    expect(displayValue(0, { log: true, zmax: null })).toBeNaN();
    expect(displayValue(0.5, { log: false, zmax: null })).toBe(0.5);
  });

  test("the Hessian ratio is |min_eig / max_eig|, NaN where undefined", () => {
    const r = rawField({ values: { max_eig: [10, 0, null, 4], min_eig: [-2, 1, 3, 1] } }, "hessian_ratio");
    expect(Array.from(r!)).toEqual([0.2, Number.NaN, Number.NaN, 0.25]);
    expect(viewQuantities({ values: { train_loss: [], max_eig: [], min_eig: [] } })).toEqual([
      "train_loss",
      "max_eig",
      "min_eig",
      "hessian_ratio",
    ]);
  });

  test("ranges skip NaN and are never empty", () => {
    expect(finiteRange([Float64Array.of(Number.NaN, 2, -1), [5]])).toEqual([-1, 5]);
    expect(finiteRange([[Number.NaN]])).toBeNull();
    expect(paddedRange([3, 3])).toEqual([1.5, 4.5]);
    expect(nearestIndex([-1, 0, 1], 0.4)).toBe(1);
    expect(formatValue(0.123456789)).toBe("0.123457");
    expect(formatValue(null)).toBe("—");
    expect(formatValue(123456789)).toBe("1.2346e+8");
  });

  test("bilinear interpolation is exact on a plane and NaN next to a NaN corner", () => {
    const x = linspace(0, 1, 3);
    const y = linspace(0, 2, 5);
    const z = field(x, y, (a, b) => 1 + 2 * a - b);
    expect(bilinear(z, x, y, 0.3, 1.7)).toBeCloseTo(1 + 0.6 - 1.7, 12);
    expect(bilinear(z, x, y, 1.5, 0)).toBeNaN();
    z[0] = Number.NaN;
    expect(bilinear(z, x, y, 0.1, 0.1)).toBeNaN();
  });
});

describe("colour", () => {
  test("colour tables start and end on the map's first and last stop", () => {
    const lut = colormapTable("viridis", 256);
    expect(Array.from(lut.subarray(0, 3))).toEqual([0x44, 0x01, 0x54]);
    expect(Array.from(lut.subarray(255 * 3))).toEqual([0xfd, 0xe7, 0x25]);
    const scale = plotlyColorscale("viridis");
    expect(scale[0]).toEqual([0, "#440154"]);
    expect(scale.at(-1)).toEqual([1, "#fde725"]);
  });

  test("shading puts the largest y at the top row and leaves NaN transparent", () => {
    const x = [0, 1];
    const y = [0, 1];
    const z = field(x, y, (_a, b) => b); // grows with y
    const px = shadeField(z, x, y, { width: 4, height: 4, cmin: 0, cmax: 1, colormap: "greys" });
    const lum = (row: number) => px[row * 16]!;
    expect(lum(0)).toBeGreaterThan(lum(3)); // greys: low = black, high = white
    // x = 0, 1, 2: the left cell has a NaN corner at (0, 0), the right one none.
    const holes = shadeField(Float64Array.of(Number.NaN, 0, 0, 0, 0, 0), [0, 1, 2], y, {
      width: 4,
      height: 1,
      cmin: 0,
      cmax: 1,
      colormap: "greys",
    });
    expect([0, 1, 2, 3].map((px) => holes[px * 4 + 3])).toEqual([0, 0, 255, 255]);
  });
});

describe("figures", () => {
  const s = surfaceToJson(paraboloid(), { id: "p", name: "p.h5" });
  const raw = rawField(s, "train_loss")!;
  const view: PlaneView = {
    name: "p.h5",
    x: s.x,
    y: s.y!,
    raw,
    z: raw,
    quantity: "train_loss",
    log: false,
    zmax: null,
    trajectory: null,
  };
  const colors = { cmin: 0, cmax: 3, colormap: "viridis" as const, showScale: true };

  test("the 3D surface has rows along y: z[j][i] is the value at (x_i, y_j) on a non-square grid", () => {
    const fig = surface3dFigure(view, colors, { zrange: [0, 3], selected: { i: 10, j: 3 }, uirevision: "p" });
    const trace = fig.data[0] as { z: (number | null)[][]; x: number[]; y: number[] };
    expect(trace.z).toHaveLength(11);
    expect(trace.z[0]).toHaveLength(15);
    const ny = 11;
    expect(trace.z[3]![10]).toBe(raw[10 * ny + 3]);
    expect(trace.z[0]![0]).toBeNull(); // not computed
    const marker = fig.data.at(-1) as { x: number[]; y: number[]; z: number[] };
    expect([marker.x[0], marker.y[0], marker.z[0]]).toEqual([s.x[10], s.y![3], raw[10 * ny + 3]]);
  });

  test("every contour-map grid point answers clicks with its own indices and value", () => {
    const fig = contourFigure(view, colors, { levels: 10, image: null, selected: null, uirevision: "p" });
    const grid = fig.data[1] as { x: number[]; y: number[]; customdata: [number, number][]; text: string[] };
    expect(grid.x).toHaveLength(15 * 11);
    grid.customdata.forEach(([i, j], k) => {
      expect(grid.x[k]).toBe(s.x[i]);
      expect(grid.y[k]).toBe(s.y![j]);
      expect(grid.text[k]).toBe(formatValue(raw[i * 11 + j]));
    });
  });

  test("1D curves put loss on the left axis and accuracy (0..100 %) on the right", () => {
    const fig = curvesFigure(
      [{ name: "a", x: [0, 1], values: { train_loss: [1, 2], train_acc: [50, 60] } }],
      { log: true, ymax: 10, selected: 1, interpolation: true },
    );
    expect(fig.data.map((t) => t["yaxis"])).toEqual(["y", "y2"]);
    const layout = fig.layout as { yaxis: { type: string; range: number[] }; yaxis2: { range: number[] } };
    expect(layout.yaxis.type).toBe("log");
    expect(layout.yaxis.range).toEqual([0, 1]);
    expect(layout.yaxis2.range).toEqual([0, 100]);
  });
});

describe("focused contour levels (the figures' rule)", () => {
  const x = linspace(-1, 1, 41);
  const y = linspace(-1, 1, 31);
  // A valley and a steep wall beyond x = 0.5: even levels would all sit on the wall.
  const z = field(x, y, (a, b) => 0.05 + 2 * (a * a + b * b) + (a > 0.5 ? 100 * (a - 0.5) ** 2 : 0));

  test("levels crowd into the valley, and into the trajectory's box when there is one", () => {
    const even = contourLevels(0.05, 29, 12);
    expect(even.filter((l) => l < 2)).toHaveLength(0);
    const levels = focusedLevels(z, x, y, { count: 12, lo: 0.05, hi: 29 });
    expect(levels.filter((l) => l < 2).length).toBeGreaterThanOrEqual(7);
    // A path in the valley's left half: [-0.8, -0.2] x [-0.3, 0.3] holds values 0.13..1.5.
    const trajectory = { x: [-0.8, -0.5, -0.2], y: [0.3, -0.3, 0] };
    const boxed = focusedLevels(z, x, y, { count: 12, lo: 0.05, hi: 29, trajectory });
    const inBox = boxed.filter((l) => l > 0.13 && l < 1.6);
    expect(inBox.length).toBeGreaterThanOrEqual(10);
  });

  test("accuracies crowd towards the maximum; a flat field falls back to even levels", () => {
    const acc = z.map((v) => 100 * Math.exp(-v));
    const levels = focusedLevels(acc, x, y, { count: 10, toward: "max", lo: 0, hi: 100 });
    expect(levels.filter((l) => l > 50).length).toBeGreaterThanOrEqual(6);
    const flat = new Float64Array(x.length * y.length).fill(1);
    expect(focusedLevels(flat, x, y, { count: 3, lo: 0, hi: 2 })).toEqual(contourLevels(0, 2, 3));
  });

  test("the contour map draws the focused levels, or the levels it is given", () => {
    const view: PlaneView = {
      name: "v.h5",
      x,
      y,
      raw: z,
      z,
      quantity: "train_loss",
      log: false,
      zmax: null,
      trajectory: null,
    };
    const colors = { cmin: 0.05, cmax: 29, colormap: "viridis" as const, showScale: true };
    const count = (levels: number | number[]) => {
      const fig = contourFigure(view, colors, { levels, image: null, selected: null, uirevision: "v" });
      const lines = fig.data[0] as { x: (number | null)[]; y: (number | null)[] };
      const values: number[] = [];
      for (let k = 0; k < lines.x.length; k++) {
        const a = lines.x[k];
        const b = lines.y[k];
        if (a === null || b === null || a === undefined || b === undefined) continue;
        values.push(0.05 + 2 * (a * a + b * b) + (a > 0.5 ? 100 * (a - 0.5) ** 2 : 0));
      }
      return values;
    };
    // Contour points of the focused levels mostly lie in the valley (value < 2).
    const focused = count(12);
    expect(focused.filter((v) => v < 2).length / focused.length).toBeGreaterThan(0.4);
    const given = count([20]);
    expect(given.every((v) => Math.abs(v - 20) < 1)).toBe(true);
  });
});

describe("the surface the viewer opens first", () => {
  const entry = (name: string, o: Partial<SurfaceListOk> = {}): SurfaceListOk => ({
    id: `id:${name}`,
    name,
    status: "ok",
    dims: 2,
    nx: 21,
    ny: 21,
    quantities: ["train_loss", "train_acc"],
    interpolation: false,
    trajectory: false,
    kind: "random",
    ...o,
  });
  // The demo's folder, sorted by name as the catalog lists it.
  const demo = [
    entry("hessian.h5", { nx: 3, ny: 3, quantities: ["max_eig", "min_eig"], kind: null }),
    entry("interpolation.h5", { dims: 1, ny: null, interpolation: true, kind: "interpolation" }),
    entry("surface.h5"),
    entry("trajectory.surface.h5", { kind: "trajectory" }),
  ];

  test("is the main 2D train-loss surface of the demo's folder, not the Hessian map", () => {
    expect(mainSurface(demo)).toBe("id:surface.h5");
    expect(
      mainSurface(demo.map((e) => (e.name === "surface.h5" ? { ...e, name: "runs/a/surface.h5" } : e))),
    ).toBe("id:surface.h5");
  });

  test("prefers any plain 2D loss surface, then 1D, then trajectories, then Hessian maps", () => {
    const noMain = demo.filter((e) => e.name !== "surface.h5");
    expect(mainSurface([...noMain, entry("b.h5"), entry("a.h5")])).toBe("id:b.h5"); // listing order breaks ties
    expect(mainSurface(noMain)).toBe("id:interpolation.h5");
    const noLine = noMain.filter((e) => e.dims === 2);
    expect(mainSurface(noLine)).toBe("id:trajectory.surface.h5");
    expect(mainSurface(noLine.filter((e) => e.kind !== "trajectory"))).toBe("id:hessian.h5");
    expect(mainSurface([])).toBeNull();
    // A loss surface with eigenvalues comes after plain ones, a test loss only after both; a path after 1D.
    const eig = entry("e.h5", { quantities: ["train_loss", "max_eig", "min_eig"] });
    expect(firstViewRank(entry("plain.h5"))).toBe(1);
    expect(firstViewRank(eig)).toBe(2);
    expect(firstViewRank(entry("t.h5", { quantities: ["test_loss"] }))).toBe(3);
    expect(firstViewRank(entry("p.h5", { trajectory: true }))).toBe(5);
    expect(firstViewRank(entry("acc.h5", { quantities: ["train_acc"] }))).toBe(7);
    expect(mainSurface([entry("p.h5", { trajectory: true }), eig])).toBe("id:e.h5");
  });
});
