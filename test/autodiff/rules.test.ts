// Every gradient rule against central finite differences of the loss, on tiny
// seeded graphs: float64 where ORT runs the op in double (every coordinate,
// tight tolerance), float32 otherwise (random directions, tolerance from the
// step size; see checkGradients).

import { describe, expect, it } from "vitest";
import type { GradientOptions } from "../../src/autodiff/gradient.ts";
import { checkGradients, openRunner, type Precision, TinyGraph } from "./_harness.ts";

interface Case {
  /** What the graph exercises. */
  name: string;
  precision: Precision;
  inputShape: number[];
  /** Adds the ops; returns the value fed to the head and its features per sample. */
  build: (g: TinyGraph) => [string, number];
  batch?: number;
  options?: GradientOptions;
  opset?: number;
}

const pos = (g: TinyGraph, dims: number[]): string => g.param(dims, 0.2, undefined, 1.5);

const CASES: Case[] = [
  {
    name: "Gemm (transB, bias [out]) after Mul",
    precision: "float64",
    inputShape: [5],
    build: (g) => {
      const h = g.node("Mul", ["x", g.param([5])]);
      return [g.node("Gemm", [h, g.param([4, 5]), g.param([4])], { transB: 1 }), 4];
    },
  },
  {
    name: "Gemm with alpha, beta, transA, transB, bias [1, out] and a scalar bias",
    precision: "float64",
    inputShape: [5],
    build: (g) => {
      const h = g.node("Add", ["x", g.param([5])]);
      const y1 = g.node("Gemm", [h, g.param([5, 4]), g.param([1, 4])], {
        alpha: { f: 0.7 },
        beta: { f: 1.3 },
      });
      const t = g.node("Transpose", [y1], { perm: [1, 0] });
      return [
        g.node("Gemm", [t, g.param([3, 4]), g.param([1])], { transA: 1, transB: 1, beta: { f: 0.5 } }),
        3,
      ];
    },
  },
  {
    name: "MatMul 2-D",
    precision: "float64",
    inputShape: [5],
    build: (g) => [g.node("MatMul", [g.node("Mul", ["x", g.param([5])]), g.param([5, 4])]), 4],
  },
  {
    name: "MatMul batched with broadcasting (3-D x 2-D, 3-D x [1, k, n], 2-D x 3-D)",
    precision: "float64",
    inputShape: [3, 5],
    build: (g) => {
      const h = g.node("Add", ["x", g.param([5])]);
      const h2 = g.node("MatMul", [h, g.param([5, 4])]);
      const h3 = g.node("MatMul", [g.node("Transpose", [h2], { perm: [0, 2, 1] }), g.param([1, 3, 2])]);
      return [g.node("MatMul", [g.param([2, 4]), h3]), 4];
    },
  },
  {
    name: "MatMul with 1-D operands",
    precision: "float64",
    inputShape: [3, 5],
    build: (g) => {
      const h = g.node("Add", ["x", g.param([5])]);
      const a = g.node("MatMul", [h, g.param([5])]);
      const b = g.node("MatMul", [g.param([3]), h]);
      return [g.node("Concat", [a, b], { axis: 1 }), 8];
    },
  },
  {
    name: "Add, Sub, Mul, Div with broadcasting on both sides",
    precision: "float64",
    inputShape: [2, 3, 3],
    build: (g) => {
      const a = g.node("Add", ["x", g.param([2, 1, 1])]);
      const b = g.node("Sub", [g.param([1]), a]);
      const c = g.node("Mul", [b, g.param([3])]);
      const d = g.node("Div", [c, pos(g, [2, 1, 1])]);
      const den = g.node("Add", [g.node("Mul", [a, a]), g.constant([], [1])]);
      const e = g.node("Div", [g.param([1, 3, 1]), den]);
      return [g.node("Sub", [d, e]), 18];
    },
  },
  {
    name: "Relu, LeakyRelu, Sigmoid, Tanh",
    precision: "float64",
    inputShape: [6],
    build: (g) => {
      const a = g.node("Add", ["x", g.param([6])]);
      const r = g.node("Relu", [g.node("Mul", [a, g.param([6])])]);
      const l = g.node("LeakyRelu", [g.node("Add", [a, g.param([6])])], { alpha: { f: 0.2 } });
      const s = g.node("Sigmoid", [g.node("Mul", [r, g.param([6])])]);
      const t = g.node("Tanh", [g.node("Mul", [l, g.param([6])])]);
      return [g.node("Concat", [s, t], { axis: 1 }), 12];
    },
  },
  {
    name: "Relu gradient formulation where",
    precision: "float64",
    inputShape: [6],
    options: { formulations: { relu: "where" } },
    build: (g) => [g.node("Relu", [g.node("Gemm", ["x", g.param([6, 6]), g.param([6])])]), 6],
  },
  {
    name: "Relu gradient formulation sign",
    precision: "float64",
    inputShape: [6],
    options: { formulations: { relu: "sign" } },
    build: (g) => [g.node("Relu", [g.node("Gemm", ["x", g.param([6, 6]), g.param([6])])]), 6],
  },
  {
    name: "Exp, Log, Sqrt, Neg, Sum",
    precision: "float64",
    inputShape: [4],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([4])]);
      const e = g.node("Exp", [a]);
      const l = g.node("Log", [g.node("Add", [e, g.constant([], [1])])]);
      const s = g.node("Sqrt", [g.node("Add", [g.node("Mul", [a, a]), g.constant([], [0.5])])]);
      const n = g.node("Neg", [g.node("Mul", [s, g.param([1])])]);
      return [g.node("Sum", [l, n, g.param([4]), g.param([1])]), 4];
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
    name: "BatchNormalization (inference) with trainable scale, shift, mean and variance",
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
    name: "BatchNormalization (training) on [N, C, H, W] and [N, C]",
    precision: "float64",
    inputShape: [2, 3, 3],
    batch: 6,
    options: { batchNorm: "training" },
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([2, 1, 1])]);
      const y = g.node("BatchNormalization", [
        a,
        pos(g, [2]),
        g.param([2]),
        g.constant([2], [0, 0]),
        g.constant([2], [1, 1]),
      ]);
      const r = g.node("Relu", [y]);
      const f = g.node("Gemm", [g.node("Flatten", [r], { axis: 1 }), g.param([4, 18]), g.param([4])], {
        transB: 1,
      });
      const z = g.node("BatchNormalization", [
        f,
        pos(g, [4]),
        g.param([4]),
        g.constant([4], [0, 0, 0, 0]),
        g.constant([4], [1, 1, 1, 1]),
      ]);
      return [z, 4];
    },
  },
  {
    name: "Flatten, Reshape (0 and -1), Squeeze, Unsqueeze, Transpose, Identity, Dropout",
    precision: "float64",
    inputShape: [2, 3, 2],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([2, 1, 1])]);
      const r = g.node("Reshape", [a, g.i64([0, -1, 2])]);
      const t = g.node("Transpose", [r], { perm: [0, 2, 1] });
      const u = g.node("Unsqueeze", [t, g.i64([1])]);
      const s = g.node("Squeeze", [g.node("Mul", [u, g.param([1, 1, 2, 1])]), g.i64([1])]);
      const i = g.node("Identity", [s]);
      const d = g.node("Dropout", [i]);
      return [g.node("Flatten", [d], { axis: 1 }), 12];
    },
  },
  {
    name: "Concat and Split (an unused piece gets a zero gradient)",
    precision: "float64",
    inputShape: [2, 3],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([2, 1])]);
      const c = g.node("Concat", [a, g.node("Add", [a, g.param([3])]), g.node("Mul", [a, a])], { axis: 1 });
      const [p0, , p2] = g.nodeN("Split", [c, g.i64([1, 2, 3])], 3, { axis: 1 });
      return [g.node("Concat", [p0!, g.node("Mul", [p2!, g.param([3])])], { axis: 1 }), 12];
    },
  },
  {
    name: "Slice (step 1, negative ends) and Pad (constant)",
    precision: "float64",
    inputShape: [2, 4, 4],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([2, 1, 1])]);
      const s = g.node("Slice", [a, g.i64([1, 0]), g.i64([-1, 3]), g.i64([2, 3])]);
      const p = g.node("Pad", [g.node("Mul", [s, g.param([3])]), g.i64([0, 1, 0, 2, 0, 0, 1, 0])]);
      return [p, 3 * 3 * 5];
    },
  },
  {
    name: "ReduceSum (keepdims 0) and ReduceMean (keepdims 1)",
    precision: "float64",
    inputShape: [2, 3],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([2, 3])]);
      const s = g.node("ReduceSum", [a, g.i64([1])], { keepdims: 0 });
      const m = g.node("ReduceMean", [g.node("Mul", [a, a])], { axes: [1], keepdims: 1 });
      return [g.node("Add", [g.node("Unsqueeze", [s, g.i64([1])]), m]), 3];
    },
  },
  {
    name: "Expand, Where",
    precision: "float64",
    inputShape: [2, 3],
    build: (g) => {
      const e = g.node("Expand", [g.param([2, 1]), g.i64([2, 3])]);
      const a = g.node("Mul", ["x", e]);
      return [g.node("Where", [g.node("Greater", ["x", g.constant([], [0])]), a, g.param([1])]), 6];
    },
  },
  {
    name: "Cast to float64 and back",
    precision: "float32",
    inputShape: [2, 3],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([2, 3])]);
      return [
        g.node("Cast", [g.node("Mul", [g.node("Cast", [a], { to: 11 }), g.node("Cast", [a], { to: 11 })])], {
          to: 1,
        }),
        6,
      ];
    },
  },
  {
    name: "GlobalAveragePool",
    precision: "float32",
    inputShape: [2, 3, 3],
    build: (g) => [g.node("GlobalAveragePool", [g.node("Mul", ["x", g.param([2, 3, 3])])]), 2],
  },
  {
    name: "AveragePool tiling 2x2 and overlapping 3x3 stride 2 pad 1 (count_include_pad 0 and 1)",
    precision: "float32",
    inputShape: [2, 4, 4],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([2, 4, 4])]);
      const p1 = g.node("AveragePool", [a], { kernel_shape: [2, 2], strides: [2, 2] });
      const p2 = g.node("AveragePool", [a], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
      const p3 = g.node("AveragePool", [a], {
        kernel_shape: [3, 3],
        strides: [2, 2],
        pads: [1, 1, 1, 1],
        count_include_pad: 1,
      });
      return [g.node("Concat", [p1, p2, p3], { axis: 1 }), 24];
    },
  },
  {
    name: "MaxPool tiling 2x2 (Indices + MaxUnpool) and overlapping 3x3 stride 2 (ScatterElements add)",
    precision: "float32",
    inputShape: [2, 4, 4],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([2, 4, 4])]);
      const p1 = g.node("MaxPool", [a], { kernel_shape: [2, 2], strides: [2, 2] });
      const p2 = g.node("MaxPool", [a], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
      return [g.node("Concat", [p1, p2], { axis: 1 }), 16];
    },
  },
  {
    name: "MaxPool mask formulation",
    precision: "float32",
    inputShape: [2, 4, 4],
    options: { formulations: { maxPool: "mask" } },
    build: (g) => [
      g.node("MaxPool", [g.node("Mul", ["x", g.param([2, 4, 4])])], {
        kernel_shape: [2, 2],
        strides: [2, 2],
      }),
      8,
    ],
  },
  {
    name: "shape plumbing of torch.onnx.export graphs (Shape, Gather, Unsqueeze, Concat, Constant, Reshape)",
    precision: "float64",
    inputShape: [2, 3],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([2, 3])]);
      const n = g.node("Gather", [g.node("Shape", [a]), g.i64([0], [])], { axis: 0 });
      const minus = g.node("Constant", [], { value_ints: [-1] });
      const shape = g.node("Concat", [g.node("Unsqueeze", [n, g.i64([0])]), minus], { axis: 0 });
      return [g.node("Add", [g.node("Reshape", [a, shape]), g.param([6])]), 6];
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
      return [
        g.node("Concat", [p0!, g.node("ReduceSum", [p1!], { axes: [2], keepdims: 1 })], { axis: 2 }),
        4,
      ];
    },
  },
];

const CONV_CASES: [string, Record<string, number | number[]>, number[], boolean][] = [
  ["3x3, stride 1, pad 1", { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, [3, 2, 3, 3], false],
  [
    "3x3, stride 2, pad 1, bias",
    { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [2, 2] },
    [3, 2, 3, 3],
    true,
  ],
  ["1x1, stride 2", { kernel_shape: [1, 1], strides: [2, 2] }, [4, 2, 1, 1], false],
  [
    "3x2, dilation 2, asymmetric pads",
    { kernel_shape: [3, 2], pads: [2, 0, 1, 1], dilations: [2, 2] },
    [3, 2, 3, 2],
    true,
  ],
  [
    "3x3, 2 groups, stride 1, pad 1",
    { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 2 },
    [4, 1, 3, 3],
    false,
  ],
  ["3x3, 2 groups, stride 2", { kernel_shape: [3, 3], strides: [2, 2], group: 2 }, [2, 1, 3, 3], true],
];

const CONV_FORMULATIONS: GradientOptions["formulations"][] = [
  {},
  { convInput: "conv-transpose" },
  { convWeight: "im2col" },
  { convWeight: "im2col-batched" },
  { convWeight: "conv" },
];

async function expectFiniteDifferences(c: Case): Promise<void> {
  const g = new TinyGraph(c.precision, c.inputShape, 7, c.opset);
  const [value, features] = c.build(g);
  const proto = g.build(value, features);
  const runner = await openRunner(proto, g, { batch: c.batch ?? 4, options: c.options ?? {} });
  try {
    const result = await checkGradients(runner);
    expect(result.checked).toBeGreaterThan(0);
    expect(result.excess, result.at).toBe(0);
  } finally {
    await runner.release();
  }
}

describe("gradient rules against central finite differences", () => {
  it.each(CASES.map((c) => [c.name, c] as const))("%s", async (_, c) => expectFiniteDifferences(c));

  describe.each(CONV_CASES)("Conv %s", (_, attrs, wDims, bias) => {
    it.each(CONV_FORMULATIONS.map((f) => [JSON.stringify(f), f] as const))(
      "formulation %s",
      async (_f, formulations) => {
        await expectFiniteDifferences({
          name: "conv",
          precision: "float32",
          inputShape: [2, 6, 5],
          options: { formulations },
          build: (g) => {
            const a = g.node("Mul", ["x", g.param([2, 1, 1], 0.3, undefined, 1)]);
            const inputs = [a, g.param(wDims)];
            if (bias) inputs.push(g.param([wDims[0]!]));
            const y = g.node("Conv", inputs, attrs as Record<string, number>);
            const dims = (proto: number[]): number => proto.reduce((p, q) => p * q, 1);
            // Output spatial size from the attributes.
            const k = attrs.kernel_shape as number[];
            const s = (attrs.strides as number[] | undefined) ?? [1, 1];
            const d = (attrs.dilations as number[] | undefined) ?? [1, 1];
            const p = (attrs.pads as number[] | undefined) ?? [0, 0, 0, 0];
            const out = [6, 5].map(
              (n, i) => Math.floor((n + p[i]! + p[i + 2]! - d[i]! * (k[i]! - 1) - 1) / s[i]!) + 1,
            );
            return [y, dims([wDims[0]!, ...out])];
          },
        });
      },
    );
  });
});
