// The data and task flags through the CLI: a language model's token loss, regression MSE, a
// graph's own loss, segmentation with an ignore index in a surface file, training and the Hessian
// of a regression, and the errors a user meets first.

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readSurface } from "../../src/formats/surface-file.ts";
import { runCli } from "../helpers.ts";

const T = join(import.meta.dirname, "..", "..", "fixtures", "tasks");
const tmp = mkdtempSync(join(tmpdir(), "losscape-tasks-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function json(args: string[]): Record<string, unknown> {
  const r = runCli(...args, "--json", "--threads", "1");
  expect(r.code, r.err).toBe(0);
  return JSON.parse(r.out.trim().split("\n").at(-1)!) as Record<string, unknown>;
}

describe("losscape evaluate with other tasks", () => {
  it("gives PyTorch's numbers for a language model, a regression and a model's own loss (fixtures/torch_tasks.py)", () => {
    const lm = json([
      "evaluate",
      "--model",
      `${T}/lm.onnx`,
      "--data",
      `safetensors:${T}/lm-batch.safetensors`,
      "--split",
      "train",
    ]);
    expect(Math.abs((lm.loss as number) - 11.2982734354) / 11.3).toBeLessThan(1e-5);
    expect(lm.task).toBe("cross-entropy");
    const mse = json([
      "evaluate",
      "--model",
      `${T}/regress.onnx`,
      "--data",
      `safetensors:${T}/regress-batch.safetensors`,
      "--split",
      "train",
      "--loss",
      "mse",
    ]);
    expect(Math.abs((mse.loss as number) - 0.8788291079) / 0.88).toBeLessThan(1e-5);
    expect(mse.accuracy).toBeNull();
    const own = json([
      "evaluate",
      "--model",
      `${T}/ownloss.onnx`,
      "--loss-output",
      "loss",
      "--data",
      `safetensors:${T}/ownloss-batch.safetensors`,
      "--split",
      "train",
    ]);
    expect(Math.abs((own.loss as number) - 1.497822426) / 1.5).toBeLessThan(1e-5);
    expect(own.task).toBe("model-loss loss");
    expect(own.accuracy).toBeGreaterThanOrEqual(0);
  });

  it("names what does not fit: a test split without --test-data, class targets under --loss mse, too few logits", () => {
    const batch = `safetensors:${T}/regress-batch.safetensors`;
    let r = runCli("evaluate", "--model", `${T}/regress.onnx`, "--data", batch, "--loss", "mse");
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--test-data/);
    r = runCli(
      "evaluate",
      "--model",
      `${T}/lm.onnx`,
      "--data",
      `safetensors:${T}/lm-batch.safetensors`,
      "--split",
      "train",
      "--loss",
      "mse",
    );
    expect(r.err).toMatch(
      /--loss mse is regression against real-valued targets, but dataset .* has class indices/,
    );
    r = runCli(
      "evaluate",
      "--model",
      `${T}/lm.onnx`,
      "--data",
      "tokens",
      "--context",
      "16",
      "--subset",
      "4",
      "--split",
      "train",
    );
    expect(r.err).toMatch(/has a vocabulary of 256 tokens but model 'lm.onnx' outputs 32 classes/);
    r = runCli("evaluate", "--model", `${T}/lm.onnx`, "--data", "tokens", "--ignore-index", "x");
    expect(r.err).toMatch(/--ignore-index expects an integer, got 'x'/);
  });
});

describe("surfaces, training and the Hessian on other tasks", () => {
  it("records the task and normalization in a segmentation surface and refuses a resume with another normalization", () => {
    const out = join(tmp, "seg.h5");
    const args = [
      "surface",
      "--model",
      `${T}/segment.onnx`,
      "--data",
      `safetensors:${T}/segment-batch.safetensors`,
      "--ignore-index",
      "255",
      "--x",
      "-0.5:0.5:3",
      "--out",
      out,
      "--threads",
      "1",
    ];
    let r = runCli(...args);
    expect(r.code, r.err).toBe(0);
    const s = readSurface(out);
    expect(s.meta.loss).toBe("cross-entropy ignore-index=255");
    expect(s.meta.normalization).toBe("none");
    // The centre point is the model itself: PyTorch's loss there.
    expect(Math.abs(s.values.train_loss![1]! - 1.6124254931) / 1.61).toBeLessThan(1e-5);
    r = runCli(...args, "--normalize", "0.5/2");
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/cannot resume .*train_hash is/);
    r = runCli(...args.map((a) => (a === "255" ? "254" : a)));
    expect(r.err).toMatch(
      /loss is cross-entropy ignore-index=255 in the file but cross-entropy ignore-index=254 now/,
    );
  });

  it("trains a regression model with MSE and computes its Hessian", () => {
    const run = join(tmp, "regress-run");
    const data = `safetensors:${T}/regress-batch.safetensors`;
    let r = runCli(
      "train",
      "--model",
      `${T}/regress.onnx`,
      "--data",
      data,
      "--loss",
      "mse",
      "--epochs",
      "3",
      "--batch-size",
      "5",
      "--lr",
      "0.05",
      "--no-test",
      "--out",
      run,
      "--threads",
      "1",
    );
    expect(r.code, r.err).toBe(0);
    const log = JSON.parse(readFileSync(join(run, "log.json"), "utf8")) as {
      epochs: { train_loss: number; train_acc: number | null }[];
    };
    expect(log.epochs).toHaveLength(3);
    expect(log.epochs[2]!.train_loss).toBeLessThan(log.epochs[0]!.train_loss);
    expect(log.epochs[0]!.train_acc).toBeNull();
    r = runCli(
      "hessian",
      "--model",
      `${T}/regress.onnx`,
      "--data",
      data,
      "--loss",
      "mse",
      "--json",
      "--threads",
      "1",
    );
    expect(r.code, r.err).toBe(0);
    const h = JSON.parse(r.out.trim()) as { max: number; min: number };
    expect(h.max).toBeGreaterThan(0);
    expect(h.max).toBeGreaterThanOrEqual(h.min);
  });
});
