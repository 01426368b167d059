// Losses beyond single-label classification against PyTorch float64 (fixtures/torch_tasks.py):
// a GPT-style decoder's next-token loss with padding ignored, per-pixel segmentation with class
// axis 1 and a custom ignore index, regression MSE, and a graph that computes its own loss.

import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHvpSession } from "../../src/autodiff/hvp.ts";
import { createGradientSession } from "../../src/autodiff/session.ts";
import { hessianTask } from "../../src/curvature/hvp.ts";
import type { Dataset } from "../../src/data/dataset.ts";
import type { Engine } from "../../src/engine/engine.ts";
import { createOrtEngine } from "../../src/engine/ort.ts";
import { outputLayout, type TaskOptions, taskIdentity } from "../../src/engine/task.ts";
import { readSafetensors, tensorToFloat32 } from "../../src/formats/safetensors.ts";
import { readOnnx } from "../../src/model/import.ts";
import { isTrainable, type Model, paramView } from "../../src/model/model.ts";

const DIR = join(import.meta.dirname, "..", "..", "fixtures", "tasks");

interface Case {
  task: TaskOptions;
  open?: { lossOutput: string };
}

const CASES: Record<string, Case> = {
  lm: { task: {} },
  segment: { task: { ignoreIndex: 255 } },
  regress: { task: { loss: "mse" } },
  ownloss: { task: {}, open: { lossOutput: "loss" } },
};

function batchOf(name: string): Dataset {
  const { tensors } = readSafetensors(join(DIR, `${name}-batch.safetensors`));
  const x = tensors.get("x")!;
  const y = tensors.get("y")!;
  const ints = (t: typeof x) => Int32Array.from(t.data as ArrayLike<number | bigint>, Number);
  const labels = y.dtype.startsWith("F") ? tensorToFloat32(y) : ints(y);
  return {
    name: `${name}-batch`,
    shape: x.shape.slice(1),
    inputs: x.dtype.startsWith("F") ? tensorToFloat32(x) : ints(x),
    labels,
    ...(y.shape.length > 1 ? { targetShape: y.shape.slice(1) } : {}),
    classes: labels instanceof Float32Array ? 0 : Math.max(...Array.from(labels).filter((v) => v < 200)) + 1,
  };
}

function reference(name: string) {
  const { tensors } = readSafetensors(join(DIR, `${name}-reference.safetensors`));
  const f64 = (key: string) => {
    const t = tensors.get(key);
    if (!t) throw new Error(`${name}: no reference '${key}'`);
    return t.data as Float64Array;
  };
  return { loss: f64("x")[0]!, f64 };
}

/** Relative error of a tensor against its float64 reference, floored at 1e-3 of the whole gradient's norm. */
function relError(got: Float32Array, want: Float64Array, floor: number): number {
  let d = 0;
  let n = 0;
  for (let i = 0; i < want.length; i++) {
    d += (got[i]! - want[i]!) ** 2;
    n += want[i]! ** 2;
  }
  return Math.sqrt(d) / Math.max(Math.sqrt(n), floor);
}

describe.each(Object.keys(CASES))("task fixture %s against PyTorch float64", (name) => {
  const c = CASES[name]!;
  let model: Model;
  let data: Dataset;
  let engine: Engine;
  const ref = reference(name);

  beforeAll(async () => {
    model = await readOnnx(join(DIR, `${name}.onnx`), c.open ?? {});
    data = batchOf(name);
    engine = await createOrtEngine(model, { threads: 2 });
  });
  afterAll(async () => engine?.dispose());

  it("evaluates the loss within 1e-5", async () => {
    const m = await engine.evaluate(model.initial, data, { ...c.task, batchSize: 2 });
    expect(Math.abs(m.loss - ref.loss) / ref.loss).toBeLessThan(1e-5);
    // Batches of 2 and one batch of all give the same mean (weighted by scored targets).
    const whole = await engine.evaluate(model.initial, data, c.task);
    expect(Math.abs(whole.loss - m.loss) / m.loss).toBeLessThan(1e-6);
    if (c.task.loss === "mse") expect(m.accuracy).toBeNaN();
  });

  it("differentiates the loss within 1e-5 (every tensor) and its Hessian-vector product within 1e-4", async () => {
    const names = model.params.filter((p) => isTrainable(p.role)).map((p) => p.name);
    const task = hessianTask(c.task, data, "test");
    const s = await createGradientSession(model, { ...task, threads: 2 });
    const step = await s.step(model.initial, data.inputs, data.labels);
    await s.dispose();
    expect(Math.abs(step.loss - ref.loss) / ref.loss).toBeLessThan(1e-5);
    let total = 0;
    for (const n of names) total += ref.f64(`grad.${n}`).reduce((a, v) => a + v * v, 0);
    for (const p of model.params.filter((q) => isTrainable(q.role)))
      expect(
        relError(paramView(step.gradient, p), ref.f64(`grad.${p.name}`), 1e-3 * Math.sqrt(total)),
        p.name,
      ).toBeLessThan(1e-5);

    const h = await createHvpSession(model, { threads: 2, params: names, task });
    const v = new Float32Array(model.size);
    for (const p of model.params) if (names.includes(p.name)) v.set(ref.f64(`v.${p.name}`), p.offset);
    const r = await h.run(model.initial, v, data.inputs, data.labels);
    await h.dispose();
    let hvTotal = 0;
    for (const n of names) hvTotal += ref.f64(`hvp.${n}`).reduce((a, x) => a + x * x, 0);
    for (const p of model.params.filter((q) => names.includes(q.name)))
      expect(
        relError(paramView(r.hvp, p), ref.f64(`hvp.${p.name}`), 1e-3 * Math.sqrt(hvTotal)),
        p.name,
      ).toBeLessThan(1e-4);
  });
});

describe("task semantics", () => {
  it("scores segmentation per pixel with the classes on axis 1, leaving ignored pixels out", async () => {
    const model = await readOnnx(join(DIR, "segment.onnx"));
    const data = batchOf("segment");
    const engine = await createOrtEngine(model, { threads: 1 });
    const m = await engine.evaluate(model.initial, data, { ignoreIndex: 255 });
    const logits = await engine.logits(model.initial, data, 0, 3);
    await engine.dispose();
    // Independently: arg-max over axis 1 of [3, 5, 8, 8] at every non-ignored pixel.
    let correct = 0;
    let scored = 0;
    let loss = 0;
    for (let n = 0; n < 3; n++)
      for (let p = 0; p < 64; p++) {
        const label = data.labels[n * 64 + p]!;
        if (label === 255) continue;
        const z = [0, 1, 2, 3, 4].map((c) => logits[n * 320 + c * 64 + p]!);
        const max = Math.max(...z);
        loss += Math.log(z.reduce((a, v) => a + Math.exp(v - max), 0)) + max - z[label]!;
        if (z.indexOf(max) === label) correct++;
        scored++;
      }
    expect(scored).toBe(3 * 64 - 16 - 3);
    expect(m.accuracy).toBeCloseTo(correct / scored, 12);
    // The graph scores per-pixel log-probabilities in float32 (as PyTorch does): float32 rounding,
    // which differs between CPUs (AVX2 / AVX-512 kernels), against this float64 reference.
    expect(Math.abs(m.loss - loss / scored)).toBeLessThan(1e-6 * (loss / scored));
  });

  it("counts an ignored language-model target for nothing", async () => {
    const model = await readOnnx(join(DIR, "lm.onnx"));
    const data = batchOf("lm");
    const engine = await createOrtEngine(model, { threads: 1 });
    const base = await engine.evaluate(model.initial, data, {});
    // Marking one more target as ignored changes the mean by exactly that target's share.
    const labels = Int32Array.from(data.labels as Int32Array);
    labels[0] = -100;
    const fewer = await engine.evaluate(model.initial, { ...data, labels }, {});
    const only = Int32Array.from(data.labels as Int32Array).fill(-100);
    only[0] = (data.labels as Int32Array)[0]!;
    const first = await engine.evaluate(model.initial, { ...data, labels: only }, {});
    await engine.dispose();
    const scored = Array.from(data.labels).filter((v) => v !== -100).length;
    expect(fewer.loss * (scored - 1) + first.loss).toBeCloseTo(base.loss * scored, 6);
  });

  it("names what does not fit: class targets with --loss mse, a target outside the classes, a wrong output shape", async () => {
    const data = batchOf("segment");
    expect(() => outputLayout([5, 8, 8], data, { loss: "mse" }, "here")).toThrow(
      /here: --loss mse is regression against real-valued targets, but dataset 'segment-batch' has class indices \(use --loss mse-onehot/,
    );
    expect(() => outputLayout([5, 8, 7], data, {}, "here")).toThrow(
      /output has shape \[batch, 5, 8, 7\] but dataset 'segment-batch' has targets of shape \[8, 8\]/,
    );
    expect(() => outputLayout([5, 8, 8], data, { classAxis: -1 }, "here")).toThrow(
      /with the classes on axis -1, output \[batch, 5, 8, 8\] does not fit targets of shape \[8, 8\]/,
    );
    const model = await readOnnx(join(DIR, "segment.onnx"));
    const engine = await createOrtEngine(model, { threads: 1 });
    await expect(engine.evaluate(model.initial, data, {})).rejects.toThrow(
      /dataset 'segment-batch': target 0 is 255; expected a class index in 0..4 or the ignore index -100/,
    );
    const regress = batchOf("regress");
    await expect(engine.evaluate(model.initial, regress, { loss: "mse" })).rejects.toThrow(
      /takes samples of shape \[3, 8, 8\]/,
    );
    await engine.dispose();
    expect(() => outputLayout([4], regress, { loss: "mse" }, "here")).toThrow(
      /output of shape \[batch, 4\] \(4 values per sample\) does not match dataset 'regress-batch''s targets of shape \[3\]/,
    );
  });

  it("records the task in one string and reads a model's own loss", async () => {
    expect(taskIdentity({})).toBe("cross-entropy");
    expect(taskIdentity({ loss: "mse", ignoreIndex: 3 })).toBe("mse");
    expect(taskIdentity({ ignoreIndex: 255, classAxis: 1 })).toBe(
      "cross-entropy ignore-index=255 class-axis=1",
    );
    const model = await readOnnx(join(DIR, "ownloss.onnx"), { lossOutput: "loss" });
    expect(model.loss).toEqual({ output: "loss", targets: "targets", targetsType: "int64", logits: true });
    expect(model.output).toBe("logits");
    expect(taskIdentity({}, model)).toBe("model-loss loss");
    await expect(readOnnx(join(DIR, "ownloss.onnx"), { lossOutput: "nope" })).rejects.toThrow(
      /--loss-output 'nope' is not a graph output; the graph's outputs are: loss, logits/,
    );
    await expect(readOnnx(join(DIR, "ownloss.onnx"), { lossOutput: "logits" })).rejects.toThrow(
      /--loss-output 'logits' has shape \[N, 4\]; expected a scalar loss/,
    );
  });
});
