// Hessian-vector products and extreme eigenvalues: closed forms (a known
// symmetric matrix; softmax regression, whose Hessian is known exactly), and
// zoo models against PyTorch double backward (fixtures/zoo-hvp.json).

import { describe, expect, it } from "vitest";
import { buildHvpFixture, HVP_FIXTURES, hvpDirection } from "../../fixtures/make-hvp-fixtures.ts";
import hvpReference from "../../fixtures/zoo-hvp.json" with { type: "json" };
import { symmetricEigen } from "../../src/core/linalg.ts";
import { Random } from "../../src/core/random.ts";
import { hessianExtremes, operatorExtremes } from "../../src/curvature/hessian.ts";
import { filterMask, hessianOperator } from "../../src/curvature/hvp.ts";
import { paramView } from "../../src/model/model.ts";
import { softmaxRegression } from "./_softmax.ts";

type Ref = {
  hv: Record<string, { norm: number; samples: [number, number][] }>;
  lambdaMax: number;
  lambdaMin: number;
  residualMax: number;
  residualMin: number;
};

/** A seeded symmetric n x n matrix (row-major) and a masked operator over `n + extra` entries. */
function quadratic(n: number, extra: number, seed: number) {
  const rng = new Random(seed);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = rng.normal();
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
  return { a, mask, hvp, eig: symmetricEigen(a, n).values };
}

describe("extreme eigenvalues of an exact quadratic (known symmetric Hessian)", () => {
  it("Lanczos gives lambda_max and lambda_min within the stated residuals, and the top-k", async () => {
    const { hvp, mask, eig } = quadratic(30, 5, 3);
    const e = await operatorExtremes({ hvp, mask }, { tol: 1e-6, maxIterations: 30, topK: 3 });
    expect(e.converged).toBe(true);
    const exactMax = eig[0]!;
    const exactMin = eig[eig.length - 1]!;
    expect(Math.abs(e.max - exactMax)).toBeLessThanOrEqual(e.residualMax + 1e-5);
    expect(Math.abs(e.min - exactMin)).toBeLessThanOrEqual(e.residualMin + 1e-5);
    expect(Math.abs(e.max - exactMax) / Math.abs(exactMax)).toBeLessThan(1e-5);
    expect(e.top).toHaveLength(3);
    for (let k = 0; k < 3; k++) expect(e.top![k]).toBeCloseTo(eig[k]!, 4);
  });

  it("Hutchinson's trace estimate is within 4 standard errors of the trace", async () => {
    const { a, hvp, mask } = quadratic(12, 0, 4);
    const e = await operatorExtremes({ hvp, mask }, { traceSamples: 400, maxIterations: 12 });
    const trace = Array.from({ length: 12 }, (_, i) => a[i * 12 + i]!).reduce((x, y) => x + y, 0);
    expect(e.trace!.samples).toBe(400);
    expect(Math.abs(e.trace!.trace - trace)).toBeLessThan(4 * e.trace!.stderr + 1e-4);
  });

  it("says when the iterations ran out before the tolerance", async () => {
    const { hvp, mask } = quadratic(60, 0, 5);
    const e = await operatorExtremes({ hvp, mask }, { tol: 1e-9, maxIterations: 4 });
    expect(e.iterations).toBe(4);
    expect(e.converged).toBe(false);
  });

  it("checks its options", async () => {
    const { hvp, mask } = quadratic(4, 0, 1);
    await expect(operatorExtremes({ hvp, mask }, { tol: 0 })).rejects.toThrow(
      /'tol' must be in \(0, 1\), got 0/,
    );
    await expect(operatorExtremes({ hvp, mask }, { maxIterations: 1 })).rejects.toThrow(
      /'maxIterations' must be an integer >= 2, got 1/,
    );
    await expect(operatorExtremes({ hvp, mask }, { topK: -1 })).rejects.toThrow(/'topK'/);
  });
});

describe("softmax regression: the exact Hessian through ONNX Runtime", () => {
  // logits = W x + b: H[(k,f),(l,g)] = mean_n x_nf x_ng (p_nk [k = l] - p_nk p_nl), w.r.t. W only.
  const K = 3;
  const F = 4;
  const { model, theta, data, w, b, dim, H } = softmaxRegression();
  const rng = new Random(9);

  it("H v equals the closed form, in batches of any size", async () => {
    const v = Float32Array.from({ length: model.size }, () => rng.normal());
    for (const batchSize of [3, 64]) {
      const op = await hessianOperator(model, theta, data, { threads: 1, batchSize });
      try {
        const hv = await op.hvp(v);
        expect(op.passes).toBe(1);
        let err = 0;
        let ref = 0;
        for (let i = 0; i < dim; i++) {
          let s = 0;
          for (let j = 0; j < dim; j++) s += H[i * dim + j]! * v[w.offset + j]!;
          err += (hv[w.offset + i]! - s) ** 2;
          ref += s * s;
        }
        expect(Math.sqrt(err / ref)).toBeLessThan(1e-5);
        // Outside the filter weights: nothing.
        for (let i = b.offset; i < b.offset + b.size; i++) expect(hv[i]).toBe(0);
      } finally {
        await op.dispose();
      }
    }
  });

  it("lambda_max, lambda_min and the trace match the closed form's", async () => {
    const exact = symmetricEigen(H, dim).values;
    const e = await hessianExtremes(model, theta, data, {
      threads: 1,
      tol: 1e-6,
      maxIterations: dim,
      traceSamples: 300,
    });
    expect(e.converged).toBe(true);
    expect(Math.abs(e.max - exact[0]!) / exact[0]!).toBeLessThan(1e-4);
    // lambda_min is 0 (adding one vector to every row of W leaves the softmax unchanged).
    expect(Math.abs(e.min - exact[dim - 1]!)).toBeLessThan(1e-4 * exact[0]!);
    const trace = Array.from({ length: dim }, (_, i) => H[i * dim + i]!).reduce((p, q) => p + q, 0);
    expect(Math.abs(e.trace!.trace - trace)).toBeLessThan(4 * e.trace!.stderr + 1e-4);
    expect(e.passes).toBe(e.iterations + 300);
  });

  it("gradient() is the mean loss gradient over the data at theta", async () => {
    const op = await hessianOperator(model, theta, data, { threads: 1, batchSize: 4 });
    try {
      const { loss, gradient } = await op.gradient();
      expect(loss).toBeGreaterThan(0);
      expect(gradient.length).toBe(model.size);
      // The gradient of softmax regression w.r.t. W: mean_n (p_n - y_n) x_n^T; its rows sum to zero over classes.
      for (let f = 0; f < F; f++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += gradient[w.offset + k * F + f]!;
        expect(Math.abs(s)).toBeLessThan(1e-6);
      }
      expect(filterMask(model).reduce((x, y) => x + y, 0)).toBe(dim);
    } finally {
      await op.dispose();
    }
  });

  it("refuses bad arguments by name", async () => {
    await expect(hessianOperator(model, theta, data, { batchSize: 0 })).rejects.toThrow(
      /'batchSize' must be a positive integer, got 0/,
    );
    await expect(hessianOperator(model, theta.subarray(1), data)).rejects.toThrow(
      /'theta' has 14 values but model 'mlp' has 15/,
    );
    const wrong = { ...data, shape: [1, 3, 3] };
    await expect(hessianOperator(model, theta, wrong)).rejects.toThrow(
      /samples of shape \[1, 3, 3\] but model 'mlp' takes \[1, 2, 2\]/,
    );
    const op = await hessianOperator(model, theta, data, { threads: 1 });
    try {
      await expect(op.hvp(new Float32Array(3))).rejects.toThrow(/'v' has 3 values but model 'mlp' has 15/);
    } finally {
      await op.dispose();
    }
  });
});

describe("zoo models against PyTorch double backward (float64 reference)", () => {
  for (const { name } of HVP_FIXTURES) {
    const ref = (hvpReference as unknown as Record<string, Ref>)[name]!;

    it(`${name}: H v per filter tensor within 1e-4 of the product's norm`, async () => {
      const { model, params, data } = buildHvpFixture(name);
      const H = await hessianOperator(model, params, data, { threads: 1, batchSize: 64 });
      try {
        const hv = await H.hvp(hvpDirection(params, model.params));
        let total = 0;
        for (const want of Object.values(ref.hv)) total += want.norm ** 2;
        total = Math.sqrt(total);
        const filters = model.params.filter((p) => p.role === "filter").map((p) => p.name);
        expect(Object.keys(ref.hv).sort()).toEqual([...filters].sort());
        for (const [pname, want] of Object.entries(ref.hv)) {
          const got = paramView(hv, model.params.find((q) => q.name === pname)!);
          let s = 0;
          for (const x of got) s += x * x;
          expect(Math.abs(Math.sqrt(s) - want.norm), pname).toBeLessThan(1e-4 * total);
          for (const [i, value] of want.samples)
            expect(Math.abs(got[i]! - value), `${pname}[${i}]`).toBeLessThan(1e-4 * total);
        }
        expect(H.passes).toBe(1);
      } finally {
        await H.dispose();
      }
    });

    it(`${name}: lambda_max and lambda_min by Lanczos within 1e-2 relative of PyTorch's (both converged)`, async () => {
      const { model, params, data } = buildHvpFixture(name);
      const scale = Math.max(Math.abs(ref.lambdaMax), Math.abs(ref.lambdaMin));
      expect(ref.residualMax).toBeLessThan(1e-8 * scale);
      expect(ref.residualMin).toBeLessThan(1e-8 * scale);
      const e = await hessianExtremes(model, params, data, { threads: 1, tol: 1e-3, maxIterations: 150 });
      expect(e.converged).toBe(true);
      expect(Math.abs(e.max - ref.lambdaMax) / Math.abs(ref.lambdaMax)).toBeLessThan(1e-2);
      expect(Math.abs(e.min - ref.lambdaMin) / Math.abs(ref.lambdaMin)).toBeLessThan(1e-2);
      // The stated residuals bound the distance to the reference.
      expect(Math.abs(e.max - ref.lambdaMax)).toBeLessThanOrEqual(e.residualMax + 1e-5 * scale);
    });
  }
});
