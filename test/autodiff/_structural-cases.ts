// Tiny seeded graphs exercising the structural ops (ConvTranspose,
// LayerNormalization, InstanceNormalization, Gather, strided Slice,
// reflect/edge/run-time Pad), shared by the reverse-mode and forward-mode tests.

import { AttrType, DataType } from "../../src/onnx/proto.ts";
import type { Precision, TinyGraph } from "./_harness.ts";

export interface Case {
  /** What the graph exercises. */
  name: string;
  precision: Precision;
  inputShape: number[];
  /** Adds the ops; returns the value fed to the head and its features per sample. */
  build: (g: TinyGraph) => [string, number];
  batch?: number;
  opset?: number;
  /** Ops the gradient graph must contain: which formulation the rule chose. */
  emits?: string[];
}

const product = (dims: readonly number[]): number => dims.reduce((p, q) => p * q, 1);

/** Output spatial sizes of a ConvTranspose. */
function convTransposeOut(
  spatial: number[],
  kernel: number[],
  attrs: { strides?: number[]; pads?: number[]; dilations?: number[]; output_padding?: number[] },
): number[] {
  const s = spatial.length;
  return spatial.map(
    (d, i) =>
      (attrs.strides?.[i] ?? 1) * (d - 1) +
      (attrs.output_padding?.[i] ?? 0) +
      (attrs.dilations?.[i] ?? 1) * (kernel[i]! - 1) +
      1 -
      (attrs.pads?.[i] ?? 0) -
      (attrs.pads?.[i + s] ?? 0),
  );
}

/** ConvTranspose cases: [name, attributes, weight dims [C_in, C_out/g, k...], bias]. */
export const CONV_TRANSPOSE_CASES: [string, Record<string, number | number[]>, number[], boolean][] = [
  ["2D 3x3, stride 1, pad 1", { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, [2, 3, 3, 3], false],
  [
    "2D 3x3, stride 2, pad 1, output_padding 1, bias",
    { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] },
    [2, 3, 3, 3],
    true,
  ],
  [
    "2D 2x3, stride (2, 1), dilation 2, asymmetric pads",
    { kernel_shape: [2, 3], strides: [2, 1], dilations: [2, 2], pads: [0, 2, 1, 1] },
    [2, 2, 2, 3],
    true,
  ],
  [
    "2D 3x3, 2 groups, stride 2, output_padding 1",
    { kernel_shape: [3, 3], strides: [2, 2], group: 2, output_padding: [1, 0] },
    [2, 2, 3, 3],
    true,
  ],
  [
    "2D 2x2, stride 3, dilation 2, output_padding (2, 1)",
    { kernel_shape: [2, 2], strides: [3, 3], dilations: [2, 2], output_padding: [2, 1] },
    [2, 2, 2, 2],
    false,
  ],
  [
    "1D 4, stride 2, pad 1, 2 groups, bias",
    { kernel_shape: [4], strides: [2], pads: [1, 1], group: 2 },
    [2, 1, 4],
    true,
  ],
];

/** Adds a ConvTranspose after a per-channel scale of `x` [N, 2, ...spatial]. */
export function convTransposeCase(
  name: string,
  attrs: Record<string, number | number[]>,
  wDims: number[],
  bias: boolean,
): Case {
  const spatial = wDims.length === 3 ? [5] : [4, 3];
  return {
    name,
    precision: "float32",
    inputShape: [2, ...spatial],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([2, ...spatial.map(() => 1)], 0.3, undefined, 1)]);
      const inputs = [a, g.param(wDims)];
      const cOut = wDims[1]! * ((attrs.group as number | undefined) ?? 1);
      if (bias) inputs.push(g.param([cOut]));
      const y = g.node("ConvTranspose", inputs, attrs);
      const out = convTransposeOut(
        spatial,
        attrs.kernel_shape as number[],
        attrs as Record<string, number[]>,
      );
      return [y, cOut * product(out)];
    },
  };
}

/** Pads in torch.onnx's order ([last begin, last end, previous begin, ...]) turned into ONNX pads by ops shape inference does not follow, as torch.onnx.export does without constant folding. */
export function torchPads(g: TinyGraph, pad: number[], rank: number): string {
  const given = g.i64(pad);
  const missing = g.node("Sub", [
    g.node("Mul", [g.i64([rank], []), g.i64([2], [])]),
    g.node("Size", [given]),
  ]);
  const zeros = `zeros${g.nodes.length}`;
  g.nodes.push({
    opType: "ConstantOfShape",
    inputs: [g.node("Reshape", [missing, g.i64([1])])],
    outputs: [zeros],
    name: `constantofshape${g.nodes.length}`,
    domain: "",
    attributes: [
      {
        name: "value",
        type: AttrType.TENSOR,
        t: { name: "", dims: [1], dataType: DataType.INT64, raw: new Uint8Array(8) },
      },
    ],
  });
  const pairs = g.node("Reshape", [g.node("Concat", [given, zeros], { axis: 0 }), g.i64([-1, 2])]);
  const flipped = g.node("Slice", [pairs, g.i64([-1]), g.i64([-(2 ** 62)]), g.i64([0]), g.i64([-1])]);
  return g.node("Reshape", [g.node("Transpose", [flipped], { perm: [1, 0] }), g.i64([-1])]);
}

/** Cases of the ops other than ConvTranspose. */
export const CASES: Case[] = [
  {
    name: "LayerNormalization over the last axis (scale, bias) and over the last two (axis -2, scale only)",
    precision: "float64",
    inputShape: [3, 4],
    build: (g) => {
      const a = g.node("Add", [g.node("Mul", ["x", g.param([3, 1], 0.3, undefined, 1)]), g.param([4])]);
      const l1 = g.node("LayerNormalization", [a, g.param([4], 0.3, undefined, 1), g.param([4])], {
        axis: -1,
        epsilon: { f: 1e-3 },
      });
      const l2 = g.node("LayerNormalization", [g.node("Mul", [l1, a]), g.param([3, 4], 0.3, undefined, 1)], {
        axis: -2,
      });
      return [l2, 12];
    },
  },
  {
    name: "LayerNormalization with axis 1 on [N, C, L] and a scale broadcast over C",
    precision: "float64",
    inputShape: [2, 5],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([2, 5])]);
      return [
        g.node("LayerNormalization", [a, g.param([5], 0.3, undefined, 1), g.param([1, 5])], { axis: 1 }),
        10,
      ];
    },
  },
  {
    name: "InstanceNormalization on [N, C, H, W] and [N, C, L]",
    precision: "float32",
    inputShape: [2, 3, 4],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([2, 3, 4])]);
      const i1 = g.node("InstanceNormalization", [a, g.param([2], 0.3, undefined, 1), g.param([2])], {
        epsilon: { f: 1e-3 },
      });
      const flat = g.node("Reshape", [g.node("Mul", [i1, a]), g.i64([0, 3, 8])]);
      return [g.node("InstanceNormalization", [flat, g.param([3], 0.3, undefined, 1), g.param([3])]), 24];
    },
  },
  ...[17, 13].map(
    (opset): Case => ({
      name: `Gather of an embedding table (axis 0, repeated and negative indices) and along axis 1, opset ${opset}`,
      precision: "float64",
      inputShape: [2, 3, 3],
      opset,
      emits: [opset >= 16 ? "ScatterND" : "Gemm"],
      build: (g) => {
        const table = g.param([5, 3]);
        const emb = g.node("Gather", [table, g.i64([0, 2, 2, 4, -1, 0], [2, 3])]);
        const a = g.node("Mul", ["x", emb]);
        const p = g.param([3, 4, 2]);
        const picked = g.node("Gather", [p, g.i64([3, 1, 3])], { axis: 1 }); // [3, 3, 2]
        const scalar = g.node("Gather", [p, g.i64([-1], [])], { axis: 2 }); // [3, 4]
        const s = g.node("ReduceSum", [scalar, g.i64([1])], { keepdims: 0 }); // [3]
        const b = g.node("Mul", [g.node("ReduceSum", [picked, g.i64([2])], { keepdims: 0 }), s]);
        return [g.node("Add", [a, b]), 18];
      },
    }),
  ),
  {
    name: "Gather along an axis of an activation with a symbolic batch (indices [2, 2], repeated)",
    precision: "float64",
    inputShape: [4, 3],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([4, 3])]);
      const picked = g.node("Gather", [a, g.i64([3, 0, 3, 3], [2, 2])], { axis: 1 }); // [N, 2, 2, 3]
      return [g.node("Mul", [picked, g.param([3])]), 12];
    },
  },
  {
    name: "Slice with steps 2, -1 and -3 (and a step-1 axis), and a reversed whole axis",
    precision: "float64",
    inputShape: [3, 5, 7],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([3, 5, 7])]);
      // axis 1: 0, 2, 4; axis 2: 5, 2 (step -3); axis 3: 6 .. 0 reversed
      const s = g.node("Slice", [a, g.i64([0, 5, 1]), g.i64([5, 0, 3]), g.i64([2, 3, 1]), g.i64([2, -3, 1])]);
      const r = g.node("Slice", [s, g.i64([-1]), g.i64([-(2 ** 62)]), g.i64([-2]), g.i64([-1])]);
      return [g.node("Mul", [r, g.param([2])]), 2 * 3 * 2];
    },
  },
  ...(["reflect", "edge"] as const).map(
    (mode): Case => ({
      name: `Pad mode ${mode} with constant pads on two axes (asymmetric)`,
      precision: "float64",
      inputShape: [2, 4, 5],
      build: (g) => {
        const a = g.node("Mul", ["x", g.param([2, 4, 5])]);
        const p = g.node("Pad", [a, g.i64([0, 0, 2, 1, 0, 0, 1, 3])], { mode: { s: mode } });
        return [g.node("Mul", [p, g.param([9])]), 2 * 7 * 9];
      },
    }),
  ),
  ...(["reflect", "edge", "constant"] as const).map(
    (mode): Case => ({
      name: `Pad mode ${mode} with pads computed at run time (torch.onnx.export without constant folding)`,
      precision: "float64",
      inputShape: [2, 4, 5],
      emits: ["ScatterElements"],
      build: (g) => {
        const a = g.node("Mul", ["x", g.param([2, 4, 5])]);
        const p = g.node("Pad", [a, torchPads(g, [1, 3, 2, 1], 4)], { mode: { s: mode } });
        return [g.node("Mul", [p, g.param([9])]), 2 * 7 * 9];
      },
    }),
  ),
  {
    name: "Dropout with training_mode false is the identity",
    precision: "float64",
    inputShape: [3],
    build: (g) => {
      g.initializers.push({ name: "off", dims: [], dataType: DataType.BOOL, raw: new Uint8Array([0]) });
      const a = g.node("Mul", ["x", g.param([3])]);
      return [g.node("Dropout", [a, g.constant([], [0.5]), "off"]), 3];
    },
  },
];
