// Stochastic Lanczos quadrature of zoo models against PyTorch (fixtures/zoo-slq.json: float64
// double-backward products, the same probes, the same number of Lanczos steps): the moments, the
// nodes, and Hutchinson's trace over the same probes.

import { describe, expect, it } from "vitest";
import { buildHvpFixture } from "../../fixtures/make-hvp-fixtures.ts";
import { probeFingerprint, SLQ_FIXTURES } from "../../fixtures/make-slq-fixtures.ts";
import reference from "../../fixtures/zoo-slq.json" with { type: "json" };
import { probeVectors } from "../../src/core/lanczos.ts";
import { filterMask } from "../../src/curvature/hvp.ts";
import { hessianSpectrum, spectrumMoments } from "../../src/curvature/spectrum.ts";

type Ref = {
  probeFingerprint: number;
  nodes: number[][];
  weights: number[][];
  moments: number[];
  hutchinson: number;
};

describe("SLQ against PyTorch on the same probes (float64 reference)", () => {
  for (const c of SLQ_FIXTURES) {
    const ref = (reference as unknown as Record<string, Ref>)[c.name]!;

    it(`${c.name}: moments k = 0..4, nodes and Hutchinson's trace within 1e-4 on the spectrum's scale`, async () => {
      const { model, params, data } = buildHvpFixture(c.name);
      const probes = probeVectors(model.size, c.probes, {
        seed: c.seed,
        distribution: c.distribution,
        mask: filterMask(model),
      });
      // The probes are those the fixture was made from.
      expect(probeFingerprint(probes)).toBeCloseTo(ref.probeFingerprint, 6);
      const s = await hessianSpectrum(model, params, data, {
        threads: 1,
        batchSize: 64,
        probes: c.probes,
        steps: c.steps,
        seed: c.seed,
        distribution: c.distribution,
      });
      expect(s.products).toBe(c.probes * c.steps);
      // Tolerances on the scale of the spectrum: max |node|^k for the k-th moment (a moment can
      // cancel to near zero on an indefinite Hessian).
      const scale = Math.max(...ref.nodes.flat().map(Math.abs));
      const got = spectrumMoments(s, 4);
      for (let k = 0; k <= 4; k++) {
        const want = ref.moments[k]!;
        expect(Math.abs(got[k]! - want), `moment ${k}`).toBeLessThan(1e-4 * scale ** k);
      }
      s.nodes.forEach((t, p) => {
        expect(t.length).toBe(ref.nodes[p]!.length);
        for (let j = 0; j < t.length; j++)
          expect(Math.abs(t[j]! - ref.nodes[p]![j]!), `probe ${p} node ${j}`).toBeLessThan(1e-4 * scale);
      });
      // Hutchinson's z^T H z from alpha_1 vs PyTorch's separate products: per dimension, on the same scale.
      expect(Math.abs(s.trace.trace - ref.hutchinson) / s.dimension).toBeLessThan(1e-4 * scale);
    });
  }
});
