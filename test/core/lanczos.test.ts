import { describe, expect, it } from "vitest";
import {
  hutchinsonTrace,
  hutchPlusPlusTrace,
  lanczos,
  lanczosEigenpairs,
  lanczosQuadrature,
  lanczosTridiagonal,
  probeVectors,
} from "../../src/core/lanczos.ts";
import { symmetricEigen } from "../../src/core/linalg.ts";
import { Random } from "../../src/core/random.ts";
import { expectAllClose } from "../helpers.ts";

describe("symmetricEigen", () => {
  it("diagonalizes a known matrix: A v = lambda v, eigenvalues descending, vectors orthonormal", () => {
    const rng = new Random(4);
    const n = 6;
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = rng.normal();
    const { values, vectors } = symmetricEigen(a, n);
    for (let k = 0; k < n - 1; k++) expect(values[k]!).toBeGreaterThanOrEqual(values[k + 1]!);
    for (let k = 0; k < n; k++) {
      const v = Array.from({ length: n }, (_, i) => vectors[i * n + k]!);
      const av = v.map((_, i) => v.reduce((s, x, j) => s + a[i * n + j]! * x, 0));
      expectAllClose(
        av,
        v.map((x) => x * values[k]!),
        { atol: 1e-10 },
      );
      for (let l = 0; l < n; l++) {
        const dot = v.reduce((s, x, i) => s + x * vectors[i * n + l]!, 0);
        expect(dot).toBeCloseTo(k === l ? 1 : 0, 10);
      }
    }
    expectAllClose(symmetricEigen([2, 1, 1, 2], 2).values, [3, 1], { atol: 1e-12 });
  });
});

describe("lanczos", () => {
  it("finds the extreme eigenvalues of a diagonal operator", async () => {
    const n = 300;
    const diag = Float32Array.from({ length: n }, (_, i) => -2 + (7 * i) / (n - 1)); // -2 .. 5
    const r = await lanczos((v) => v.map((x, i) => x * diag[i]!), n, {
      seed: 1,
      maxIterations: 80,
      tol: 1e-6,
    });
    expect(r.max).toBeCloseTo(5, 4);
    expect(r.min).toBeCloseTo(-2, 4);
  });

  it("restricts the operator to masked entries", async () => {
    const diag = new Float32Array([10, 1, 2, 3]);
    const mask = new Uint8Array([0, 1, 1, 1]);
    const r = await lanczos((v) => v.map((x, i) => x * diag[i]!), 4, { mask, maxIterations: 10 });
    // Vectors pass through float32 (the engine's precision), so agreement is to ~1e-7.
    expect(r.max).toBeCloseTo(3, 6);
    expect(r.min).toBeCloseTo(1, 6);
  });
});

describe("hutchinsonTrace", () => {
  it("is exact for a diagonal operator with Rademacher vectors", async () => {
    const diag = Float32Array.from({ length: 50 }, (_, i) => i / 10);
    const r = await hutchinsonTrace((v) => v.map((x, i) => x * diag[i]!), 50, { samples: 5 });
    expect(r.trace).toBeCloseTo(122.5, 4);
    expect(r.stderr).toBeCloseTo(0, 6);
  });
});

/** A = U diag(eigs) U^T with a seeded random orthogonal U (Gram-Schmidt of Gaussian columns). */
function rotated(eigs: readonly number[], seed: number) {
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
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += u[k]![i]! * eigs[k]! * u[k]![j]!;
      a[i * n + j] = s;
    }
  const matvec = (v: Float32Array) => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += a[i * n + j]! * v[j]!;
      out[i] = s;
    }
    return out;
  };
  /** q^T A^k q for a vector q (float64). */
  const moment = (q: ArrayLike<number>, k: number) => {
    let v = Float64Array.from(q);
    for (let r = 0; r < k; r++) {
      const w = new Float64Array(n);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) w[i] = w[i]! + a[i * n + j]! * v[j]!;
      v = w;
    }
    let s = 0;
    for (let i = 0; i < n; i++) s += (q[i] as number) * v[i]!;
    return s;
  };
  return { a, u, matvec, moment };
}

describe("probeVectors", () => {
  it("draws seeded Rademacher or Gaussian probes, zero outside the mask", () => {
    const mask = new Uint8Array([1, 0, 1, 1, 1]);
    const [z1, z2] = probeVectors(5, 2, { seed: 3, mask });
    expect([...z1!].map(Math.abs)).toEqual([1, 0, 1, 1, 1]);
    expect([...probeVectors(5, 2, { seed: 3, mask })[1]!]).toEqual([...z2!]);
    expect([...z1!]).not.toEqual([...z2!]);
    const [g] = probeVectors(4, 1, { seed: 1, distribution: "gaussian" });
    expect(g!.some((v) => Math.abs(v) !== 1)).toBe(true);
    expect(() => probeVectors(4, 1, { distribution: "uniform" as "gaussian" })).toThrow(
      /unknown distribution 'uniform'; expected one of rademacher, gaussian/,
    );
  });
});

describe("Lanczos quadrature", () => {
  const eigs = [-1, -1, -1, 0.5, 0.5, 0.5, 0.5, 0.5, 2, 2, 2, 2, 7];
  const A = rotated(eigs, 5);

  it("with m >= the number of distinct eigenvalues is exact: nodes are the eigenvalues, moments q^T A^k q", async () => {
    const [z] = probeVectors(eigs.length, 1, { seed: 2 });
    // Four distinct eigenvalues: the Krylov space is invariant after 4 steps (up to float32 rounding).
    const t = await lanczosTridiagonal(A.matvec, z!, 4);
    expect(t.alpha.length).toBe(4);
    expect(t.nextBeta).toBeLessThan(1e-5);
    const { nodes, weights } = lanczosQuadrature(t);
    expectAllClose(nodes, [7, 2, 0.5, -1], { atol: 1e-5 });
    expect(weights.reduce((x, y) => x + y, 0)).toBeCloseTo(1, 10);
    const q = Array.from(z!, (v) => v / Math.sqrt(eigs.length));
    // Each weight is the squared norm of q's part in that eigenspace.
    const part = (lambda: number) =>
      A.u.reduce(
        (s, col, k) => (eigs[k] === lambda ? s + col.reduce((p, x, i) => p + x * q[i]!, 0) ** 2 : s),
        0,
      );
    expectAllClose(weights, [7, 2, 0.5, -1].map(part), { atol: 1e-5 });
    for (let k = 0; k <= 8; k++) {
      const got = nodes.reduce((s, x, j) => s + weights[j]! * x ** k, 0);
      expect(Math.abs(got - A.moment(q, k))).toBeLessThan(1e-4 * Math.max(1, Math.abs(A.moment(q, k))));
    }
    // More steps than distinct eigenvalues: the extra nodes carry no weight, the moments stay exact.
    const more = lanczosQuadrature(await lanczosTridiagonal(A.matvec, z!, 10));
    let stray = 0;
    more.nodes.forEach((x, j) => {
      if (![7, 2, 0.5, -1].some((e) => Math.abs(x - e) < 1e-3)) stray += more.weights[j]!;
    });
    expect(stray).toBeLessThan(1e-8);
    for (let k = 0; k <= 8; k++) {
      const got = more.nodes.reduce((s, x, j) => s + more.weights[j]! * x ** k, 0);
      expect(Math.abs(got - A.moment(q, k))).toBeLessThan(1e-4 * Math.max(1, Math.abs(A.moment(q, k))));
    }
  });

  it("with fewer steps (m = 2) is still exact for polynomials of degree < 2m = 4, not beyond", async () => {
    const [z] = probeVectors(eigs.length, 1, { seed: 4 });
    const q = Array.from(z!, (v) => v / Math.sqrt(eigs.length));
    const { nodes, weights } = lanczosQuadrature(await lanczosTridiagonal(A.matvec, z!, 2));
    expect(nodes.length).toBe(2);
    const mom = (k: number) => nodes.reduce((s, x, j) => s + weights[j]! * x ** k, 0);
    for (let k = 0; k < 4; k++) expect(mom(k)).toBeCloseTo(A.moment(q, k), 4);
    expect(Math.abs(mom(4) - A.moment(q, 4))).toBeGreaterThan(1e-2);
  });

  it("refuses a zero start vector and bad step counts", async () => {
    await expect(lanczosTridiagonal(A.matvec, new Float32Array(13), 3)).rejects.toThrow(
      /start vector is zero/,
    );
    await expect(lanczosTridiagonal(A.matvec, new Float32Array(13).fill(1), 0)).rejects.toThrow(
      /'steps' must be a positive integer, got 0/,
    );
  });
});

describe("lanczosEigenpairs", () => {
  const eigs = Array.from({ length: 40 }, (_, i) => -3 + (9 * i) / 39); // -3 .. 6, distinct
  const A = rotated(eigs, 9);

  it("gives the top two and the smallest eigenvectors within their stated residuals", async () => {
    const e = await lanczosEigenpairs(A.matvec, 40, {
      largest: 2,
      smallest: 1,
      tol: 1e-6,
      maxIterations: 40,
    });
    expect(e.converged).toBe(true);
    expectAllClose(e.values, [6, 6 - 9 / 39, -3], { atol: 1e-5 });
    for (const [k, index] of [39, 38, 0].entries()) {
      const want = A.u[index]!;
      const v = e.vectors[k]!;
      const cos = v.reduce((s, x, i) => s + x * want[i]!, 0);
      expect(Math.abs(cos)).toBeCloseTo(1, 5);
      expect(v.reduce((s, x) => s + x * x, 0)).toBeCloseTo(1, 6);
      // Sign convention: the largest |entry| is positive.
      const big = v.reduce((b, x, i) => (Math.abs(x) > Math.abs(v[b]!) ? i : b), 0);
      expect(v[big]!).toBeGreaterThan(0);
      // The residual bound is the true residual ||A v - lambda v||.
      const av = A.matvec(v);
      const r = Math.sqrt(av.reduce((s, x, i) => s + (x - e.values[k]! * v[i]!) ** 2, 0));
      expect(r).toBeLessThan(e.residuals[k]! + 1e-5);
    }
  });

  it("says when the iterations ran out, and checks its options", async () => {
    const e = await lanczosEigenpairs(A.matvec, 40, { largest: 2, tol: 1e-12, maxIterations: 5 });
    expect(e.iterations).toBe(5);
    expect(e.converged).toBe(false);
    await expect(lanczosEigenpairs(A.matvec, 40, { largest: 0 })).rejects.toThrow(/at least one positive/);
    await expect(lanczosEigenpairs(A.matvec, 3, { largest: 4 })).rejects.toThrow(
      /asked for 4 eigenpairs of an operator of dimension 3/,
    );
  });
});

describe("hutchPlusPlusTrace", () => {
  it("is exact for an operator of rank <= k (3k products)", async () => {
    const eigs = new Array<number>(30).fill(0);
    eigs[3] = 5;
    eigs[10] = -2;
    eigs[17] = 0.75;
    const A = rotated(eigs, 2);
    const r = await hutchPlusPlusTrace(A.matvec, 30, { products: 12, seed: 1 });
    // k = 4 sketch products, one per basis vector of the rank-3 sketch, k = 4 on the remainder.
    expect(r.products).toBe(11);
    expect(r.rank).toBe(3);
    expect(r.trace).toBeCloseTo(3.75, 4);
    expect(r.lowRank).toBeCloseTo(3.75, 4);
  });

  it("beats Hutchinson's error on a spectrum with a few large outliers, for the same products", async () => {
    const eigs = Array.from({ length: 60 }, (_, i) => (i < 4 ? 50 + 10 * i : 0.1 * ((i % 7) - 3)));
    const A = rotated(eigs, 6);
    const exact = eigs.reduce((x, y) => x + y, 0);
    let errPP = 0;
    let errH = 0;
    for (let seed = 0; seed < 10; seed++) {
      errPP += Math.abs((await hutchPlusPlusTrace(A.matvec, 60, { products: 15, seed })).trace - exact);
      errH += Math.abs((await hutchinsonTrace(A.matvec, 60, { samples: 15, seed })).trace - exact);
    }
    expect(errPP).toBeLessThan(0.2 * errH);
  });

  it("refuses fewer than 3 products", async () => {
    await expect(hutchPlusPlusTrace((v) => v, 4, { products: 2 })).rejects.toThrow(
      /'products' must be an integer >= 3, got 2/,
    );
  });
});
