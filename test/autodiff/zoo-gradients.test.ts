// Whole-model gradients of zoo architectures against PyTorch: the gradient
// graph run on ONNX Runtime (float32) gives PyTorch's float64 loss, parameter
// gradients and batch statistics (fixtures/zoo-gradients.json, made by
// fixtures/make-gradient-fixtures.ts) within 1e-4 relative.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  buildGradientFixture,
  GRADIENT_FIXTURES,
  MIN_RELU_MARGIN,
  MODES,
  normAndDot,
  probeSeed,
  SEARCHED,
  type TensorSummary,
} from "../../fixtures/make-gradient-fixtures.ts";
import { createGradientSession, type GradientStep } from "../../src/autodiff/session.ts";
import { isTrainable, type Model, paramView } from "../../src/model/model.ts";

interface ModeResult {
  loss: number;
  reluMargin: number;
  gradients: Record<string, TensorSummary>;
  statistics?: Record<string, TensorSummary>;
}

const reference = JSON.parse(
  readFileSync(new URL("../../fixtures/zoo-gradients.json", import.meta.url), "utf8"),
) as {
  torch: string;
  models: string[];
  results: Record<string, { batchSeed: number | null } & Record<"inference" | "training", ModeResult>>;
};

/** The fixture of a model, with the batch the reference was made on. */
const fixture = (name: string) => buildGradientFixture(name, reference.results[name]!.batchSeed);

const RTOL = 1e-4;

/** Checks a float32 tensor against a float64 reference summary, all within RTOL relative. */
function expectMatches(values: Float32Array, ref: TensorSummary, key: string): void {
  const { norm, dot } = normAndDot(values, probeSeed(key));
  expect(Math.abs(norm - ref.norm), `${key}: norm ${norm} vs ${ref.norm}`).toBeLessThanOrEqual(
    RTOL * ref.norm,
  );
  // The error vector's component along a random direction, relative to the tensor's norm.
  expect(Math.abs(dot - ref.dot), `${key}: probe ${dot} vs ${ref.dot}`).toBeLessThanOrEqual(RTOL * ref.norm);
  const rms = ref.norm / Math.sqrt(values.length);
  for (const [i, v] of ref.samples) {
    expect(Math.abs(values[i]! - v), `${key}[${i}]: ${values[i]} vs ${v}`).toBeLessThanOrEqual(
      RTOL * Math.max(Math.abs(v), rms),
    );
  }
}

function checkStep(model: Model, name: string, mode: string, step: GradientStep): void {
  const ref = reference.results[name]![mode as "inference"];
  expect(Math.abs(step.loss - ref.loss) / ref.loss).toBeLessThan(1e-5);
  const trainable = model.params.filter((p) => isTrainable(p.role));
  expect(Object.keys(ref.gradients)).toEqual(trainable.map((p) => p.name));
  for (const p of trainable) {
    expectMatches(paramView(step.gradient, p), ref.gradients[p.name]!, `${name}/${mode}/grad:${p.name}`);
  }
  for (const p of model.params.filter((q) => !isTrainable(q.role))) {
    expect(paramView(step.gradient, p).every((v) => v === 0)).toBe(true);
  }
  if (mode === "training") {
    const stats = ref.statistics!;
    expect([...step.statistics.keys()].sort()).toEqual(Object.keys(stats).sort());
    for (const [param, summary] of Object.entries(stats)) {
      expectMatches(step.statistics.get(param)!, summary, `${name}/${mode}/bnstat:${param}`);
    }
  } else expect(step.statistics.size).toBe(0);
}

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

  describe.each(GRADIENT_FIXTURES.map((n) => [n] as const))("%s", (name) => {
    it.each(MODES.map((m) => [m] as const))(
      "batch norm in %s mode: loss, every gradient and batch statistic match PyTorch within 1e-4",
      async (mode) => {
        const { model, params, data } = fixture(name);
        const session = await createGradientSession(model, { batchNorm: mode, threads: 2 });
        expect(session.graph.parameters).toBe("inputs");
        try {
          checkStep(model, name, mode, await session.step(params, data.inputs, data.labels));
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
        checkStep(model, name, mode, await session.step(params, data.inputs, data.labels));
        expect(Math.abs(other.loss - reference.results[name]![mode].loss)).toBeGreaterThan(0.1);
      } finally {
        await session.dispose();
      }
    },
    120_000,
  );
});
