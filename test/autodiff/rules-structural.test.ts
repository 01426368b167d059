// Gradient rules of the structural ops (ConvTranspose, LayerNormalization,
// InstanceNormalization, Gather, strided Slice, reflect/edge/run-time Pad)
// against central finite differences of the loss, on tiny seeded graphs:
// float64 where ORT runs the op in double, float32 otherwise (see checkGradients).

import { describe, expect, it } from "vitest";
import { gradientGraph } from "../../src/autodiff/gradient.ts";
import { DataType } from "../../src/onnx/proto.ts";
import { checkGradients, openRunner, TinyGraph } from "./_harness.ts";
import { CASES, type Case, CONV_TRANSPOSE_CASES, convTransposeCase, torchPads } from "./_structural-cases.ts";

async function expectFiniteDifferences(c: Case): Promise<void> {
  const g = new TinyGraph(c.precision, c.inputShape, 7, c.opset);
  const [value, features] = c.build(g);
  const proto = g.build(value, features);
  if (c.emits) {
    const ops = gradientGraph(proto, { trainable: g.trainable }).proto.graph.nodes.map((n) => n.opType);
    for (const op of c.emits) expect(ops).toContain(op);
  }
  const runner = await openRunner(proto, g, { batch: c.batch ?? 4 });
  try {
    const result = await checkGradients(runner);
    expect(result.checked).toBeGreaterThan(0);
    expect(result.excess, result.at).toBe(0);
  } finally {
    await runner.release();
  }
}

describe("structural gradient rules against central finite differences", () => {
  it.each(CASES.map((c) => [c.name, c] as const))("%s", async (_, c) => expectFiniteDifferences(c));

  it.each(CONV_TRANSPOSE_CASES)("ConvTranspose %s", async (name, attrs, wDims, bias) =>
    expectFiniteDifferences(convTransposeCase(name, attrs, wDims, bias)),
  );
});

describe("structural gradient rules refuse what they cannot differentiate", () => {
  it("names a Dropout in training mode", () => {
    const g = new TinyGraph("float64", [3], 1);
    g.initializers.push({ name: "on", dims: [], dataType: DataType.BOOL, raw: new Uint8Array([1]) });
    const a = g.node("Mul", ["x", g.param([3])]);
    const proto = g.build(g.node("Dropout", [a, g.constant([], [0.5]), "on"]), 3);
    expect(() => gradientGraph(proto, { trainable: g.trainable })).toThrow(
      /Dropout node 'dropout\d+': training_mode 'on' is true; .*eval mode/,
    );
  });

  it("names a Pad with run-time pads at opset 11-12 (13-15 are raised to 16) and a Pad mode without a rule", () => {
    const g = new TinyGraph("float64", [2, 3], 1, 12);
    const a = g.node("Mul", ["x", g.param([2, 3])]);
    const p = g.node("Pad", [a, torchPads(g, [1, 1], 3)], { mode: { s: "reflect" } });
    const proto = g.build(p, 10);
    expect(() => gradientGraph(proto, { trainable: g.trainable })).toThrow(
      /Pad node 'pad\d+': pads computed at run time need ScatterElements .*opset >= 16, this graph has 12/,
    );
    const h = new TinyGraph("float64", [2, 3], 1);
    const b = h.node("Mul", ["x", h.param([2, 3])]);
    const w = h.node("Pad", [b, h.i64([0, 0, 1, 0, 0, 1])], { mode: { s: "wrap" } });
    expect(() => gradientGraph(h.build(w, 10), { trainable: h.trainable })).toThrow(
      /Pad mode 'wrap' is not implemented \(constant, reflect, edge\)/,
    );
  });

  it("names a ConvTranspose with an output_shape attribute", () => {
    const g = new TinyGraph("float32", [2, 3, 3], 1);
    const a = g.node("Mul", ["x", g.param([2, 1, 1])]);
    const y = g.node("ConvTranspose", [a, g.param([2, 1, 2, 2])], { output_shape: [4, 4] });
    expect(() => gradientGraph(g.build(y, 16), { trainable: g.trainable })).toThrow(
      /ConvTranspose node 'convtranspose\d+': gradient with an output_shape attribute is not implemented/,
    );
  });
});
