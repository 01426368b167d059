// The ONNX Runtime engine: its loss is the cross-entropy of its own logits,
// independent of the batch size, new parameters really replace old ones, and
// bad arguments are named.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { firstSamples, perturbParams } from "../../fixtures/zoo-params.ts";
import type { Dataset } from "../../src/data/dataset.ts";
import { loadEmbedded } from "../../src/data/embedded.ts";
import type { Engine } from "../../src/engine/engine.ts";
import { createOrtEngine } from "../../src/engine/ort.ts";
import { findParam, type Model, paramView } from "../../src/model/model.ts";
import { zooModel } from "../../src/zoo/zoo.ts";
import { expectAllClose } from "../helpers.ts";

const SAMPLES = 100;
const CLASSES = 10;

const model: Model = zooModel("cnn", { seed: 3, width: 0.25 });
const paramsA = perturbParams(model, { seed: 4, finalScale: 30 });
const paramsB = perturbParams(model, { seed: 5, finalScale: 30 });
const data: Dataset = firstSamples(loadEmbedded("test"), SAMPLES);

let engine: Engine;
beforeAll(async () => {
  engine = await createOrtEngine(model, { threads: 1 });
});
afterAll(async () => {
  await engine.dispose();
});

const relative = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);

/** Mean cross-entropy, MSE of softmax vs one-hot, and accuracy of row-major logits, in float64. */
function byHand(
  logits: Float32Array,
  labels: ArrayLike<number>,
): { ce: number; mse: number; accuracy: number } {
  let ce = 0;
  let mse = 0;
  let correct = 0;
  const n = labels.length;
  for (let i = 0; i < n; i++) {
    const row = Array.from(logits.subarray(i * CLASSES, (i + 1) * CLASSES));
    const label = labels[i]!;
    const max = Math.max(...row);
    const exps = row.map((v) => Math.exp(v - max));
    const z = exps.reduce((a, b) => a + b, 0);
    ce += -Math.log(exps[label]! / z);
    mse += exps.reduce((s, e, k) => s + (e / z - (k === label ? 1 : 0)) ** 2, 0) / CLASSES;
    if (row.indexOf(max) === label) correct++;
  }
  return { ce: ce / n, mse: mse / n, accuracy: correct / n };
}

describe("ORT engine numbers", () => {
  it("evaluate() is the mean cross-entropy, MSE and accuracy of logits()", async () => {
    const logits = await engine.logits(paramsA, data, 0, SAMPLES);
    expect(logits).toHaveLength(SAMPLES * CLASSES);
    const hand = byHand(logits, data.labels);
    const ce = await engine.evaluate(paramsA, data);
    const mse = await engine.evaluate(paramsA, data, { loss: "mse-onehot" });
    expect(ce.count).toBe(SAMPLES);
    expect(relative(ce.loss, hand.ce)).toBeLessThan(1e-9);
    expect(relative(mse.loss, hand.mse)).toBeLessThan(1e-9);
    expect(ce.accuracy).toBe(hand.accuracy);
    expect(mse.accuracy).toBe(hand.accuracy);
    // A perturbed model is far from the uniform prediction, so the check means something.
    expect(Math.abs(ce.loss - Math.log(CLASSES))).toBeGreaterThan(0.5);
  });

  it("logits() of a sub-range are the same rows as the full run", async () => {
    const all = await engine.logits(paramsA, data, 0, SAMPLES);
    const part = await engine.logits(paramsA, data, 37, 5);
    const rows = all.subarray(37 * CLASSES, 42 * CLASSES);
    expectAllClose(part, rows, { rtol: 1e-6, atol: 1e-6 });
  });

  it("the batch size does not change the result", async () => {
    const reference = await engine.evaluate(paramsA, data, { batchSize: SAMPLES });
    for (const batchSize of [1, 7, 32, 99, 256]) {
      const m = await engine.evaluate(paramsA, data, { batchSize });
      expect(m.count).toBe(SAMPLES);
      expect(relative(m.loss, reference.loss), `batch ${batchSize}`).toBeLessThan(1e-6);
      expect(m.accuracy, `batch ${batchSize}`).toBe(reference.accuracy);
    }
  });

  it("reports progress after each batch", async () => {
    const seen: [number, number][] = [];
    await engine.evaluate(paramsA, data, {
      batchSize: 32,
      onProgress: (done, total) => seen.push([done, total]),
    });
    expect(seen).toEqual([
      [32, 100],
      [64, 100],
      [96, 100],
      [100, 100],
    ]);
  });

  it("the thread count does not change the result", async () => {
    const two = await createOrtEngine(model, { threads: 2 });
    try {
      const a = await engine.evaluate(paramsA, data);
      const b = await two.evaluate(paramsA, data);
      expect(relative(b.loss, a.loss)).toBeLessThan(1e-6);
      expect(b.accuracy).toBe(a.accuracy);
    } finally {
      await two.dispose();
    }
  });
});

describe("ORT engine parameter swaps", () => {
  it("evaluating A, then B, then A again gives A's numbers", async () => {
    const a1 = await engine.evaluate(paramsA, data);
    const b = await engine.evaluate(paramsB, data);
    const a2 = await engine.evaluate(paramsA, data);
    expect(relative(b.loss, a1.loss)).toBeGreaterThan(1e-3);
    expect(a2).toEqual(a1);
    const logitsB = await engine.logits(paramsB, data, 0, 4);
    const logitsA = await engine.logits(paramsA, data, 0, 4);
    expect(logitsA).not.toEqual(logitsB);
    expect(await engine.logits(paramsA, data, 0, 4)).toEqual(logitsA);
  });

  it("a change to one weight changes the loss, also when the same array is edited in place", async () => {
    const params = paramsA.slice();
    const before = await engine.evaluate(params, data);
    const fc2 = findParam(model, "fc2.weight");
    const w = paramView(params, fc2);
    const label = data.labels[0]!;
    // Raise the logit of sample 0's label class: the loss must drop.
    for (let k = 0; k < fc2.shape[1]!; k++) w[label * fc2.shape[1]! + k]! += 0.05;
    const after = await engine.evaluate(params, data);
    expect(after.loss).not.toBe(before.loss);
    expect(relative(after.loss, before.loss)).toBeGreaterThan(1e-4);
    // Nothing sticks: the original parameters give the original loss.
    expect((await engine.evaluate(paramsA, data)).loss).toBe(before.loss);
  });

  it("batch-norm running statistics are part of the parameters", async () => {
    const params = paramsA.slice();
    const before = await engine.evaluate(params, data);
    paramView(params, findParam(model, "bn1.running_mean")).fill(0.5);
    expect((await engine.evaluate(params, data)).loss).not.toBe(before.loss);
  });

  it("does not modify the parameters it is given", async () => {
    const params = paramsB.slice();
    await engine.evaluate(params, data);
    await engine.logits(params, data, 0, 3);
    expect(params).toEqual(paramsB);
  });
});

describe("ORT engine errors", () => {
  it.each([
    [new Float32Array(3), /evaluate\(\): 'params' has 3 values but model 'cnn' has \d+ parameters/],
    [
      new Float64Array(model.size) as unknown as Float32Array,
      /evaluate\(\): 'params' must be a Float32Array, got \[object Float64Array\]/,
    ],
  ])("evaluate() refuses a wrong parameter vector (%#)", async (params, message) => {
    await expect(engine.evaluate(params, data)).rejects.toThrow(message);
  });

  it("logits() refuses a wrong parameter vector", async () => {
    await expect(engine.logits(new Float32Array(model.size + 1), data, 0, 1)).rejects.toThrow(
      /logits\(\): 'params' has \d+ values but model 'cnn' has \d+ parameters/,
    );
  });

  it("refuses data of the wrong sample shape", async () => {
    const rgb: Dataset = {
      name: "rgb",
      shape: [3, 32, 32],
      inputs: new Float32Array(2 * 3 * 32 * 32),
      labels: new Uint8Array(2),
      classes: 10,
    };
    const message =
      /model 'cnn' takes samples of shape \[1, 28, 28\] \(784 values\) but dataset 'rgb' has samples of shape \[3, 32, 32\] \(3072 values\)/;
    await expect(engine.evaluate(paramsA, rgb)).rejects.toThrow(message);
    await expect(engine.logits(paramsA, rgb, 0, 1)).rejects.toThrow(message);
  });

  it("refuses a dataset with more classes than the model outputs", async () => {
    await expect(engine.evaluate(paramsA, { ...data, name: "wide", classes: 12 })).rejects.toThrow(
      /evaluate\(\): model 'cnn' output 'logits': output has 10 class scores per sample but dataset 'wide' has 12 classes/,
    );
  });

  it("refuses an empty dataset", async () => {
    const empty: Dataset = { ...data, name: "none", inputs: new Float32Array(0), labels: new Uint8Array(0) };
    await expect(engine.evaluate(paramsA, empty)).rejects.toThrow(/evaluate\(\): dataset 'none' is empty/);
  });

  it.each([0, -1, 2.5, Number.NaN])("refuses batchSize %s", async (batchSize) => {
    await expect(engine.evaluate(paramsA, data, { batchSize })).rejects.toThrow(
      new RegExp(`evaluate\\(\\): 'batchSize' must be a positive integer, got ${batchSize}`),
    );
  });

  it.each([
    [-1, 2],
    [0, 0],
    [99, 2],
    [1.5, 1],
  ])("logits() refuses samples outside the dataset (start %s, count %s)", async (start, count) => {
    await expect(engine.logits(paramsA, data, start, count)).rejects.toThrow(
      /logits\(\): samples .* are outside dataset 'fashion-mnist-embedded\/test\[0:100\]' \(100 samples\)/,
    );
  });

  it.each([0, -2, 1.5, Number.NaN])("createOrtEngine() refuses threads %s", async (threads) => {
    await expect(createOrtEngine(model, { threads })).rejects.toThrow(
      new RegExp(`createOrtEngine\\(\\): 'threads' must be a positive integer, got ${threads}`),
    );
  });

  it("a disposed engine says so", async () => {
    const e = await createOrtEngine(model, { threads: 1 });
    await e.evaluate(paramsA, data);
    await e.dispose();
    await expect(e.evaluate(paramsB, data)).rejects.toThrow(/engine for 'cnn' was disposed/);
  });
});
