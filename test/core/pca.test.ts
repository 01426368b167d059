import { describe, expect, it } from "vitest";
import { pcaDirections, projectPoint, type TrajectoryBlock } from "../../src/core/pca.ts";
import { Random } from "../../src/core/random.ts";
import { dot, norm } from "../../src/core/vector.ts";
import { expectAllClose } from "../helpers.ts";

/** Checkpoints theta_i = c + a_i u + b_i v on a known plane, returned in blocks of `block` entries. */
function planarTrajectory(size: number, count: number, block: number) {
  const rng = new Random(8);
  const u = Float32Array.from({ length: size }, () => rng.normal());
  const v0 = Float32Array.from({ length: size }, () => rng.normal());
  const v = v0.map((x, i) => x - (dot(v0, u) / dot(u, u)) * (u[i] as number));
  const un = u.map((x) => x / norm(u));
  const vn = v.map((x) => x / norm(v));
  const a = Array.from({ length: count }, (_, i) => 3 * Math.cos(i / 2) * (count - i));
  const b = Array.from({ length: count }, (_, i) => Math.sin(i) * (count - i));
  const thetas = a.map((ai, i) => un.map((x, k) => 0.5 + ai * x + (b[i] as number) * (vn[k] as number)));
  const final = thetas[count - 1]!;
  const diffs = thetas.map((t) => t.map((x, k) => x - (final[k] as number)));
  const source = function* (): Generator<TrajectoryBlock> {
    for (let offset = 0; offset < size; offset += block)
      yield { offset, rows: diffs.map((d) => d.subarray(offset, Math.min(size, offset + block))) };
  };
  return { un, vn, diffs, source };
}

describe("pcaDirections", () => {
  it("recovers a plane holding the whole trajectory with 100 % explained variance, streamed in blocks", async () => {
    const size = 257;
    const count = 12;
    const { un, vn, diffs, source } = planarTrajectory(size, count, 50);
    const pca = await pcaDirections(source, size, count, 2);
    const [d1, d2] = pca.directions as [Float32Array, Float32Array];
    expect(norm(d1)).toBeCloseTo(1, 5);
    expect(norm(d2)).toBeCloseTo(1, 5);
    expect(dot(d1, d2)).toBeCloseTo(0, 5);
    expect(pca.explainedVarianceRatio[0]! + pca.explainedVarianceRatio[1]!).toBeCloseTo(1, 6);
    expect(pca.explainedVarianceRatio[0]!).toBeGreaterThanOrEqual(pca.explainedVarianceRatio[1]!);
    // Both PCs lie in span(u, v): their components outside it vanish.
    for (const d of [d1, d2]) {
      const cu = dot(d, un);
      const cv = dot(d, vn);
      expect(cu * cu + cv * cv).toBeCloseTo(1, 5);
    }
    // Projections reproduce every checkpoint exactly: theta_i - theta_final = x d1 + y d2.
    for (const w of diffs) {
      const [x, y] = projectPoint(w, [d1, d2], "orthogonal") as [number, number];
      expectAllClose(
        w,
        w.map((_, k) => x * (d1[k] as number) + y * (d2[k] as number)),
        { atol: 1e-4 },
      );
    }
  });

  it("matches scikit-learn's explained variance on a small example (centered columns)", async () => {
    // sklearn's PCA centers the columns, then takes the eigenvalues of the covariance X_c^T X_c / (n - 1).
    const rows = [new Float32Array([1, 1]), new Float32Array([3, 1]), new Float32Array([1, 5])];
    const pca = await pcaDirections(() => [{ offset: 0, rows }], 2, 3, 2);
    // Column means are [5/3, 7/3], so the centered rows are:
    const x = [
      [-2 / 3, -4 / 3],
      [4 / 3, -4 / 3],
      [-2 / 3, 8 / 3],
    ];
    const s = [0, 1].map((i) => [0, 1].map((j) => x.reduce((acc, r) => acc + r[i]! * r[j]!, 0) / 2));
    const tr = s[0]![0]! + s[1]![1]!;
    const det = s[0]![0]! * s[1]![1]! - s[0]![1]! * s[1]![0]!;
    const l1 = tr / 2 + Math.sqrt((tr * tr) / 4 - det);
    const l2 = tr / 2 - Math.sqrt((tr * tr) / 4 - det);
    expectAllClose(pca.explainedVariance, [l1, l2], { rtol: 1e-9 });
    expectAllClose(pca.explainedVarianceRatio, [l1 / (l1 + l2), l2 / (l1 + l2)], { rtol: 1e-9 });
    expectAllClose(pca.singularValues, [Math.sqrt(2 * l1), Math.sqrt(2 * l2)], { rtol: 1e-9 });
  });

  it("projects exactly with least squares onto non-orthogonal directions", () => {
    const d1 = new Float32Array([1, 0, 0]);
    const d2 = new Float32Array([1, 1, 0]);
    const w = new Float32Array([3, 2, 0]); // = 1*d1 + 2*d2
    expectAllClose(projectPoint(w, [d1, d2], "least-squares"), [1, 2], { atol: 1e-12 });
    expect(() => projectPoint(w, [d1, d1], "least-squares")).toThrow(/linearly dependent/);
  });

  it("refuses too few checkpoints", async () => {
    await expect(pcaDirections(() => [], 3, 1)).rejects.toThrow(/needs at least 2 checkpoints, got 1/);
  });
});
