// Whole-model gradients of zoo architectures against PyTorch: the gradient
// graph run on ONNX Runtime (float32) gives PyTorch's float64 loss, parameter
// gradients and batch statistics (fixtures/zoo-gradients.json, made by
// fixtures/make-gradient-fixtures.ts) within 1e-4 relative.

import { describe, expect, it } from "vitest";
import {
  GRADIENT_FIXTURES,
  MIN_RELU_MARGIN,
  MODES,
  SEARCHED,
  SMOOTH_FIXTURES,
} from "../../fixtures/make-gradient-fixtures.ts";
import { createGradientSession } from "../../src/autodiff/session.ts";
import { expectReferenceStep, gradientFixture as fixture, reference } from "./_gradient-reference.ts";

const RTOL = 1e-4;

/** The zoo architectures; the smooth blocked-convolution cases are checked in nchwc.test.ts. */
const ZOO = GRADIENT_FIXTURES.filter((name) => !SMOOTH_FIXTURES.some((f) => f.id === name));

describe("zoo gradients against PyTorch", () => {
  it("zoo-gradients.json covers the fixture list; searched batches keep ReLU inputs away from the kink", () => {
    expect(reference.models).toEqual([...GRADIENT_FIXTURES]);
    expect(reference.torch).toMatch(/^1\.13/);
    for (const name of SEARCHED) {
      expect(reference.results[name]!.batchSeed).not.toBeNull();
      for (const mode of MODES)
        expect(reference.results[name]![mode].reluMargin).toBeGreaterThanOrEqual(MIN_RELU_MARGIN);
    }
  });

  describe.each(ZOO.map((n) => [n] as const))("%s", (name) => {
    it.each(MODES.map((m) => [m] as const))(
      "batch norm in %s mode: loss, every gradient and batch statistic match PyTorch within 1e-4",
      async (mode) => {
        const { model, params, data } = fixture(name);
        const session = await createGradientSession(model, { batchNorm: mode, threads: 2 });
        expect(session.graph.parameters).toBe("inputs");
        try {
          expectReferenceStep(model, name, mode, await session.step(params, data.inputs, data.labels), RTOL);
        } finally {
          await session.dispose();
        }
      },
      120_000,
    );
  });

  it.each([
    ["resnet20", "inference"],
    ["cnn", "training"],
  ] as const)(
    "%s, batch norm in %s mode: parameters as initializers (patched bytes, a new session per parameter vector) give PyTorch's gradients too",
    async (name, mode) => {
      const { model, params, data } = fixture(name);
      const session = await createGradientSession(model, {
        batchNorm: mode,
        parameters: "initializers",
        threads: 2,
      });
      try {
        expect(session.graph.parameterInputs).toEqual([]);
        expect(session.graph.proto.graph.initializers.some((t) => t.name === model.params[0]!.name)).toBe(
          true,
        );
        const other = await session.step(model.initial, data.inputs, data.labels);
        expectReferenceStep(model, name, mode, await session.step(params, data.inputs, data.labels), RTOL);
        expect(Math.abs(other.loss - reference.results[name]![mode].loss)).toBeGreaterThan(0.1);
      } finally {
        await session.dispose();
      }
    },
    120_000,
  );
});
