// The spectral-density figure: a golden SVG from a seeded quadrature, and its checks.

import { describe, expect, it } from "vitest";
import { spectralDensity } from "../../src/curvature/spectrum.ts";
import { spectrumFigure } from "../../src/plot/spectrum.ts";
import { expectGolden } from "./_golden.ts";

// A fixed quadrature: a bulk near zero and two outliers, as a Hessian's spectrum looks.
const quadrature = {
  nodes: [Float64Array.from([12, 4.5, 0.3, 0.05, -0.02, -0.4]), Float64Array.from([11.8, 0.2, 0.01, -0.3])],
  weights: [Float64Array.from([0.02, 0.05, 0.3, 0.4, 0.2, 0.03]), Float64Array.from([0.03, 0.37, 0.5, 0.1])],
};

describe("spectrumFigure", () => {
  it("draws the log density against the eigenvalue (golden)", () => {
    const d = spectralDensity(quadrature, { sigma: 0.1, points: 200 });
    expectGolden("spectrum", spectrumFigure([{ ...d, label: "toy" }], { title: "Hessian spectrum" }));
  });

  it("overlays two spectra and floors the tails on the axis", () => {
    const a = spectralDensity(quadrature, { sigma: 0.1, points: 50, range: [-1, 13] });
    const b = spectralDensity(quadrature, { sigma: 0.3, points: 50, range: [-1, 13] });
    const svg = spectrumFigure([
      { ...a, label: "small batch" },
      { ...b, label: "large batch" },
    ]);
    expect(svg).toMatch(/small batch \(sigma 0\.100\)/);
    expect(svg).toMatch(/large batch \(sigma 0\.300\)/);
    expect(svg).toMatch(/density \(log scale\)/);
  });

  it("names bad input", () => {
    expect(() => spectrumFigure([])).toThrow(/no spectrum to draw/);
    expect(() => spectrumFigure([{ grid: [0, 1], density: [1], sigma: 1 }])).toThrow(
      /'SLQ density' has 2 grid points but 1 densities/,
    );
    expect(() => spectrumFigure([{ grid: [0, 1], density: [0, 0], sigma: 1 }])).toThrow(/not positive/);
    expect(() => spectrumFigure([{ grid: [0, 1], density: [1, 1], sigma: 1 }], { floor: 2 })).toThrow(
      /'floor' must be in \(0, 1\), got 2/,
    );
  });
});
