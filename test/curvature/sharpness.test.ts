// Sharpness measures against closed forms: a quadratic loss with a known Hessian (at its minimum
// and with a linear term), then a real ONNX model whose mse loss is exactly quadratic in its
// weights (linear regression), evaluated and differentiated on ONNX Runtime.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { symmetricEigen } from "../../src/core/linalg.ts";
import { Random } from "../../src/core/random.ts";
import {
  averageCaseSharpness,
  epsilonSharpness,
  modelObjective,
  type SharpnessObjective,
  type SharpnessRow,
  sharpnessMarkdown,
  sharpnessTable,
  worstCaseSharpness,
} from "../../src/curvature/sharpness.ts";
import type { Dataset } from "../../src/data/dataset.ts";
import { loadDataset } from "../../src/data/load.ts";
import { writeFileAtomic } from "../../src/formats/atomic.ts";
import { paramsToSafetensors } from "../../src/model/checkpoint.ts";
import { zooModel } from "../../src/zoo/zoo.ts";
import { runCli, tempDir } from "../helpers.ts";

/** L(p) = c + g.(p - m) + (p - m)^T H (p - m) / 2 over the first n of n + extra entries (the rest do not count). */
function quadratic(
  H: Float64Array,
  m: number[],
  { c = 0, g, extra = 0 }: { c?: number; g?: number[]; extra?: number } = {},
) {
  const n = m.length;
  const mask = new Uint8Array(n + extra);
  mask.fill(1, 0, n);
  let calls = 0;
  const value = (p: Float32Array) => {
    let s = c;
    for (let i = 0; i < n; i++) {
      const di = p[i]! - m[i]!;
      s += (g?.[i] ?? 0) * di;
      for (let j = 0; j < n; j++) s += 0.5 * di * H[i * n + j]! * (p[j]! - m[j]!);
    }
    return s;
  };
  const f: SharpnessObjective = {
    mask,
    async loss(p) {
      calls++;
      return value(p);
    },
    async lossAndGradient(p) {
      calls++;
      const gradient = new Float32Array(n + extra);
      for (let i = 0; i < n; i++) {
        let s = g?.[i] ?? 0;
        for (let j = 0; j < n; j++) s += H[i * n + j]! * (p[j]! - m[j]!);
        gradient[i] = s;
      }
      return { loss: value(p), gradient };
    },
  };
  const theta = new Float32Array(n + extra);
  theta.set(m);
  for (let i = n; i < n + extra; i++) theta[i] = 1 + i;
  return { f, theta, calls: () => calls };
}

const diag = (h: number[]) => {
  const H = new Float64Array(h.length * h.length);
  h.forEach((v, i) => {
    H[i * h.length + i] = v;
  });
  return H;
};

/** A seeded symmetric positive definite n x n matrix A A^T / n + 0.1 I. */
function spd(n: number, seed: number): Float64Array {
  const rng = new Random(seed);
  const a = Float64Array.from({ length: n * n }, () => rng.normal());
  const H = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += a[i * n + k]! * a[j * n + k]!;
      H[i * n + j] = s / n + (i === j ? 0.1 : 0);
    }
  return H;
}

/** D H D with D = diag(|m|). */
function rescaled(H: Float64Array, m: number[]): Float64Array {
  const n = m.length;
  return H.map((v, k) => v * Math.abs(m[Math.floor(k / n)]!) * Math.abs(m[k % n]!));
}

const M = [0.5, -1.2, 0.8, 2.0, -0.3, 1.1];
// Float32 parameters: the closed forms use the stored values.
const M32 = Array.from(Float32Array.from(M));

describe("sharpness of a quadratic at its minimum (closed forms)", () => {
  const h = [3, 0.5, 1, 0.2, 4, 2];

  it("epsilon-sharpness over the box equals 100 sum h_i (eps (|x_i| + 1))^2 / 2 / (1 + L) for a diagonal Hessian", async () => {
    const { f, theta } = quadratic(diag(h), M32, { c: 0.3, extra: 2 });
    const eps = 1e-3;
    const r = await epsilonSharpness(f, theta, { epsilon: eps, steps: 3, seed: 1 });
    const exact = (100 * h.reduce((s, v, i) => s + 0.5 * v * (eps * (Math.abs(M32[i]!) + 1)) ** 2, 0)) / 1.3;
    expect(Math.abs(r.sharpness - exact) / exact).toBeLessThan(1e-4);
    expect(r.loss).toBeCloseTo(0.3, 6);
    expect(r.epsilon).toBe(eps);
    expect(r.evaluations).toBe(5);
    // Entries outside the mask never move.
    expect(Array.from(r.delta.subarray(6))).toEqual([0, 0]);
  });

  it("worst-case l-infinity sharpness equals rho^2 sum h_i w_i^2 / 2 for a diagonal Hessian", async () => {
    const { f, theta } = quadratic(diag(h), M32);
    const rho = 0.01;
    const r = await worstCaseSharpness(f, theta, { rho, norm: "linf", steps: 3 });
    const exact = 0.5 * rho * rho * h.reduce((s, v, i) => s + v * M32[i]! ** 2, 0);
    expect(Math.abs(r.sharpness - exact) / exact).toBeLessThan(1e-4);
    for (let i = 0; i < 6; i++) expect(Math.abs(r.delta[i]!)).toBeCloseTo(rho * Math.abs(M32[i]!), 6);
  });

  it("worst-case l2 sharpness approaches rho^2 lambda_max(D H D) / 2 from below for a full Hessian", async () => {
    const H = spd(6, 2);
    const { f, theta } = quadratic(H, M32);
    const rho = 0.05;
    const exact = (0.5 * rho * rho * symmetricEigen(rescaled(H, M32), 6).values[0]!) as number;
    const r = await worstCaseSharpness(f, theta, { rho, norm: "l2", steps: 60, seed: 3 });
    expect(r.sharpness).toBeLessThanOrEqual(exact * (1 + 1e-5));
    expect(r.sharpness / exact).toBeGreaterThan(0.999);
    // The perturbation lies on the sphere ||delta / |w| ||_2 = rho.
    const z = Math.hypot(...Array.from(r.delta.subarray(0, 6), (d, i) => d / Math.abs(M32[i]!)));
    expect(z).toBeCloseTo(rho, 5);
    // Fewer steps never give more (the best point is kept; each step is one gradient).
    const short = await worstCaseSharpness(f, theta, { rho, norm: "l2", steps: 5, seed: 3 });
    expect(short.sharpness).toBeLessThanOrEqual(r.sharpness);
    expect(short.evaluations).toBe(7);
  });

  it("worst-case l-infinity sharpness of a full Hessian is a vertex no better than the best one", async () => {
    const H = spd(6, 5);
    const { f, theta } = quadratic(H, M32);
    const rho = 0.02;
    const D = rescaled(H, M32);
    let best = 0;
    for (let s = 0; s < 64; s++) {
      let v = 0;
      for (let i = 0; i < 6; i++)
        for (let j = 0; j < 6; j++) v += (s & (1 << i) ? 1 : -1) * (s & (1 << j) ? 1 : -1) * D[i * 6 + j]!;
      best = Math.max(best, 0.5 * rho * rho * v);
    }
    const r = await worstCaseSharpness(f, theta, { rho, norm: "linf", steps: 20 });
    expect(r.sharpness).toBeLessThanOrEqual(best * (1 + 1e-5));
    expect(r.sharpness / best).toBeGreaterThan(0.5);
    for (let i = 0; i < 6; i++) expect(Math.abs(r.delta[i]!)).toBeCloseTo(rho * Math.abs(M32[i]!), 6);
  });

  it("average-case sharpness is within 4 standard errors of rho^2 trace(D H D) / 2", async () => {
    const H = spd(6, 7);
    const { f, theta, calls } = quadratic(H, M32, { c: 1, g: [0.3, -0.2, 0.1, 0.5, 0, -1] });
    const rho = 0.1;
    const D = rescaled(H, M32);
    const exact = 0.5 * rho * rho * [0, 1, 2, 3, 4, 5].reduce((s, i) => s + D[i * 7]!, 0);
    const r = await averageCaseSharpness(f, theta, { rho, samples: 400, seed: 4 });
    expect(r.stderr).toBeGreaterThan(0);
    expect(Math.abs(r.sharpness - exact)).toBeLessThan(4 * r.stderr);
    // Antithetic draws cancel the linear term: the error is small relative to the value.
    expect(r.stderr / exact).toBeLessThan(0.1);
    expect(r.evaluations).toBe(801);
    expect(calls()).toBe(801);
    // Seeded: the same draws give the same estimate.
    const again = await averageCaseSharpness(f, theta, { rho, samples: 400, seed: 4 });
    expect(again.sharpness).toBe(r.sharpness);
  });
});

describe("sharpness away from a minimum (a linear term)", () => {
  const g = [0.4, -0.1, 0.0, 0.25, -0.6, 0.05];
  const zero = new Float64Array(36);

  it("worst-case sharpness of a linear loss is rho ||g |w| ||_2 (l2) and rho sum |g_i w_i| (l-infinity)", async () => {
    const { f, theta } = quadratic(zero, M32, { g });
    const rho = 0.1;
    const l2 = await worstCaseSharpness(f, theta, { rho, norm: "l2", steps: 10 });
    const linf = await worstCaseSharpness(f, theta, { rho, norm: "linf", steps: 10 });
    const gw = g.map((v, i) => v * Math.abs(M32[i]!));
    expect(l2.sharpness / (rho * Math.hypot(...gw))).toBeCloseTo(1, 5);
    expect(linf.sharpness / (rho * gw.reduce((s, v) => s + Math.abs(v), 0))).toBeCloseTo(1, 5);
  });

  it("epsilon-sharpness of a linear loss is 100 eps sum |g_i| (|x_i| + 1) / (1 + L)", async () => {
    const { f, theta } = quadratic(zero, M32, { g, c: 2 });
    const eps = 5e-4;
    const r = await epsilonSharpness(f, theta, { epsilon: eps, steps: 4 });
    const exact = (100 * eps * g.reduce((s, v, i) => s + Math.abs(v) * (Math.abs(M32[i]!) + 1), 0)) / 3;
    expect(r.sharpness / exact).toBeCloseTo(1, 4);
  });

  it("refuses bad arguments by name", async () => {
    const { f, theta } = quadratic(zero, M32, { g });
    await expect(epsilonSharpness(f, theta, { epsilon: 0 })).rejects.toThrow(
      /epsilonSharpness\(\): 'epsilon' must be a positive number, got 0/,
    );
    await expect(worstCaseSharpness(f, theta, { steps: 0 })).rejects.toThrow(
      /worstCaseSharpness\(\): 'steps' must be a positive integer, got 0/,
    );
    await expect(worstCaseSharpness(f, theta, { norm: "l1" as "l2" })).rejects.toThrow(
      /'norm' must be one of l2, linf, got 'l1'/,
    );
    await expect(averageCaseSharpness(f, theta, { samples: 1 })).rejects.toThrow(
      /'samples' must be an integer >= 2, got 1/,
    );
    await expect(averageCaseSharpness(f, theta.subarray(1))).rejects.toThrow(
      /'theta' has 5 values but the objective has 6 parameters/,
    );
  });
});

describe("linear regression on ONNX Runtime: mse is exactly quadratic in the weights", () => {
  // y = W x + b with K outputs and F features; samples x_n = a_n e_(n mod F), so X^T X is diagonal and
  // H[(k,f),(k,f)] = 2 / (N K) sum_n x_nf^2 (the mean is over N K values), zero off the diagonal.
  const K = 3;
  const F = 4;
  const N = 8;
  const model = zooModel("mlp", { hidden: [], inputShape: [1, 2, 2], classes: K, seed: 2 });
  const theta = model.initial.map((v) => 4 * v);
  const w = model.params.find((p) => p.name === "fc1.weight")!;
  const b = model.params.find((p) => p.name === "fc1.bias")!;
  const scale = [1.5, 0.7, 1.1, 0.4, 1.3, 0.9, 0.6, 1.2];
  const inputs = new Float32Array(N * F);
  for (let n = 0; n < N; n++) inputs[n * F + (n % F)] = scale[n]!;
  // Targets are the model's own outputs: theta is the exact minimum (loss 0 up to rounding).
  const labels = new Float32Array(N * K);
  for (let n = 0; n < N; n++)
    for (let k = 0; k < K; k++) {
      let s = theta[b.offset + k]!;
      for (let f = 0; f < F; f++) s += theta[w.offset + k * F + f]! * inputs[n * F + f]!;
      labels[n * K + k] = s;
    }
  const data: Dataset = {
    name: "regression",
    shape: [1, 2, 2],
    inputs,
    labels,
    targetShape: [K],
    classes: 0,
  };
  const hdiag: number[] = [];
  for (let k = 0; k < K; k++)
    for (let f = 0; f < F; f++) {
      let s = 0;
      for (let n = 0; n < N; n++) s += inputs[n * F + f]! ** 2;
      hdiag.push((2 * s) / (N * K));
    }
  const wv = Array.from(theta.subarray(w.offset, w.offset + w.size));
  const task = { loss: "mse" as const };

  it("the objective's loss and gradient are the mean over the data in batches of any size", async () => {
    const f = await modelObjective(model, data, { threads: 1, batchSize: 3, task });
    try {
      const p = theta.slice();
      p[w.offset + 1] = p[w.offset + 1]! + 0.5; // H is diagonal: only entry (0, 1) moves
      const r = await f.lossAndGradient(p);
      expect(r.loss).toBeCloseTo(0.5 * hdiag[1]! * 0.25, 6);
      expect(r.gradient[w.offset + 1]).toBeCloseTo(hdiag[1]! * 0.5, 5);
      for (let i = b.offset; i < b.offset + b.size; i++) expect(r.gradient[i]).toBe(0); // filters only
      expect(await f.loss(p)).toBeCloseTo(r.loss, 6);
      expect(f.perturbed).toBe(K * F);
    } finally {
      await f.dispose();
    }
  });

  it("epsilon-, worst-case and average-case sharpness match the closed forms", async () => {
    const f = await modelObjective(model, data, { threads: 1, task });
    try {
      const eps = 1e-2;
      const e = await epsilonSharpness(f, theta, { epsilon: eps, steps: 3 });
      const eExact = 100 * hdiag.reduce((s, h, i) => s + 0.5 * h * (eps * (Math.abs(wv[i]!) + 1)) ** 2, 0);
      expect(Math.abs(e.sharpness - eExact) / eExact).toBeLessThan(1e-3);

      const rho = 0.05;
      const linf = await worstCaseSharpness(f, theta, { rho, norm: "linf", steps: 3 });
      const linfExact = 0.5 * rho * rho * hdiag.reduce((s, h, i) => s + h * wv[i]! ** 2, 0);
      expect(Math.abs(linf.sharpness - linfExact) / linfExact).toBeLessThan(1e-3);

      const l2 = await worstCaseSharpness(f, theta, { rho, norm: "l2", steps: 40 });
      const l2Exact = 0.5 * rho * rho * Math.max(...hdiag.map((h, i) => h * wv[i]! ** 2));
      expect(Math.abs(l2.sharpness - l2Exact) / l2Exact).toBeLessThan(1e-2);

      const a = await averageCaseSharpness(f, theta, { rho, samples: 100, seed: 2 });
      expect(Math.abs(a.sharpness - linfExact)).toBeLessThan(4 * a.stderr + 1e-7); // trace(D H D) = sum h_i w_i^2
    } finally {
      await f.dispose();
    }
  });

  it("the table reports every measure, with its settings, as Markdown", async () => {
    const t = await sharpnessTable(
      model,
      [
        { label: "minimum", params: theta },
        { label: "moved", params: theta.map((v, i) => (i === w.offset ? v + 0.3 : v)) },
      ],
      data,
      { threads: 1, task, steps: 4, samples: 4, lanczosIterations: K * F, traceSamples: 30, rhoL2: 0.05 },
    );
    expect(t.rows.map((r) => r.label)).toEqual(["minimum", "moved"]);
    expect(t.settings).toMatchObject({ perturb: "filters", perturbed: K * F, steps: 4, samples: 4 });
    const [r0, r1] = t.rows as [(typeof t.rows)[0], (typeof t.rows)[0]];
    expect(r0.loss).toBeLessThan(1e-10);
    expect(r1.loss).toBeCloseTo(0.5 * hdiag[0]! * 0.09, 6);
    // lambda_max and the trace of the (constant) Hessian.
    expect(r0.lambdaMax / Math.max(...hdiag)).toBeCloseTo(1, 4);
    const trace = hdiag.reduce((s, v) => s + v, 0);
    expect(Math.abs(r0.trace!.trace - trace)).toBeLessThan(4 * r0.trace!.stderr + 1e-4);
    // Away from the minimum the worst case also gains the linear term.
    expect(r1.worstL2.sharpness).toBeGreaterThan(r0.worstL2.sharpness);
    const md = sharpnessMarkdown(t);
    expect(md).toMatch(
      /\| model \| loss \| acc % \| eps-sharpness % \(eps 0\.001\) \| avg-case \(rho 0\.05\) \|/,
    );
    expect(md).toMatch(/\| minimum \| /);
    expect(md).toMatch(/\| moved \| /);
    expect(md).toMatch(/perturb the filter \(rank >= 2\) weights \(12 values\)/);
    expect(md).toMatch(/then 4 steps/);
  });

  it("perturbs every trainable parameter on request, and refuses what it cannot differentiate", async () => {
    const f = await modelObjective(model, data, { threads: 1, task, perturb: "trainable" });
    try {
      expect(f.perturbed).toBe(K * F + K);
      const r = await f.lossAndGradient(theta.map((v, i) => (i === b.offset ? v + 1 : v)));
      expect(r.gradient[b.offset]).toBeCloseTo(2 / K, 5); // d/db_0 of mean_(n,k) (z - y)^2 with z - y = 1 on k = 0
    } finally {
      await f.dispose();
    }
    await expect(modelObjective(model, data, { task: { loss: "mse-onehot" } })).rejects.toThrow(
      /mse-onehot has none here/,
    );
    await expect(modelObjective(model, data, { perturb: "all" as "filters" })).rejects.toThrow(
      /'perturb' must be one of filters, trainable, got 'all'/,
    );
  });
});

describe("losscape sharpness", () => {
  const { dir, cleanup } = tempDir("losscape-sharpness-cli-");
  afterAll(cleanup);
  const data = loadDataset("fashion-mnist", "train", { subset: { count: 48 }, seed: 0 });
  const model = zooModel("mlp", { inputShape: data.shape, classes: 10 });
  const a = join(dir, "a.safetensors");
  const b = join(dir, "b.safetensors");
  writeFileAtomic(a, paramsToSafetensors(model, model.initial));
  writeFileAtomic(
    b,
    paramsToSafetensors(
      model,
      model.initial.map((v) => 2 * v),
    ),
  );
  const settings = ["--steps", "2", "--samples", "3", "--iterations", "4", "--tol", "0.1", "--trace", "2"];
  const common = ["--model", "mlp", "--subset", "48", "--threads", "1", ...settings];

  it("prints one row per --params as JSON (the library's numbers) and writes the Markdown table", async () => {
    const out = join(dir, "t.md");
    const js = runCli(
      "sharpness",
      ...common,
      "--params",
      a,
      "--params",
      b,
      "--label",
      "a",
      "--label",
      "b",
      "--json",
      "--out",
      out,
    );
    expect(js.code, js.err).toBe(0);
    const md = readFileSync(out, "utf8");
    expect(md).toMatch(/\| a \| \d/);
    expect(md).toMatch(/\| b \| \d/);
    expect(md).toMatch(/then 2 steps/);
    expect(md).toMatch(/3 seeded draws/);
    const got = JSON.parse(js.out) as { rows: SharpnessRow[] };
    expect(got.rows.map((r) => r.label)).toEqual(["a", "b"]);
    const lib = await sharpnessTable(
      model,
      [
        { label: "a", params: model.initial },
        { label: "b", params: model.initial.map((v) => 2 * v) },
      ],
      data,
      { threads: 1, steps: 2, samples: 3, lanczosIterations: 4, lanczosTol: 0.1, traceSamples: 2 },
    );
    for (const [k, r] of lib.rows.entries()) {
      const c = got.rows[k]!;
      expect(c.loss).toBeCloseTo(r.loss, 6);
      expect(c.epsilon.sharpness).toBeCloseTo(r.epsilon.sharpness, 5);
      expect(c.average.sharpness).toBeCloseTo(r.average.sharpness, 6);
      expect(c.worstL2.sharpness).toBeCloseTo(r.worstL2.sharpness, 5);
      expect(c.worstLinf.sharpness).toBeCloseTo(r.worstLinf.sharpness, 6);
      expect(c.lambdaMax).toBeCloseTo(r.lambdaMax, 4);
    }
  });

  it("refuses labels that do not match the models", () => {
    const r = runCli("sharpness", ...common, "--params", a, "--label", "x", "--label", "y");
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/--label was given 2 time\(s\) but there are 1 model\(s\)/);
  });
});
