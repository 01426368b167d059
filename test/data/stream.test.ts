import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { Random } from "../../src/core/random.ts";
import { readSamples } from "../../src/data/dataset.ts";
import { DATASET_STATS, loadDataset } from "../../src/data/load.ts";
import { streamIdx } from "../../src/data/stream.ts";
import { createOrtEngine } from "../../src/engine/ort.ts";
import { dataHash } from "../../src/landscape/identity.ts";
import { zooModel } from "../../src/zoo/zoo.ts";
import { tempDir } from "../helpers.ts";

const { dir, cleanup } = tempDir("losscape-stream-");
afterAll(cleanup);

// A CIFAR-10 folder of synthetic records: 5 training batches of 60 and a test batch of 50.
const rng = new Random(9);
function cifarFile(path: string, count: number): void {
  const bytes = new Uint8Array(count * 3073);
  for (let k = 0; k < count; k++) {
    bytes[k * 3073] = rng.int(10);
    for (let j = 1; j < 3073; j++) bytes[k * 3073 + j] = rng.int(256);
  }
  writeFileSync(path, bytes);
}
for (let b = 1; b <= 5; b++) cifarFile(join(dir, `data_batch_${b}.bin`), 60);
cifarFile(join(dir, "test_batch.bin"), 50);

describe("streamed datasets", () => {
  it("read the same normalized samples, labels and hash as the in-memory reader, across file boundaries", () => {
    const memory = loadDataset(`cifar10:${dir}`, "train");
    const streamed = loadDataset(`cifar10:${dir}`, "train", { stream: true });
    expect(streamed.inputs.length).toBe(0);
    expect(Array.from(streamed.labels)).toEqual(Array.from(memory.labels));
    // Samples 55..64 straddle data_batch_1 and data_batch_2.
    expect(Array.from(readSamples(streamed, 55, 10))).toEqual(Array.from(readSamples(memory, 55, 10)));
    expect(dataHash(streamed)).toBe(dataHash(memory));
  });

  it("evaluate the same loss and accuracy, also as a seeded subset", async () => {
    const model = zooModel("resnet20", { inputShape: [3, 32, 32], seed: 1 });
    const engine = await createOrtEngine(model, { threads: 1 });
    try {
      for (const options of [{}, { subset: { count: 70 }, seed: 3 }]) {
        const memory = loadDataset(`cifar10:${dir}`, "train", options);
        const streamed = loadDataset(`cifar10:${dir}`, "train", { ...options, stream: true });
        expect(streamed.inputs.length).toBe(0);
        const a = await engine.evaluate(model.initial, memory, { batchSize: 64 });
        const b = await engine.evaluate(model.initial, streamed, { batchSize: 64 });
        expect(b).toEqual(a);
      }
    } finally {
      await engine.dispose();
    }
  });

  it("stream uncompressed IDX files and refuse gzip-compressed ones by name", () => {
    const n = 20;
    const images = new Uint8Array(16 + n * 28 * 28);
    const view = new DataView(images.buffer);
    view.setUint32(0, 0x803);
    view.setUint32(4, n);
    view.setUint32(8, 28);
    view.setUint32(12, 28);
    for (let i = 16; i < images.length; i++) images[i] = rng.int(256);
    const labels = new Uint8Array(8 + n);
    new DataView(labels.buffer).setUint32(0, 0x801);
    new DataView(labels.buffer).setUint32(4, n);
    for (let i = 8; i < labels.length; i++) labels[i] = rng.int(10);
    const mnist = join(dir, "mnist");
    mkdirSync(mnist);
    writeFileSync(join(mnist, "t10k-images-idx3-ubyte"), images);
    writeFileSync(join(mnist, "t10k-labels-idx1-ubyte"), labels);
    const memory = loadDataset(`mnist:${mnist}`, "test");
    const streamed = loadDataset(`mnist:${mnist}`, "test", { stream: true });
    expect(Array.from(readSamples(streamed, 3, 5))).toEqual(Array.from(readSamples(memory, 3, 5)));
    writeFileSync(join(dir, "gz-images"), gzipSync(images));
    expect(() =>
      streamIdx(join(dir, "gz-images"), join(mnist, "t10k-labels-idx1-ubyte"), {
        normalize: DATASET_STATS.mnist,
      }),
    ).toThrow(/gz-images: streaming reads uncompressed IDX files; this one is gzip-compressed/);
    writeFileSync(join(dir, "cut-images"), images.subarray(0, 500));
    expect(() =>
      streamIdx(join(dir, "cut-images"), join(mnist, "t10k-labels-idx1-ubyte"), {
        normalize: DATASET_STATS.mnist,
      }),
    ).toThrow(
      /cut-images: header says 20 images of 28x28 \(15680 bytes\) but only 484 bytes follow at offset 16/,
    );
  });
});
