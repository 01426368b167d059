import { describe, expect, it } from "vitest";
import { hutchinsonTrace, lanczos } from "../../src/core/lanczos.ts";
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
