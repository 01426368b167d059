// The zoo's architectures against PyTorch: the same parameters (seeded,
// perturbed, see fixtures/zoo-params.ts) on the same batch give PyTorch's
// loss, accuracy and logits (fixtures/zoo-reference.json, made by
// fixtures/make-fixtures.ts), under PyTorch's state_dict names and order.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { buildZooFixture, ZOO_FIXTURES, type ZooFixture } from "../../fixtures/zoo-params.ts";
import { createOrtEngine } from "../../src/engine/ort.ts";
import { isTrainable, type Model, paramView } from "../../src/model/model.ts";
import { type ZooOptions, zooModel, zooProto } from "../../src/zoo/zoo.ts";
import { expectAllClose } from "../helpers.ts";

interface TorchNumbers {
  loss: number;
  accuracy: number;
  mse: number;
  logits: number[][];
  minTop1Margin: number;
}

interface TorchResult {
  float32: TorchNumbers;
  float64: TorchNumbers;
  parameters: [string, number[]][];
  stateDict: [string, number[]][];
  defaultInit: Record<string, { stdRatio: number; maxRatio: number }> | null;
  samples: number;
}

interface Reference {
  torch: string;
  fixtures: ZooFixture[];
  batches: Record<string, { inputSum: number; labels: number[] }>;
  results: Record<string, TorchResult>;
}

const reference = JSON.parse(
  readFileSync(new URL("../../fixtures/zoo-reference.json", import.meta.url), "utf8"),
) as Reference;

/** Relative difference |a - b| / |b|. */
const relative = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);

function result(name: string): TorchResult {
  const r = reference.results[name];
  if (!r)
    throw new Error(`fixtures/zoo-reference.json has no '${name}'; rerun fixtures/make-fixtures.ts --zoo`);
  return r;
}

const shapeOf = (model: Model): [string, number[]][] => model.params.map((p) => [p.name, [...p.shape]]);

describe("zoo fixtures", () => {
  it("zoo-reference.json was made from the current fixture list", () => {
    expect(reference.fixtures).toEqual(ZOO_FIXTURES.map((f) => ({ ...f, inputShape: [...f.inputShape] })));
    expect(reference.torch).toMatch(/^1\.13/);
  });
});

describe.each(ZOO_FIXTURES.map((f) => [f.name, f] as const))("%s against PyTorch", (name, fixture) => {
  it("evaluates the fixture batch to PyTorch's loss, accuracy and logits", async () => {
    const { model, params, data } = buildZooFixture(fixture);
    const torch = result(name);
    const batch = reference.batches[name]!;
    // The batch must be the one PyTorch saw (the embedded data could have changed).
    expect(Array.from(data.labels)).toEqual(batch.labels);
    expect(
      relative(
        Array.from(data.inputs).reduce((a, b) => a + b, 0),
        batch.inputSum,
      ),
    ).toBeLessThan(1e-9);

    const engine = await createOrtEngine(model, { threads: 1 });
    try {
      const ce = await engine.evaluate(params, data, { batchSize: 16 });
      const mse = await engine.evaluate(params, data, { batchSize: 16, loss: "mse-onehot" });
      const logits = await engine.logits(params, data, 0, 2);
      const t = torch.float32;
      expect(ce.count).toBe(torch.samples);
      expect(relative(ce.loss, t.loss)).toBeLessThan(1e-5);
      expect(relative(mse.loss, t.mse)).toBeLessThan(1e-5);
      expect(ce.accuracy).toBe(t.accuracy);
      expectAllClose(logits, t.logits.flat(), { rtol: 1e-4, atol: 1e-4 });
      // The perturbation made the check meaningful: logits are far from uniform.
      expect(Math.abs(t.loss - Math.log(10))).toBeGreaterThan(0.5);
      // float32 noise in PyTorch itself is far below the tolerance.
      expect(relative(t.loss, torch.float64.loss)).toBeLessThan(1e-6);
    } finally {
      await engine.dispose();
    }
  });

  it("has PyTorch's state_dict names, shapes and order, trainable tensors in parameters() order", () => {
    const model = zooModel(name, { inputShape: fixture.inputShape });
    const torch = result(name);
    expect(shapeOf(model)).toEqual(torch.stateDict);
    const trainable = model.params.filter((p) => isTrainable(p.role)).map((p) => [p.name, [...p.shape]]);
    expect(trainable).toEqual(torch.parameters);
  });

  it("gives each tensor the role its PyTorch module implies", () => {
    const model = zooModel(name, { inputShape: fixture.inputShape });
    for (const p of model.params) {
      const role =
        p.name.endsWith(".running_mean") || p.name.endsWith(".running_var") ? "bn-stat" : undefined;
      if (role) expect(p.role, p.name).toBe(role);
      else if (p.shape.length >= 2) {
        expect(p.role, p.name).toBe("filter");
        expect(p.filterAxis, p.name).toBe(0);
      } else if (/(^|\.)(bn\d*|shortcut\.1)\.weight$/.test(p.name)) expect(p.role, p.name).toBe("bn-scale");
      else if (/(^|\.)(bn\d*|shortcut\.1)\.bias$/.test(p.name)) expect(p.role, p.name).toBe("bn-shift");
      else expect(p.role, p.name).toBe("bias");
    }
  });
});

describe("zoo parameters", () => {
  it("ResNet-20 has the reference code's 65 trainable tensors plus 42 running statistics", () => {
    const model = zooModel("resnet20", { inputShape: [3, 32, 32] });
    expect(model.params.filter((p) => isTrainable(p.role))).toHaveLength(65);
    expect(model.params.filter((p) => p.role === "bn-stat")).toHaveLength(42);
    expect(result("resnet20").parameters).toHaveLength(65);
    // The published ResNet-20 size: 0.27M trainable values.
    const trainable = model.params.filter((p) => isTrainable(p.role)).reduce((a, p) => a + p.size, 0);
    expect(trainable).toBe(272474);
  });

  it.each(["resnet20", "cnn"])(
    "%s: default weights are U(-1/sqrt(fan_in), 1/sqrt(fan_in)) like PyTorch's",
    (name) => {
      const fixture = ZOO_FIXTURES.find((f) => f.name === name)!;
      const model = zooModel(name, { inputShape: fixture.inputShape, seed: 0 });
      const torch = result(name).defaultInit!;
      const filters = model.params.filter((p) => p.role === "filter");
      expect(filters.map((p) => p.name)).toEqual(Object.keys(torch));
      for (const p of filters) {
        const w = paramView(model.initial, p);
        const fanIn = p.size / p.shape[0]!;
        const bound = 1 / Math.sqrt(fanIn);
        let max = 0;
        let sum = 0;
        let sumSq = 0;
        for (const v of w) {
          max = Math.max(max, Math.abs(v));
          sum += v;
          sumSq += v * v;
        }
        const mean = sum / w.length;
        const std = Math.sqrt(sumSq / w.length - mean * mean);
        expect(max, p.name).toBeLessThanOrEqual(bound);
        if (w.length < 400) continue;
        // U(-b, b) has standard deviation b / sqrt(3); allow ~5 standard errors of the estimate.
        const stdRatio = std * Math.sqrt(3 * fanIn);
        expect(Math.abs(stdRatio - 1), p.name).toBeLessThan(0.1);
        expect(Math.abs(stdRatio - torch[p.name]!.stdRatio), p.name).toBeLessThan(0.15);
        expect(max, p.name).toBeGreaterThan(0.95 * bound);
        expect(Math.abs(mean), p.name).toBeLessThan((5 * bound) / Math.sqrt(3 * w.length));
      }
      // Dense biases are U(-1/sqrt(fan_in), 1/sqrt(fan_in)) too; batch norm starts at the identity.
      for (const p of model.params) {
        const v = Array.from(paramView(model.initial, p));
        if (p.role === "bias") {
          const weight = model.params.find((q) => q.name === p.name.replace(/\.bias$/, ".weight"))!;
          const bound = 1 / Math.sqrt(weight.size / weight.shape[0]!);
          expect(Math.max(...v.map(Math.abs)), p.name).toBeLessThanOrEqual(bound);
        } else if (p.role === "bn-scale" || p.name.endsWith(".running_var")) {
          expect(
            v.every((x) => x === 1),
            p.name,
          ).toBe(true);
        } else if (p.role === "bn-shift" || p.name.endsWith(".running_mean")) {
          expect(
            v.every((x) => x === 0),
            p.name,
          ).toBe(true);
        }
      }
    },
  );

  it("the same seed gives the same parameters, another seed different ones", () => {
    const a = zooModel("cnn", { seed: 7, width: 0.5 }).initial;
    const b = zooModel("cnn", { seed: 7, width: 0.5 }).initial;
    const c = zooModel("cnn", { seed: 8, width: 0.5 }).initial;
    expect(b).toEqual(a);
    expect(c.length).toBe(a.length);
    let same = 0;
    let weights = 0;
    for (let i = 0; i < a.length; i++) {
      if (a[i] === 0 || a[i] === 1) continue; // batch-norm defaults are the same for every seed
      weights++;
      if (a[i] === c[i]) same++;
    }
    expect(weights).toBeGreaterThan(1000);
    expect(same).toBeLessThan(weights * 1e-3);
  });

  it("width and classes change the shapes", () => {
    const model = zooModel("resnet20", { inputShape: [3, 32, 32], width: 2, classes: 100 });
    expect(model.params.find((p) => p.name === "linear.weight")?.shape).toEqual([100, 128]);
    expect(model.classes).toBe(100);
    const wide = zooModel("wrn14-2", { inputShape: [3, 32, 32] });
    expect(wide.params.find((p) => p.name === "layer3.1.conv2.weight")?.shape).toEqual([128, 128, 3, 3]);
  });
});

describe("activation option", () => {
  it("softplus replaces every ReLU and keeps the parameters of the ReLU model", () => {
    const ops = (activation: "relu" | "softplus") =>
      zooProto("resnet20", { inputShape: [3, 32, 32], seed: 2, activation }).graph.nodes.map((n) => n.opType);
    const relu = ops("relu");
    const smooth = ops("softplus");
    expect(relu.filter((o) => o === "Relu")).toHaveLength(19);
    expect(smooth.filter((o) => o === "Softplus")).toHaveLength(19);
    expect(smooth.includes("Relu")).toBe(false);
    expect(smooth.map((o) => (o === "Softplus" ? "Relu" : o))).toEqual(relu);
    const a = zooModel("cnn", { seed: 3 });
    const b = zooModel("cnn", { seed: 3, activation: "softplus" });
    expect(b.params).toEqual(a.params);
    expect(b.initial).toEqual(a.initial);
  });
});

describe("zoo errors", () => {
  it.each([
    ["foo", {}, /unknown model 'foo'; choose one of mlp, cnn, vgg9, resnet20/],
    ["resnet", {}, /unknown model 'resnet'/],
    ["resnet21", {}, /'resnet21' needs a depth of the form 6n\+2 \(20, 32, 44, 56, 110, \.\.\.\), got 21/],
    ["resnet2", {}, /needs a depth of the form 6n\+2.*got 2/],
    ["wrn20", {}, /'wrn20' needs a width factor, e\.g\. wrn56-4/],
    ["wrn20-noshort", {}, /'wrn20-noshort' needs a width factor/],
    ["resnet20-2", {}, /a ResNet suffix must be '-noshort' \(use wrn<depth>-<k> for wide ones\)/],
    [
      "resnet20",
      { inputShape: [784] },
      /'resnet20' takes images \[channels, height, width\]; got input shape \[784\]/,
    ],
    ["cnn", { inputShape: [1, 2, 2] }, /'cnn' needs images of at least 4x4, got 2x2/],
    ["vgg9", { inputShape: [3, 8, 8] }, /'vgg9' needs images of at least 16x16, got 8x8/],
    ["mlp", { classes: 1 }, /'classes' must be an integer >= 2, got 1/],
    ["mlp", { classes: 2.5 }, /'classes' must be an integer >= 2, got 2\.5/],
    ["mlp", { width: 0 }, /'width' must be positive, got 0/],
    ["mlp", { seed: 0.5 }, /'seed' must be an integer, got 0\.5/],
    ["mlp", { activation: "tanh" }, /'activation' must be "relu" or "softplus", got "tanh"/],
  ] as const)("zooModel(%j, %j) fails", (name, options, message) => {
    expect(() => zooModel(name, options as ZooOptions)).toThrow(message);
  });
});
