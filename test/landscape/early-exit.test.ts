// Doing less work without changing a number: points stopped at a non-finite loss, points capped
// with a true lower bound (--loss-cap), the standard error of every point's mean, and the cost
// estimate printed before the work (--plan).

import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { randomDirection } from "../../src/core/directions.ts";
import { axisValues } from "../../src/core/grid.ts";
import { formatHessianCost, probeHessianCost } from "../../src/curvature/cost.ts";
import type { Dataset } from "../../src/data/dataset.ts";
import { loadDataset } from "../../src/data/load.ts";
import { createOrtEngine } from "../../src/engine/ort.ts";
import { POINT, readSurface } from "../../src/formats/surface-file.ts";
import { formatCost, formatDuration, probeCost } from "../../src/landscape/cost.ts";
import { computeSurface } from "../../src/landscape/surface.ts";
import { readOnnx } from "../../src/model/import.ts";
import { contourFigure } from "../../src/plot/contour.ts";
import { heatmapFigure } from "../../src/plot/heatmap.ts";
import { zooModel } from "../../src/zoo/zoo.ts";
import { tempDir } from "../helpers.ts";

const { dir, cleanup } = tempDir("losscape-early-");
afterAll(cleanup);
const BIN = new URL("../../bin/losscape.js", import.meta.url).pathname;
const TASKS = new URL("../../fixtures/tasks/", import.meta.url).pathname;

const train = loadDataset("fashion-mnist", "train", { subset: { count: 300 }, seed: 2 });
const model = zooModel("mlp", { seed: 4 });

/** Per-sample cross-entropy in float64 from the logits. */
function sampleLosses(logits: Float32Array, labels: ArrayLike<number>, classes: number): number[] {
  return Array.from(labels, (label, i) => {
    const z = Array.from(logits.subarray(i * classes, (i + 1) * classes));
    const max = Math.max(...z);
    return Math.log(z.reduce((a, v) => a + Math.exp(v - max), 0)) + max - z[label]!;
  });
}

describe("standard error of a point's loss", () => {
  it("is the sample standard deviation of the per-sample losses / sqrt(n)", async () => {
    const engine = await createOrtEngine(model, { threads: 1 });
    const m = await engine.evaluate(model.initial, train, { batchSize: 64 });
    const logits = await engine.logits(model.initial, train, 0, 300);
    await engine.dispose();
    const l = sampleLosses(logits, train.labels, 10);
    const mean = l.reduce((a, b) => a + b, 0) / l.length;
    const sd = Math.sqrt(l.reduce((a, v) => a + (v - mean) ** 2, 0) / (l.length - 1));
    expect(m.loss).toBeCloseTo(mean, 12);
    expect(Math.abs(m.lossSe - sd / Math.sqrt(300))).toBeLessThan(1e-12);
  });

  it("takes the windows, not their correlated tokens, as the draws of a language model", async () => {
    const lm = await readOnnx(join(TASKS, "lm.onnx"));
    const { readSafetensors } = await import("../../src/formats/safetensors.ts");
    const { tensors } = readSafetensors(join(TASKS, "lm-batch.safetensors"));
    const ints = (t: { data: unknown }) => Int32Array.from(t.data as ArrayLike<number | bigint>, Number);
    const x = tensors.get("x")!;
    const y = tensors.get("y")!;
    const data: Dataset = {
      name: "lm",
      shape: x.shape.slice(1),
      inputs: ints(x),
      labels: ints(y),
      targetShape: y.shape.slice(1),
      classes: 32,
    };
    const engine = await createOrtEngine(lm, { threads: 1 });
    const m = await engine.evaluate(lm.initial, data, {});
    const n = y.shape[0]!;
    const T = y.shape[1]!;
    const logits = await engine.logits(lm.initial, data, 0, n);
    await engine.dispose();
    const V = logits.length / (n * T);
    // Per window: the loss summed over its scored tokens s_i and their count c_i.
    const s: number[] = [];
    const c: number[] = [];
    for (let i = 0; i < n; i++) {
      let si = 0;
      let ci = 0;
      for (let t = 0; t < T; t++) {
        const label = data.labels[i * T + t]!;
        if (label === -100) continue;
        si += sampleLosses(logits.subarray((i * T + t) * V, (i * T + t + 1) * V), [label], V)[0]!;
        ci++;
      }
      s.push(si);
      c.push(ci);
    }
    const S = s.reduce((a, b) => a + b, 0);
    const C = c.reduce((a, b) => a + b, 0);
    const mean = S / C;
    const se = Math.sqrt((n / (n - 1)) * s.reduce((a, v, i) => a + (v - mean * c[i]!) ** 2, 0)) / C;
    expect(Math.abs(m.loss - mean)).toBeLessThan(1e-6 * mean);
    expect(Math.abs(m.lossSe - se)).toBeLessThan(1e-5 * se);
  });
});

describe("early exit", () => {
  it("stops a point at the first batch whose loss is not finite", async () => {
    const engine = await createOrtEngine(model, { threads: 1 });
    const broken = model.initial.slice();
    broken.fill(Number.NaN, 0, 10);
    const batches: number[] = [];
    const m = await engine.evaluate(broken, train, { batchSize: 50, onProgress: (d) => batches.push(d) });
    await engine.dispose();
    expect(batches).toEqual([50]);
    expect(m.loss).toBeNaN();
    expect(m.accuracy).toBeNaN();
    expect(m.stopped).toBe("diverged");
  });

  it("never changes a value below --loss-cap, and stores a true lower bound above it", async () => {
    const engine = await createOrtEngine(model, { threads: 1 });
    const d1 = randomDirection(model.initial, model.params, { seed: 1 });
    const d2 = randomDirection(model.initial, model.params, { seed: 2 });
    const grid = { x: axisValues({ min: -3, max: 3, num: 7 }), y: axisValues({ min: -3, max: 3, num: 5 }) };
    const job = { engine, theta: model.initial, directions: [d1, d2], grid, train, dirFile: "none" };
    const exact = await computeSurface({ ...job, path: join(dir, "exact.h5"), evaluate: { batchSize: 50 } });
    const loss = exact.values.train_loss!;
    const sorted = Array.from(loss).sort((a, b) => a - b);
    const cap = sorted[Math.floor(sorted.length / 2)]!;
    const path = join(dir, "capped.h5");
    const capped = await computeSurface({ ...job, path, evaluate: { batchSize: 50, lossCap: cap } });
    let below = 0;
    let above = 0;
    for (let k = 0; k < loss.length; k++) {
      if (loss[k]! <= cap) {
        below++;
        expect(capped.done[k]).toBe(POINT.COMPUTED);
        for (const q of ["train_loss", "train_acc", "train_loss_se"] as const)
          expect(Object.is(capped.values[q]![k], exact.values[q]![k])).toBe(true);
      } else {
        above++;
        expect(capped.done[k]).toBe(POINT.CAPPED);
        expect(capped.values.train_loss![k]!).toBeGreaterThan(cap);
        expect(capped.values.train_loss![k]!).toBeLessThanOrEqual(loss[k]! + 1e-12);
      }
    }
    expect(below).toBeGreaterThan(0);
    expect(above).toBeGreaterThan(0);
    expect(readSurface(path).done).toEqual(capped.done);
    expect(readSurface(path).meta.loss_cap).toBe(String(cap));
    // A resume without the cap computes the capped points again, exactly.
    const resumed = await computeSurface({ ...job, path, evaluate: { batchSize: 50 } });
    expect(Array.from(resumed.values.train_loss!)).toEqual(Array.from(loss));
    expect(resumed.done.every((v) => v === POINT.COMPUTED)).toBe(true);
    expect(resumed.meta.loss_cap).toBe("none");
    await engine.dispose();
  });

  it("refuses a negative cap and a cap on a graph's own loss, naming them", async () => {
    const engine = await createOrtEngine(model, { threads: 1 });
    await expect(engine.evaluate(model.initial, train, { lossCap: -1 })).rejects.toThrow(
      /evaluate\(\): 'lossCap' must be a non-negative number, got -1/,
    );
    await engine.dispose();
    const own = await readOnnx(join(TASKS, "ownloss.onnx"), { lossOutput: "loss" });
    const e2 = await createOrtEngine(own, { threads: 1 });
    await expect(e2.evaluate(own.initial, train, { lossCap: 1 })).rejects.toThrow(
      /'lossCap' needs a loss that is never negative, and model 'ownloss.onnx' computes its own loss \('loss'\)/,
    );
    await e2.dispose();
  });
});

describe("cost before work", () => {
  it("extrapolates a timed probe to every point", async () => {
    const engine = await createOrtEngine(model, { threads: 1 });
    const cost = await probeCost(engine, model.initial, train, train, 51 * 51, { batchSize: 100 });
    await engine.dispose();
    expect(cost.points).toBe(2601);
    expect(cost.samplesPerPoint).toBe(600);
    expect(cost.secondsPerSample).toBeGreaterThan(0);
    expect(cost.fixedSeconds).toBeGreaterThanOrEqual(0);
    expect(cost.secondsPerPoint).toBeCloseTo(cost.fixedSeconds + 600 * cost.secondsPerSample, 12);
    expect(cost.seconds).toBeCloseTo(2601 * cost.secondsPerPoint, 9);
    expect(formatCost(cost)).toMatch(
      /^plan: 2601 points x 600 samples = 1\.56 M sample evaluations; .* s per point; about .* on this machine$/,
    );
    expect([formatDuration(4.25), formatDuration(45), formatDuration(200), formatDuration(7500)]).toEqual([
      "4.3 s",
      "45 s",
      "3 min 20 s",
      "2 h 05 min",
    ]);
  });

  it("--plan prints the estimate and writes nothing; a bad --loss-cap is named", () => {
    const out = join(dir, "planned.h5");
    const before = readdirSync(dir).length;
    const r = spawnSync(
      process.execPath,
      [
        BIN,
        "surface",
        "--model",
        "mlp",
        "--subset",
        "200",
        "--x",
        "-1:1:11",
        "--y",
        "-1:1:11",
        "--out",
        out,
        "--plan",
      ],
      { encoding: "utf8", env: { ...process.env, CI: "true" } },
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(
      /plan: 121 points x 200 samples = 24\.2 k sample evaluations; .* s per point; about/,
    );
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).length).toBe(before);
    const bad = spawnSync(
      process.execPath,
      [BIN, "surface", "--model", "mlp", "--x", "-1:1:3", "--out", out, "--loss-cap", "-2"],
      { encoding: "utf8", env: { ...process.env, CI: "true" } },
    );
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/--loss-cap expects a number >= 0, got '-2'/);
  });
});

describe("cost before a Hessian", () => {
  it("probes Hessian-vector products and bounds the work by points x products", async () => {
    const data = loadDataset("fashion-mnist", "train", { subset: { count: 120 }, seed: 1 });
    const cost = await probeHessianCost(model, model.initial, data, {
      points: 25,
      maxProducts: 40,
      batchSize: 50,
      threads: 1,
    });
    expect(cost.samples).toBe(120);
    expect(cost.secondsPerProduct).toBeGreaterThan(0);
    expect(cost.seconds).toBeCloseTo(25 * 40 * cost.secondsPerProduct, 9);
    expect(formatHessianCost(cost)).toMatch(
      /^plan: 25 point\(s\) x at most 40 Hessian-vector products x 120 samples; one product takes .* s; at most .* on this machine/,
    );
  });

  it("hessian --plan prints the estimate for one point and for a grid's pending points, and writes nothing", () => {
    const out = join(dir, "hplan.h5");
    const before = readdirSync(dir).length;
    const common = ["hessian", "--model", "mlp", "--subset", "100", "--iterations", "30"];
    const one = spawnSync(process.execPath, [BIN, ...common, "--trace", "5", "--plan"], {
      encoding: "utf8",
      env: { ...process.env, CI: "true" },
    });
    expect(one.status, one.stderr).toBe(0);
    expect(one.stdout).toMatch(/plan: 1 point\(s\) x at most 35 Hessian-vector products x 100 samples/);
    expect(one.stdout).not.toMatch(/lambda_max/);
    const grid = spawnSync(
      process.execPath,
      [BIN, ...common, "--x", "-1:1:3", "--y", "-1:1:3", "--out", out, "--shard", "0/2", "--plan"],
      { encoding: "utf8", env: { ...process.env, CI: "true" } },
    );
    expect(grid.status, grid.stderr).toBe(0);
    expect(grid.stdout).toMatch(/plan: 5 point\(s\) x at most 30 Hessian-vector products x 100 samples/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).length).toBe(before);
  });
});

describe("capped points in figures", () => {
  it("draw as their own region, outside the contours and the color range, with a legend entry", () => {
    const x = [0, 1, 2, 3];
    const y = [0, 1, 2];
    const values = Float64Array.from({ length: 12 }, (_, k) => 1 + 0.1 * k);
    values[11] = 50; // a bound above the cap
    const done = new Uint8Array(12).fill(POINT.COMPUTED);
    done[11] = POINT.CAPPED;
    for (const svg of [heatmapFigure({ x, y, values, done }), contourFigure({ x, y, values, done })]) {
      expect(svg).toMatch(/class="capped"/);
      expect(svg).toMatch(/above the loss cap \(lower bound only\)/);
      expect(svg).not.toMatch(/>50</);
    }
    const plain = heatmapFigure({ x, y, values, done: new Uint8Array(12).fill(POINT.COMPUTED) });
    expect(plain).not.toMatch(/capped/);
  });
});
