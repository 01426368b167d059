import { describe, expect, it } from "vitest";
import type { Surface } from "../../src/formats/surface-file.ts";
import { contourFigure, filledContourFigure, trajectoryFigure } from "../../src/plot/contour.ts";
import { heatmapFigure, hessianFigure } from "../../src/plot/heatmap.ts";
import { lineFigure, lossAccuracyFigure, overlayFigure } from "../../src/plot/lines.ts";
import type { Field2D } from "../../src/plot/options.ts";
import { surface3dFigure } from "../../src/plot/surface3d.ts";
import { expectGolden } from "./_golden.ts";
import { bumpySurface, curve1D, holeySurface, paraboloid } from "./_surfaces.ts";

const field = (s: Surface): Field2D => ({ x: s.x, y: s.y!, values: s.values.train_loss!, done: s.done });
const axes = { xlabel: "direction 1", ylabel: "direction 2", colorLabel: "train loss" };

describe("figure goldens (seeded synthetic surfaces)", () => {
  it("contour lines of a bumpy paraboloid, with level labels and a color bar", () => {
    expectGolden("contour", contourFigure(field(bumpySurface(21, 21)), { ...axes, title: "contour" }));
  });

  it("contour lines with the reference's vmin/vmax/step levels on a non-square grid with holes", () => {
    const svg = contourFigure(field(holeySurface(17, 11)), { ...axes, vmin: 0.1, vmax: 10, step: 0.5 });
    expectGolden("contour-holes", svg);
  });

  it("filled contours with log-spaced levels and an extended color bar", () => {
    expectGolden(
      "filled-log",
      filledContourFigure(field(holeySurface(17, 11)), { ...axes, log: true, lines: true }),
    );
  });

  it("heat map with diverged (hatched) and not computed (grey) points", () => {
    expectGolden("heatmap", heatmapFigure(field(holeySurface(17, 11)), { ...axes, cmap: "magma", zmax: 3 }));
  });

  it("3D surface from the default view, clipped at zmax", () => {
    expectGolden("surface3d", surface3dFigure(field(bumpySurface(13, 13)), { ...axes, zmax: 3 }));
  });

  it("3D surface with holes, log z, from another viewpoint", () => {
    const svg = surface3dFigure(field(holeySurface(11, 9)), {
      ...axes,
      log: true,
      azimuth: 30,
      elevation: 45,
    });
    expectGolden("surface3d-holes", svg);
  });

  it("1D loss and accuracy on two axes, train solid, test dashed, a diverged point", () => {
    const c = curve1D(41, 3, { gap: true });
    expectGolden("1d", lossAccuracyFigure({ x: c.x, values: c.values, done: c.done }, { xlabel: "α" }));
  });

  it("two 1D surfaces overlaid with a legend", () => {
    const small = curve1D(31, 3);
    const large = curve1D(31, 4, { sharpness: 12 });
    const svg = overlayFigure(
      [
        { x: small.x, values: small.values, label: "bs128" },
        { x: large.x, values: large.values, label: "bs8192" },
      ],
      { xlabel: "α", vmax: 5, title: "small vs large batch" },
    );
    expectGolden("overlay", svg);
  });

  it("trajectory on contours with PCA axis labels and epoch labels", () => {
    const n = 9;
    const xs = Array.from({ length: n }, (_, k) => -0.8 * Math.exp(-k / 3));
    const ys = Array.from({ length: n }, (_, k) => 0.5 * Math.exp(-k / 3) * Math.cos(k));
    const labels = xs.map((_, k) => (k % 4 === 0 ? `${k * 10}` : ""));
    const svg = trajectoryFigure(
      field(bumpySurface(17, 17)),
      { x: xs, y: ys, labels },
      { xlabel: "1st PC: 48.21 %", ylabel: "2nd PC: 21.07 %", levels: 8 },
    );
    expectGolden("trajectory", svg);
  });

  it("Hessian eigenvalue ratio on the paper's 0..0.5 scale", () => {
    const s = paraboloid(15, 11);
    const loss = s.values.train_loss!;
    const svg = hessianFigure(
      {
        x: s.x,
        y: s.y!,
        minEig: loss.map((v) => -0.3 * v),
        maxEig: loss.map((v, k) => (k === 7 ? 0 : 1 + v)),
      },
      { xlabel: "direction 1", ylabel: "direction 2" },
    );
    expectGolden("hessian", svg);
  });
});

describe("figures never crash on missing data", () => {
  const nan = {
    x: [-1, 0, 1],
    y: [-1, 1],
    values: [Number.NaN, Number.NaN, Number.NaN, Number.NaN, Number.NaN, Number.NaN],
  };

  it("an all-NaN field draws every kind of figure, all of it marked diverged", () => {
    for (const svg of [
      contourFigure(nan),
      filledContourFigure(nan),
      heatmapFigure(nan),
      surface3dFigure(nan),
    ]) {
      expect(svg).toMatch(/^<svg /);
      expect(svg).toMatch(/diverged \(NaN\/Inf\)/);
      expect(svg).not.toMatch(/="[^"]*(NaN|Infinity)/);
    }
  });

  it("a constant field, Inf values and all-NaN 1D curves draw without NaN coordinates", () => {
    const flat = { x: [0, 1, 2], y: [0, 1], values: [1, 1, 1, 1, Number.POSITIVE_INFINITY, 1] };
    for (const svg of [
      contourFigure(flat),
      filledContourFigure(flat),
      heatmapFigure(flat),
      surface3dFigure(flat),
    ]) {
      expect(svg).not.toMatch(/="[^"]*(NaN|Infinity)/);
    }
    const svg = lineFigure([{ x: [0, 1, 2], y: [Number.NaN, Number.NaN, Number.NaN], label: "loss" }]);
    expect(svg).not.toMatch(/="[^"]*NaN/);
  });

  it("lines break at non-finite points, and a lone finite point is a dot", () => {
    const svg = lineFigure([{ x: [0, 1, 2, 3, 4], y: [1, 2, Number.NaN, 3, Number.NaN], label: "loss" }]);
    const series = svg.slice(svg.indexOf('class="series"'));
    expect(series.match(/<path d="M[^"]*"/g)?.[0]?.match(/M/g)).toHaveLength(1);
    expect(series).toMatch(/<circle /);
  });

  it("every number in a figure has at most 3 decimals", () => {
    const svg = contourFigure(field(bumpySurface(15, 15)), axes);
    expect(svg.match(/\d+\.\d{4,}/)).toBeNull();
  });
});

describe("figure options are checked", () => {
  const f = field(bumpySurface(9, 9));
  it("names the bad option and what was expected", () => {
    expect(() => contourFigure(f, { vmin: 2, vmax: 1 })).toThrow(
      /'vmin' \(2\) must be less than 'vmax' \(1\)/,
    );
    expect(() => contourFigure(f, { step: -1 })).toThrow(/'step' must be a positive number, got -1/);
    expect(() => contourFigure(f, { vmin: 0, vmax: 10, step: 1e-5 })).toThrow(/at most 1000/);
    expect(() => contourFigure(f, { log: true, vmin: 0 })).toThrow(/log scale needs 'vmin' > 0/);
    expect(() => contourFigure(f, { levels: [] })).toThrow(/'levels' is an empty list/);
    expect(() => contourFigure(f, { levels: 0 })).toThrow(/'levels' must be a positive integer count/);
    expect(() => contourFigure({ ...f, values: [1, 2] })).toThrow(
      /'values' has 2 entries but the 9 x 9 grid has 81/,
    );
    expect(() => heatmapFigure({ x: [0], y: [0, 1], values: [1, 2] })).toThrow(/at least 2 along each axis/);
    expect(() => heatmapFigure({ x: [1, 0], y: [0, 1], values: [1, 2, 3, 4] })).toThrow(
      /strictly increasing/,
    );
    expect(() => surface3dFigure(f, { elevation: 120 })).toThrow(/'elevation' must be between -90 and 90/);
    expect(() => contourFigure(f, { width: 50 })).toThrow(/too small/);
    expect(() =>
      lossAccuracyFigure({ x: [0, 1], values: { train_acc: [1, 2] } }, { quantities: ["train_loss"] }),
    ).toThrow(/has no 'train_loss' \(it has train_acc\)/);
  });
});

/** The levels a contour figure drew (data-level of its level paths or bands). */
function drawnLevels(svg: string, cls = "level"): number[] {
  return [...svg.matchAll(new RegExp(`class="${cls}" data-level="([-\\d.e]+)"`, "g"))].map((m) =>
    Number(m[1]),
  );
}

/** A valley 0.05 + 2 r^2 and a steep wall beyond x = 0.5 rising to ~30: the demo's trajectory plane in miniature. */
function valleyWithWall(n = 31): Field2D {
  const s = paraboloid(n, n);
  const values = Array.from(s.x).flatMap((x) =>
    Array.from(s.y!, (y) => 0.05 + 2 * (x * x + y * y) + (x > 0.5 ? 100 * (x - 0.5) ** 2 : 0)),
  );
  return { x: s.x, y: s.y!, values };
}

describe("default contour levels show where the landscape is", () => {
  const path = {
    x: Array.from({ length: 9 }, (_, k) => -0.7 * Math.exp(-k / 2.5)),
    y: Array.from({ length: 9 }, (_, k) => 0.5 * Math.exp(-k / 2.5) * Math.cos(k)),
  };

  it("contour lines crowd into the valley next to a wall; 'even' spacing is the old behaviour", () => {
    const f = valleyWithWall();
    const focused = drawnLevels(contourFigure(f));
    expect(focused.filter((v) => v < 2).length).toBeGreaterThanOrEqual(7);
    const even = drawnLevels(contourFigure(f, { spacing: "even" }));
    expect(even.filter((v) => v < 2)).toEqual([]);
    for (let k = 2; k < even.length; k++) expect(even[k]! - even[k - 1]!).toBeCloseTo(even[1]! - even[0]!, 9);
  });

  it("the reference's vmin/vmax/step still gives exactly its levels", () => {
    const svg = contourFigure(valleyWithWall(), { vmin: 0.1, vmax: 10, step: 0.5 });
    const want = Array.from({ length: 20 }, (_, k) => Number((0.1 + 0.5 * k).toFixed(1)));
    expect(drawnLevels(svg)).toEqual(want.filter((v) => v < 30));
  });

  it("a trajectory's contours cover the values inside the path's bounding box", () => {
    const f = valleyWithWall();
    const svg = trajectoryFigure(f, path, { xlabel: "1st PC", ylabel: "2nd PC" });
    // The grid values inside the path's box (5 % margin), computed here from the closed form.
    const [x0, x1] = [Math.min(...path.x), Math.max(...path.x)];
    const [y0, y1] = [Math.min(...path.y), Math.max(...path.y)];
    const inBox: number[] = [];
    for (let i = 0; i < f.x.length; i++) {
      for (let j = 0; j < f.y.length; j++) {
        const x = f.x[i]!;
        const y = f.y[j]!;
        const mx = 0.05 * (x1 - x0);
        const my = 0.05 * (y1 - y0);
        if (x >= x0 - mx && x <= x1 + mx && y >= y0 - my && y <= y1 + my)
          inBox.push(f.values[i * f.y.length + j]!);
      }
    }
    const lo = Math.min(...inBox);
    const hi = Math.max(...inBox);
    const levels = drawnLevels(svg);
    expect(levels.filter((v) => v > lo && v < hi).length).toBeGreaterThanOrEqual(10);
    expect(Math.max(...levels)).toBeLessThan(30);
    expectGolden("trajectory-valley", svg);
  });

  it("filled contours band the valley too, and accuracies crowd towards their maximum", () => {
    const f = valleyWithWall();
    expect(drawnLevels(filledContourFigure(f), "band").filter((v) => v < 2).length).toBeGreaterThanOrEqual(7);
    const acc = { ...f, values: Array.from(f.values, (v) => 100 * Math.exp(-v / 2)) };
    const up = drawnLevels(contourFigure(acc, { focus: "max" }));
    expect(up.filter((v) => v > 50).length).toBeGreaterThanOrEqual(7);
    expect(() => contourFigure(f, { spacing: "dense" as "even" })).toThrow(
      /contourFigure\(\): 'spacing' must be "focus" or "even", got 'dense'/,
    );
  });
});
