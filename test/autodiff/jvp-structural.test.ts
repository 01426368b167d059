// Forward-mode rules of the structural ops against central finite differences
// (tangents of tiny seeded graphs), and Hessian-vector products through them
// (tangents of their gradient graphs, which exercise the rules of the ops the
// structural gradient rules emit) against differences of gradients.

import { describe, expect, it } from "vitest";
import { jvpGraph } from "../../src/autodiff/jvp.ts";
import { TinyGraph } from "./_harness.ts";
import { checkHvp, checkTangents, logitsOf } from "./_jvp-harness.ts";
import { CASES, type Case, CONV_TRANSPOSE_CASES, convTransposeCase, torchPads } from "./_structural-cases.ts";

/** Forward graphs beyond the shared cases: ops only gradient graphs contain, and optional outputs. */
const FORWARD: Case[] = [
  {
    name: "LayerNormalization with its Mean and InvStdDev outputs used",
    precision: "float32",
    inputShape: [3, 4],
    build: (g) => {
      const a = g.node("Add", [g.node("Mul", ["x", g.param([3, 1], 0.3, undefined, 1)]), g.param([4])]);
      const [y, mean, invstd] = g.nodeN(
        "LayerNormalization",
        [a, g.param([4], 0.3, undefined, 1), g.param([4])],
        3,
        {
          axis: -1,
        },
      );
      const stats = g.node("Mul", [mean!, invstd!]); // [N, 3, 1]
      return [g.node("Add", [y!, stats]), 12];
    },
  },
  {
    name: "ScatterND (reduction add, repeated indices; reduction none) with tangents of data and updates",
    precision: "float64",
    inputShape: [3, 2],
    build: (g) => {
      const data = g.node("Mul", [g.param([4, 2]), g.constant([], [1])]);
      const updates = g.node("Mul", ["x", g.param([3, 2])]); // [N, 3, 2]
      const idx = g.i64([1, 3, 1], [3, 1]);
      const rows = g.node("Transpose", [updates], { perm: [1, 0, 2] }); // [3, N, 2]
      const table = g.node("Expand", [g.node("Unsqueeze", [data, g.i64([1])]), g.i64([4, 4, 2])]); // [4, N=4, 2]
      const added = g.node("ScatterND", [table, idx, rows], { reduction: { s: "add" } });
      const replaced = g.node("ScatterND", [table, g.i64([0, 2, 3], [3, 1]), rows]);
      const both = g.node("Add", [added, replaced]);
      return [g.node("Transpose", [both], { perm: [1, 0, 2] }), 8];
    },
    batch: 4,
  },
];

async function expectTangents(c: Case): Promise<void> {
  const g = new TinyGraph(c.precision, c.inputShape, 7, c.opset);
  const [value, features] = c.build(g);
  const proto = g.build(value, features);
  const r = await checkTangents(proto, g, [logitsOf(proto)], { batch: c.batch ?? 4 });
  expect(r.checked).toBeGreaterThan(0);
  expect(r.excess, r.at).toBe(0);
}

async function expectHvp(c: Case): Promise<void> {
  const g = new TinyGraph(c.precision, c.inputShape, 7, c.opset);
  const [value, features] = c.build(g);
  const proto = g.build(value, features);
  const r = await checkHvp(proto, g, { batch: c.batch ?? 4 });
  expect(r.checked).toBeGreaterThan(0);
  expect(r.excess, r.at).toBe(0);
}

const CONV_TRANSPOSE = CONV_TRANSPOSE_CASES.map(([name, attrs, w, bias]) =>
  convTransposeCase(`ConvTranspose ${name}`, attrs, w, bias),
);

describe("structural forward-mode rules against central finite differences", () => {
  it.each([...CASES, ...FORWARD, ...CONV_TRANSPOSE].map((c) => [c.name, c] as const))("%s", async (_, c) =>
    expectTangents(c),
  );
});

describe("Hessian-vector products through structural ops against differences of gradients", () => {
  it.each([...CASES, ...CONV_TRANSPOSE].map((c) => [c.name, c] as const))("%s", async (_, c) => expectHvp(c));

  it("a ConvTranspose inside a nonlinear network (Tanh, LayerNormalization, reflect Pad)", async () =>
    expectHvp({
      name: "decoder",
      precision: "float32",
      inputShape: [2, 3, 3],
      build: (g) => {
        const c = g.node("ConvTranspose", ["x", g.param([2, 2, 3, 3], 0.4), g.param([2])], {
          kernel_shape: [3, 3],
          strides: [2, 2],
          pads: [1, 1, 1, 1],
          output_padding: [1, 1],
        }); // [N, 2, 6, 6]
        const t = g.node("Tanh", [c]);
        const p = g.node("Pad", [t, torchPads(g, [1, 1, 1, 1], 4)], { mode: { s: "reflect" } }); // [N, 2, 8, 8]
        const l = g.node("LayerNormalization", [p, g.param([8], 0.3, undefined, 1), g.param([8])], {
          axis: -1,
        });
        return [g.node("Tanh", [l]), 128];
      },
    }));
});

describe("structural forward-mode rules refuse what they cannot differentiate", () => {
  it("names a ScatterND with a reduction other than add", () => {
    const g = new TinyGraph("float64", [3], 1);
    const s = g.node("ScatterND", [g.param([3]), g.i64([1], [1, 1]), g.param([1])], {
      reduction: { s: "mul" },
    });
    const proto = g.build(g.node("Mul", ["x", s]), 3);
    expect(() => jvpGraph(proto, { seeds: g.trainable, outputs: [logitsOf(proto)] })).toThrow(
      /ScatterND node 'scatternd\d+': forward-mode rule for reduction 'mul' is not implemented/,
    );
  });
});
