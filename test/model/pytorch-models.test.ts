// Models researchers bring, exported from PyTorch with python/losscape_export.py
// (fixtures/make-model-fixtures.ts): torchvision resnet18, mobilenet_v2,
// mobilenet_v3_small and densenet121, a ViT (opsets 14 and 17), a GPT-style
// decoder and LSTM / GRU classifiers. Every named parameter becomes exactly one
// losscape parameter; loss, gradients (both batch-norm modes) and a
// Hessian-vector product equal PyTorch's float64 numbers within 1e-4; a 3x3
// surface runs.

import { describe, expect, it } from "vitest";
import { fixtureProto, hvpDirection, modelFixture, references } from "../../fixtures/_models.ts";
import { MODEL_FIXTURES } from "../../fixtures/make-model-fixtures.ts";
import { createHvpSession } from "../../src/autodiff/hvp.ts";
import { createGradientSession, type GradientStep } from "../../src/autodiff/session.ts";
import { loadDataset } from "../../src/data/load.ts";
import { createOrtEngine } from "../../src/engine/ort.ts";
import { makeDirections } from "../../src/landscape/plan.ts";
import { computeSurface } from "../../src/landscape/surface.ts";
import { fromProto } from "../../src/model/import.ts";
import { isTrainable, type Model, paramView } from "../../src/model/model.ts";
import { expectMatches } from "../autodiff/_gradient-reference.ts";
import { tempDir } from "../helpers.ts";

const RTOL = 1e-4;
/** The worst PyTorch float32 vs float64 error a fixture batch may have (fixtures/torch_models.py). */
const AGREEMENT = 1e-4;
/** Errors of a tensor are measured against at least this fraction of the whole gradient's norm. */
const FLOOR = 1e-3;

const wholeNorm = (summaries: Record<string, { norm: number }>) =>
  Math.hypot(...Object.values(summaries).map((s) => s.norm));

/** Checks a step's loss and every trainable gradient against fixture `name`'s reference in `mode`. */
function expectReference(model: Model, step: GradientStep, name: string, mode: string): void {
  const expected = references.models[name]!.modes[mode]!;
  expect(Math.abs(step.loss - expected.loss) / expected.loss).toBeLessThan(RTOL);
  const floor = FLOOR * wholeNorm(expected.gradients);
  for (const p of model.params.filter((q) => isTrainable(q.role)))
    expectMatches(
      paramView(step.gradient, p),
      expected.gradients[p.name]!,
      `${name}/${mode}/grad:${p.name}`,
      RTOL,
      floor,
    );
}

describe("PyTorch model fixtures", () => {
  it("cover the fixture list, made with PyTorch 1.13 / torchvision 0.14, on batches where PyTorch's float32 agrees with float64", () => {
    expect(Object.keys(references.models).sort()).toEqual([...MODEL_FIXTURES].sort());
    expect(references.torch).toMatch(/^1\.13/);
    // A batch where float32 itself is off by more cannot tell a right rule from a wrong one.
    for (const ref of Object.values(references.models))
      expect(ref.float32Agreement, ref.name).toBeLessThanOrEqual(AGREEMENT);
  });
});

describe("python/losscape_export.py export_data()", () => {
  it.each(["vit", "gpt", "lstm"] as const)(
    "%s: the batch it wrote loads with --data safetensors:FILE bit for bit (x/y train, x_test/y_test test)",
    (name) => {
      const { data } = modelFixture(name);
      const path = new URL(`../../fixtures/models/${name}-batch.safetensors`, import.meta.url).pathname;
      const train = loadDataset(`safetensors:${path}`, "train");
      expect(train.shape).toEqual(data.shape);
      expect(train.inputs).toEqual(data.inputs);
      expect(Array.from(train.labels)).toEqual(Array.from(data.labels));
      expect(train.targetShape).toEqual(data.targetShape);
      const test = loadDataset(`safetensors:${path}`, "test");
      const per = data.shape.reduce((a, b) => a * b, 1);
      expect(test.inputs).toEqual(data.inputs.subarray(0, per));
    },
  );
});

describe.each(MODEL_FIXTURES.map((n) => [n] as const))("%s", (name) => {
  it("maps every named parameter to exactly one losscape parameter (name and shape), batch-norm statistics to bn-stat", () => {
    const { model, ref } = modelFixture(name);
    const trainable = model.params.filter((p) => isTrainable(p.role));
    expect(trainable.map((p) => [p.name, [...p.shape]]).sort()).toEqual(
      ref.parameters.map(([n, s]) => [n, [...s]]).sort(),
    );
    expect(
      model.params
        .filter((p) => p.role === "bn-stat")
        .map((p) => p.name)
        .sort(),
    ).toEqual([...ref.statistics].sort());
    // Nothing trainable is left constant.
    expect(
      model.initializers!.filter(
        (r) => r.status === "constant" && ref.parameters.some(([n]) => n === r.name),
      ),
    ).toEqual([]);
  });

  it("without the exporter's metadata, the importer finds the same parameters from the ops", () => {
    const proto = fixtureProto(name);
    proto.extra = (proto.extra ?? []).filter((f) => f.field !== 14);
    const bare = fromProto(proto, { name });
    const { model } = modelFixture(name);
    expect(bare.params.map((p) => [p.name, p.role, p.filterAxis])).toEqual(
      model.params.map((p) => [p.name, p.role, p.filterAxis]),
    );
  });

  it.each(Object.keys(references.models[name]!.modes).map((m) => [m] as const))(
    "batch norm in %s mode: loss and every gradient (and batch statistic) equal PyTorch's float64 within 1e-4",
    async (mode) => {
      const { model, ref, data } = modelFixture(name);
      const expected = ref.modes[mode]!;
      const session = await createGradientSession(model, {
        batchNorm: mode as "inference" | "training",
        threads: 2,
      });
      try {
        const step = await session.step(model.initial, data.inputs, data.labels);
        expectReference(model, step, name, mode);
        if (mode === "training")
          for (const [param, summary] of Object.entries(expected.statistics ?? {}))
            expectMatches(step.statistics.get(param)!, summary, `${name}/${mode}/bnstat:${param}`, RTOL);
      } finally {
        await session.dispose();
      }
    },
    180_000,
  );

  it("a Hessian-vector product (eval mode, parameters of rank >= 2) equals PyTorch's double backward within 1e-4", async () => {
    const { model, ref, data } = modelFixture(name);
    const session = await createHvpSession(model, { threads: 2 });
    try {
      const v = hvpDirection(model, model.initial);
      const { hvp } = await session.run(model.initial, v, data.inputs, data.labels);
      const filters = model.params.filter((p) => p.role === "filter");
      expect(filters.map((p) => p.name).sort()).toEqual(Object.keys(ref.hvp).sort());
      const floor = FLOOR * wholeNorm(ref.hvp);
      for (const p of filters)
        expectMatches(paramView(hvp, p), ref.hvp[p.name]!, `${name}/hvp/hv:${p.name}`, RTOL, floor);
    } finally {
      await session.dispose();
    }
  }, 180_000);

  it("gives a 3x3 filter-normalized surface whose centre is the model's loss", async () => {
    const { model, data } = modelFixture(name);
    const engine = await createOrtEngine(model, { threads: 2 });
    const { dir, cleanup } = tempDir("losscape-pytorch-surface-");
    try {
      const { directions } = makeDirections(model, model.initial, { dims: 2, seed: 3 });
      const axis = Float64Array.from([-0.5, 0, 0.5]);
      const surface = await computeSurface({
        engine,
        theta: model.initial,
        directions,
        grid: { x: axis, y: axis },
        train: data,
        path: `${dir}/surface.h5`,
        dirFile: "pytorch-fixture",
        evaluate: { batchSize: 16 },
      });
      const loss = surface.values.train_loss!;
      expect(loss.every(Number.isFinite)).toBe(true);
      const centre = await engine.evaluate(model.initial, data);
      expect(loss[4]).toBeCloseTo(centre.loss, 6);
      expect(new Set(loss).size).toBeGreaterThan(1);
    } finally {
      await engine.dispose();
      cleanup();
    }
  }, 180_000);
});

describe("resnet18 at every opset 13-17", () => {
  it.each([13, 15, 16, 17])(
    "opset %i: the overlapping 3x3/2 max pool differentiates and the gradient equals PyTorch's",
    async (opset) => {
      // The graph's ops (Conv, BatchNormalization, Relu, MaxPool, Add, GlobalAveragePool, Flatten,
      // Gemm) mean the same at opsets 13-17, so the opset-14 export stamped with another opset is
      // that opset's export.
      const proto = fixtureProto("resnet18");
      proto.opsets = proto.opsets.map((o) => (o.domain === "" ? { ...o, version: opset } : o));
      const { data } = modelFixture("resnet18");
      const model = fromProto(proto, { name: `resnet18-opset${opset}` });
      const session = await createGradientSession(model, { batchNorm: "inference", threads: 2 });
      try {
        const step = await session.step(model.initial, data.inputs, data.labels);
        expectReference(model, step, "resnet18", "inference");
      } finally {
        await session.dispose();
      }
    },
    120_000,
  );
});
