import { describe, expect, it } from "vitest";
// Reference values from torch.optim (1.13) on p0 = [1, -2, 0.5], g(p) = 2p + [0.1, 0.2, -0.3], three steps;
// see fixtures/torch_optim.py for the script that printed them.
import reference from "../../fixtures/torch-optim.json" with { type: "json" };
import {
  learningRate,
  optimizerState,
  optimizerStep,
  paperSchedule,
  updateRunningStat,
} from "../../src/core/optim.ts";
import { expectAllClose } from "../helpers.ts";

const grad = (p: Float32Array) => p.map((v, i) => 2 * v + ([0.1, 0.2, -0.3][i] as number));

function run(
  config: Parameters<typeof optimizerStep>[0],
  lr: number,
  steps = 3,
  mask = new Uint8Array([1, 1, 1]),
) {
  const p = new Float32Array([1, -2, 0.5]);
  const state = optimizerState(config, 3);
  for (let s = 0; s < steps; s++) optimizerStep(config, state, p, grad(p), mask, lr);
  return p;
}

describe("optimizers follow torch.optim", () => {
  it("SGD with momentum and weight decay", () => {
    expectAllClose(run({ kind: "sgd", momentum: 0.9, weightDecay: 0.01 }, 0.1), reference.sgd_momentum, {
      rtol: 1e-6,
    });
  });
  it("SGD with Nesterov momentum", () => {
    expectAllClose(run({ kind: "sgd", momentum: 0.9, nesterov: true }, 0.1), reference.sgd_nesterov, {
      rtol: 1e-6,
    });
  });
  it("plain SGD", () => {
    expectAllClose(run({ kind: "sgd" }, 0.1), reference.sgd_plain, { rtol: 1e-6 });
  });
  it("Adam with L2 weight decay", () => {
    expectAllClose(run({ kind: "adam", weightDecay: 0.01 }, 0.01), reference.adam, { rtol: 1e-6 });
  });
  it("leaves masked entries (BN statistics) untouched and updates the others as without a mask", () => {
    for (const config of [
      { kind: "sgd", momentum: 0.9 },
      { kind: "sgd", momentum: 0.9, nesterov: true },
      { kind: "sgd" },
      { kind: "adam" },
    ] as const) {
      const full = run(config, 0.1);
      for (const mask of [
        [1, 0, 1],
        [0, 1, 0],
        [0, 0, 1],
        [1, 1, 0],
      ]) {
        const p = run(config, 0.1, 3, new Uint8Array(mask));
        mask.forEach((m, i) => {
          expect(p[i]).toBe(m ? full[i] : [1, -2, 0.5][i]);
        });
      }
    }
  });
  it("refuses Nesterov without momentum and mismatched lengths", () => {
    const p = new Float32Array(2);
    expect(() =>
      optimizerStep(
        { kind: "sgd", nesterov: true },
        optimizerState({ kind: "sgd" }, 2),
        p,
        p,
        new Uint8Array(2),
        0.1,
      ),
    ).toThrow(/Nesterov momentum needs momentum > 0/);
    expect(() =>
      optimizerStep({ kind: "sgd" }, optimizerState({ kind: "sgd" }, 3), p, p, new Uint8Array(2), 0.1),
    ).toThrow(/params \(2\), grad \(2\), mask \(2\) and state \(3\) differ/);
  });
});

describe("schedules and running statistics", () => {
  it("decays by 10 at 50/75/90 % of training, as the paper's recipe", () => {
    const s = paperSchedule(0.1, 20);
    expect(s.milestones).toEqual([10, 15, 18]);
    expect([0, 9, 10, 14, 15, 18, 19].map((e) => learningRate(s, e))).toEqual([
      0.1,
      0.1,
      0.1 * 0.1,
      0.1 * 0.1,
      0.1 * 0.1 * 0.1,
      0.1 * 0.1 * 0.1 * 0.1,
      0.1 * 0.1 * 0.1 * 0.1,
    ]);
  });
  it("merges milestones that coincide in short runs", () => {
    expect(paperSchedule(0.1, 3).milestones).toEqual([2, 3]);
  });
  it("updates running statistics with momentum 0.1", () => {
    const r = new Float32Array([0, 1]);
    updateRunningStat(r, [1, 3]);
    expectAllClose(r, [0.1, 1.2], { rtol: 1e-6 });
  });
});
