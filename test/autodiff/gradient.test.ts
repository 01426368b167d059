// The gradient graph's interface: inputs, outputs and their shapes, parameter
// modes, and the errors for graphs it cannot differentiate.

import { describe, expect, it } from "vitest";
import { gradientGraph } from "../../src/autodiff/gradient.ts";
import { createGradientSession } from "../../src/autodiff/session.ts";
import { isTrainable } from "../../src/model/model.ts";
import { decodeModel } from "../../src/onnx/proto.ts";
import { zooModel, zooProto } from "../../src/zoo/zoo.ts";
import { checkGradients, openRunner, TinyGraph } from "./_harness.ts";

describe("gradientGraph", () => {
  const resnet = zooModel("resnet20", { inputShape: [3, 32, 32] });

  it("ResNet-20: inputs input/labels, outputs loss, logits and one gradient per trainable tensor", () => {
    const g = gradientGraph(resnet, { parameters: "initializers" });
    const graph = g.proto.graph;
    expect(graph.inputs.map((v) => [v.name, v.shape])).toEqual([
      ["input", ["N", 3, 32, 32]],
      ["labels", ["N"]],
    ]);
    const trainable = resnet.params.filter((p) => isTrainable(p.role));
    expect(graph.outputs.map((v) => v.name)).toEqual([
      "loss",
      "logits",
      ...trainable.map((p) => `grad:${p.name}`),
    ]);
    expect(graph.outputs[0]!.shape).toEqual([]);
    expect(graph.outputs[1]!.shape).toEqual(["N", 10]);
    expect(g.gradients.map((o) => [o.param, o.shape])).toEqual(trainable.map((p) => [p.name, [...p.shape]]));
    expect(g.statistics).toEqual([]);
    // Parameters stay initializers, so their raw bytes can be patched.
    const inits = new Set(graph.initializers.map((t) => t.name));
    for (const p of resnet.params) expect(inits.has(p.name), p.name).toBe(true);
    expect(g.parameterInputs).toEqual([]);
  });

  it("training-mode batch norm adds the batch mean and unbiased variance of every BatchNormalization", () => {
    const g = gradientGraph(resnet, { batchNorm: "training" });
    expect(g.parameters).toBe("inputs");
    const stats = resnet.params.filter((p) => p.role === "bn-stat");
    expect(stats).toHaveLength(42);
    expect(g.statistics.map((s) => s.param).sort()).toEqual(stats.map((p) => p.name).sort());
    for (const s of g.statistics) {
      expect(s.output).toBe(`bnstat:${s.param}`);
      expect(s.kind).toBe(s.param.endsWith(".running_mean") ? "mean" : "var");
    }
    // Every parameter is an input; running statistics are unused in training mode and dropped.
    const inputs = g.proto.graph.inputs.map((v) => v.name);
    for (const p of resnet.params.filter((q) => isTrainable(q.role))) expect(inputs).toContain(p.name);
    expect(g.proto.graph.initializers.some((t) => resnet.params.some((p) => p.name === t.name))).toBe(false);
  });

  it("leaves the source model untouched", () => {
    const proto = zooProto("cnn");
    const before = JSON.stringify(proto.graph.nodes);
    gradientGraph(proto, { batchNorm: "training" });
    expect(JSON.stringify(proto.graph.nodes)).toBe(before);
  });

  it("a ModelProto gets its trainable tensors from the importer's roles", () => {
    const g = gradientGraph(zooProto("cnn"));
    expect(g.gradients.map((o) => o.param)).toEqual(
      zooModel("cnn")
        .params.filter((p) => isTrainable(p.role))
        .map((p) => p.name),
    );
  });

  it("an op without a rule is fine off the path from the parameters to the loss", async () => {
    const g = new TinyGraph("float32", [3], 1);
    const x = g.node("Sinh", ["x"]);
    const proto = g.build(g.node("Mul", [x, g.param([3])]), 3);
    proto.graph.valueInfo.push({ name: x, elemType: g.type, shape: ["N", 3] });
    const runner = await openRunner(proto, g);
    try {
      expect((await checkGradients(runner)).excess).toBe(0);
    } finally {
      await runner.release();
    }
  });
});

describe("gradientGraph errors", () => {
  it("names the op and node that has no gradient rule", () => {
    const g = new TinyGraph("float64", [3], 1);
    const y = g.node("Sinh", [g.node("Mul", ["x", g.param([3])])]);
    const proto = g.build(y, 3);
    proto.graph.valueInfo.push({ name: y, elemType: g.type, shape: ["N", 3] });
    expect(() => gradientGraph(proto, { trainable: g.trainable })).toThrow(
      /no gradient rule for Sinh node 'sinh\d+' \(opset \d+;.*ops with rules: .*Conv/,
    );
  });

  it("checks options and names", () => {
    const proto = zooProto("mlp");
    expect(() => gradientGraph(proto, { batchNorm: "train" as "training" })).toThrow(
      /'batchNorm' must be "inference" or "training", got "train"/,
    );
    expect(() => gradientGraph(proto, { parameters: "feeds" as "inputs" })).toThrow(/'parameters' must be/);
    expect(() => gradientGraph(proto, { loss: "mse-onehot" as "cross-entropy" })).toThrow(
      /'loss' must be "cross-entropy" or "mse", got "mse-onehot" \(mse-onehot is evaluated, not differentiated\)/,
    );
    expect(() => gradientGraph(proto, { classAxis: 2 as 1 })).toThrow(/'classAxis' must be 1 or -1, got 2/);
    expect(() => gradientGraph(proto, { trainable: ["nope"] })).toThrow(
      /trainable parameter 'nope' is not an initializer/,
    );
    expect(() => gradientGraph(proto, { input: "x" })).toThrow(
      /no graph input named 'x'; the graph has: input/,
    );
  });

  it("refuses opsets before 11 and logits without a class axis", () => {
    const old = decodeModel(zooModel("mlp").onnx);
    old.opsets = [{ domain: "", version: 10 }];
    expect(() => gradientGraph(old)).toThrow(/opset 10; gradients need opset >= 11/);
    const g = new TinyGraph("float64", [2, 3], 1);
    const summed = g.node("ReduceSum", [g.node("Mul", ["x", g.param([2, 3])]), g.i64([1, 2])], {
      keepdims: 0,
    });
    const proto = g.build(summed, 6);
    proto.graph.outputs[0]!.name = summed;
    expect(() => gradientGraph(proto, { trainable: g.trainable })).toThrow(
      /output '.*' has shape \["N"\]; expected \[batch, classes\], \[batch, positions\.\.\., classes\] or \[batch, classes, positions\.\.\.\]/,
    );
  });

  it("refuses a graph that already uses a reserved name", () => {
    const proto = zooProto("mlp");
    proto.graph.nodes[0]!.outputs[0] = "loss";
    proto.graph.nodes[1]!.inputs[0] = "loss";
    expect(() => gradientGraph(proto)).toThrow(/already uses the name 'loss'/);
  });
});

describe("createGradientSession", () => {
  it("checks the batch it is given", async () => {
    const model = zooModel("mlp", { hidden: [8] });
    await expect(createGradientSession(model, { trainable: ["fc9.weight"] })).rejects.toThrow(
      /'trainable' names 'fc9.weight', which is not a parameter of 'mlp'/,
    );
    const session = await createGradientSession(model, { threads: 1, parameters: "inputs" });
    try {
      await expect(session.step(model.initial, new Float32Array(784 * 2), [1, 2, 3])).rejects.toThrow(
        /3 samples \(3 labels\) need 2352 input values \(samples of shape \[1, 28, 28\]\), got 1568/,
      );
      await expect(session.step(new Float32Array(3), new Float32Array(784), [1])).rejects.toThrow(
        /'params' has 3 values/,
      );
    } finally {
      await session.dispose();
    }
  });

  it("the same parameters give the same step in both parameter modes", async () => {
    const model = zooModel("cnn", { width: 0.25 });
    const inputs = new Float32Array(4 * 784).map((_, i) => Math.sin(i));
    const labels = [0, 3, 5, 9];
    const steps = [];
    for (const parameters of ["initializers", "inputs"] as const) {
      const s = await createGradientSession(model, { threads: 1, parameters, batchNorm: "training" });
      steps.push(await s.step(model.initial, inputs, labels));
      await s.dispose();
    }
    const [a, b] = steps as [(typeof steps)[0], (typeof steps)[0]];
    expect(Math.abs(a.loss - b.loss)).toBeLessThan(1e-5);
    let d = 0;
    let n = 0;
    for (let i = 0; i < a.gradient.length; i++) {
      d += (a.gradient[i]! - b.gradient[i]!) ** 2;
      n += b.gradient[i]! ** 2;
    }
    expect(Math.sqrt(d / n)).toBeLessThan(1e-4);
    expect([...a.statistics.keys()]).toEqual([...b.statistics.keys()]);
  });
});
