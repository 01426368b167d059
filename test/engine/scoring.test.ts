// Cross-entropy of sequence and dense outputs is scored inside the graph (src/engine/_scoring.ts):
// the per-target float32 log-probabilities summed in float64 must equal JavaScript's float64
// log-sum-exp over the same logits, with ignored targets, either class axis and padded batches.

import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Dataset } from "../../src/data/dataset.ts";
import { canScoreInGraph, gatherIndices, scoringGraph } from "../../src/engine/_scoring.ts";
import { createOrtEngine } from "../../src/engine/ort.ts";
import {
  accumulateTask,
  emptySums,
  outputLayout,
  type TaskOptions,
  type TaskSums,
} from "../../src/engine/task.ts";
import { readSafetensors } from "../../src/formats/safetensors.ts";
import { fromProto, readOnnx } from "../../src/model/import.ts";
import type { Model } from "../../src/model/model.ts";
import { decodeModel } from "../../src/onnx/proto.ts";

const DIR = join(import.meta.dirname, "..", "..", "fixtures", "tasks");

function batchOf(name: string): Dataset {
  const { tensors } = readSafetensors(join(DIR, `${name}-batch.safetensors`));
  const x = tensors.get("x")!;
  const y = tensors.get("y")!;
  const ints = (t: typeof x) => Int32Array.from(t.data as ArrayLike<number | bigint>, Number);
  const labels = ints(y);
  const inputs = x.dtype.startsWith("F") ? Float32Array.from(x.data as ArrayLike<number>) : ints(x);
  return {
    name: `${name}-batch`,
    shape: x.shape.slice(1),
    inputs,
    labels,
    targetShape: y.shape.slice(1),
    classes: Math.max(...Array.from(labels).filter((v) => v < 200)) + 1,
  };
}

/** Loss and accuracy from [N, C, ...targets] logits, scored in JavaScript (float64 log-sum-exp). */
async function scoredInJs(model: Model, data: Dataset, task: TaskOptions) {
  const engine = await createOrtEngine(model, { threads: 1 });
  const n = data.labels.length / data.targetShape!.reduce((a, b) => a * b, 1);
  const logits = await engine.logits(model.initial, data, 0, n);
  await engine.dispose();
  const dims = [logits.length / n / data.targetShape!.reduce((a, b) => a * b, 1), ...data.targetShape!];
  const layout = outputLayout(dims, data, task, "js");
  const sums: TaskSums = emptySums();
  accumulateTask(logits, layout, data.labels, 0, n, task, sums, data.name);
  return { loss: sums.loss / sums.targets, accuracy: sums.correct / sums.targets };
}

describe("in-graph scoring", () => {
  it("equals float64 scoring in JavaScript for language-model logits with ignored targets", async () => {
    const model = await readOnnx(join(DIR, "lm.onnx"));
    const data = batchOf("lm");
    expect(Array.from(data.labels).filter((v) => v === -100).length).toBeGreaterThan(0);
    const engine = await createOrtEngine(model, { threads: 1 });
    const got = await engine.evaluate(model.initial, data, { batchSize: 2 });
    await engine.dispose();
    // The JS reference needs [T, V] per sample: logits are [N, T, V] with T = the targets' length.
    const T = data.targetShape![0]!;
    const engine2 = await createOrtEngine(model, { threads: 1 });
    const n = data.labels.length / T;
    const logits = await engine2.logits(model.initial, data, 0, n);
    await engine2.dispose();
    const layout = outputLayout([T, logits.length / n / T], data, {}, "js");
    const sums: TaskSums = emptySums();
    accumulateTask(logits, layout, data.labels, 0, n, {}, sums, data.name);
    expect(Math.abs(got.loss - sums.loss / sums.targets)).toBeLessThan(1e-6 * (sums.loss / sums.targets));
    expect(got.accuracy).toBe(sums.correct / sums.targets);
  });

  it("equals float64 scoring in JavaScript for segmentation logits with the classes on axis 1", async () => {
    const model = await readOnnx(join(DIR, "segment.onnx"));
    const data = batchOf("segment");
    const task = { ignoreIndex: 255 };
    const engine = await createOrtEngine(model, { threads: 1 });
    const got = await engine.evaluate(model.initial, data, task);
    await engine.dispose();
    const want = await scoredInJs(model, data, task);
    expect(Math.abs(got.loss - want.loss)).toBeLessThan(1e-6 * want.loss);
    expect(got.accuracy).toBe(want.accuracy);
  });

  it("pads the last batch of a fixed-batch graph and scores only the real samples", async () => {
    const lm = await readOnnx(join(DIR, "lm.onnx"));
    const proto = decodeModel(lm.onnx);
    const input = proto.graph.inputs[0]!;
    const fixed = fromProto(
      {
        ...proto,
        graph: { ...proto.graph, inputs: [{ ...input, shape: [2, ...input.shape!.slice(1)] }] },
      },
      { name: "lm-fixed-2" },
    );
    expect(fixed.input.batch).toBe(2);
    const data = batchOf("lm");
    const T = data.targetShape![0]!;
    const three: Dataset = {
      ...data,
      inputs: data.inputs.subarray(0, 3 * T),
      labels: data.labels.subarray(0, 3 * T),
    };
    const a = await createOrtEngine(lm, { threads: 1 });
    const b = await createOrtEngine(fixed, { threads: 1 });
    const want = await a.evaluate(lm.initial, three, {});
    const got = await b.evaluate(fixed.initial, three, {});
    await a.dispose();
    await b.dispose();
    expect(got.count).toBe(3);
    expect(Math.abs(got.loss - want.loss)).toBeLessThan(1e-6 * want.loss);
    expect(got.accuracy).toBe(want.accuracy);
  });

  it("scores in the graph only where the opset's LogSoftmax and GatherElements allow it", () => {
    expect(canScoreInGraph(14, 3, 2)).toBe(true);
    expect(canScoreInGraph(12, 3, 2)).toBe(true); // classes last: the 2D coercion is per class
    expect(canScoreInGraph(12, 4, 1)).toBe(false); // classes on axis 1 need opset 13's per-axis softmax
    expect(canScoreInGraph(13, 4, 1)).toBe(true);
    expect(canScoreInGraph(10, 3, 2)).toBe(false); // no GatherElements
  });

  it("gathers class 0 for ignored targets and names a target outside the classes", () => {
    expect(Array.from(gatherIndices([3, -100, 1], 0, 3, 4, -100, "d"), Number)).toEqual([3, 0, 1]);
    expect(() => gatherIndices([3, -100, 7], 0, 3, 4, -100, "tokens")).toThrow(
      /dataset 'tokens': target 2 is 7; expected a class index in 0..3 or the ignore index -100/,
    );
    expect(() => gatherIndices([0, 1, 2, 9], 2, 2, 4, 255, "seg")).toThrow(/target 3 is 9/);
  });

  it("gives its inputs and outputs names the graph does not use", async () => {
    const lm = await readOnnx(join(DIR, "lm.onnx"));
    const proto = decodeModel(lm.onnx);
    // A graph whose output already bears the first choice of name.
    const renamed = fromProto(
      {
        ...proto,
        graph: {
          ...proto.graph,
          nodes: proto.graph.nodes.map((n) => ({
            ...n,
            outputs: n.outputs.map((o) => (o === "logits" ? "losscape.log_prob" : o)),
          })),
          outputs: proto.graph.outputs.map((v) =>
            v.name === "logits" ? { name: "losscape.log_prob", elemType: v.elemType, shape: v.shape } : v,
          ),
        },
      },
      { name: "renamed" },
    );
    const g = scoringGraph(renamed, 3, 2);
    expect(g.logProb).toBe("losscape.log_prob.1");
    expect(g.targets).toBe("losscape.targets");
    const data = batchOf("lm");
    const a = await createOrtEngine(lm, { threads: 1 });
    const b = await createOrtEngine(renamed, { threads: 1 });
    const want = await a.evaluate(lm.initial, data, {});
    const got = await b.evaluate(renamed.initial, data, {});
    await a.dispose();
    await b.dispose();
    expect(got.loss).toBe(want.loss);
  });
});
