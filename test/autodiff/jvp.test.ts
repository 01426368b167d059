// Every forward-mode rule against central finite differences: tangents of tiny
// seeded graphs (float64 where ORT runs the op in double, float32 otherwise),
// and Hessian-vector products (tangents of gradient graphs, which exercise the
// rules of the ops the backward pass emits) against differences of gradients.

import { describe, expect, it } from "vitest";
import { gradientGraph } from "../../src/autodiff/gradient.ts";
import { JVP_OPS, jvpGraph } from "../../src/autodiff/jvp.ts";
import { type Precision, TinyGraph } from "./_harness.ts";
import { checkHvp, checkTangents, logitsOf } from "./_jvp-harness.ts";

interface Case {
  name: string;
  precision: Precision;
  inputShape: number[];
  /** Adds the ops; returns the value fed to the head and its features per sample. */
  build: (g: TinyGraph) => [string, number];
  batch?: number;
  opset?: number;
}

const pos = (g: TinyGraph, dims: number[]): string => g.param(dims, 0.2, undefined, 1.5);

/** Forward graphs: the tangent of the logits. */
const FORWARD: Case[] = [
  {
    name: "Gemm (transA, transB, alpha, beta, bias tangent) and MatMul (batched, broadcast)",
    precision: "float64",
    inputShape: [3, 5],
    build: (g) => {
      const h = g.node("Add", ["x", g.param([5])]);
      const m = g.node("MatMul", [h, g.param([5, 4])]);
      const t = g.node("Transpose", [m], { perm: [0, 2, 1] });
      const b = g.node("MatMul", [t, g.param([1, 3, 2])]);
      const flat = g.node("Flatten", [b], { axis: 1 });
      const y = g.node("Gemm", [g.param([8, 3]), flat, g.param([3, 1])], {
        transA: 1,
        transB: 1,
        alpha: { f: 0.7 },
        beta: { f: 1.3 },
      });
      return [g.node("Transpose", [y], { perm: [1, 0] }), 3];
    },
  },
  {
    name: "Gemm with only the bias depending on a parameter",
    precision: "float64",
    inputShape: [5],
    build: (g) => [
      g.node("Gemm", ["x", g.constant([5, 4], Array(20).fill(0.1)), g.param([4])], { beta: { f: 2 } }),
      4,
    ],
  },
  {
    name: "Add, Sub, Mul, Div, Sum with broadcasting and one-sided tangents",
    precision: "float64",
    inputShape: [2, 3, 3],
    build: (g) => {
      const a = g.node("Add", ["x", g.param([2, 1, 1])]);
      const b = g.node("Sub", [g.param([1]), a]);
      const c = g.node("Mul", [b, g.param([3])]);
      const d = g.node("Div", [c, pos(g, [2, 1, 1])]);
      const e = g.node("Div", [
        g.param([1, 3, 1]),
        g.node("Add", [g.node("Mul", [a, a]), g.constant([], [1])]),
      ]);
      const f = g.node("Add", ["x", g.param([3])]);
      const s = g.node("Sum", [d, g.param([3]), g.param([2, 1, 1])]);
      return [g.node("Sub", [g.node("Add", [s, e]), f]), 18];
    },
  },
  {
    name: "Relu, LeakyRelu, Sigmoid, Tanh, Abs",
    precision: "float64",
    inputShape: [6],
    build: (g) => {
      const a = g.node("Add", ["x", g.param([6])]);
      const r = g.node("Relu", [g.node("Mul", [a, g.param([6])])]);
      const l = g.node("LeakyRelu", [g.node("Add", [a, g.param([6])])], { alpha: { f: 0.2 } });
      const s = g.node("Sigmoid", [g.node("Mul", [r, g.param([6])])]);
      const t = g.node("Tanh", [g.node("Mul", [l, g.param([6])])]);
      const b = g.node("Abs", [g.node("Mul", [a, g.param([6])])]);
      return [g.node("Concat", [s, t, b], { axis: 1 }), 18];
    },
  },
  {
    name: "Exp, Log, Sqrt, Reciprocal, Neg",
    precision: "float64",
    inputShape: [4],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([4])]);
      const e = g.node("Exp", [a]);
      const l = g.node("Log", [g.node("Add", [e, g.constant([], [1])])]);
      const s = g.node("Sqrt", [g.node("Add", [g.node("Mul", [a, a]), g.constant([], [0.5])])]);
      const r = g.node("Reciprocal", [g.node("Add", [s, g.param([1])])]);
      return [g.node("Sum", [l, g.node("Neg", [r])]), 4];
    },
  },
  {
    name: "Softmax and LogSoftmax over an inner and the last axis",
    precision: "float64",
    inputShape: [3, 4],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([3, 1])]);
      const s = g.node("Softmax", [a], { axis: 1 });
      const l = g.node("LogSoftmax", [g.node("Add", [a, g.param([4])])], { axis: -1 });
      return [g.node("Add", [g.node("Mul", [s, g.param([4])]), l]), 12];
    },
  },
  {
    name: "BatchNormalization (inference) with tangents of input, scale, shift, mean and variance",
    precision: "float64",
    inputShape: [2, 3, 3],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([2, 1, 1])]);
      const y = g.node("BatchNormalization", [a, pos(g, [2]), g.param([2]), g.param([2]), pos(g, [2])], {
        epsilon: { f: 1e-3 },
      });
      return [y, 18];
    },
  },
  {
    name: "shape ops: Flatten, Reshape, Squeeze, Unsqueeze, Transpose, Expand, Tile, Identity, Dropout",
    precision: "float64",
    inputShape: [2, 3, 2],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([2, 1, 1])]);
      const r = g.node("Reshape", [a, g.i64([0, -1, 2])]);
      const t = g.node("Transpose", [r], { perm: [0, 2, 1] });
      const u = g.node("Unsqueeze", [t, g.i64([1])]);
      const s = g.node("Squeeze", [g.node("Mul", [u, g.param([1, 1, 2, 1])]), g.i64([1])]);
      const x = g.node("Expand", [g.param([2, 1]), g.i64([2, 6])]);
      const i = g.node("Identity", [g.node("Add", [s, x])]);
      const d = g.node("Dropout", [g.node("Tile", [i, g.i64([1, 1, 2])])]);
      return [g.node("Flatten", [d], { axis: 1 }), 24];
    },
  },
  {
    name: "Concat (one input without tangent), Split, Slice, Pad, Gather, GatherElements",
    precision: "float64",
    inputShape: [2, 4],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([2, 1])]);
      const c = g.node("Concat", [a, "x", g.node("Mul", [a, a])], { axis: 2 });
      const [p0, , p2] = g.nodeN("Split", [c, g.i64([3, 4, 5])], 3, { axis: 2 });
      const s = g.node("Slice", [p2!, g.i64([1]), g.i64([-1]), g.i64([2])]);
      const p = g.node("Pad", [s, g.i64([0, 1, 2, 0, 0, 1]), g.constant([], [0.5])]);
      const ga = g.node("Gather", [p, g.i64([2, 0])], { axis: 2 });
      const ge = g.node(
        "GatherElements",
        [p0!, g.i64([0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1, 0, 1, 1], [4, 2, 3])],
        { axis: 1 },
      );
      return [
        g.node("Concat", [g.node("Flatten", [ga], { axis: 1 }), g.node("Flatten", [ge], { axis: 1 })], {
          axis: 1,
        }),
        12,
      ];
    },
  },
  {
    name: "ReduceSum, ReduceMean, ReduceSumSquare, Where",
    precision: "float64",
    inputShape: [2, 3],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([2, 3])]);
      const s = g.node("ReduceSum", [a, g.i64([1])], { keepdims: 1 });
      const m = g.node("ReduceMean", [g.node("Mul", [a, a])], { axes: [1], keepdims: 1 });
      const q = g.node("ReduceSumSquare", [a], { axes: [2], keepdims: 1 });
      const w = g.node("Where", [g.node("Greater", ["x", g.constant([], [0])]), a, g.param([1])]);
      return [g.node("Add", [g.node("Add", [g.node("Add", [s, m]), q]), w]), 6];
    },
  },
  {
    name: "Cast to float64 and back, float64 ReduceSum",
    precision: "float32",
    inputShape: [2, 3],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([2, 3])]);
      const d = g.node("Cast", [a], { to: 11 });
      const s = g.node("ReduceSum", [g.node("Mul", [d, d]), g.i64([2])], { keepdims: 1 });
      return [g.node("Add", [a, g.node("Cast", [s], { to: 1 })]), 6];
    },
  },
  {
    name: "GlobalAveragePool, AveragePool (overlapping, padded), MaxPool (tiling and overlapping)",
    precision: "float32",
    inputShape: [2, 4, 4],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([2, 4, 4])]);
      const p1 = g.node("MaxPool", [a], { kernel_shape: [2, 2], strides: [2, 2] });
      const p2 = g.node("MaxPool", [a], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
      const p3 = g.node("AveragePool", [a], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
      const p4 = g.node("Expand", [g.node("GlobalAveragePool", [a]), g.i64([1, 1, 2, 2])]);
      return [g.node("Concat", [p1, p2, p3, p4], { axis: 1 }), 32];
    },
  },
  {
    name: "MaxUnpool and ScatterElements (add) of tangents, with their data and updates",
    precision: "float32",
    inputShape: [2, 4, 4],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([2, 4, 4])]);
      const [p, i] = g.nodeN("MaxPool", [a], 2, { kernel_shape: [2, 2], strides: [2, 2] });
      const u = g.node("MaxUnpool", [g.node("Mul", [p!, g.param([2, 2, 2])]), i!, g.i64([4, 2, 4, 4])], {
        kernel_shape: [2, 2],
        strides: [2, 2],
      });
      const flat = g.node("Reshape", [u, g.i64([-1])]);
      const idx = g.node("Reshape", [i!, g.i64([-1])]);
      const s = g.node("ScatterElements", [flat, idx, g.node("Reshape", [p!, g.i64([-1])])], {
        axis: 0,
        reduction: { s: "add" },
      });
      return [g.node("Reshape", [s, g.i64([4, 32])]), 32];
    },
  },
  {
    name: "Conv (stride 2, pad 1, bias) and ConvTranspose (stride 2, groups, bias)",
    precision: "float32",
    inputShape: [2, 6, 5],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([2, 1, 1], 0.3, undefined, 1)]);
      const c = g.node("Conv", [a, g.param([4, 2, 3, 3]), g.param([4])], {
        kernel_shape: [3, 3],
        pads: [1, 1, 1, 1],
        strides: [2, 2],
      });
      const t = g.node("ConvTranspose", [c, g.param([4, 1, 3, 3]), g.param([2])], {
        kernel_shape: [3, 3],
        strides: [2, 2],
        pads: [1, 1, 1, 1],
        group: 2,
      });
      // c: [N, 4, 3, 3]; t: [N, 2, 5, 5]
      return [
        g.node("Concat", [g.node("Flatten", [c], { axis: 1 }), g.node("Flatten", [t], { axis: 1 })], {
          axis: 1,
        }),
        86,
      ];
    },
  },
  {
    name: "Conv with only the bias depending on a parameter; Conv with a constant input",
    precision: "float32",
    inputShape: [2, 5, 5],
    build: (g) => {
      const c = g.node("Conv", ["x", g.constant([3, 2, 1, 1], [1, 2, 3, 4, 5, 6]), g.param([3])], {
        kernel_shape: [1, 1],
      });
      const d = g.node("Conv", ["x", g.param([3, 2, 3, 3])], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
      return [g.node("Add", [c, d]), 75];
    },
  },
  {
    name: "opset 11 forms (axes as attributes, Softmax over the trailing block)",
    precision: "float64",
    inputShape: [2, 3],
    opset: 11,
    build: (g) => {
      const a = g.node("Add", ["x", g.param([3])]);
      const s = g.node("Softmax", [g.node("Mul", [a, g.param([2, 1])])], { axis: 1 });
      const u = g.node("Unsqueeze", [s], { axes: [1] });
      const q = g.node("Squeeze", [u], { axes: [1] });
      const [p0, p1] = g.nodeN("Split", [g.node("Mul", [q, a])], 2, { axis: 2, split: [1, 2] });
      const p = g.node("Pad", [p0!, g.i64([0, 0, 1, 0, 0, 0]), g.constant([], [2])]);
      return [g.node("Concat", [p, g.node("ReduceSum", [p1!], { axes: [2], keepdims: 1 })], { axis: 2 }), 6];
    },
  },
];

/** Hessian-vector products: tangents of gradient graphs (the backward pass's ops) against differences of gradients. */
const HVP: Case[] = [
  {
    name: "MLP: Gemm, Relu, cross-entropy",
    precision: "float64",
    inputShape: [5],
    build: (g) => {
      const h = g.node("Relu", [g.node("Gemm", ["x", g.param([6, 5]), g.param([6])], { transB: 1 })]);
      const k = g.node("Tanh", [g.node("MatMul", [h, g.param([6, 4])])]);
      return [g.node("Gemm", [k, g.param([4, 4]), g.param([4])]), 4];
    },
  },
  {
    name: "Softmax, Exp, Log, Div, Sqrt, BatchNormalization (inference) inside the loss",
    precision: "float64",
    inputShape: [2, 3, 3],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([2, 1, 1])]);
      const b = g.node("BatchNormalization", [a, pos(g, [2]), g.param([2]), g.param([2]), pos(g, [2])]);
      const s = g.node("Softmax", [b], { axis: 1 });
      const l = g.node("Log", [g.node("Add", [g.node("Exp", [b]), g.constant([], [1])])]);
      const q = g.node("Sqrt", [g.node("Add", [g.node("Mul", [b, b]), g.constant([], [0.5])])]);
      return [g.node("Add", [g.node("Div", [s, pos(g, [3])]), g.node("Mul", [l, q])]), 18];
    },
  },
  {
    name: "Conv (3x3 pad 1, stride 2, groups) through BatchNormalization, Relu, MaxPool, GlobalAveragePool",
    precision: "float32",
    inputShape: [2, 6, 6],
    build: (g) => {
      const c1 = g.node("Conv", ["x", g.param([4, 2, 3, 3], 0.4)], {
        kernel_shape: [3, 3],
        pads: [1, 1, 1, 1],
      });
      const b1 = g.node("BatchNormalization", [
        c1,
        pos(g, [4]),
        g.param([4], 0.1),
        g.param([4], 0.1),
        pos(g, [4]),
      ]);
      const r1 = g.node("Relu", [b1]);
      const m = g.node("MaxPool", [r1], { kernel_shape: [2, 2], strides: [2, 2] });
      const c2 = g.node("Conv", [m, g.param([4, 2, 3, 3], 0.4)], {
        kernel_shape: [3, 3],
        pads: [1, 1, 1, 1],
        strides: [2, 2],
        group: 2,
      });
      const t = g.node("Tanh", [c2]);
      return [g.node("Add", [g.node("GlobalAveragePool", [t]), g.node("Mul", [t, t])]), 16];
    },
  },
  {
    name: "residual block: Conv + shortcut Add, overlapping MaxPool (ScatterElements backward), AveragePool",
    precision: "float32",
    inputShape: [2, 5, 5],
    build: (g) => {
      const c1 = g.node("Conv", ["x", g.param([2, 2, 3, 3], 0.4)], {
        kernel_shape: [3, 3],
        pads: [1, 1, 1, 1],
      });
      const r = g.node("Tanh", [g.node("Add", [c1, "x"])]);
      const m = g.node("MaxPool", [r], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
      const c2 = g.node("Conv", [m, g.param([3, 2, 1, 1], 0.4)], { kernel_shape: [1, 1] });
      const a = g.node("AveragePool", [g.node("Mul", [c2, c2])], { kernel_shape: [2, 2], strides: [1, 1] });
      return [a, 12];
    },
  },
];

describe("forward-mode rules against central finite differences", () => {
  it.each(FORWARD.map((c) => [c.name, c] as const))("%s", async (_, c) => {
    const g = new TinyGraph(c.precision, c.inputShape, 7, c.opset);
    const [value, features] = c.build(g);
    const proto = g.build(value, features);
    const r = await checkTangents(proto, g, [logitsOf(proto)], { batch: c.batch ?? 4 });
    expect(r.checked).toBeGreaterThan(0);
    expect(r.excess, r.at).toBe(0);
  });
});

describe("Hessian-vector products (forward over reverse) against differences of gradients", () => {
  it.each(HVP.map((c) => [c.name, c] as const))("%s", async (_, c) => {
    const g = new TinyGraph(c.precision, c.inputShape, 7, c.opset);
    const [value, features] = c.build(g);
    const proto = g.build(value, features);
    const r = await checkHvp(proto, g, { batch: c.batch ?? 4 });
    expect(r.checked).toBeGreaterThan(0);
    expect(r.excess, r.at).toBe(0);
  });
});

describe("jvpGraph", () => {
  it("has a rule for every op the zoo's gradient graphs contain", async () => {
    const { zooModel } = await import("../../src/zoo/zoo.ts");
    for (const [name, shape] of [
      ["mlp", [1, 28, 28]],
      ["cnn", [1, 28, 28]],
      ["vgg9", [3, 32, 32]],
      ["resnet20", [3, 32, 32]],
    ] as const) {
      const model = zooModel(name, { inputShape: shape });
      const filters = model.params.filter((p) => p.role === "filter").map((p) => p.name);
      const grad = gradientGraph(model, { trainable: filters });
      const jvp = jvpGraph(grad.proto, { seeds: filters, outputs: grad.gradients.map((o) => o.output) });
      expect(jvp.tangentOutputs).toHaveLength(filters.length);
      for (const n of jvp.proto.graph.nodes) expect(n.opType.length).toBeGreaterThan(0);
    }
    expect(JVP_OPS).toContain("MaxUnpool");
  });

  it("names the op and node without a forward-mode rule, and checks seeds and outputs", () => {
    const g = new TinyGraph("float64", [3], 1);
    const proto = g.build(g.node("Sinh", [g.node("Mul", ["x", g.param([3])])]), 3);
    expect(() => jvpGraph(proto, { seeds: g.trainable, outputs: [logitsOf(proto)] })).toThrow(
      /no forward-mode rule for Sinh node 'sinh\d+'.*ops with rules: .*Conv/,
    );
    expect(() => jvpGraph(proto, { seeds: ["nope"], outputs: [] })).toThrow(
      /seed 'nope' is neither a graph input nor an initializer/,
    );
    expect(() => jvpGraph(proto, { seeds: [], outputs: ["nothing"] })).toThrow(/no value named 'nothing'/);
  });

  it("a value that does not depend on a seed gets a zero tangent; unneeded nodes are dropped", () => {
    const g = new TinyGraph("float64", [3], 1);
    const a = g.node("Mul", ["x", g.param([3])]);
    const b = g.node("Mul", ["x", g.param([3])]);
    const proto = g.build(g.node("Add", [a, b]), 3);
    const jvp = jvpGraph(proto, { seeds: [g.trainable[0]!], outputs: [b, a] });
    const ops = jvp.proto.graph.nodes.map((n) => n.opType);
    expect(ops.filter((o) => o === "ConstantOfShape")).toHaveLength(1);
    expect(jvp.tangentOutputs.map((t) => t.output)).toEqual([`tangent:${b}`, `tangent:${a}`]);
  });
});
