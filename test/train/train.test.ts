import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { paperSchedule } from "../../src/core/optim.ts";
import { loadDataset } from "../../src/data/load.ts";
import { loadParams } from "../../src/model/checkpoint.ts";
import { type TrainConfig, train } from "../../src/train/train.ts";
import { zooModel } from "../../src/zoo/zoo.ts";
import { tempDir } from "../helpers.ts";

const { dir, cleanup } = tempDir("losscape-train-");
afterAll(cleanup);

const trainData = loadDataset("fashion-mnist", "train", { subset: { count: 600 }, seed: 1 });
const testData = loadDataset("fashion-mnist", "test", { subset: { count: 300 }, seed: 1 });
const config: TrainConfig = {
  epochs: 3,
  batchSize: 64,
  seed: 4,
  optimizer: { kind: "sgd", momentum: 0.9, weightDecay: 5e-4 },
  schedule: paperSchedule(0.05, 3),
  threads: 1,
};

describe("train", () => {
  it("lowers the loss, saves the initial parameters, a checkpoint per epoch and a log", async () => {
    const model = zooModel("cnn", { seed: 2 });
    const folder = join(dir, "run");
    const r = await train(model, model.initial, trainData, testData, config, folder);
    expect(r.log.map((l) => l.epoch)).toEqual([1, 2, 3]);
    expect(r.log[2]!.train_loss).toBeLessThan(r.log[0]!.train_loss);
    expect(r.log[2]!.test_acc!).toBeGreaterThan(50);
    expect(r.log.map((l) => l.lr)).toEqual([0.05, 0.05, 0.05 * 0.1]);
    expect(readdirSync(folder).sort()).toEqual([
      "epoch-000.safetensors",
      "epoch-001.safetensors",
      "epoch-002.safetensors",
      "epoch-003.safetensors",
      "log.json",
      "model.onnx",
      "resume.safetensors",
    ]);
    expect(Array.from(loadParams(model, join(folder, "epoch-000.safetensors")))).toEqual(
      Array.from(model.initial),
    );
    expect(Array.from(loadParams(model, join(folder, "epoch-003.safetensors")))).toEqual(
      Array.from(r.params),
    );
    const log = JSON.parse(readFileSync(join(folder, "log.json"), "utf8")) as { epochs: { epoch: number }[] };
    expect(log.epochs.length).toBe(3);
    // Running statistics moved away from their initial 0 / 1 (updated from batch statistics).
    const mean = model.params.find((p) => p.name === "bn1.running_mean")!;
    expect(Math.abs(r.params[mean.offset]!)).toBeGreaterThan(1e-4);
  });

  it("resumes an interrupted run to the same parameters, bit for bit", async () => {
    const model = zooModel("mlp", { hidden: [32], seed: 3 });
    const straight = await train(model, model.initial, trainData, undefined, config, join(dir, "straight"));
    const folder = join(dir, "resumed");
    await train(model, model.initial, trainData, undefined, { ...config, epochs: 3 }, folder, {
      onEpoch: (l) => {
        if (l.epoch === 1) throw new Error("simulated crash after epoch 1");
      },
    }).catch((e: Error) => expect(e.message).toMatch(/simulated crash/));
    let resumedFrom = -1;
    const resumed = await train(model, model.initial, trainData, undefined, config, folder, {
      onResume: (e) => (resumedFrom = e),
    });
    expect(resumedFrom).toBe(1);
    expect(Array.from(resumed.params)).toEqual(Array.from(straight.params));
    expect(resumed.log.length).toBe(3);
  });

  it("refuses to resume a folder trained with another configuration, and bad settings", async () => {
    const model = zooModel("mlp", { hidden: [32], seed: 3 });
    await expect(
      train(model, model.initial, trainData, undefined, { ...config, seed: 99 }, join(dir, "straight")),
    ).rejects.toThrow(/holds a run with another configuration/);
    await expect(
      train(model, model.initial, trainData, undefined, { ...config, batchSize: 1 }, join(dir, "x")),
    ).rejects.toThrow(/'batchSize' must be an integer >= 2/);
    await expect(
      train(model, model.initial, trainData, undefined, { ...config, augment: "crop-flip" }, join(dir, "y")),
    ).resolves.toBeDefined();
    expect(existsSync(join(dir, "x"))).toBe(false);
  });
});
