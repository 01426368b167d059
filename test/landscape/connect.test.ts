// Mode connectivity (src/landscape/connect.ts): the curve's geometry, the control point's
// closed-form optimum on a quadratic loss, the chained gradient against finite differences, barrier
// heights of known paths, checkpoint and resume, and `losscape connect`.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { firstSamples } from "../../fixtures/zoo-params.ts";
import { createGradientSession } from "../../src/autodiff/session.ts";
import { Random } from "../../src/core/random.ts";
import { loadEmbedded } from "../../src/data/embedded.ts";
import { readSurface } from "../../src/formats/surface-file.ts";
import {
  barrierHeight,
  type CurveKind,
  controlGradient,
  curveLearningRate,
  curvePlane,
  curvePoint,
  curveWeights,
  evaluateConnection,
  fitCurve,
  initialCurveState,
  trainCurve,
} from "../../src/landscape/connect.ts";
import { zooModel } from "../../src/zoo/zoo.ts";
import { expectAllClose, runCli, tempDir } from "../helpers.ts";
import { quadraticModel } from "./_quadratic.ts";

const { dir, cleanup } = tempDir("losscape-connect-");
afterAll(cleanup);

function randomVector(n: number, seed: number): Float32Array {
  const rng = new Random(seed);
  return Float32Array.from({ length: n }, () => rng.normal());
}

describe("curve geometry", () => {
  it.each(["bezier", "polychain"] as const)(
    "%s: weights sum to 1, the curve runs from w1 to w2, b(t) is d phi / d theta",
    (kind) => {
      const w1 = randomVector(5, 1);
      const w2 = randomVector(5, 2);
      const theta = randomVector(5, 3);
      expectAllClose(curvePoint({ kind, from: w1, to: w2, theta }, 0), w1, { rtol: 0, atol: 0 });
      expectAllClose(curvePoint({ kind, from: w1, to: w2, theta }, 1), w2, { rtol: 0, atol: 0 });
      for (const t of [0.1, 0.37, 0.5, 0.81]) {
        const [a, b, c] = curveWeights(kind, t);
        expect(a + b + c).toBeCloseTo(1, 14);
        // d phi_i / d theta_i by central differences (phi is linear in theta: exact up to rounding).
        const h = 1e-2;
        const up = theta.slice();
        up[2]! += h;
        const down = theta.slice();
        down[2]! -= h;
        const fd =
          (curvePoint({ kind, from: w1, to: w2, theta: up }, t)[2]! -
            curvePoint({ kind, from: w1, to: w2, theta: down }, t)[2]!) /
          (2 * h);
        expect(fd).toBeCloseTo(b, 4);
      }
      // The polygonal chain passes through theta at t = 1/2.
      if (kind === "polychain")
        expectAllClose(curvePoint({ kind, from: w1, to: w2, theta }, 0.5), theta, { rtol: 1e-6 });
    },
  );

  it.each(["bezier", "polychain"] as const)(
    "%s: the curve lies in the plane w1 + x u + y v, theta at (alpha, 1)",
    (kind) => {
      const w1 = randomVector(7, 4);
      const w2 = randomVector(7, 5);
      const theta = randomVector(7, 6);
      const t = [0, 0.2, 0.5, 0.9, 1];
      const plane = curvePlane({ kind, from: w1, to: w2, theta }, t);
      let uv = 0;
      for (let i = 0; i < 7; i++) uv += plane.u[i]! * plane.v[i]!;
      expect(Math.abs(uv)).toBeLessThan(1e-5 * plane.normU * plane.normV);
      const at = (x: number, y: number) => w1.map((w, i) => w + x * plane.u[i]! + y * plane.v[i]!);
      expectAllClose(at(plane.alpha, 1), theta, { rtol: 1e-5, atol: 1e-5 });
      for (const [k, ti] of t.entries())
        expectAllClose(at(plane.x[k]!, plane.y[k]!), curvePoint({ kind, from: w1, to: w2, theta }, ti), {
          rtol: 1e-5,
          atol: 1e-5,
        });
      expect(() => curvePlane({ kind, from: w1, to: w1, theta }, t)).toThrow(
        /'from' and 'to' are the same point/,
      );
      expect(() =>
        curvePlane({ kind, from: w1, to: w2, theta: w1.map((v, i) => 0.5 * (v + w2[i]!)) }, t),
      ).toThrow(/control point lies on the line/);
    },
  );

  it("the learning rate is constant for half the run, then falls linearly to 1 % at 90 %", () => {
    expect(curveLearningRate(0.1, 0, 100)).toBe(0.1);
    expect(curveLearningRate(0.1, 50, 100)).toBe(0.1);
    expect(curveLearningRate(0.1, 70, 100)).toBeCloseTo(0.1 * (1 - 0.5 * 0.99), 12);
    expect(curveLearningRate(0.1, 95, 100)).toBeCloseTo(0.001, 12);
  });
});

/**
 * L(w) = 1/2 (w - c)^T A (w - c): E_t L(phi(t)) is a quadratic in theta whose minimiser solves
 * E[b^2] theta = E[b] c - E[ab] w1 - E[bc] w2 (A invertible). Bezier: E[b] = 1/3, E[b^2] = 2/15,
 * E[ab] = E[bc] = 1/10, so theta* = 2.5 c - 0.75 (w1 + w2). Polygonal chain: E[b] = 1/2,
 * E[b^2] = 1/3, E[ab] = E[bc] = 1/12, so theta* = 1.5 c - 0.25 (w1 + w2).
 */
const A = [
  [2, 0.5, 0],
  [0.5, 1, 0.2],
  [0, 0.2, 1.5],
];
const C = [0.3, -0.2, 0.5];
function quadLoss(w: Float32Array): { loss: number; gradient: Float32Array } {
  const d = Array.from(w, (v, i) => v - C[i]!);
  const g = A.map((row) => row.reduce((s, a, j) => s + a * d[j]!, 0));
  return { loss: 0.5 * d.reduce((s, v, i) => s + v * g[i]!, 0), gradient: Float32Array.from(g) };
}
const OPTIMA: Record<CurveKind, (c: number, w1: number, w2: number) => number> = {
  bezier: (c, w1, w2) => 2.5 * c - 0.75 * (w1 + w2),
  polychain: (c, w1, w2) => 1.5 * c - 0.25 * (w1 + w2),
};

describe("fitCurve", () => {
  it.each(["bezier", "polychain"] as const)(
    "%s: the closed-form minimiser of E_t L(phi(t)) has zero gradient (quadrature check)",
    (kind) => {
      const w1 = new Float32Array([1, 0, -1]);
      const w2 = new Float32Array([-1, 1, 0.5]);
      const theta = Float32Array.from(C, (c, i) => OPTIMA[kind](c, w1[i]!, w2[i]!));
      // Midpoint rule with 20000 nodes: the integrand is piecewise polynomial.
      const n = 20000;
      const g = new Float64Array(3);
      for (let k = 0; k < n; k++) {
        const t = (k + 0.5) / n;
        const r = quadLoss(curvePoint({ kind, from: w1, to: w2, theta }, t));
        const cg = controlGradient(kind, t, r.gradient);
        for (let i = 0; i < 3; i++) g[i]! += cg[i]! / n;
      }
      for (const v of g) expect(Math.abs(v)).toBeLessThan(1e-5);
    },
  );

  it.each(["bezier", "polychain"] as const)(
    "%s: SGD on t ~ U(0,1) finds the closed-form control point of a quadratic loss",
    async (kind) => {
      const w1 = new Float32Array([1, 0, -1]);
      const w2 = new Float32Array([-1, 1, 0.5]);
      const state = initialCurveState(w1, w2, { kind: "sgd", momentum: 0.9 });
      await fitCurve(
        w1,
        w2,
        state,
        { kind, steps: 40000, lr: 0.02, seed: 3 },
        new Uint8Array(3).fill(1),
        async (p) => quadLoss(p),
      );
      const expected = Float32Array.from(C, (c, i) => OPTIMA[kind](c, w1[i]!, w2[i]!));
      // One t per step: the last iterate of this seeded run lies within 0.015 of theta* (|theta*| ~ 1).
      expectAllClose(state.theta, expected, { rtol: 0, atol: 0.03 });
      expect(state.step).toBe(40000);
      expect(state.ts.every((t) => t >= 0 && t < 1)).toBe(true);
    },
  );

  it("entries outside the mask stay at their starting value; bad settings are refused by name", async () => {
    const w1 = new Float32Array([1, 0, -1]);
    const w2 = new Float32Array([-1, 1, 0.5]);
    const state = initialCurveState(w1, w2, { kind: "sgd" });
    await fitCurve(
      w1,
      w2,
      state,
      { kind: "bezier", steps: 20, lr: 0.05, seed: 0 },
      new Uint8Array([1, 0, 1]),
      async (p) => quadLoss(p),
    );
    expect(state.theta[1]).toBe(0.5);
    await expect(
      fitCurve(
        w1,
        w2,
        initialCurveState(w1, w2, { kind: "sgd" }),
        { kind: "bezier", steps: 5, lr: 0, seed: 0 },
        new Uint8Array(3),
        async (p) => quadLoss(p),
      ),
    ).rejects.toThrow(/'lr' must be a positive number, got 0/);
  });

  it("the gradient of L(phi(t)) w.r.t. theta on a model matches central finite differences", async () => {
    const model = zooModel("mlp", { inputShape: [1, 8, 8], seed: 3, activation: "softplus" });
    const rng = new Random(9);
    const x = Float32Array.from({ length: 16 * 64 }, () => rng.normal());
    const y = Int32Array.from({ length: 16 }, () => rng.int(10));
    const w1 = model.initial;
    const w2 = w1.map((v) => v + 0.05 * rng.normal());
    const theta = w1.map((v, i) => 0.5 * (v + w2[i]!) + 0.05 * rng.normal());
    const session = await createGradientSession(model, { threads: 1 });
    try {
      for (const kind of ["bezier", "polychain"] as const) {
        const t = 0.3;
        const at = (th: Float32Array) => curvePoint({ kind, from: w1, to: w2, theta: th }, t);
        const step = await session.step(at(theta), x, y);
        const g = controlGradient(kind, t, step.gradient);
        const v = randomVector(model.size, 11);
        const h = 1e-2;
        const plus = (await session.step(at(theta.map((p, i) => p + h * v[i]!)), x, y)).loss;
        const minus = (await session.step(at(theta.map((p, i) => p - h * v[i]!)), x, y)).loss;
        const fd = (plus - minus) / (2 * h);
        let exact = 0;
        for (let i = 0; i < g.length; i++) exact += g[i]! * v[i]!;
        expect(Math.abs(fd - exact)).toBeLessThan(2e-2 * Math.abs(exact) + 1e-4);
      }
    } finally {
      await session.dispose();
    }
  }, 60_000);
});

describe("barrierHeight", () => {
  it("is the largest excess over the chord of the end values", () => {
    const t = Array.from({ length: 11 }, (_, i) => i / 10);
    // value = 1 + 2t + 4 t (1 - t): the excess 4 t (1 - t) peaks at 1 at t = 1/2.
    expect(
      barrierHeight(
        t,
        t.map((s) => 1 + 2 * s + 4 * s * (1 - s)),
      ),
    ).toEqual({ height: 1, at: 0.5 });
    // A path below its chord has barrier 0 (at an end).
    expect(
      barrierHeight(
        t,
        t.map((s) => -s * (1 - s)),
      ).height,
    ).toBe(0);
    expect(barrierHeight([0, 0.5, 1], [1, Number.NaN, 1]).height).toBeNaN();
    expect(() => barrierHeight([0, 0.5], [1, 2, 3])).toThrow(/same length >= 2/);
    expect(() => barrierHeight([0.1, 1], [1, 2])).toThrow(/t must run from 0 to 1, got 0.1 .. 1/);
  });

  it("along a quadratic bowl: 0 for the straight line, 1.5 at t = 1/2 for a Bezier curve bent out to (0, 4)", async () => {
    // L(w) = 1/2 |w|^2; w1 = (-1, 0), w2 = (1, 0), theta = (0, 4): x(t) = 2t - 1, y(t) = 8 t (1 - t).
    const { engine } = quadraticModel([1, 1]);
    const data = {
      name: "none",
      shape: [1],
      inputs: new Float32Array(1),
      labels: new Uint8Array(1),
      classes: 2,
    };
    const c = await evaluateConnection(
      engine,
      {
        kind: "bezier",
        from: new Float32Array([-1, 0]),
        to: new Float32Array([1, 0]),
        theta: new Float32Array([0, 4]),
      },
      { points: 21, train: data },
    );
    expect(c.barriers.line.train_loss!.height).toBeCloseTo(0, 12);
    expect(c.barriers.curve.train_loss!.height).toBeCloseTo(1.5, 6);
    expect(c.barriers.curve.train_loss!.at).toBe(0.5);
    expect(c.t[0]).toBe(0);
    expect(c.t[20]).toBe(1);
    expect(c.bn).toBe("interpolate");
  });
});

describe("trainCurve", () => {
  it("checkpoints the control point and an interrupted run resumes to the same bits", async () => {
    const model = zooModel("cnn", { inputShape: [1, 28, 28], seed: 0 });
    const other = zooModel("cnn", { inputShape: [1, 28, 28], seed: 1 }).initial;
    const data = firstSamples(loadEmbedded("train"), 64);
    const config = {
      kind: "bezier" as const,
      steps: 6,
      lr: 0.01,
      seed: 2,
      batchSize: 16,
      checkpointEvery: 2,
      threads: 1,
    };
    const whole = await trainCurve(model, model.initial, other, data, {
      ...config,
      folder: join(dir, "whole"),
    });
    const folder = join(dir, "cut");
    await expect(
      trainCurve(model, model.initial, other, data, {
        ...config,
        folder,
        onStep: (done) => {
          if (done === 3) throw new Error("interrupted");
        },
      }),
    ).rejects.toThrow(/interrupted/);
    expect(existsSync(join(folder, "curve.safetensors"))).toBe(true);
    const resumed = await trainCurve(model, model.initial, other, data, { ...config, folder });
    expect(resumed.step).toBe(6);
    expect(resumed.theta).toEqual(whole.theta);
    expect(resumed.losses).toEqual(whole.losses);
    await expect(
      trainCurve(model, model.initial, other, data, { ...config, lr: 0.02, folder }),
    ).rejects.toThrow(/holds a curve with another configuration/);
  }, 60_000);
});

describe("losscape connect", () => {
  it("trains a curve between two models and writes connect.json, the plane surface and figures; a bad --curve is refused", () => {
    const a = join(dir, "a");
    const b = join(dir, "b");
    expect(runCli("zoo", "cnn", "--out", a, "--seed", "0").code).toBe(0);
    expect(runCli("zoo", "cnn", "--out", b, "--seed", "1").code).toBe(0);
    const out = join(dir, "connect");
    const args = [
      "connect",
      "--model",
      `${a}.onnx`,
      "--from",
      `${a}.safetensors`,
      "--to",
      `${b}.safetensors`,
      "--out",
      out,
      "--steps",
      "4",
      "--train-batch-size",
      "16",
      "--points",
      "3",
      "--plane-points",
      "3",
      "--bn-batches",
      "1",
      "--bn-batch-size",
      "16",
      "--subset",
      "64",
      "--threads",
      "1",
    ];
    const r = runCli(...args);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/curve: bezier, 4 steps/);
    expect(r.out).toMatch(
      /batch norm: recomputed at every point from 1 seeded training batch\(es\) of 16 samples/,
    );
    expect(r.out).toMatch(/barrier curve train_loss\s+-?\d+\.\d{4} at t = /);
    const json = JSON.parse(readFileSync(join(out, "connect.json"), "utf8"));
    expect(json.t).toEqual([0, 0.5, 1]);
    expect(json.bn).toBe("recompute");
    expect(json.barriers.line.train_loss.height).toBeGreaterThanOrEqual(0);
    // The curve and the line share their end points.
    expect(json.curve.train_loss[0]).toBe(json.line.train_loss[0]);
    expect(json.curve.train_loss[2]).toBe(json.line.train_loss[2]);
    const plane = readSurface(join(out, "plane.h5"));
    expect(plane.done.every((d) => d === 1)).toBe(true);
    expect(plane.meta).toMatchObject({ kind: "curve-plane", bn: "recompute" });
    for (const f of [
      "connect.svg",
      "connect.png",
      "connect-plane.svg",
      "connect-plane.png",
      "curve.safetensors",
    ])
      expect(existsSync(join(out, f)), f).toBe(true);
    expect(readFileSync(join(out, "connect-plane.svg"), "utf8")).toMatch(/class="trajectory"/);

    // A rerun resumes: the curve is trained, the paths and the plane are read back.
    const again = runCli(...args);
    expect(again.code, again.err).toBe(0);
    expect(again.out).toMatch(/read back from connect\.json/);
    expect(JSON.parse(readFileSync(join(out, "connect.json"), "utf8")).curve).toEqual(json.curve);

    const bad = runCli(...args.slice(0, -2), "--curve", "spline");
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/--curve expects one of bezier, polychain, got 'spline'/);
  }, 120_000);
});
