import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { datasetSize } from "../../src/data/dataset.ts";
import {
  embeddedDataDir,
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_STATS,
  loadEmbedded,
} from "../../src/data/embedded.ts";
import { parseIdx } from "../../src/data/idx.ts";
import { channelStats } from "../../src/data/transform.ts";

function classCounts(labels: ArrayLike<number>): number[] {
  const counts = new Array<number>(10).fill(0);
  for (let i = 0; i < labels.length; i++)
    counts[labels[i] as number] = (counts[labels[i] as number] as number) + 1;
  return counts;
}

describe("embedded Fashion-MNIST", () => {
  it("has 10,000 training images, 1,000 per class, labels in 0..9", () => {
    const train = loadEmbedded("train", { normalize: "none" });
    expect(train.name).toBe("fashion-mnist-embedded/train");
    expect(train.shape).toEqual([1, 28, 28]);
    expect(train.classes).toBe(10);
    expect(datasetSize(train)).toBe(10000);
    expect(train.inputs.length).toBe(10000 * 784);
    expect(classCounts(train.labels)).toEqual(new Array(10).fill(1000));
    const stats = channelStats(train);
    expect(stats.mean[0]).toBeCloseTo(0.2863, 4);
    expect(stats.std[0]).toBeCloseTo(0.3529, 4);
  });

  it("has 2,000 test images, 200 per class", () => {
    const test = loadEmbedded("test");
    expect(datasetSize(test)).toBe(2000);
    expect(classCounts(test.labels)).toEqual(new Array(10).fill(200));
  });

  it("is normalized with the full training set's statistics by default", () => {
    const raw = loadEmbedded("test", { normalize: "none" });
    const normalized = loadEmbedded("test");
    const [mean, std] = [FASHION_MNIST_STATS.mean[0] as number, FASHION_MNIST_STATS.std[0] as number];
    expect(mean).toBe(0.286);
    expect(std).toBe(0.353);
    for (const i of [0, 300, 784 * 1999 + 400]) {
      expect(normalized.inputs[i]).toBeCloseTo(((raw.inputs[i] as number) - mean) / std, 6);
    }
    const stats = channelStats(normalized);
    expect(Math.abs(stats.mean[0] as number)).toBeLessThan(0.01);
    expect(stats.std[0]).toBeCloseTo(1, 1);
  });

  it("is stored as gzip IDX files that the IDX reader reads", () => {
    const path = join(embeddedDataDir(), "t10k-labels-idx1-ubyte.gz");
    const bytes = readFileSync(path);
    expect([bytes[0], bytes[1]]).toEqual([0x1f, 0x8b]);
    const labels = parseIdx(bytes, { file: path });
    expect(labels.magic).toBe(0x801);
    expect(labels.dims).toEqual([2000]);
  });

  it("names the ten classes", () => {
    expect(FASHION_MNIST_CLASSES).toHaveLength(10);
    expect(FASHION_MNIST_CLASSES[0]).toBe("T-shirt/top");
    expect(FASHION_MNIST_CLASSES[9]).toBe("Ankle boot");
  });

  it("rejects an unknown split", () => {
    expect(() => loadEmbedded("val" as "train")).toThrow(
      /loadEmbedded\(\): 'split' must be "train" or "test", got "val"/,
    );
  });
});
