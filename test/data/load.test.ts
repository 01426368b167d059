import { describe, expect, it } from "vitest";
import { datasetSize } from "../../src/data/dataset.ts";
import { loadDataset } from "../../src/data/load.ts";

describe("loadDataset", () => {
  it("loads the embedded Fashion-MNIST splits and a seeded subset of them", () => {
    expect(datasetSize(loadDataset("fashion-mnist", "train"))).toBe(10000);
    const a = loadDataset("fashion-mnist", "test", { subset: { count: 300 }, seed: 4 });
    const b = loadDataset("fashion-mnist", "test", { subset: { count: 300 }, seed: 4 });
    expect(datasetSize(a)).toBe(300);
    expect(Array.from(a.labels)).toEqual(Array.from(b.labels));
    expect(datasetSize(loadDataset("fashion-mnist", "test", { subset: { fraction: 0.1 } }))).toBe(200);
  });

  it("names unknown datasets, missing folders and missing files", () => {
    expect(() => loadDataset("imagenet", "test")).toThrow(
      /unknown dataset 'imagenet'; expected one of fashion-mnist, mnist, cifar10, cifar100/,
    );
    expect(() => loadDataset("cifar10:/no/such/dir", "test")).toThrow(
      /folder '\/no\/such\/dir' does not exist/,
    );
    expect(() => loadDataset("cifar10", "test")).toThrow(/needs a folder: cifar10:DIR/);
    expect(() => loadDataset("mnist:/tmp", "train")).toThrow(
      /folder '\/tmp' has no 'train-images-idx3-ubyte' \(or 'train-images-idx3-ubyte.gz'\)/,
    );
  });
});
