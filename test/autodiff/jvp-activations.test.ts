// The forward-mode rules of activations and elementwise ops (_jvp-activations.ts): tangents
// against central finite differences away from kinks and ties, Hessian-vector products (forward
// over reverse, which runs the forward rules of every op the reverse rules emit) against
// differences of gradients, and the conventions at bounds and ties, which must be those of the
// reverse rules.

import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { NON_DIFFERENTIABLE } from "../../src/autodiff/_rules.ts";
import { ACTIVATIONS_RULES } from "../../src/autodiff/_rules-activations.ts";
import { gradientGraph } from "../../src/autodiff/gradient.ts";
import { JVP_OPS, jvpGraph } from "../../src/autodiff/jvp.ts";
import { gradientSessionOptions } from "../../src/autodiff/session.ts";
import { type Attribute, AttrType, DataType, encodeModel, type ModelProto } from "../../src/onnx/proto.ts";
import { type Precision, TinyGraph } from "./_harness.ts";
import { checkHvp, checkTangents, logitsOf } from "./_jvp-harness.ts";

interface Case {
  name: string;
  precision: Precision;
  inputShape: number[];
  /** Adds the ops; returns the value fed to the head and its features per sample. */
  build: (g: TinyGraph) => [string, number];
  opset?: number;
  /** Finite-difference step (float32 default 1e-2; smaller where pre-activations lie near kinks). */
  step?: number;
}

/** Forward graphs: the tangent of the logits. */
const FORWARD: Case[] = [
  {
    name: "Clip with both bounds, min only, max only, none, and trainable bounds",
    precision: "float64",
    inputShape: [6],
    build: (g) => {
      const a = g.node("Add", [g.node("Mul", ["x", g.param([6])]), g.param([6], 0.3)]);
      const both = g.node("Clip", [a, g.constant([], [-0.3]), g.constant([], [0.4])]);
      const min = g.node("Clip", [a, g.param([], 0, [0.1])]);
      const max = g.node("Clip", [a, "", g.param([], 0, [0.2])]);
      const none = g.node("Clip", [a]);
      const trained = g.node("Clip", [a, g.param([], 0, [-0.25]), g.param([], 0, [0.35])]);
      return [g.node("Concat", [both, min, max, none, trained], { axis: 1 }), 30];
    },
  },
  {
    name: "Clip with attribute bounds (opset 10)",
    precision: "float32",
    inputShape: [6],
    opset: 10,
    step: 1e-3,
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([6], 0.6)]);
      const both = g.node("Clip", [a], { min: { f: -0.45 }, max: { f: 0.55 } });
      const min = g.node("Clip", [a], { min: { f: 0.05 } });
      return [g.node("Concat", [both, min], { axis: 1 }), 12];
    },
  },
  {
    name: "Max and Min: variadic, broadcasting, a constant input, a single input",
    precision: "float64",
    inputShape: [2, 3],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([2, 3])]);
      const b = g.node("Add", ["x", g.param([2, 1])]);
      const m3 = g.node("Max", [a, g.param([3]), b]);
      const m2 = g.node("Min", [g.node("Mul", [a, b]), g.param([2, 1])]);
      const relu = g.node("Max", [b, g.constant([], [0])]);
      const one = g.node("Min", [g.node("Mul", [a, g.param([1])])]);
      return [g.node("Sum", [m3, m2, relu, one]), 6];
    },
  },
  {
    name: "Pow: trainable base and exponent, constant and int64 exponents, constant base",
    precision: "float64",
    inputShape: [4],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([4])]);
      const positive = g.node("Sigmoid", [a]);
      const p1 = g.node("Pow", [positive, g.param([4], 0.5, undefined, 1.5)]);
      const p2 = g.node("Pow", [g.node("Add", [a, g.param([1])]), g.constant([], [2])]);
      const p3 = g.node("Pow", [a, g.i64([3], [])]);
      const p4 = g.node("Pow", [g.constant([], [1.7]), g.node("Mul", [a, g.param([1])])]);
      return [g.node("Sum", [p1, p2, p3, p4]), 4];
    },
  },
  {
    name: "PRelu with slopes [C, 1, 1] and [1]",
    precision: "float64",
    inputShape: [2, 3, 3],
    build: (g) => {
      const a = g.node("Add", [g.node("Mul", ["x", g.param([2, 1, 1], 0.5, undefined, 1)]), g.param([3])]);
      const p1 = g.node("PRelu", [a, g.param([2, 1, 1], 0.3, undefined, 0.25)]);
      const p2 = g.node("PRelu", [g.node("Neg", [a]), g.param([1], 0.3, undefined, 0.25)]);
      return [g.node("Add", [p1, p2]), 18];
    },
  },
  {
    name: "ReduceMax and ReduceMin with axes attributes (keepdims 0 and 1, all axes)",
    precision: "float64",
    inputShape: [2, 3, 4],
    build: (g) => {
      const a = g.node("Add", [g.node("Mul", ["x", g.param([2, 3, 4])]), g.param([4])]);
      const mx = g.node("ReduceMax", [a], { axes: [-1], keepdims: 0 });
      const mn = g.node("ReduceMin", [a], { axes: [1, 2], keepdims: 1 });
      const all = g.node("ReduceMax", [g.node("Mul", [a, a])], { keepdims: 1 });
      return [g.node("Add", [g.node("Unsqueeze", [mx, g.i64([3])]), g.node("Add", [mn, all])]), 24];
    },
  },
  {
    name: "ReduceMax and ReduceMin with axes as input (opset 18), and noop_with_empty_axes",
    precision: "float64",
    inputShape: [2, 3, 4],
    opset: 18,
    build: (g) => {
      const a = g.node("Add", [g.node("Mul", ["x", g.param([2, 3, 4])]), g.param([4])]);
      const mx = g.node("ReduceMax", [a, g.i64([1, 3])], { keepdims: 0 });
      const mn = g.node("ReduceMin", [a, g.i64([-1])], { keepdims: 1 });
      const id = g.node("ReduceMax", [g.node("Mul", [a, g.param([1])])], { noop_with_empty_axes: 1 });
      return [g.node("Add", [g.node("Mul", [id, mn]), g.node("Unsqueeze", [mx, g.i64([1, 3])])]), 24];
    },
  },
  {
    name: "Erf (exact GELU), Softplus, Elu, Selu",
    precision: "float32",
    inputShape: [6],
    build: (g) => {
      const a = g.node("Add", [g.node("Mul", ["x", g.param([6])]), g.param([6])]);
      const erf = g.node("Erf", [g.node("Mul", [a, g.constant([], [Math.SQRT1_2])])]);
      const gelu = g.node("Mul", [a, g.node("Add", [erf, g.constant([], [1])])]);
      const sp = g.node("Softplus", [g.node("Mul", [a, g.param([6])])]);
      const elu = g.node("Elu", [a], { alpha: { f: 0.7 } });
      const selu = g.node("Selu", [g.node("Neg", [a])]);
      return [g.node("Concat", [gelu, sp, elu, selu], { axis: 1 }), 24];
    },
  },
  {
    name: "HardSigmoid (alpha 1/6), HardSwish, GlobalMaxPool",
    precision: "float32",
    inputShape: [2, 3, 3],
    step: 1e-3,
    build: (g) => {
      const a = g.node("Add", [g.node("Mul", ["x", g.param([2, 3, 3], 2)]), g.param([3], 2)]);
      const hs = g.node("HardSigmoid", [a], { alpha: { f: 1 / 6 } });
      const hw = g.node("HardSwish", [g.node("Mul", [a, g.param([3], 1, undefined, 1)])]);
      const gm = g.node("GlobalMaxPool", [g.node("Mul", [a, g.param([2, 3, 3])])]);
      return [g.node("Add", [g.node("Add", [hs, hw]), gm]), 18];
    },
  },
];

/** Hessian-vector products: tangents of the gradient graph against differences of gradients. */
const HVP: Case[] = [
  {
    name: "exact GELU (Erf) MLP",
    precision: "float32",
    inputShape: [5],
    build: (g) => {
      const h = g.node("Gemm", ["x", g.param([6, 5]), g.param([6])], { transB: 1 });
      const erf = g.node("Erf", [g.node("Mul", [h, g.constant([], [Math.SQRT1_2])])]);
      const gelu = g.node("Mul", [
        g.node("Mul", [h, g.constant([], [0.5])]),
        g.node("Add", [erf, g.constant([], [1])]),
      ]);
      return [g.node("Gemm", [gelu, g.param([4, 6]), g.param([4])], { transB: 1 }), 4];
    },
  },
  {
    name: "Softplus, Elu, Selu, HardSwish (second derivative 1/3 inside [-3, 3])",
    precision: "float32",
    inputShape: [5],
    build: (g) => {
      const h = g.node("Gemm", ["x", g.param([6, 5]), g.param([6])], { transB: 1 });
      const sp = g.node("Softplus", [h]);
      const elu = g.node("Elu", [g.node("Mul", [h, g.param([6])])]);
      const selu = g.node("Selu", [g.node("Mul", [sp, g.param([6])])]);
      const hw = g.node("HardSwish", [g.node("Mul", [h, g.param([6], 1, undefined, 1)])]);
      return [g.node("Concat", [elu, selu, hw], { axis: 1 }), 18];
    },
  },
  {
    name: "Pow with trainable base and exponent, Reciprocal, Abs",
    precision: "float64",
    inputShape: [4],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([4])]);
      const p1 = g.node("Pow", [g.node("Sigmoid", [a]), g.param([4], 0.5, undefined, 1.5)]);
      const p2 = g.node("Pow", [g.node("Add", [a, g.param([1])]), g.constant([], [3])]);
      const r = g.node("Reciprocal", [g.node("Add", [g.node("Abs", [a]), g.constant([], [0.5])])]);
      return [g.node("Concat", [p1, g.node("Mul", [p2, r])], { axis: 1 }), 8];
    },
  },
  {
    name: "PRelu, Clip (ReLU6, trainable max), Max, Min, ReduceMax, ReduceMin",
    precision: "float64",
    inputShape: [2, 3],
    build: (g) => {
      const a = g.node("Add", [g.node("Mul", ["x", g.param([2, 3])]), g.param([3])]);
      const p = g.node("PRelu", [a, g.param([2, 1], 0.2, undefined, 0.25)]);
      const c = g.node("Clip", [
        g.node("Mul", [p, g.param([2, 3])]),
        g.constant([], [0]),
        g.param([], 0, [0.4]),
      ]);
      const m = g.node("Max", [g.node("Mul", [p, p]), g.node("Mul", [a, g.param([3])])]);
      const n = g.node("Min", [m, g.node("Mul", [c, a])]);
      const rmax = g.node("ReduceMax", [g.node("Mul", [n, a])], { axes: [2], keepdims: 1 });
      const rmin = g.node("ReduceMin", [g.node("Mul", [n, p])], { axes: [1], keepdims: 1 });
      return [g.node("Sum", [g.node("Mul", [n, a]), rmax, rmin]), 6];
    },
  },
  {
    name: "GlobalMaxPool and HardSigmoid after Conv",
    precision: "float32",
    inputShape: [2, 4, 4],
    build: (g) => {
      const c = g.node("Conv", ["x", g.param([3, 2, 3, 3], 0.4)], {
        kernel_shape: [3, 3],
        pads: [1, 1, 1, 1],
      });
      const h = g.node("HardSigmoid", [g.node("Mul", [c, c])], { alpha: { f: 1 / 6 } });
      const m = g.node("GlobalMaxPool", [g.node("Mul", [h, c])]);
      return [g.node("Add", [m, g.node("GlobalMaxPool", [c])]), 3];
    },
  },
];

describe("activation forward-mode rules against central finite differences", () => {
  it("every op with an activation reverse rule has a forward rule", () => {
    for (const op of Object.keys(ACTIVATIONS_RULES)) expect(JVP_OPS).toContain(op);
  });

  it.each(FORWARD.map((c) => [c.name, c] as const))("%s", async (_, c) => {
    const g = new TinyGraph(c.precision, c.inputShape, 7, c.opset);
    const [value, features] = c.build(g);
    const proto = g.build(value, features);
    const r = await checkTangents(proto, g, [logitsOf(proto)], c.step ? { step: c.step } : {});
    expect(r.checked).toBeGreaterThan(0);
    expect(r.excess, r.at).toBe(0);
  });
});

describe("Hessian-vector products through activations against differences of gradients", () => {
  it.each(HVP.map((c) => [c.name, c] as const))("%s", async (_, c) => {
    const g = new TinyGraph(c.precision, c.inputShape, 7, c.opset);
    const [value, features] = c.build(g);
    const proto = g.build(value, features);
    const r = await checkHvp(proto, g);
    expect(r.checked).toBeGreaterThan(0);
    expect(r.excess, r.at).toBe(0);
  });

  it("every op the activation reverse rules emit has a forward rule or carries no tangent", () => {
    for (const c of [...FORWARD, ...HVP]) {
      const g = new TinyGraph(c.precision, c.inputShape, 7, c.opset ?? 17);
      const [value, features] = c.build(g);
      if ((c.opset ?? 17) < 11) continue; // gradients need opset >= 11
      const grad = gradientGraph(g.build(value, features), { trainable: g.trainable });
      for (const n of grad.proto.graph.nodes) {
        const ok = JVP_OPS.includes(n.opType) || NON_DIFFERENTIABLE.has(n.opType);
        expect(ok, `${c.name}: ${n.opType}`).toBe(true);
      }
    }
  });
});

// ------------------------------------------------------------------ exact conventions

interface Operand {
  readonly values: number[];
  /** Tangent (absent: the operand is a constant input without one). */
  readonly tangent?: number[];
  /** Dims (default [values.length]). */
  readonly dims?: number[];
}

/**
 * The tangent of `op(operands...)` from the JVP graph of a one-node float64 graph (opset 17),
 * operands fed as graph inputs. An empty-string operand is an absent optional input.
 */
async function tangentOf(
  op: string,
  operands: (Operand | "")[],
  attrs: Attribute[] = [],
  type: number = DataType.DOUBLE,
): Promise<number[]> {
  const names = operands.map((o, i) => (o === "" ? "" : `in${i}`));
  const inputs = operands.flatMap((o, i) =>
    o === "" ? [] : [{ name: names[i]!, elemType: type, shape: o.dims ?? [o.values.length] }],
  );
  const proto: ModelProto = {
    irVersion: 8,
    opsets: [{ domain: "", version: 17 }],
    producer: "test",
    graph: {
      name: "one",
      nodes: [{ opType: op, inputs: names, outputs: ["y"], name: "n", domain: "", attributes: attrs }],
      initializers: [],
      inputs,
      outputs: [{ name: "y", elemType: type, shape: null }],
      valueInfo: [],
    },
  };
  const seeds = operands.flatMap((o, i) => (o !== "" && o.tangent ? [names[i]!] : []));
  const jvp = jvpGraph(proto, { seeds, outputs: ["y"] });
  const session = await ort.InferenceSession.create(
    encodeModel(jvp.proto).bytes,
    gradientSessionOptions(1, "inputs"),
  );
  try {
    const kind = type === DataType.DOUBLE ? "float64" : "float32";
    const typed = (v: number[]): Float32Array | Float64Array =>
      kind === "float64" ? Float64Array.from(v) : Float32Array.from(v);
    const feeds: Record<string, ort.Tensor> = {};
    operands.forEach((o, i) => {
      if (o === "") return;
      const dims = o.dims ?? [o.values.length];
      feeds[names[i]!] = new ort.Tensor(kind, typed(o.values), dims);
      if (o.tangent) feeds[`tangent:${names[i]}`] = new ort.Tensor(kind, typed(o.tangent), dims);
    });
    const out = await session.run(feeds);
    return Array.from(out["tangent:y"]!.data as Float64Array).map((v) => v + 0);
  } finally {
    await session.release();
  }
}

function expectClose(actual: number[], expected: number[], rtol: number): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((v, i) => {
    expect(Math.abs(v - expected[i]!), `[${i}]: ${v} vs ${expected[i]}`).toBeLessThanOrEqual(
      rtol * (Math.abs(expected[i]!) + 1e-30),
    );
  });
}

const f = (name: string, v: number): Attribute => ({ name, type: AttrType.FLOAT, f: v });
const ints = (name: string, v: number[]): Attribute => ({ name, type: AttrType.INTS, ints: v });
const int = (name: string, v: number): Attribute => ({ name, type: AttrType.INT, i: v });

describe("activation forward-mode conventions at bounds, kinks and ties (those of the reverse rules)", () => {
  it("Clip: x's tangent strictly inside, the bound's where x touches it, max's everywhere when min > max", async () => {
    const x = { values: [-1, 0, 3, 6, 7, 2], tangent: [1, 2, 3, 4, 5, 6] };
    expect(await tangentOf("Clip", [x, { values: [0], dims: [] }, { values: [6], dims: [] }])).toEqual([
      0, 0, 3, 0, 0, 6,
    ]);
    const lo = { values: [0], dims: [], tangent: [10] };
    const hi = { values: [6], dims: [], tangent: [100] };
    expect(await tangentOf("Clip", [x, lo, hi])).toEqual([10, 10, 3, 100, 100, 6]);
    expect(await tangentOf("Clip", [x, "", hi])).toEqual([1, 2, 3, 100, 100, 6]);
    const crossed = { values: [5], dims: [], tangent: [10] };
    const low = { values: [1], dims: [], tangent: [100] };
    expect(await tangentOf("Clip", [x, crossed, low])).toEqual([100, 100, 100, 100, 100, 100]);
  });

  it("Max and Min: the mean of the tied inputs' tangents", async () => {
    const a = { values: [1, 2, 3, 4], tangent: [1, 1, 1, 1] };
    const b = { values: [1, 5, 3, 0], tangent: [2, 2, 2, 2] };
    const c = { values: [1, 0, 3, 4], tangent: [6, 6, 6, 6] };
    expectClose(await tangentOf("Max", [a, b, c]), [3, 2, 3, 3.5], 1e-15);
    expect(await tangentOf("Min", [a, b])).toEqual([1.5, 1, 1.5, 2]);
    // A tie with a constant (ReLU as Max(x, 0)) halves the tangent.
    expect(
      await tangentOf("Max", [
        { values: [0, -1, 2], tangent: [4, 4, 4] },
        { values: [0], dims: [] },
      ]),
    ).toEqual([2, 0, 4]);
  });

  it("ReduceMax, ReduceMin, GlobalMaxPool: the mean of the tied extremes' tangents", async () => {
    const x = { values: [1, 5, 5, 2, 0, -1], tangent: [1, 2, 4, 8, 16, 32], dims: [2, 3] };
    expect(await tangentOf("ReduceMax", [x], [ints("axes", [1]), int("keepdims", 0)])).toEqual([3, 8]);
    const y = { values: [4, 4, 4, 3, 3, 7], tangent: [1, 2, 6, 8, 16, 32], dims: [2, 3] };
    expectClose(await tangentOf("ReduceMin", [y], [ints("axes", [1])]), [3, 12], 1e-15);
    const z = {
      values: [1, 3, 3, 0, 2, -1, 0, 1],
      tangent: [1, 2, 4, 8, 16, 32, 64, 128],
      dims: [1, 2, 2, 2],
    };
    expect(await tangentOf("GlobalMaxPool", [z], [], DataType.FLOAT)).toEqual([3, 16]);
  });

  it("PRelu takes the slope at 0, HardSwish x/3 + 1/2 on the closed [-3, 3], HardSigmoid 0 at its bounds", async () => {
    const t = [1, 1, 1, 1, 1];
    expect(
      await tangentOf("PRelu", [
        { values: [0, -2, 1, 0, 3], tangent: t },
        { values: [0.25], dims: [1] },
      ]),
    ).toEqual([0.25, 0.25, 1, 0.25, 1]);
    expectClose(
      await tangentOf("HardSwish", [{ values: [-3, 3, -4, 4, 0], tangent: t }], [], DataType.FLOAT),
      [-0.5, 1.5, 0, 1, 0.5],
      1e-6,
    );
    expect(
      await tangentOf(
        "HardSigmoid",
        [{ values: [-2, 2, 0, -3, 1], tangent: t }],
        [f("alpha", 0.25), f("beta", 0.5)],
        DataType.FLOAT,
      ),
    ).toEqual([0, 0, 0.25, 0, 0.25]);
  });
});
