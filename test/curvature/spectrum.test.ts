// Stochastic Lanczos quadrature, Hutch++ and Hessian-eigenvector axes against closed forms: a
// symmetric operator with a known spectrum, softmax regression through ONNX Runtime (its Hessian
// is known exactly), and a surface along eigenvector axes of an exact quadratic.

import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { axisValues } from "../../src/core/grid.ts";
import { lanczosEigenpairs, probeVectors } from "../../src/core/lanczos.ts";
import { symmetricEigen } from "../../src/core/linalg.ts";
import { Random } from "../../src/core/random.ts";
import { operatorExtremes } from "../../src/curvature/hessian.ts";
import {
  hessianSpectrum,
  hessianTraceHutchPlusPlus,
  operatorSpectrum,
  spectralDensity,
  spectrumMoments,
  spectrumTrace,
} from "../../src/curvature/spectrum.ts";
import type { Dataset } from "../../src/data/dataset.ts";
import type { Engine } from "../../src/engine/engine.ts";
import { makeHessianDirections } from "../../src/landscape/plan.ts";
import { computeSurface } from "../../src/landscape/surface.ts";
import { expectAllClose, tempDir } from "../helpers.ts";
import { quadraticModel } from "../landscape/_quadratic.ts";
import { softmaxRegression } from "./_softmax.ts";

const { dir, cleanup } = tempDir("losscape-spectrum-");
afterAll(cleanup);

/** A symmetric n x n matrix U diag(eigs) U^T (seeded orthogonal U), as a masked operator over n + extra entries. */
function knownSpectrum(eigs: readonly number[], extra: number, seed: number) {
  const n = eigs.length;
  const rng = new Random(seed);
  const u: Float64Array[] = [];
  for (let k = 0; k < n; k++) {
    const c = Float64Array.from({ length: n }, () => rng.normal());
    for (let pass = 0; pass < 2; pass++)
      for (const b of u) {
        const d = c.reduce((s, x, i) => s + x * b[i]!, 0);
        for (let i = 0; i < n; i++) c[i] = c[i]! - d * b[i]!;
      }
    const len = Math.sqrt(c.reduce((s, x) => s + x * x, 0));
    u.push(c.map((x) => x / len));
  }
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++)
      for (let k = 0; k < n; k++) a[i * n + j] = a[i * n + j]! + u[k]![i]! * eigs[k]! * u[k]![j]!;
  const mask = new Uint8Array(n + extra);
  mask.fill(1, 0, n);
  const hvp = async (v: Float32Array) => {
    const out = new Float32Array(n + extra);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += a[i * n + j]! * v[j]!;
      out[i] = s;
    }
    return out;
  };
  const moment = (q: ArrayLike<number>, k: number) => {
    let v = Float64Array.from({ length: n }, (_, i) => q[i] as number);
    for (let r = 0; r < k; r++) {
      const w = new Float64Array(n);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) w[i] = w[i]! + a[i * n + j]! * v[j]!;
      v = w;
    }
    return v.reduce((s, x, i) => s + x * (q[i] as number), 0);
  };
  return { a, u, mask, hvp, moment };
}

/** mean over probes of (z/|z|)^T A^k (z/|z|), the same probes as the quadrature's. */
function probeMoments(
  moment: (q: ArrayLike<number>, k: number) => number,
  n: number,
  probes: number,
  seed: number,
  mask: Uint8Array,
  maxK: number,
  distribution: "rademacher" | "gaussian" = "rademacher",
): number[] {
  const zs = probeVectors(n, probes, { seed, mask, distribution });
  return Array.from({ length: maxK + 1 }, (_, k) => {
    let s = 0;
    for (const z of zs) {
      const len2 = z.reduce((p, x) => p + x * x, 0);
      s += moment(z, k) / len2;
    }
    return s / probes;
  });
}

describe("stochastic Lanczos quadrature of a known spectrum", () => {
  const eigs = [-2, -2, 0, 0, 0, 0, 0, 0.5, 0.5, 1, 1, 1, 4, 9];
  const op = knownSpectrum(eigs, 3, 7);

  it("with m >= the distinct eigenvalues reproduces the probes' moments q^T H^k q exactly (k < 2m)", async () => {
    for (const distribution of ["rademacher", "gaussian"] as const) {
      const q = await operatorSpectrum(op, { probes: 5, steps: 6, seed: 3, distribution });
      expect(q.dimension).toBe(14);
      expect(q.products).toBe(30);
      expect(q.nodes).toHaveLength(5);
      const got = spectrumMoments(q, 8);
      const want = probeMoments(op.moment, 17, 5, 3, op.mask, 8, distribution);
      for (let k = 0; k <= 8; k++)
        expect(Math.abs(got[k]! - want[k]!)).toBeLessThan(1e-4 * Math.max(1, Math.abs(want[k]!)));
      // The nodes of a probe are the six distinct eigenvalues.
      expectAllClose(q.nodes[0]!, [9, 4, 1, 0.5, 0, -2], { atol: 1e-4 });
    }
  });

  it("averaged over many probes, the moments estimate tr(H^k) / n, and the trace comes free", async () => {
    const q = await operatorSpectrum(op, { probes: 200, steps: 6, seed: 1 });
    const m = spectrumMoments(q, 2);
    const exact = (k: number) => eigs.reduce((s, x) => s + x ** k, 0) / eigs.length;
    expect(m[0]).toBeCloseTo(1, 10);
    expect(Math.abs(m[1]! - exact(1))).toBeLessThan(0.1);
    expect(Math.abs(m[2]! - exact(2)) / exact(2)).toBeLessThan(0.1);
    // Hutchinson on the same probes: z^T H z = ||z||^2 alpha_1, within 4 standard errors of tr(H).
    const t = spectrumTrace(q);
    const direct = probeVectors(17, 200, { seed: 1, mask: op.mask }).map((z) => op.moment(z, 1));
    expect(t.trace).toBeCloseTo(direct.reduce((a, b) => a + b, 0) / 200, 4);
    expect(Math.abs(t.trace - eigs.reduce((a, b) => a + b, 0))).toBeLessThan(4 * t.stderr);
  });

  it("the broadened density integrates to 1 and peaks at the eigenvalues, in proportion to their multiplicity", async () => {
    const q = await operatorSpectrum(op, { probes: 50, steps: 6, seed: 2 });
    const d = spectralDensity(q, { sigma: 0.05, points: 4001, range: [-4, 11] });
    const h = (d.grid[1]! - d.grid[0]!) as number;
    const mass = d.density.reduce((s, v) => s + v, 0) * h;
    expect(mass).toBeCloseTo(1, 4);
    const at = (t: number) => d.density[Math.round((t + 4) / h)]!;
    // Five zero eigenvalues of 14 vs one at 9 (broadened by the same Gaussian).
    expect(at(0) / at(9)).toBeGreaterThan(2.5);
    expect(at(0) / at(9)).toBeLessThan(10);
    expect(at(2.5)).toBeLessThan(1e-6 * at(0));
    // Default sigma: 1 % of the nodes' range; grid: nodes +- 5 sigma.
    const auto = spectralDensity(q);
    expect(auto.sigma).toBeCloseTo(0.11, 6);
    expect(auto.grid[0]).toBeCloseTo(-2 - 0.55, 4);
    expect(auto.grid.length).toBe(1000);
  });

  it("operatorExtremes' trace by Hutch++ states its products and is exact for a low-rank operator", async () => {
    const low = knownSpectrum([6, -1.5, 0, 0, 0, 0, 0, 0, 0, 0], 2, 3);
    const e = await operatorExtremes(low, { maxIterations: 10, traceSamples: 9, traceMethod: "hutch++" });
    expect(e.trace!.method).toBe("hutch++");
    expect(e.trace!.samples).toBeLessThanOrEqual(9);
    expect(e.trace!.trace).toBeCloseTo(4.5, 4);
    await expect(operatorExtremes(low, { traceSamples: 2, traceMethod: "hutch++" })).rejects.toThrow(
      /Hutch\+\+ needs 'traceSamples' >= 3 products/,
    );
    await expect(
      operatorExtremes(low, { traceSamples: 3, traceMethod: "exact" as "hutch++" }),
    ).rejects.toThrow(/unknown 'traceMethod' 'exact'; expected one of hutchinson, hutch\+\+/);
  });

  it("checks its options", async () => {
    await expect(operatorSpectrum(op, { probes: 0 })).rejects.toThrow(
      /'probes' must be a positive integer, got 0/,
    );
    await expect(operatorSpectrum(op, { steps: 1.5 })).rejects.toThrow(
      /'steps' must be a positive integer, got 1.5/,
    );
    await expect(operatorSpectrum(op, { distribution: "cauchy" as "gaussian" })).rejects.toThrow(
      /unknown 'distribution' 'cauchy'; expected one of rademacher, gaussian/,
    );
    const q = await operatorSpectrum(op, { probes: 1, steps: 2 });
    expect(() => spectralDensity(q, { sigma: -1 })).toThrow(/'sigma' must be a positive number, got -1/);
    expect(() => spectralDensity(q, { range: [1, 0] })).toThrow(/'range' must be \[low, high\]/);
    expect(() => spectrumMoments(q, -1)).toThrow(/'maxK' must be a non-negative integer/);
  });
});

describe("softmax regression through ONNX Runtime: SLQ, Hutch++ and eigenvector axes against the exact Hessian", () => {
  const s = softmaxRegression();

  it("SLQ moments equal the probes' q^T H^k q from the closed-form Hessian", async () => {
    const q = await hessianSpectrum(s.model, s.theta, s.data, {
      threads: 1,
      probes: 3,
      steps: s.dim,
      seed: 5,
    });
    expect(q.dimension).toBe(s.dim);
    expect(q.passes).toBe(q.products);
    const zs = probeVectors(s.model.size, 3, { seed: 5, mask: maskOf(s) });
    const got = spectrumMoments(q, 6);
    for (let k = 0; k <= 6; k++) {
      const want =
        zs.reduce((acc, z) => {
          const zw = Array.from(z.subarray(s.w.offset, s.w.offset + s.w.size));
          return acc + s.moment(zw, k) / zw.reduce((p, x) => p + x * x, 0);
        }, 0) / 3;
      expect(Math.abs(got[k]! - want), `moment ${k}`).toBeLessThan(1e-4 * Math.abs(want) + 1e-9);
    }
    const exactMax = symmetricEigen(s.H, s.dim).values[0]!;
    expect(Math.abs(q.nodes[0]![0]! - exactMax) / exactMax).toBeLessThan(1e-4);
  });

  it("Hutch++ with 3 x dim products gives the exact trace", async () => {
    const trace = Array.from({ length: s.dim }, (_, i) => s.H[i * s.dim + i]!).reduce((a, b) => a + b, 0);
    const t = await hessianTraceHutchPlusPlus(s.model, s.theta, s.data, {
      threads: 1,
      products: 3 * s.dim,
      seed: 2,
    });
    expect(t.products).toBe(t.passes);
    expect(t.products).toBeLessThanOrEqual(3 * s.dim);
    expect(Math.abs(t.trace - trace) / trace).toBeLessThan(1e-4);
  });

  it("Hessian axes are the top eigenvectors scaled to ||theta_filters||, with their residuals recorded", async () => {
    const exact = symmetricEigen(s.H, s.dim);
    const made = await makeHessianDirections(s.model, s.theta, s.data, {
      axes: "hessian",
      dims: 2,
      threads: 1,
      tol: 1e-6,
      maxIterations: s.dim,
    });
    expect(made.converged).toBe(true);
    expectAllClose(made.eigenvalues, [exact.values[0]!, exact.values[1]!], { rtol: 1e-4 });
    let norm2 = 0;
    for (let i = s.w.offset; i < s.w.offset + s.w.size; i++) norm2 += s.theta[i]! ** 2;
    const scale = Math.sqrt(norm2);
    expect(Number(made.file.meta.scale)).toBeCloseTo(scale, 5);
    expect(made.file.meta.kind).toBe("hessian");
    expect(made.file.meta.normalization).toBe("eigenvector x ||theta_filters||");
    expect(JSON.parse(made.file.meta.residuals!)).toHaveLength(2);
    for (const [k, d] of made.directions.entries()) {
      const col = Array.from({ length: s.dim }, (_, i) => exact.vectors[i * s.dim + k]!);
      const dw = d.subarray(s.w.offset, s.w.offset + s.w.size);
      const cos = dw.reduce((acc, x, i) => acc + x * col[i]!, 0) / scale;
      expect(Math.abs(cos)).toBeCloseTo(1, 4);
      // Bias entries stay zero (the Hessian is the filter weights').
      for (let i = s.b.offset; i < s.b.offset + s.b.size; i++) expect(d[i]).toBe(0);
      expect(made.residuals[k]!).toBeLessThan(1e-4 * exact.values[0]!);
    }
    const unit = await makeHessianDirections(s.model, s.theta, s.data, {
      axes: "hessian-min",
      dims: 2,
      scale: "none",
      threads: 1,
      tol: 1e-6,
      maxIterations: s.dim,
    });
    // The smallest eigenvalue is 0 (a vector added to every row of W leaves the softmax unchanged).
    expect(Math.abs(unit.eigenvalues[1]!)).toBeLessThan(1e-4 * exact.values[0]!);
    expect(unit.directions[0]!.reduce((a, x) => a + x * x, 0)).toBeCloseTo(1, 5);
    expect(unit.file.meta.normalization).toBe("unit eigenvector");
  });
});

function maskOf(s: ReturnType<typeof softmaxRegression>): Uint8Array {
  const mask = new Uint8Array(s.model.size);
  mask.fill(1, s.w.offset, s.w.offset + s.w.size);
  return mask;
}

describe("a surface along Hessian-eigenvector axes of an exact quadratic", () => {
  it("equals 0.5 s^2 (lambda_1 a^2 + lambda_2 b^2) with the cross term gone", async () => {
    const eigs = [5, 3, 1, 0.5, -0.2, 0.1, 2.5, -1];
    const op = knownSpectrum(eigs, 0, 4);
    const n = eigs.length;
    const { model } = quadraticModel(new Array(n).fill(0));
    const loss = (p: Float32Array) => {
      let s = 0;
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) s += 0.5 * p[i]! * op.a[i * n + j]! * p[j]!;
      return s;
    };
    const engine: Engine = {
      model,
      async evaluate(params: Float32Array, data: Dataset) {
        return { loss: loss(params), accuracy: 0, count: data.labels.length, lossSe: Number.NaN };
      },
      async logits() {
        return new Float32Array(0);
      },
      async dispose() {},
    };
    const e = await lanczosEigenpairs(op.hvp, n, { largest: 2, tol: 1e-7, maxIterations: n });
    expectAllClose(e.values, [5, 3], { atol: 1e-5 });
    const scale = 2;
    const directions = e.vectors.map((v) => v.map((x) => x * scale));
    const grid = { x: axisValues({ min: -1, max: 1, num: 5 }), y: axisValues({ min: -1, max: 1, num: 3 }) };
    const tiny: Dataset = {
      name: "one",
      shape: [1],
      inputs: new Float32Array(1),
      labels: new Uint8Array(1),
      classes: 2,
    };
    const surf = await computeSurface({
      engine,
      theta: new Float32Array(n),
      directions,
      grid,
      train: tiny,
      path: join(dir, "axes.h5"),
      dirFile: "none",
    });
    const want: number[] = [];
    for (const a of grid.x) for (const b of grid.y) want.push(0.5 * scale ** 2 * (5 * a * a + 3 * b * b));
    expectAllClose(surf.values.train_loss!, want, { rtol: 1e-5, atol: 1e-6 });
  });
});
