// The reverse-mode rules of activations and elementwise ops (_rules-activations.ts) against
// central finite differences of the loss, away from kinks and ties (float64 where ORT runs the op
// in double, float32 otherwise), and their exact conventions at kinks, bounds and ties.

import { describe, expect, it } from "vitest";
import { ACTIVATIONS_RULES } from "../../src/autodiff/_rules-activations.ts";
import { checkGradients, openRunner, type Precision, TinyGraph } from "./_harness.ts";

interface Case {
  /** What the graph exercises. */
  name: string;
  precision: Precision;
  inputShape: number[];
  /** Adds the ops; returns the value fed to the head and its features per sample. */
  build: (g: TinyGraph) => [string, number];
  opset?: number;
}

const CASES: Case[] = [
  {
    name: "Clip with both bounds, min only, max only and none (inputs, opset 17)",
    precision: "float64",
    inputShape: [6],
    build: (g) => {
      const a = g.node("Add", [g.node("Mul", ["x", g.param([6])]), g.param([6], 0.3)]);
      const both = g.node("Clip", [a, g.constant([], [-0.3]), g.constant([], [0.4])]);
      const min = g.node("Clip", [a, g.constant([], [0.1])]);
      const max = g.node("Clip", [a, "", g.constant([], [0.2])]);
      const none = g.node("Clip", [a]);
      return [g.node("Concat", [both, min, max, none], { axis: 1 }), 24];
    },
  },
  {
    name: "Clip with trainable scalar bounds",
    precision: "float64",
    inputShape: [6],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([6], 0.6)]);
      return [g.node("Clip", [a, g.param([], 0, [-0.25]), g.param([], 0, [0.35])]), 6];
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
    name: "Pow: trainable base and exponent (broadcast), constant exponents 2 and 0.5, int64 exponent 3",
    precision: "float64",
    inputShape: [4],
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([4])]);
      const positive = g.node("Sigmoid", [a]);
      const p1 = g.node("Pow", [positive, g.param([4], 0.5, undefined, 1.5)]);
      const p2 = g.node("Pow", [g.node("Add", [a, g.param([1])]), g.constant([], [2])]);
      const p3 = g.node("Pow", [positive, g.constant([1], [0.5])]);
      const p4 = g.node("Pow", [a, g.i64([3], [])]);
      const p5 = g.node("Pow", [g.constant([], [1.7]), g.node("Mul", [a, g.param([1])])]);
      return [g.node("Sum", [p1, p2, p3, p4, p5]), 4];
    },
  },
  {
    name: "Abs, Reciprocal",
    precision: "float64",
    inputShape: [4],
    build: (g) => {
      const a = g.node("Add", [g.node("Mul", ["x", g.param([4])]), g.param([4])]);
      const r = g.node("Reciprocal", [g.node("Add", [g.node("Abs", [a]), g.constant([], [0.5])])]);
      return [g.node("Mul", [r, g.param([4])]), 4];
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
      const s = g.node("Add", [g.node("Unsqueeze", [mx, g.i64([3])]), g.node("Add", [mn, all])]);
      return [s, 24];
    },
  },
  {
    name: "ReduceMax and ReduceMin with axes as input (opset 18), and no axes with noop_with_empty_axes",
    precision: "float64",
    inputShape: [2, 3, 4],
    opset: 18,
    build: (g) => {
      const a = g.node("Add", [g.node("Mul", ["x", g.param([2, 3, 4])]), g.param([4])]);
      const mx = g.node("ReduceMax", [a, g.i64([1, 3])], { keepdims: 0 });
      const mn = g.node("ReduceMin", [a, g.i64([-1])], { keepdims: 1 });
      const id = g.node("ReduceMax", [g.node("Mul", [a, g.param([1])])], { noop_with_empty_axes: 1 });
      const r = g.node("Add", [g.node("Mul", [id, mn]), g.node("Unsqueeze", [mx, g.i64([1, 3])])]);
      return [r, 24];
    },
  },
  {
    name: "opset 11: Clip with inputs (float32: ORT's Clip-11 has no double kernel), Max, ReduceMax",
    precision: "float32",
    inputShape: [2, 3],
    opset: 11,
    build: (g) => {
      const a = g.node("Mul", ["x", g.param([2, 3])]);
      const c = g.node("Clip", [a, g.constant([], [-0.45]), g.param([], 0, [0.55])]);
      const m = g.node("Max", [c, g.node("Mul", [a, g.param([3])])]);
      return [g.node("Add", [m, g.node("ReduceMax", [a], { axes: [2], keepdims: 1 })]), 6];
    },
  },
  {
    name: "Erf (exact GELU), Softplus",
    precision: "float32",
    inputShape: [6],
    build: (g) => {
      const a = g.node("Add", [g.node("Mul", ["x", g.param([6])]), g.param([6])]);
      const erf = g.node("Erf", [g.node("Mul", [a, g.constant([], [Math.SQRT1_2])])]);
      const gelu = g.node("Mul", [
        g.node("Mul", [a, g.constant([], [0.5])]),
        g.node("Add", [erf, g.constant([], [1])]),
      ]);
      const sp = g.node("Softplus", [g.node("Mul", [a, g.param([6])])]);
      return [g.node("Concat", [gelu, sp], { axis: 1 }), 12];
    },
  },
  {
    name: "Elu, Selu (default and given constants)",
    precision: "float32",
    inputShape: [6],
    build: (g) => {
      const a = g.node("Add", [g.node("Mul", ["x", g.param([6])]), g.param([6])]);
      const elu = g.node("Elu", [a], { alpha: { f: 0.7 } });
      const selu = g.node("Selu", [g.node("Mul", [a, g.param([6])])]);
      const selu2 = g.node("Selu", [g.node("Neg", [a])], { alpha: { f: 1.5 }, gamma: { f: 1.2 } });
      return [g.node("Concat", [elu, selu, selu2], { axis: 1 }), 18];
    },
  },
  {
    name: "HardSigmoid (alpha 1/6 as torch exports it), HardSwish",
    precision: "float32",
    inputShape: [6],
    build: (g) => {
      const a = g.node("Add", [g.node("Mul", ["x", g.param([6], 2)]), g.param([6], 2)]);
      const hs = g.node("HardSigmoid", [a], { alpha: { f: 1 / 6 } });
      const hw = g.node("HardSwish", [g.node("Mul", [a, g.param([6], 1, undefined, 1)])]);
      return [g.node("Concat", [hs, hw], { axis: 1 }), 12];
    },
  },
  {
    name: "GlobalMaxPool",
    precision: "float32",
    inputShape: [2, 3, 3],
    build: (g) => [g.node("GlobalMaxPool", [g.node("Mul", ["x", g.param([2, 3, 3])])]), 2],
  },
];

async function expectFiniteDifferences(c: Case): Promise<void> {
  const g = new TinyGraph(c.precision, c.inputShape, 7, c.opset);
  const [value, features] = c.build(g);
  const runner = await openRunner(g.build(value, features), g);
  try {
    const result = await checkGradients(runner);
    expect(result.checked).toBeGreaterThan(0);
    expect(result.excess, result.at).toBe(0);
  } finally {
    await runner.release();
  }
}

/**
 * Gradients of a graph y = x + q + f(params), where q (param p0, shaped like a sample) receives
 * dL/dy summed over the batch: the closed form every exact check compares with.
 */
async function gradientsOf(
  precision: Precision,
  inputShape: number[],
  f: (g: TinyGraph) => string,
): Promise<{ dy: number[]; grads: number[][] }> {
  const g = new TinyGraph(precision, inputShape, 3);
  const q = g.param(inputShape);
  const y = g.node("Add", [g.node("Add", ["x", q]), f(g)]);
  const runner = await openRunner(
    g.build(
      y,
      inputShape.reduce((p, v) => p * v, 1),
    ),
    g,
  );
  try {
    const { outputs } = await runner.run();
    // + 0 turns -0 (a zero weight times a negative dy) into 0 for exact comparisons.
    const grads = g.trainable.map((p) => outputs[`grad:${p}`]!.map((v) => v + 0));
    return { dy: grads[0]!, grads: grads.slice(1) };
  } finally {
    await runner.release();
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

const sum = (v: number[]): number => v.reduce((p, q) => p + q, 0);

describe("activation gradient rules against central finite differences", () => {
  it("cover the ops listed", () => {
    expect(Object.keys(ACTIVATIONS_RULES).sort()).toEqual(
      [
        "Abs",
        "Clip",
        "Elu",
        "Erf",
        "GlobalMaxPool",
        "HardSigmoid",
        "HardSwish",
        "Max",
        "Min",
        "PRelu",
        "Pow",
        "ReduceMax",
        "ReduceMin",
        "Reciprocal",
        "Selu",
        "Softplus",
      ].sort(),
    );
  });

  it.each(CASES.map((c) => [c.name, c] as const))("%s", async (_, c) => expectFiniteDifferences(c));
});

describe("activation gradient conventions at bounds, kinks and ties", () => {
  it("Clip passes the gradient to x strictly inside the bounds and to the bound it touches", async () => {
    const x = [-1, 0, 3, 6, 7, 2];
    const { dy, grads } = await gradientsOf("float64", [6], (g) =>
      g.node("Clip", [g.param([6], 0, x), g.param([], 0, [0]), g.param([], 0, [6])]),
    );
    const [gx, glo, ghi] = grads as [number[], number[], number[]];
    expect(gx).toEqual(dy.map((d, i) => (x[i]! > 0 && x[i]! < 6 ? d : 0)));
    expectClose(glo, [dy[0]! + dy[1]!], 1e-12);
    expectClose(ghi, [dy[3]! + dy[4]!], 1e-12);
    // Nothing is lost: the three gradients sum to dL/dy.
    expectClose([sum(gx) + glo[0]! + ghi[0]!], [sum(dy)], 1e-12);
  });

  it("Clip with min > max gives the whole gradient to max (ORT outputs max everywhere)", async () => {
    const { dy, grads } = await gradientsOf("float64", [4], (g) =>
      g.node("Clip", [g.param([4], 0, [-2, 1, 3, 8]), g.param([], 0, [5]), g.param([], 0, [1])]),
    );
    expect(grads[0]).toEqual([0, 0, 0, 0]);
    expect(grads[1]).toEqual([0]);
    expectClose(grads[2]!, [sum(dy)], 1e-12);
  });

  it("Max and Min split the gradient evenly among tied inputs; Max(x, x) gives x all of it", async () => {
    const a = [1, 2, 3, 4];
    const b = [1, 5, 3, 0];
    const c = [1, 0, 3, 4];
    const { dy, grads } = await gradientsOf("float64", [4], (g) => {
      const m = g.node("Max", [g.param([4], 0, a), g.param([4], 0, b), g.param([4], 0, c)]);
      const n = g.node("Min", [g.param([4], 0, a), g.param([4], 0, b)]);
      const p = g.param([4], 0, [0.5, -1, 2, 0]);
      return g.node("Sum", [m, n, g.node("Max", [p, p])]);
    });
    const [ga, gb, gc, ma, mb, gp] = grads as number[][];
    expectClose(ga!, [dy[0]! / 3, 0, dy[2]! / 3, dy[3]! / 2], 1e-15);
    expectClose(gb!, [dy[0]! / 3, dy[1]!, dy[2]! / 3, 0], 1e-15);
    expectClose(gc!, [dy[0]! / 3, 0, dy[2]! / 3, dy[3]! / 2], 1e-15);
    expect(ma).toEqual([dy[0]! / 2, dy[1]!, dy[2]! / 2, 0]);
    expect(mb).toEqual([dy[0]! / 2, 0, dy[2]! / 2, dy[3]!]);
    expect(gp).toEqual(dy);
  });

  it("ReduceMax, ReduceMin split a slice's gradient evenly among its tied extremes", async () => {
    const v = [1, 5, 5, 2, 0, -1];
    const { dy, grads } = await gradientsOf("float64", [2], (g) =>
      g.node("Add", [
        g.node("ReduceMax", [g.param([2, 3], 0, v)], { axes: [1], keepdims: 0 }),
        g.node("ReduceMin", [g.param([2, 3], 0, [4, 4, 4, 3, 3, 7])], { axes: [1], keepdims: 0 }),
      ]),
    );
    expect(grads[0]).toEqual([0, dy[0]! / 2, dy[0]! / 2, dy[1]!, 0, 0]);
    expectClose(grads[1]!, [dy[0]! / 3, dy[0]! / 3, dy[0]! / 3, dy[1]! / 2, dy[1]! / 2, 0], 1e-15);
  });

  it("GlobalMaxPool splits each channel's gradient evenly among its tied maxima", async () => {
    const { dy, grads } = await gradientsOf("float32", [2, 1, 1], (g) =>
      g.node("GlobalMaxPool", [g.param([1, 2, 2, 2], 0, [1, 3, 3, 0, 2, -1, 0, 1])]),
    );
    expect(grads[0]).toEqual([0, dy[0]! / 2, dy[0]! / 2, 0, dy[1]!, 0, 0, 0]);
  });

  it("HardSwish takes x/3 + 1/2 on the closed [-3, 3]; HardSigmoid its slope strictly inside", async () => {
    const { dy, grads } = await gradientsOf("float32", [5], (g) =>
      g.node("Add", [
        g.node("HardSwish", [g.param([5], 0, [-3, 3, -4, 4, 0])]),
        g.node("HardSigmoid", [g.param([5], 0, [-2, 2, 0, -3, 1])], { alpha: { f: 0.25 }, beta: { f: 0.5 } }),
      ]),
    );
    expectClose(grads[0]!, [-0.5 * dy[0]!, 1.5 * dy[1]!, 0, dy[3]!, 0.5 * dy[4]!], 1e-6);
    expect(grads[1]).toEqual([0, 0, 0.25 * dy[2]!, 0, 0.25 * dy[4]!]);
  });

  it("at 0: Abs gives 0, PRelu the slope, Elu alpha; Pow's exponent gets 0 where the base is <= 0", async () => {
    const { dy, grads } = await gradientsOf("float64", [3], (g) =>
      g.node("Sum", [
        g.node("Abs", [g.param([3], 0, [0, -2, 1])]),
        g.node("PRelu", [g.param([3], 0, [0, -1, 1]), g.constant([1], [0.25])]),
        g.node("Pow", [g.constant([3], [0, -2, 4]), g.param([3], 0, [2, 2, 0.5])]),
      ]),
    );
    expect(grads[0]).toEqual([0, -dy[1]!, dy[2]!]);
    expect(grads[1]).toEqual([0.25 * dy[0]!, 0.25 * dy[1]!, dy[2]!]);
    expectClose(grads[2]!, [0, 0, 2 * Math.log(4) * dy[2]!], 1e-12);
    const elu = await gradientsOf("float32", [2], (g) =>
      g.node("Elu", [g.param([2], 0, [0, 1])], { alpha: { f: 0.5 } }),
    );
    expect(elu.grads[0]).toEqual([0.5 * elu.dy[0]!, elu.dy[1]!]);
  });
});
