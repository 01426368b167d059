// Optimizer updates inside the gradient graph (createGradientSession with
// `optimizer`): the same parameters and optimizer state as the gradient plus
// optimizerStep() in JavaScript, step after step, for every optimizer.

import { describe, expect, it } from "vitest";
import { createGradientSession } from "../../src/autodiff/session.ts";
import {
  type OptimizerConfig,
  optimizerState,
  optimizerStep,
  updateRunningStat,
} from "../../src/core/optim.ts";
import { Random } from "../../src/core/random.ts";
import { isTrainable } from "../../src/model/model.ts";
import { zooModel } from "../../src/zoo/zoo.ts";
import { relativeError } from "../helpers.ts";

describe("in-graph optimizer updates", () => {
  const model = zooModel("cnn", { inputShape: [1, 28, 28], seed: 3 });
  const rng = new Random(5);
  const count = 16;
  const inputs = Float32Array.from({ length: count * 784 }, () => rng.normal());
  const labels = Int32Array.from({ length: count }, () => rng.int(10));
  const mask = new Uint8Array(model.size);
  for (const p of model.params) if (isTrainable(p.role)) mask.fill(1, p.offset, p.offset + p.size);
  const stats = new Map(model.params.filter((p) => p.role === "bn-stat").map((p) => [p.name, p]));

  it.each<[string, OptimizerConfig, number]>([
    ["SGD with momentum and weight decay", { kind: "sgd", momentum: 0.9, weightDecay: 5e-4 }, 0.05],
    ["SGD with Nesterov momentum", { kind: "sgd", momentum: 0.9, nesterov: true }, 0.05],
    ["plain SGD with weight decay", { kind: "sgd", weightDecay: 1e-3 }, 0.05],
    ["Adam with weight decay", { kind: "adam", weightDecay: 1e-4 }, 1e-3],
  ])(
    "%s: each of 4 steps matches gradient + optimizerStep() within 1e-5",
    async (_, optimizer, lr) => {
      const fused = await createGradientSession(model, { batchNorm: "training", threads: 2, optimizer });
      const plain = await createGradientSession(model, { batchNorm: "training", threads: 2 });
      try {
        expect(fused.graph.gradients).toEqual([]);
        expect(fused.graph.updates.length).toBe(model.params.filter((p) => isTrainable(p.role)).length);
        const a = { params: model.initial.slice(), state: optimizerState(optimizer, model.size) };
        const b = { params: model.initial.slice(), state: optimizerState(optimizer, model.size) };
        for (let s = 0; s < 4; s++) {
          // Each step starts both sides from the same point: float32 rounding differences would
          // otherwise grow chaotically (a ReLU or max-pool switch) and hide what is compared.
          b.params.set(a.params);
          b.state.m.set(a.state.m);
          b.state.v.set(a.state.v);
          b.state.step = a.state.step;
          const u = await fused.update(a.params, a.state, inputs, labels, lr);
          const g = await plain.step(b.params, inputs, labels);
          optimizerStep(optimizer, b.state, b.params, g.gradient, mask, lr);
          expect(Math.abs(u.loss - g.loss)).toBeLessThan(1e-5 * g.loss);
          for (const side of [
            [a, u],
            [b, g],
          ] as const) {
            for (const [name, v] of side[1].statistics) {
              const p = stats.get(name)!;
              updateRunningStat(side[0].params.subarray(p.offset, p.offset + p.size), v);
            }
          }
          expect(relativeError(a.params, b.params)).toBeLessThan(1e-5);
          expect(relativeError(a.state.m, b.state.m)).toBeLessThan(1e-5);
          if (optimizer.kind === "adam") expect(relativeError(a.state.v, b.state.v)).toBeLessThan(1e-5);
          expect(a.state.step).toBe(s + 1);
        }
        // The parameters moved: the comparison is not between two unchanged vectors.
        expect(relativeError(a.params, model.initial)).toBeGreaterThan(1e-4);
      } finally {
        await fused.dispose();
        await plain.dispose();
      }
    },
    60_000,
  );

  it("refuses step() on an updating session, update() without an optimizer, and bad arguments", async () => {
    const optimizer = { kind: "sgd", momentum: 0.9 } as const;
    const fused = await createGradientSession(model, { batchNorm: "training", threads: 1, optimizer });
    const plain = await createGradientSession(model, { batchNorm: "training", threads: 1 });
    try {
      const state = optimizerState(optimizer, model.size);
      const params = model.initial.slice();
      await expect(fused.step(params, inputs, labels)).rejects.toThrow(
        /applies optimizer updates; call update\(\)/,
      );
      await expect(plain.update(params, state, inputs, labels, 0.1)).rejects.toThrow(/has no optimizer/);
      await expect(fused.update(params, state, inputs, labels, Number.NaN)).rejects.toThrow(
        /'lr' must be a finite number >= 0, got NaN/,
      );
      await expect(fused.update(params, optimizerState(optimizer, 3), inputs, labels, 0.1)).rejects.toThrow(
        /'state' holds 3 values but model 'cnn' has/,
      );
      expect(Array.from(params)).toEqual(Array.from(model.initial));
      expect(state.step).toBe(0);
    } finally {
      await fused.dispose();
      await plain.dispose();
    }
    await expect(
      createGradientSession(model, { optimizer: { kind: "sgd", nesterov: true }, threads: 1 }),
    ).rejects.toThrow(/Nesterov momentum needs optimizer.momentum > 0/);
    await expect(
      createGradientSession(model, { optimizer, parameters: "initializers", threads: 1 }),
    ).rejects.toThrow(/'optimizer' needs parameters: "inputs"/);
  });
});
