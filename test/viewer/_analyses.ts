// Analysis files for the viewer tests, with values known in closed form:
// - connect/connect.json: a Bezier curve w1 = (-1, 0), w2 = (1, 0), theta = (0, 4) over the bowl
//   L(w) = |w|^2 / 2, measured by the library (evaluateConnection): the straight line has no
//   barrier, the curve one of 1.5 at t = 1/2; written with the fields connectModels writes;
// - connect/plane.h5: a 2D surface of kind "curve-plane" beside it;
// - spectrum.json: stochastic Lanczos quadrature (operatorSpectrum) of diag(0, 0, 0, 0, 0.5, 0.5,
//   1, 9), written by spectrumJson (the file `losscape spectrum --out` writes): with 4 steps the
//   nodes are the 4 distinct eigenvalues;
// - sharpness.json: a two-row table typed by the library's row and settings types, one row with
//   an accuracy that is not finite (null in JSON).

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spectrumJson } from "../../src/cli/spectrum.ts";
import type { SharpnessRow, SharpnessSettings } from "../../src/curvature/sharpness.ts";
import { operatorSpectrum, spectralDensity, spectrumTrace } from "../../src/curvature/spectrum.ts";
import { emptySurface, writeSurface } from "../../src/formats/surface-file.ts";
import { evaluateConnection } from "../../src/landscape/connect.ts";
import { quadraticModel } from "../landscape/_quadratic.ts";

/** The diagonal operator's eigenvalues. */
export const EIGENVALUES = [0, 0, 0, 0, 0.5, 0.5, 1, 9];
export const SPECTRUM = { probes: 3, steps: 4, sigma: 0.1 };

export const SHARPNESS_SETTINGS: SharpnessSettings = {
  perturb: "filters",
  perturbed: 1234,
  data: "fashion-mnist train",
  samplesInData: 500,
  epsilon: 0.001,
  rhoAverage: 0.05,
  rhoL2: 0.5,
  rhoLinf: 0.001,
  steps: 20,
  samples: 16,
  seed: 0,
  lanczosIterations: 50,
  lanczosTol: 0.001,
  traceSamples: 20,
  traceMethod: "hutchinson",
};

export const SHARPNESS_ROWS: SharpnessRow[] = [
  {
    label: "bs128",
    loss: 0.3125,
    accuracy: 0.9,
    epsilon: { sharpness: 1.25, epsilon: 0.001, accepted: 18 },
    average: { sharpness: 0.0132, stderr: 0.0011, rho: 0.05 },
    worstL2: { sharpness: 0.21, rho: 0.5, accepted: 17 },
    worstLinf: { sharpness: 0.034, rho: 0.001, accepted: 19 },
    lambdaMax: 12.5,
    lambdaResidual: 0.01,
    lambdaConverged: true,
    trace: { trace: 310, stderr: 12, samples: 20, method: "hutchinson" },
    seconds: 3.2,
  },
  {
    label: "bs8192",
    loss: 0.41,
    accuracy: Number.NaN,
    epsilon: { sharpness: 7.5, epsilon: 0.001, accepted: 20 },
    average: { sharpness: 0.088, stderr: 0.004, rho: 0.05 },
    worstL2: { sharpness: 1.9, rho: 0.5, accepted: 20 },
    worstLinf: { sharpness: 0.31, rho: 0.001, accepted: 20 },
    lambdaMax: 96,
    lambdaResidual: 2,
    lambdaConverged: false,
    seconds: 3.4,
  },
];

/** Writes the connect run (connect/connect.json, connect/plane.h5), spectrum.json and sharpness.json under `dir`. */
export async function writeAnalyses(dir: string): Promise<void> {
  mkdirSync(join(dir, "connect"), { recursive: true });
  const { engine } = quadraticModel([1, 1]);
  const data = {
    name: "none",
    shape: [1],
    inputs: new Float32Array(1),
    labels: new Uint8Array(1),
    classes: 2,
  };
  const connection = await evaluateConnection(
    engine,
    {
      kind: "bezier",
      from: new Float32Array([-1, 0]),
      to: new Float32Array([1, 0]),
      theta: new Float32Array([0, 4]),
    },
    { points: 21, train: data, test: data },
  );
  writeFileSync(
    join(dir, "connect", "connect.json"),
    `${JSON.stringify(
      {
        model: "quadratic",
        steps: 40,
        lr: 0.05,
        seed: 0,
        batch_size: 16,
        bn_settings: { bn: "interpolate" },
        barrier_definition: "max over t of value(t) - ((1 - t) value(0) + t value(1))",
        ...connection,
        identity: { points: 21 },
        training_losses: [3, 2.5, 2.1, 2],
      },
      null,
      1,
    )}\n`,
  );
  const x = Float64Array.from({ length: 5 }, (_, i) => -0.5 + 0.5 * i);
  const plane = emptySurface(x, x, ["train_loss"], "plane.directions.h5", { kind: "curve-plane" });
  for (let k = 0; k < 25; k++) {
    plane.values.train_loss![k] = 0.5 * (x[Math.floor(k / 5)]! ** 2 + x[k % 5]! ** 2);
    plane.done[k] = 1;
  }
  writeSurface(join(dir, "connect", "plane.h5"), plane);

  const n = EIGENVALUES.length;
  const op = {
    mask: new Uint8Array(n).fill(1),
    hvp: async (v: Float32Array) => v.map((x, i) => x * EIGENVALUES[i]!),
  };
  const q = await operatorSpectrum(op, { probes: SPECTRUM.probes, steps: SPECTRUM.steps, seed: 1 });
  const s = { ...q, trace: spectrumTrace(q), passes: q.products };
  writeFileSync(
    join(dir, "spectrum.json"),
    spectrumJson(s, spectralDensity(q, { sigma: SPECTRUM.sigma, points: 400 }), { model: "diagonal" }),
  );
  writeFileSync(
    join(dir, "sharpness.json"),
    `${JSON.stringify({ model: "cnn", settings: SHARPNESS_SETTINGS, rows: SHARPNESS_ROWS }, null, 1)}\n`,
  );
}
