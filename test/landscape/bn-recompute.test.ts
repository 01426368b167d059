// Batch-norm recomputation (src/landscape/bn.ts) against PyTorch's torch.optim.swa_utils.update_bn
// (fixtures/bn-recompute.json, made by fixtures/make-bn-fixtures.ts), its seeded choice of
// batches, and `--bn recompute` of the interpolate and surface commands.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BN_CASES, buildBnCase } from "../../fixtures/bn-cases.ts";
import { firstSamples, perturbParams } from "../../fixtures/zoo-params.ts";
import { loadEmbedded } from "../../src/data/embedded.ts";
import { createOrtEngine } from "../../src/engine/ort.ts";
import { writeSafetensors } from "../../src/formats/safetensors.ts";
import { POINT, readSurface } from "../../src/formats/surface-file.ts";
import {
  batchNormProblems,
  createBatchNormRecalibrator,
  recalibratedEngine,
  recalibrationBatches,
} from "../../src/landscape/bn.ts";
import { saveModel } from "../../src/model/checkpoint.ts";
import { paramView } from "../../src/model/model.ts";
import { zooModel } from "../../src/zoo/zoo.ts";
import { runCli, tempDir } from "../helpers.ts";

interface Reference {
  cases: Record<
    string,
    {
      batches: number[][];
      loss: number;
      accuracy: number;
      statsFloat32RelError: number;
      statistics: Record<string, number[]>;
    }
  >;
}

const reference = JSON.parse(
  readFileSync(new URL("../../fixtures/bn-recompute.json", import.meta.url), "utf8"),
) as Reference;

const { dir, cleanup } = tempDir("losscape-bn-");
afterAll(cleanup);

describe("recalibrationBatches", () => {
  it("takes full, disjoint batches from a seeded permutation: the same for the same seed, others for another", () => {
    const a = recalibrationBatches(100, { batches: 3, batchSize: 16, seed: 4 });
    expect(a.map((b) => b.length)).toEqual([16, 16, 16]);
    expect(new Set(a.flatMap((b) => Array.from(b))).size).toBe(48);
    for (const b of a) for (const i of b) expect(i).toBeLessThan(100);
    expect(recalibrationBatches(100, { batches: 3, batchSize: 16, seed: 4 })).toEqual(a);
    expect(recalibrationBatches(100, { batches: 3, batchSize: 16, seed: 5 })).not.toEqual(a);
  });

  it("uses fewer batches when the data holds fewer, and one batch of all samples when it holds less than one", () => {
    expect(recalibrationBatches(40, { batches: 8, batchSize: 16 }).map((b) => b.length)).toEqual([16, 16]);
    expect(recalibrationBatches(10, { batches: 8, batchSize: 16 }).map((b) => b.length)).toEqual([10]);
  });

  it("refuses bad arguments by name", () => {
    expect(() => recalibrationBatches(100, { batches: 0 })).toThrow(
      /'batches' must be a positive integer, got 0/,
    );
    expect(() => recalibrationBatches(100, { batchSize: 1 })).toThrow(/'batchSize' must be an integer >= 2/);
    expect(() => recalibrationBatches(1)).toThrow(
      /the dataset has 1 sample\(s\); batch norm needs at least 2/,
    );
  });
});

describe("createBatchNormRecalibrator", () => {
  for (const c of BN_CASES) {
    it(`${c.id}: running statistics and eval-mode loss after recomputation match PyTorch's update_bn`, async () => {
      const ref = reference.cases[c.id]!;
      const { model, params, data } = buildBnCase(c);
      const choice = { batches: c.batches, batchSize: c.batchSize, seed: c.bnSeed };
      // The fixture was made with the same seeded batches.
      expect(recalibrationBatches(c.samples, choice).map((b) => Array.from(b))).toEqual(ref.batches);
      const bn = await createBatchNormRecalibrator(model, data, { ...choice, threads: 1 });
      const engine = await createOrtEngine(model, { threads: 1 });
      try {
        const point = await bn.recompute(params);
        expect([...bn.statistics].sort()).toEqual(Object.keys(ref.statistics).sort());
        for (const [name, expected] of Object.entries(ref.statistics)) {
          const p = model.params.find((q) => q.name === name)!;
          const got = paramView(point, p);
          const scale = Math.max(...expected.map(Math.abs));
          // float32 forward passes against PyTorch's float64: measured 1.1e-6 (cnn), 2.7e-7 (resnet20) of the tensor's scale.
          for (let i = 0; i < expected.length; i++)
            expect(Math.abs(got[i]! - expected[i]!), `${name}[${i}]`).toBeLessThanOrEqual(2e-5 * scale);
        }
        // Every other parameter is unchanged.
        for (const p of model.params)
          if (p.role !== "bn-stat") expect(paramView(point, p)).toEqual(paramView(params, p));
        const m = await engine.evaluate(point, data);
        expect(Math.abs(m.loss - ref.loss)).toBeLessThanOrEqual(1e-5 * Math.max(1, ref.loss));
        expect(Math.abs(m.accuracy - ref.accuracy)).toBeLessThanOrEqual(1 / c.samples + 1e-12);
        // Deterministic: the same point again gives the same bits.
        expect(await bn.recompute(params)).toEqual(point);
      } finally {
        await bn.dispose();
        await engine.dispose();
      }
    }, 60_000);
  }

  it("a model without batch norm is returned unchanged", async () => {
    const model = zooModel("mlp", { inputShape: [1, 28, 28], seed: 1 });
    const data = firstSamples(loadEmbedded("train"), 32);
    const bn = await createBatchNormRecalibrator(model, data, { batches: 2, batchSize: 8 });
    expect(bn.statistics).toEqual([]);
    expect(await bn.recompute(model.initial)).toEqual(model.initial);
    await bn.dispose();
  });

  it("recalibratedEngine evaluates at the recomputed point", async () => {
    const { model, params, data } = buildBnCase(BN_CASES[0]!);
    const bn = await createBatchNormRecalibrator(model, data, {
      batches: 2,
      batchSize: 32,
      seed: 1,
      threads: 1,
    });
    const plain = await createOrtEngine(model, { threads: 1 });
    const wrapped = recalibratedEngine(await createOrtEngine(model, { threads: 1 }), bn);
    try {
      const direct = await plain.evaluate(await bn.recompute(params), data);
      const through = await wrapped.evaluate(params, data);
      expect(through.loss).toBe(direct.loss);
      expect(through.loss).not.toBe((await plain.evaluate(params, data)).loss);
    } finally {
      await wrapped.dispose();
      await plain.dispose();
    }
  }, 60_000);
});

describe("batchNormProblems", () => {
  it("treats files without 'bn' as interpolate and names every differing setting", () => {
    expect(batchNormProblems({}, {})).toEqual([]);
    expect(batchNormProblems({}, { bn: "recompute", bn_batches: "8" })).toEqual([
      "bn is interpolate in the file but recompute now",
      "bn_batches is (missing) in the file but 8 now",
    ]);
    expect(batchNormProblems({ bn: "recompute", bn_batches: "8" }, {})).toEqual([
      "bn is recompute in the file but interpolate now",
    ]);
  });
});

describe("losscape interpolate --bn recompute", () => {
  it("keeps points finite where interpolated running variances turn negative; a resume with another --bn is refused", () => {
    const model = zooModel("cnn", { inputShape: [1, 28, 28], seed: 2 });
    const a = perturbParams(model, { seed: 3, finalScale: 4 });
    // The second model's running variances are a fifth of the first's: beyond a = 1.25 they turn negative.
    const b = a.slice();
    for (const p of model.params)
      if (p.name.endsWith("running_var"))
        for (const [i, v] of paramView(b, p).entries()) paramView(b, p)[i] = 0.2 * v;
    const files = saveModel(model, a, join(dir, "cnn"));
    writeSafetensors(
      join(dir, "b.safetensors"),
      model.params.map((p) => ({ name: p.name, shape: p.shape, data: paramView(b, p) })),
    );
    const common = [
      "--model",
      files.onnx,
      "--params",
      files.safetensors,
      "--to",
      join(dir, "b.safetensors"),
      "--x",
      "0:1.5:4",
      "--subset",
      "64",
      "--batch-size",
      "64",
      "--threads",
      "1",
    ];
    const plain = runCli("interpolate", ...common, "--out", join(dir, "plain.h5"));
    expect(plain.code, plain.err).toBe(0);
    const p = readSurface(join(dir, "plain.h5"));
    expect(Array.from(p.done)).toEqual([POINT.COMPUTED, POINT.COMPUTED, POINT.COMPUTED, POINT.DIVERGED]);
    expect(p.meta.bn).toBeUndefined();

    const out = join(dir, "recomputed.h5");
    const r = runCli(
      "interpolate",
      ...common,
      "--out",
      out,
      "--bn",
      "recompute",
      "--bn-batches",
      "2",
      "--bn-batch-size",
      "16",
    );
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(
      /batch norm: running statistics of 2 layer\(s\) recomputed at every point from 2 seeded training batch\(es\) of 16 samples/,
    );
    const s = readSurface(out);
    expect(Array.from(s.done)).toEqual([1, 1, 1, 1].map(() => POINT.COMPUTED));
    expect(s.values.train_loss!.every(Number.isFinite)).toBe(true);
    expect(s.meta).toMatchObject({ bn: "recompute", bn_batches: "2", bn_batch_size: "16", bn_seed: "0" });

    const before = readFileSync(out);
    const other = runCli("interpolate", ...common, "--out", out);
    expect(other.code).not.toBe(0);
    expect(other.err).toMatch(
      /cannot resume '.*recomputed\.h5': it was computed with another batch-norm handling \(bn is recompute in the file but interpolate now\)/,
    );
    const seed = runCli(
      "interpolate",
      ...common,
      "--out",
      out,
      "--bn",
      "recompute",
      "--bn-batches",
      "2",
      "--bn-batch-size",
      "16",
      "--bn-seed",
      "1",
    );
    expect(seed.err).toMatch(/bn_seed is 0 in the file but 1 now/);
    expect(readFileSync(out).equals(before)).toBe(true);
    expect(existsSync(out)).toBe(true);
  }, 120_000);

  it("surface --bn recompute records the handling in the file and evaluates every point", () => {
    const out = join(dir, "surface.h5");
    const r = runCli(
      "surface",
      "--model",
      "cnn",
      "--x",
      "-1:1:3",
      "--subset",
      "32",
      "--batch-size",
      "32",
      "--threads",
      "1",
      "--out",
      out,
      "--bn",
      "recompute",
      "--bn-batches",
      "1",
      "--bn-batch-size",
      "16",
    );
    expect(r.code, r.err).toBe(0);
    const s = readSurface(out);
    expect(Array.from(s.done)).toEqual([POINT.COMPUTED, POINT.COMPUTED, POINT.COMPUTED]);
    expect(s.meta).toMatchObject({ bn: "recompute", bn_batches: "1", bn_batch_size: "16" });
  }, 60_000);

  it("surface --bn recompute with --queue is refused by name", () => {
    const r = runCli(
      "surface",
      "--model",
      "cnn",
      "--x",
      "-1:1:3",
      "--out",
      join(dir, "q.h5"),
      "--bn",
      "recompute",
      "--queue",
      "redis://127.0.0.1:1",
    );
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/--bn recompute is not available with --queue/);
    expect(existsSync(join(dir, "q.h5"))).toBe(false);
  });
});
