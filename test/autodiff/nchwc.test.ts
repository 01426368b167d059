// Blocked (NCHWc) convolutions in gradient graphs: the block size ORT reports,
// which convolutions are rewritten, and that the rewritten graphs compute the
// loss, gradients, batch statistics and Hessian-vector products of PyTorch's
// float64 reference on this machine's block size (8 with AVX2, 16 with
// AVX-512), at 1 and 2 threads. The checks use ResNet-20 with Softplus for
// ReLU (fixtures/make-gradient-fixtures.ts, SMOOTH_FIXTURES): without kinks a
// float32 result matches float64 to rounding whatever order the kernels sum
// in, so the tolerance can be 5e-5 on every CPU. On a ReLU network with 32x32
// maps some units sit within rounding of 0 and switch differently in every
// float32 computation (plain or blocked graphs, PyTorch float32), which moves
// the gradients of earlier layers by up to 1e-2: no fixed tolerance tells a
// wrong rule from that there.

import { describe, expect, it } from "vitest";
import { MODES, SMOOTH_FIXTURES } from "../../fixtures/make-gradient-fixtures.ts";
import { NCHWC_DOMAIN } from "../../src/autodiff/_emit.ts";
import { gradientGraph } from "../../src/autodiff/gradient.ts";
import { createHvpSession } from "../../src/autodiff/hvp.ts";
import { nchwcBlockSize } from "../../src/autodiff/nchwc.ts";
import { createGradientSession, type GradientStep } from "../../src/autodiff/session.ts";
import { Random } from "../../src/core/random.ts";
import { zooModel } from "../../src/zoo/zoo.ts";
import { relativeError } from "../helpers.ts";
import { expectReferenceStep, gradientFixture } from "./_gradient-reference.ts";

const block = await nchwcBlockSize();

/**
 * Tolerance against float64 on the smooth network: float32 weight gradients sum 8,192 products
 * per entry at batch 32 (observed entry errors up to 1.4e-5 of the tensor rms, whole tensors
 * 1e-6..6e-6, PyTorch float32 up to 1.4e-5); a wrong rule errs by far more.
 */
const RTOL = 5e-5;

function expectSameStep(blocked: GradientStep, plain: GradientStep): void {
  expect(Math.abs(blocked.loss - plain.loss)).toBeLessThan(1e-6 * Math.abs(plain.loss));
  expect(relativeError(blocked.logits, plain.logits)).toBeLessThan(1e-5);
  expect(relativeError(blocked.gradient, plain.gradient)).toBeLessThan(RTOL);
  expect([...blocked.statistics.keys()]).toEqual([...plain.statistics.keys()]);
  for (const [name, v] of plain.statistics) {
    expect(relativeError(blocked.statistics.get(name)!, v), name).toBeLessThan(RTOL);
  }
}

const blockedConvs = (nodes: readonly { domain: string; opType: string }[]): number =>
  nodes.filter((n) => n.domain === NCHWC_DOMAIN && n.opType === "Conv").length;

describe("blocked convolutions", () => {
  it("ORT reports a block size of 8 or 16 on x86-64 (AVX2 / AVX-512)", () => {
    if (process.arch === "x64") expect([8, 16]).toContain(block);
    else expect(block === undefined || block % 4 === 0).toBe(true);
    // scripts/test-other-cpu.mjs reruns this file under QEMU as an AVX2 machine and says so.
    const expected = process.env["LOSSCAPE_EXPECT_BLOCK"];
    if (expected !== undefined) expect(block).toBe(Number(expected));
  });

  describe.skipIf(block === undefined)("with this machine's block size", () => {
    const B = block!;
    const model = zooModel("resnet20", { inputShape: [3, 32, 32], seed: 4 });

    it("rewrites forward and input-gradient convolutions, and with a static batch the weight gradients of maps up to 16x16", () => {
      const count = (g: ReturnType<typeof gradientGraph>) => blockedConvs(g.proto.graph.nodes);
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

    // Batch 32 is a multiple of both block sizes: the session builds the static-batch graph with
    // blocked weight gradients; batch 19 runs the symbolic-batch graph.
    describe.each(SMOOTH_FIXTURES.map((f) => [f.id, f.samples] as const))("%s", (id, samples) => {
      it.each(MODES.flatMap((mode) => [1, 2].map((threads) => [mode, threads] as const)))(
        "batch norm in %s mode, %i thread(s): blocked and plain graphs give PyTorch's float64 loss, gradients and batch statistics within 5e-5",
        async (mode, threads) => {
          const { model: smooth, params, data } = gradientFixture(id);
          const fixed = gradientGraph(smooth, { batchNorm: mode, convBlock: B, batch: samples });
          const dynamic = gradientGraph(smooth, { batchNorm: mode, convBlock: B });
          const ops = new Set(dynamic.proto.graph.nodes.map((n) => n.opType));
          expect(ops.has("Softplus") && !ops.has("Relu")).toBe(true);
          // What the session runs at this batch: more blocked Convs when the batch allows.
          expect(blockedConvs(fixed.proto.graph.nodes) > blockedConvs(dynamic.proto.graph.nodes)).toBe(
            samples % B === 0,
          );
          const blocked = await createGradientSession(smooth, { batchNorm: mode, threads });
          const plain = await createGradientSession(smooth, { batchNorm: mode, threads, blocked: false });
          try {
            expect(blockedConvs(blocked.graph.proto.graph.nodes)).toBeGreaterThan(0);
            expect(blockedConvs(plain.graph.proto.graph.nodes)).toBe(0);
            const a = await blocked.step(params, data.inputs, data.labels);
            const b = await plain.step(params, data.inputs, data.labels);
            expectReferenceStep(smooth, id, mode, a, RTOL);
            expectReferenceStep(smooth, id, mode, b, RTOL);
            expectSameStep(a, b);
            // The session keeps serving other batch sizes after switching graphs.
            const few = 3;
            const per = 3 * 32 * 32;
            expectSameStep(
              await blocked.step(params, data.inputs.subarray(0, few * per), data.labels.subarray(0, few)),
              await plain.step(params, data.inputs.subarray(0, few * per), data.labels.subarray(0, few)),
            );
          } finally {
            await blocked.dispose();
            await plain.dispose();
          }
        },
        120_000,
      );
    });

    it("Hessian-vector products through blocked convolutions equal the plain graph's (smooth network, 32x32 maps)", async () => {
      const { model: smooth, params } = gradientFixture(SMOOTH_FIXTURES[1]!.id);
      const rng = new Random(12);
      const count = 5;
      const inputs = Float32Array.from({ length: count * 3 * 32 * 32 }, () => rng.normal());
      const labels = Int32Array.from({ length: count }, () => rng.int(10));
      const v = Float32Array.from({ length: smooth.size }, () => rng.normal());
      const blocked = await createHvpSession(smooth, { threads: 2 });
      const plain = await createHvpSession(smooth, { threads: 2, blocked: false });
      try {
        const nodes = (s: typeof blocked) => s.graph.jvp.proto.graph.nodes;
        // Forward, input-gradient and their tangent convolutions are blocked.
        expect(blockedConvs(nodes(blocked))).toBeGreaterThan(3 * 20);
        expect(nodes(plain).some((n) => n.domain === NCHWC_DOMAIN)).toBe(false);
        const a = await blocked.run(params, v, inputs, labels);
        const b = await plain.run(params, v, inputs, labels);
        expect(Math.abs(a.loss - b.loss)).toBeLessThan(1e-6 * b.loss);
        expect(relativeError(a.gradient, b.gradient)).toBeLessThan(RTOL);
        expect(relativeError(a.hvp, b.hvp)).toBeLessThan(RTOL);
      } finally {
        await blocked.dispose();
        await plain.dispose();
      }
    }, 120_000);
  });
});
