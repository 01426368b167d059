// Adaptive grids (--refine): every interpolated point is within TOL of the true value on an
// analytic surface and of the fully computed plane of a real model; refinement is resumable,
// shardable (merge keeps computed over interpolated values) and a resume without --refine computes
// the rest.

import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { randomDirection } from "../../src/core/directions.ts";
import { axisValues } from "../../src/core/grid.ts";
import { coarseCells, coarseStride, fillRefined, refinePass } from "../../src/core/refine.ts";
import type { Dataset } from "../../src/data/dataset.ts";
import { loadDataset } from "../../src/data/load.ts";
import type { Engine, Metrics } from "../../src/engine/engine.ts";
import { createOrtEngine } from "../../src/engine/ort.ts";
import { POINT, readSurface } from "../../src/formats/surface-file.ts";
import { computeSurface, mergeSurfaces, parseRefine } from "../../src/landscape/surface.ts";
import { zooModel } from "../../src/zoo/zoo.ts";
import { tempDir } from "../helpers.ts";
import { quadraticModel } from "./_quadratic.ts";

const { dir, cleanup } = tempDir("losscape-refine-");
afterAll(cleanup);
const BIN = new URL("../../bin/losscape.js", import.meta.url).pathname;
const one: Dataset = {
  name: "one",
  shape: [1],
  inputs: new Float32Array(1),
  labels: new Uint8Array(1),
  classes: 2,
};

/** A smooth non-polynomial surface with a bump, f(a, b) at params (a, b). */
const f = (a: number, b: number) =>
  Math.log1p(Math.exp(2 * a - 0.5)) + 0.3 * Math.sin(2 * b) + 0.5 * Math.exp(-2 * (a * a + b * b));

/** An engine whose loss is f of its two parameters (the surface is f on the grid). */
function analytic(): { engine: Engine; evaluations: () => number } {
  const { model } = quadraticModel([1, 1]);
  let n = 0;
  const engine: Engine = {
    model,
    async evaluate(p: Float32Array): Promise<Metrics> {
      n++;
      return { loss: f(p[0]!, p[1]!), accuracy: 0.5, count: 1, lossSe: Number.NaN };
    },
    async logits() {
      return new Float32Array(0);
    },
    async dispose() {},
  };
  return { engine, evaluations: () => n };
}

describe("refinement", () => {
  it("meets TOL at every interpolated point of an analytic surface, computing a fraction of the grid", async () => {
    for (const tol of [0.05, 0.01, 0.002]) {
      const { engine, evaluations } = analytic();
      const grid = {
        x: axisValues({ min: -1, max: 1, num: 51 }),
        y: axisValues({ min: -1, max: 1, num: 41 }),
      };
      const s = await computeSurface({
        engine,
        theta: new Float32Array(2),
        directions: [Float32Array.of(1, 0), Float32Array.of(0, 1)],
        grid,
        train: one,
        path: join(dir, `analytic-${tol}.h5`),
        dirFile: "none",
        refine: String(tol),
      });
      let worst = 0;
      let interpolated = 0;
      for (let i = 0; i < 51; i++)
        for (let j = 0; j < 41; j++) {
          const k = i * 41 + j;
          expect(s.done[k] === POINT.COMPUTED || s.done[k] === POINT.INTERPOLATED).toBe(true);
          // Computed points hold f in float32 parameters; interpolated ones are within tol of f.
          const want = f(Math.fround(grid.x[i]!), Math.fround(grid.y[j]!));
          if (s.done[k] === POINT.INTERPOLATED) {
            interpolated++;
            worst = Math.max(worst, Math.abs(s.values.train_loss![k]! - want));
          } else expect(s.values.train_loss![k]).toBe(want);
        }
      expect(worst).toBeLessThanOrEqual(tol);
      expect(interpolated).toBeGreaterThan(0);
      expect(evaluations()).toBe(51 * 41 - interpolated);
      // A narrow bump needs many points at a tight tolerance: fewer at a loose one.
      expect(evaluations()).toBeLessThan({ 0.05: 0.3, 0.01: 0.9, 0.002: 1 }[tol]! * 51 * 41);
    }
  });

  it("walks a 1D line too, and refines non-finite regions down to single steps", () => {
    const n = 65;
    const v = Float64Array.from({ length: n }, (_, i) =>
      i >= 40 && i <= 42 ? Number.NaN : Math.sin(i / 10),
    );
    const known = new Uint8Array(n);
    for (;;) {
      const pass = refinePass({ nx: n, ny: 1, computed: (k) => known[k] === 1, tested: [v], tol: 0.01 });
      if (pass.needed.length === 0) {
        const estimate = Float64Array.from(v, (x, k) => (known[k] ? x : Number.NaN));
        fillRefined(
          n,
          1,
          pass.accepted,
          (k) => known[k] === 1,
          (k) => known[k] === 1 && Number.isFinite(v[k]!),
          [estimate],
        );
        for (let k = 0; k < n; k++) {
          if (Number.isNaN(v[k]!)) expect(known[k]).toBe(1);
          else expect(Math.abs(estimate[k]! - v[k]!)).toBeLessThanOrEqual(0.01);
        }
        for (const k of [39, 40, 41, 42, 43]) expect(known[k]).toBe(1);
        break;
      }
      for (const k of pass.needed) known[k] = 1;
    }
    expect(coarseStride(65)).toBe(16);
    expect(coarseCells(51, 51).length).toBe(49);
    expect(parseRefine("0.01")).toBe("0.01");
    expect(parseRefine("10%")).toBe("10%");
    expect(() => parseRefine("-1")).toThrow(
      /--refine '-1': expected a positive tolerance in loss units \(0\.01\) or a percentage/,
    );
  });

  it("is within TOL of the fully computed plane of a real model, sharded too", async () => {
    const train = loadDataset("fashion-mnist", "train", { subset: { count: 200 }, seed: 1 });
    const model = zooModel("mlp", { seed: 2 });
    const engine = await createOrtEngine(model, { threads: 1 });
    const directions = [1, 2].map((seed) => randomDirection(model.initial, model.params, { seed }));
    const grid = { x: axisValues({ min: -1, max: 1, num: 25 }), y: axisValues({ min: -1, max: 1, num: 25 }) };
    const job = {
      engine,
      theta: model.initial,
      directions,
      grid,
      train,
      dirFile: "none",
      evaluate: { batchSize: 100 },
    };
    const full = await computeSurface({ ...job, path: join(dir, "full.h5") });
    const tol = 0.01;
    const refined = await computeSurface({ ...job, path: join(dir, "refined.h5"), refine: String(tol) });
    let worst = 0;
    let computed = 0;
    for (let k = 0; k < 625; k++) {
      if (refined.done[k] === POINT.COMPUTED) {
        computed++;
        expect(refined.values.train_loss![k]).toBe(full.values.train_loss![k]);
      } else worst = Math.max(worst, Math.abs(refined.values.train_loss![k]! - full.values.train_loss![k]!));
    }
    expect(worst).toBeLessThanOrEqual(tol);
    expect(computed).toBeLessThan(625);
    // Two shards refine their own coarse cells; the merge replays the interpolation.
    const parts = [];
    for (const index of [0, 1])
      parts.push(
        await computeSurface({
          ...job,
          path: join(dir, `refined.${index}.h5`),
          refine: String(tol),
          shard: { index, count: 2 },
        }),
      );
    // Each shard decides with the points it has; the merge keeps computed values over interpolated ones.
    const merged = mergeSurfaces(parts, ["refined.0.h5", "refined.1.h5"]);
    expect(merged.done.every((v) => v === POINT.COMPUTED || v === POINT.INTERPOLATED)).toBe(true);
    for (let k = 0; k < 625; k++) {
      const d = Math.abs(merged.values.train_loss![k]! - full.values.train_loss![k]!);
      if (merged.done[k] === POINT.COMPUTED) expect(d).toBe(0);
      else expect(d).toBeLessThanOrEqual(tol);
    }
    // A resume without --refine computes the interpolated points: the full plane, bit for bit.
    const completed = await computeSurface({ ...job, path: join(dir, "refined.h5") });
    expect(Array.from(completed.values.train_loss!)).toEqual(Array.from(full.values.train_loss!));
    expect(completed.done.every((v) => v === POINT.COMPUTED)).toBe(true);
    await engine.dispose();
  });

  it("runs from the CLI with --refine and reports interpolated points", () => {
    const out = join(dir, "cli.h5");
    const args = [
      BIN,
      "surface",
      "--model",
      "mlp",
      "--subset",
      "100",
      "--x",
      "-1:1:17",
      "--y",
      "-1:1:17",
      "--out",
      out,
      "--refine",
      "50%",
    ];
    const r = spawnSync(process.execPath, args, { encoding: "utf8", env: { ...process.env, CI: "true" } });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/refined to 50%: computed \d+ of 289 points, \d+ interpolated/);
    const s = readSurface(out);
    expect(s.meta.refine).toBe("50%");
    expect(s.done.some((v) => v === POINT.INTERPOLATED)).toBe(true);
    expect(s.done.every((v) => v === POINT.COMPUTED || v === POINT.INTERPOLATED)).toBe(true);
    const bad = spawnSync(process.execPath, [...args.slice(0, -1), "fast"], {
      encoding: "utf8",
      env: { ...process.env, CI: "true" },
    });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/--refine 'fast': expected a positive tolerance/);
  });
});
