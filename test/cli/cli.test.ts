import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadDataset } from "../../src/data/load.ts";
import { createOrtEngine } from "../../src/engine/ort.ts";
import { loadParams } from "../../src/model/checkpoint.ts";
import { readOnnx } from "../../src/model/import.ts";
import { decodeModel } from "../../src/onnx/proto.ts";
import { runCli, tempDir } from "../helpers.ts";

const { dir, cleanup } = tempDir("losscape-cli-");
afterAll(cleanup);

const cli = runCli;

describe("losscape CLI", () => {
  it("demo trains the small CNN and writes its landscape, figures and report; a rerun resumes everything", () => {
    const out = join(dir, "demo");
    const r = cli("demo", "--out", out, "--threads", "2", "--epochs", "1", "--points", "5");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/10000 train \/ 2000 test samples/);
    expect(r.out).toMatch(
      /epoch 1\/1: train loss \d+\.\d{4}, acc \d+\.\d{2} %; test loss \d+\.\d{4}, acc (\d+)\.\d{2} %/,
    );
    expect(Number(/test loss \d+\.\d{4}, acc (\d+\.\d{2}) %/.exec(r.out)![1])).toBeGreaterThan(70);
    expect(r.out).toMatch(
      /trained cnn, test: loss \d+\.\d{4}, accuracy \d+\.\d{2} % on 2000 samples in [\d.]+ s/,
    );
    expect(r.out).toMatch(/explore them: npx losscape view /);
    expect(r.out).toMatch(/trajectory: skipped \(a PCA plane needs at least 2 epochs\)/);
    for (const f of [
      "interpolation.h5",
      "surface.h5",
      "hessian.h5",
      "report.html",
      "run/epoch-001.safetensors",
    ]) {
      expect(existsSync(join(out, f))).toBe(true);
    }
    expect(readdirSync(join(out, "figures")).sort()).toEqual(
      ["hessian-ratio", "interpolation", "surface-3d", "surface-contour", "surface-filled"].flatMap((n) => [
        `${n}.png`,
        `${n}.svg`,
      ]),
    );
    const again = cli("demo", "--out", out, "--threads", "2", "--epochs", "1", "--points", "5");
    expect(again.code).toBe(0);
    expect(again.out).toMatch(/resuming the training run in .* after epoch 1/);
  }, 300_000);

  it("zoo --activation softplus writes the Softplus variant; another activation is refused by name", async () => {
    const base = join(dir, "cnn-softplus");
    expect(cli("zoo", "cnn", "--out", base, "--activation", "softplus").code).toBe(0);
    const ops = decodeModel(readFileSync(`${base}.onnx`)).graph.nodes.map((n) => n.opType);
    expect(ops.filter((o) => o === "Softplus")).toHaveLength(3);
    expect(ops).not.toContain("Relu");
    const bad = cli("zoo", "cnn", "--out", join(dir, "never"), "--activation", "tanh");
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/--activation expects one of relu, softplus, got 'tanh'/);
    expect(existsSync(join(dir, "never.onnx"))).toBe(false);
  });

  it("zoo writes a model that evaluate reads back, with the library's numbers", async () => {
    const base = join(dir, "mlp");
    expect(cli("zoo", "mlp", "--out", base, "--seed", "4").code).toBe(0);
    const r = cli(
      "evaluate",
      "--model",
      `${base}.onnx`,
      "--params",
      `${base}.safetensors`,
      "--subset",
      "300",
      "--data-seed",
      "2",
      "--json",
    );
    expect(r.code).toBe(0);
    const got = JSON.parse(r.out) as { loss: number; accuracy: number; count: number };
    const model = await readOnnx(`${base}.onnx`);
    const engine = await createOrtEngine(model, { threads: 1 });
    const want = await engine.evaluate(
      loadParams(model, `${base}.safetensors`),
      loadDataset("fashion-mnist", "test", { subset: { count: 300 }, seed: 2 }),
    );
    await engine.dispose();
    expect(got.count).toBe(300);
    expect(got.loss).toBeCloseTo(want.loss, 6);
    expect(got.accuracy).toBe(want.accuracy);
    expect(r.err).toMatch(/evaluate: 300\/300 samples \(100.0 %\), [\d.]+ samples\/s/);
  });

  it("describe lists parameters with their roles", () => {
    const r = cli("describe", "--model", "resnet20", "--input-shape", "3,32,32");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/107 parameter tensors, 274042 values \(272474 trainable\)/);
    expect(r.out).toMatch(
      /layer2\.0\.shortcut\.0\.weight\s+\[32, 16, 1, 1\]\s+filter \(filters along axis 0\)/,
    );
    expect(r.out).toMatch(/layer1\.0\.bn1\.running_var\s+\[16\]\s+bn-stat/);
  });

  it("rejects bad arguments naming the option, what was expected and what came", () => {
    const bad = cli("evaluate", "--model", "cnn", "--batch-size", "0");
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/--batch-size expects a positive integer, got '0'/);
    const shape = cli("evaluate", "--model", "cnn", "--input-shape", "3,x");
    expect(shape.err).toMatch(/--input-shape expects a shape like 3,32,32, got '3,x'/);
    const zoo = cli("evaluate", "--model", "resnet21");
    expect(zoo.code).toBe(1);
    expect(zoo.err).toMatch(/losscape: zoo: 'resnet21' needs a depth of the form 6n\+2/);
    const data = cli("evaluate", "--model", "cnn", "--data", "cifar10:/nowhere");
    expect(data.err).toMatch(/folder '\/nowhere' does not exist/);
    expect(existsSync(join(dir, "nowhere"))).toBe(false);
  });
});
