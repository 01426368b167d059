// Blocked (NCHWc) convolutions in gradient graphs: the block size ORT reports,
// which convolutions are rewritten, and that the rewritten graphs compute the
// same loss, gradients and batch statistics as plain Conv nodes, for batches
// that allow the blocked weight gradient and for batches that do not.

import { describe, expect, it } from "vitest";
import { NCHWC_DOMAIN } from "../../src/autodiff/_emit.ts";
import { gradientGraph } from "../../src/autodiff/gradient.ts";
import { createHvpSession } from "../../src/autodiff/hvp.ts";
import { nchwcBlockSize } from "../../src/autodiff/nchwc.ts";
import { createGradientSession, type GradientStep } from "../../src/autodiff/session.ts";
import { Random } from "../../src/core/random.ts";
import { zooModel } from "../../src/zoo/zoo.ts";
import { relativeError } from "../helpers.ts";

const block = await nchwcBlockSize();

function expectSameStep(blocked: GradientStep, plain: GradientStep): void {
  expect(Math.abs(blocked.loss - plain.loss)).toBeLessThan(1e-5 * Math.abs(plain.loss));
  expect(relativeError(blocked.logits, plain.logits)).toBeLessThan(1e-5);
  expect(relativeError(blocked.gradient, plain.gradient)).toBeLessThan(1e-4);
  expect([...blocked.statistics.keys()]).toEqual([...plain.statistics.keys()]);
  for (const [name, v] of plain.statistics) {
    expect(relativeError(blocked.statistics.get(name)!, v), name).toBeLessThan(1e-5);
  }
}

describe("blocked convolutions", () => {
  it("ORT reports a block size of 8 or 16 on x86-64 (AVX2 / AVX-512)", () => {
    if (process.arch === "x64") expect([8, 16]).toContain(block);
    else expect(block === undefined || block % 4 === 0).toBe(true);
  });

  describe.skipIf(block === undefined)("with this machine's block size", () => {
    const B = block!;
    const model = zooModel("resnet20", { inputShape: [3, 32, 32], seed: 4 });

    it("rewrites forward and input-gradient convolutions, and with a static batch the weight gradients of maps up to 16x16", () => {
      const count = (g: ReturnType<typeof gradientGraph>) =>
        g.proto.graph.nodes.filter((n) => n.domain === NCHWC_DOMAIN && n.opType === "Conv").length;
      const dynamic = gradientGraph(model, { batchNorm: "training", convBlock: B });
      const fixed = gradientGraph(model, { batchNorm: "training", convBlock: B, batch: 2 * B });
      const plain = gradientGraph(model, { batchNorm: "training" });
      expect(count(plain)).toBe(0);
      // ResNet-20 has 19 3x3 convolutions and 2 1x1 projection shortcuts: 20 forward ones have a
      // multiple of B input channels (not the first); 20 need an input gradient, of which the 4
      // with stride 2 stay ConvTranspose.
      expect(count(dynamic)).toBe(20 + 16);
      // Stages 2 and 3 (16x16 and 8x8 maps): 12 3x3 convolutions and the 2 shortcuts.
      expect(count(fixed)).toBe(20 + 16 + 14);
      expect(fixed.proto.opsets).toContainEqual({ domain: NCHWC_DOMAIN, version: 1 });
      expect(fixed.proto.graph.inputs[0]!.shape).toEqual([2 * B, 3, 32, 32]);
    });

    it("Hessian-vector products through blocked convolutions equal the plain graph's", async () => {
      const rng = new Random(12);
      const count = 5;
      const inputs = Float32Array.from({ length: count * 3 * 32 * 32 }, () => rng.normal());
      const labels = Int32Array.from({ length: count }, () => rng.int(10));
      const v = Float32Array.from({ length: model.size }, () => rng.normal());
      const blocked = await createHvpSession(model, { threads: 2 });
      const plain = await createHvpSession(model, { threads: 2, blocked: false });
      try {
        const nodes = (s: typeof blocked) => s.graph.jvp.proto.graph.nodes;
        // Forward, input-gradient and their tangent convolutions are blocked.
        expect(
          nodes(blocked).filter((n) => n.domain === NCHWC_DOMAIN && n.opType === "Conv").length,
        ).toBeGreaterThan(3 * 20);
        expect(nodes(plain).some((n) => n.domain === NCHWC_DOMAIN)).toBe(false);
        const a = await blocked.run(model.initial, v, inputs, labels);
        const b = await plain.run(model.initial, v, inputs, labels);
        expect(Math.abs(a.loss - b.loss)).toBeLessThan(1e-5 * b.loss);
        expect(relativeError(a.gradient, b.gradient)).toBeLessThan(1e-4);
        expect(relativeError(a.hvp, b.hvp)).toBeLessThan(1e-4);
      } finally {
        await blocked.dispose();
        await plain.dispose();
      }
    }, 120_000);

    it.each([
      ["a multiple of the block (static-batch graph)", 2 * B],
      ["not a multiple of the block (symbolic-batch graph)", B + 3],
    ])(
      "batch %s: loss, logits, gradients and batch statistics equal plain Conv's",
      async (_, count) => {
        const rng = new Random(11);
        const inputs = Float32Array.from({ length: count * 3 * 32 * 32 }, () => rng.normal());
        const labels = Int32Array.from({ length: count }, () => rng.int(10));
        const params = model.initial.map((v) => v * (1 + 0.1 * rng.normal()));
        const blocked = await createGradientSession(model, { batchNorm: "training", threads: 2 });
        const plain = await createGradientSession(model, {
          batchNorm: "training",
          threads: 2,
          blocked: false,
        });
        try {
          expect(plain.graph.proto.graph.nodes.some((n) => n.domain === NCHWC_DOMAIN)).toBe(false);
          expectSameStep(
            await blocked.step(params, inputs, labels),
            await plain.step(params, inputs, labels),
          );
          // The session keeps serving other batch sizes after switching graphs.
          const few = 3;
          expectSameStep(
            await blocked.step(params, inputs.subarray(0, few * 3072), labels.subarray(0, few)),
            await plain.step(params, inputs.subarray(0, few * 3072), labels.subarray(0, few)),
          );
        } finally {
          await blocked.dispose();
          await plain.dispose();
        }
      },
      120_000,
    );
  });
});
