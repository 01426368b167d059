// Many random planes: on an exact quadratic every plane's surface is a known paraboloid, so the
// per-plane sharpness (mean increase within a radius, curvatures of the quadratic fit) and its
// spread have closed forms; the planes resume like any surface; the CLI writes them and the summary.

import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { axisValues } from "../../src/core/grid.ts";
import type { Dataset } from "../../src/data/dataset.ts";
import { readDirectionFile } from "../../src/formats/direction-file.ts";
import { emptySurface, readSurface } from "../../src/formats/surface-file.ts";
import { loadDirections } from "../../src/landscape/plan.ts";
import { computePlanes, planeFiles, planeSharpness, spread } from "../../src/landscape/planes.ts";
import { runCli, tempDir } from "../helpers.ts";
import { quadraticModel } from "./_quadratic.ts";

const { dir, cleanup } = tempDir("losscape-planes-");
afterAll(cleanup);
const tiny: Dataset = {
  name: "one",
  shape: [1],
  inputs: new Float32Array(1),
  labels: new Uint8Array(1),
  classes: 2,
};

const h = [2, 0.5, 3, 1, 4];
const theta = new Float32Array([0.3, -0.7, 0.2, 1.1, -0.4]);
const dot = (a: ArrayLike<number>, b: ArrayLike<number>, w: readonly number[] = h) =>
  w.reduce((s, v, i) => s + v * a[i]! * b[i]!, 0);

/** The exact paraboloid of plane (d1, d2) through theta: L(a, b) - L(theta). */
function closedForm(d1: Float32Array, d2: Float32Array) {
  const g = [dot(d1, theta), dot(d2, theta)];
  const A = [dot(d1, d1), dot(d1, d2), dot(d2, d2)] as const;
  const rise = (a: number, b: number) =>
    a * g[0]! + b * g[1]! + 0.5 * (a * a * A[0] + 2 * a * b * A[1] + b * b * A[2]);
  const mid = (A[0] + A[2]) / 2;
  const rad = Math.hypot((A[0] - A[2]) / 2, A[1]);
  return { rise, curvatures: [mid + rad, mid - rad] };
}

describe("computePlanes", () => {
  const grid = { x: axisValues({ min: -1, max: 1, num: 5 }), y: axisValues({ min: -1, max: 1, num: 5 }) };
  const out = join(dir, "quad.h5");

  it("computes K planes with disjoint seeds and the sharpness of each in closed form", async () => {
    const { model, engine } = quadraticModel(h);
    const seen: number[] = [];
    const r = await computePlanes({
      model,
      engine,
      theta,
      grid,
      train: tiny,
      out,
      planes: 3,
      plan: { dims: 2, seed: 3 },
      radius: 0.6,
      onPlane: (_k, f) => seen.push(f.seed),
    });
    expect(seen).toEqual([3, 5, 7]);
    expect(r.radius).toBe(0.6);
    for (const [k, p] of r.planes.entries()) {
      expect(p.path).toBe(planeFiles(out, k).path);
      expect(readDirectionFile(p.dirFile).meta.seed).toBe(String(3 + 2 * k));
      expect(readSurface(p.path).meta.plane).toBe(`${k} of 3`);
      const [d1, d2] = loadDirections(model, p.dirFile) as [Float32Array, Float32Array];
      const exact = closedForm(d1, d2);
      // Within radius 0.6 of the centre on this grid: the 4 neighbours at distance 0.5.
      const expected = [exact.rise(0.5, 0), exact.rise(-0.5, 0), exact.rise(0, 0.5), exact.rise(0, -0.5)];
      expect(p.points).toBe(5);
      expect(p.centreFrom).toBe("grid");
      expect(p.meanIncrease).toBeCloseTo(expected.reduce((a, b) => a + b, 0) / 4, 5);
      // 5 points do not determine 6 coefficients: no fit.
      expect(Number.isNaN(p.curvatures[0])).toBe(true);
    }
    const increases = r.planes.map((p) => p.meanIncrease);
    expect(r.meanIncrease.mean).toBeCloseTo(increases.reduce((a, b) => a + b, 0) / 3, 12);
    expect(r.meanIncrease.min).toBe(Math.min(...increases));
    expect(r.meanIncrease.max).toBe(Math.max(...increases));
    expect(r.meanIncrease.count).toBe(3);
  });

  it("resumes every plane (nothing recomputed) and fits the curvatures of the paraboloid", async () => {
    const { model, engine } = quadraticModel(h);
    const before = statSync(planeFiles(out, 1).path).mtimeMs;
    let evaluated = 0;
    const counting = {
      ...engine,
      evaluate: (p: Float32Array, d: Dataset) => {
        evaluated++;
        return engine.evaluate(p, d);
      },
    };
    // A radius of 2 holds the whole grid (25 points).
    const r = await computePlanes({
      model,
      engine: counting,
      theta,
      grid,
      train: tiny,
      out,
      planes: 3,
      plan: { dims: 2, seed: 3 },
      radius: 2,
    });
    expect(evaluated).toBe(0);
    expect(statSync(planeFiles(out, 1).path).mtimeMs).toBe(before);
    for (const p of r.planes) {
      const [d1, d2] = loadDirections(model, p.dirFile) as [Float32Array, Float32Array];
      const exact = closedForm(d1, d2);
      expect(p.points).toBe(25);
      expect(p.curvatures[0]).toBeCloseTo(exact.curvatures[0]!, 5);
      expect(p.curvatures[1]).toBeCloseTo(exact.curvatures[1]!, 5);
      expect(p.fitRms).toBeLessThan(1e-6);
    }
    const d = await computePlanes({
      model,
      engine,
      theta,
      grid,
      train: tiny,
      out,
      planes: 1,
      plan: { dims: 2, seed: 3 },
    });
    // The default: half the smaller largest |coordinate| (0.5), at least sqrt(2) grid steps (0.707): 9 points.
    expect(d.radius).toBeCloseTo(Math.SQRT1_2, 12);
    expect(d.planes[0]!.points).toBe(9);
    expect(d.planes[0]!.curvatures[0]).toBeCloseTo(r.planes[0]!.curvatures[0], 5);
  });

  it("refuses a 1D grid, no planes and another seed for existing direction files", async () => {
    const { model, engine } = quadraticModel(h);
    const job = {
      model,
      engine,
      theta,
      grid,
      train: tiny,
      out,
      planes: 2,
      plan: { dims: 2 as const, seed: 3 },
    };
    await expect(computePlanes({ ...job, grid: { x: grid.x, y: null } })).rejects.toThrow(/the grid is 1D/);
    await expect(computePlanes({ ...job, planes: 0 })).rejects.toThrow(
      /'planes' must be a positive integer, got 0/,
    );
    await expect(computePlanes({ ...job, plan: { dims: 2, seed: 4 } })).rejects.toThrow(
      /was made with seed '3', not '4'/,
    );
  });
});

describe("planeSharpness and spread", () => {
  it("uses the fit's constant where the grid lacks the centre", () => {
    const x = axisValues({ min: -1, max: 1, num: 4 });
    const s = emptySurface(x, x, ["train_loss"], "none", {});
    const f = (a: number, b: number) => 2 + 0.5 * a - b + 0.5 * (3 * a * a + 2 * 0.5 * a * b + 1 * b * b);
    for (let i = 0; i < 4; i++)
      for (let j = 0; j < 4; j++) {
        s.values.train_loss![i * 4 + j] = f(x[i]!, x[j]!);
        s.done[i * 4 + j] = 1;
      }
    const p = planeSharpness(s, 10);
    expect(p.centreFrom).toBe("fit");
    expect(p.centre).toBeCloseTo(2, 10);
    const mid = 2;
    const rad = Math.hypot(1, 0.5);
    expect(p.curvatures[0]).toBeCloseTo(mid + rad, 10);
    expect(p.curvatures[1]).toBeCloseTo(mid - rad, 10);
    expect(() => planeSharpness(s, 0)).toThrow(/'radius' must be a positive number, got 0/);
    expect(() => planeSharpness({ ...s, y: null }, 1)).toThrow(/'surface' is 1D/);
  });

  it("spread gives the mean, sample standard deviation, min and max", () => {
    expect(spread([1, 2, 3, Number.NaN])).toEqual({ mean: 2, sd: 1, min: 1, max: 3, count: 3 });
    expect(Number.isNaN(spread([4]).sd)).toBe(true);
  });
});

describe("losscape surface --planes", () => {
  const common = ["--model", "mlp", "--subset", "32", "--threads", "1", "--x", "-1:1:3", "--y", "-1:1:3"];

  it("writes one surface and direction file per plane and a summary of the spread", () => {
    const out = join(dir, "cli.h5");
    const r = runCli("surface", ...common, "--planes", "2", "--out", out);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/plane 1\/2: seeds 0, 1; created .*cli-plane0\.directions\.h5/);
    expect(r.out).toMatch(/plane 2\/2: seeds 2, 3;/);
    expect(r.out).toMatch(/\| mean increase \| -?\d/);
    expect(r.out).toMatch(/within radius 1\.414 of the centre/);
    for (const k of [0, 1])
      expect(readSurface(planeFiles(out, k).path).done.every((v) => v === 1)).toBe(true);
    const summary = JSON.parse(readFileSync(join(dir, "cli-planes.json"), "utf8")) as { planes: unknown[] };
    expect(summary.planes).toHaveLength(2);
    const bad = runCli(
      "surface",
      ...common,
      "--planes",
      "2",
      "--out",
      join(dir, "bad.h5"),
      "--dir-file",
      "x.h5",
    );
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/--planes makes one direction file per plane .*--dir-file does not apply/);
    expect(existsSync(join(dir, "bad-plane0.h5"))).toBe(false);
  });
});
