import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Random } from "../../src/core/random.ts";
import { type Dataset, datasetSize, readSamples } from "../../src/data/dataset.ts";
import { loadEmbedded } from "../../src/data/embedded.ts";
import { readImageFolder } from "../../src/data/images.ts";
import { loadDataset } from "../../src/data/load.ts";
import { subset } from "../../src/data/transform.ts";
import { writeSafetensors } from "../../src/formats/safetensors.ts";
import { dataHash } from "../../src/landscape/identity.ts";
import { tempDir } from "../helpers.ts";

// Array fixtures written by fixtures/data_formats.py (NumPy); expected.json holds what it wrote and the
// float32 bits of the NCHW samples the image arrays must give.
const DIR = join(import.meta.dirname, "..", "..", "fixtures", "data", "formats");
const EXPECTED = JSON.parse(readFileSync(join(DIR, "..", "expected.json"), "utf8")) as {
  images: Record<
    "train" | "test",
    { shape: number[]; labels: number[]; classes: number; none: string[]; imagenet: string[] }
  >;
  npz: {
    images: Record<string, { values: number[] }>;
    regression: { y: { bits: string[] }; x_float32: string[] };
    token_ids: Record<"x" | "y", { values: number[] }>;
  };
  tokens: { uint16: { values: number[] } };
};
const f = (name: string) => join(DIR, name);
const NPY = `npy:${f("images_nhwc.npy")},${f("images_labels.npy")}`;
const { dir, cleanup } = tempDir("losscape-load-");
afterAll(cleanup);

function bits(x: ArrayLike<number>): string[] {
  return Array.from(
    new Uint32Array(Float32Array.from(x).buffer),
    (v) => `0x${v.toString(16).padStart(8, "0")}`,
  );
}

/** All samples of a dataset, streamed or not, as float32 bits. */
function sampleBits(data: Dataset): string[] {
  return bits(readSamples(data, 0, datasetSize(data)));
}

// A CIFAR-10 folder of synthetic records: 5 training batches of 4 and a test batch of 3.
const cifar = join(dir, "cifar");
{
  const rng = new Random(5);
  const write = (count: number) => {
    const bytes = new Uint8Array(count * 3073);
    for (let k = 0; k < count; k++) {
      bytes[k * 3073] = rng.int(10);
      for (let j = 1; j < 3073; j++) bytes[k * 3073 + j] = rng.int(256);
    }
    return bytes;
  };
  mkdirSync(cifar);
  for (let b = 1; b <= 5; b++) writeFileSync(join(cifar, `data_batch_${b}.bin`), write(4));
  writeFileSync(join(cifar, "test_batch.bin"), write(3));
}

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
      /unknown dataset 'imagenet'; expected one of fashion-mnist, mnist, cifar10, cifar100, safetensors, npz, npy, tokens, images/,
    );
    expect(() => loadDataset("cifar10:/no/such/dir", "test")).toThrow(
      /folder '\/no\/such\/dir' does not exist/,
    );
    expect(() => loadDataset("cifar10", "test")).toThrow(/needs a folder: cifar10:DIR/);
    expect(() => loadDataset("mnist:/tmp", "train")).toThrow(
      /folder '\/tmp' has no 'train-images-idx3-ubyte' \(or 'train-images-idx3-ubyte.gz'\)/,
    );
    expect(() => loadDataset("npz:/no/such.npz", "train")).toThrow(
      /data 'npz:\/no\/such\.npz': file '\/no\/such\.npz' does not exist/,
    );
    expect(() => loadDataset(`npy:${f("images_nhwc.npy")}`, "train")).toThrow(
      /expected npy:X\.npy,Y\.npy \(two files, samples then targets\)/,
    );
    expect(() => loadDataset(`npy:${f("images_nhwc.npy")},/no/y.npy`, "train")).toThrow(
      /file '\/no\/y\.npy' does not exist/,
    );
  });
});

describe("array datasets (npz, npy, safetensors)", () => {
  it("read uint8 NHWC images as NCHW pixels / 255, normalized, bit for bit as NumPy computes them", () => {
    for (const spec of [`npz:${f("images.npz")}`, `npz:${f("images_compressed.npz")}`, NPY]) {
      for (const split of spec === NPY ? (["train"] as const) : (["train", "test"] as const)) {
        const want = EXPECTED.images[split];
        const plain = loadDataset(spec, split, { layout: "nhwc" });
        expect(plain.shape).toEqual(want.shape);
        expect(Array.from(plain.labels)).toEqual(want.labels);
        expect(plain.labels).toBeInstanceOf(Int32Array);
        expect(plain.classes).toBe(want.classes);
        expect(plain.normalization).toBe("none");
        expect(sampleBits(plain)).toEqual(want.none);
        const normalized = loadDataset(spec, split, { layout: "nhwc", normalize: "imagenet" });
        expect(normalized.normalization).toBe("mean 0.485,0.456,0.406 std 0.229,0.224,0.225");
        expect(sampleBits(normalized)).toEqual(want.imagenet);
        // Explicit per-channel values give the same bits as the preset.
        const explicit = loadDataset(spec, split, {
          layout: "nhwc",
          normalize: "0.485,0.456,0.406/0.229,0.224,0.225",
        });
        expect(sampleBits(explicit)).toEqual(want.imagenet);
      }
    }
    expect(loadDataset(`npz:${f("images.npz")}`, "test").name).toBe("images.npz/test");
  });

  it("layout nhwc is the NCHW transpose of the samples read as they lie", () => {
    const asIs = loadDataset(NPY, "train"); // [6, 5, 4, 3] read as NCHW: samples [5, 4, 3]
    const nhwc = loadDataset(NPY, "train", { layout: "nhwc" });
    expect(asIs.shape).toEqual([5, 4, 3]);
    expect(nhwc.shape).toEqual([3, 5, 4]);
    const pixels = EXPECTED.npz.images.x!.values;
    expect(Array.from(asIs.inputs)).toEqual(pixels.map((v) => Math.fround(v / 255)));
    for (let i = 0; i < 6; i++)
      for (let c = 0; c < 3; c++)
        for (let h = 0; h < 5; h++)
          for (let w = 0; w < 4; w++)
            expect(nhwc.inputs[i * 60 + (c * 5 + h) * 4 + w]).toBe(asIs.inputs[i * 60 + (h * 4 + w) * 3 + c]);
  });

  it("streamed npy files and stored npz members give the loaded samples, labels and hash, also as a subset", () => {
    for (const spec of [`npz:${f("images.npz")}`, NPY]) {
      for (const options of [
        { layout: "nhwc" as const, normalize: "imagenet" },
        { normalize: "0.5/0.25" },
        { layout: "nhwc" as const, subset: { count: 4 }, seed: 2 },
      ]) {
        const loaded = loadDataset(spec, "train", options);
        const streamed = loadDataset(spec, "train", { ...options, stream: true });
        expect(streamed.inputs.length).toBe(0);
        expect(streamed.read).toBeDefined();
        expect(sampleBits(streamed)).toEqual(sampleBits(loaded));
        expect(bits(readSamples(streamed, 1, 2))).toEqual(bits(readSamples(loaded, 1, 2)));
        expect(Array.from(streamed.labels)).toEqual(Array.from(loaded.labels));
        expect(streamed.normalization).toBe(loaded.normalization);
        expect(dataHash(streamed)).toBe(dataHash(loaded));
      }
    }
    expect(() => loadDataset(`npz:${f("images_compressed.npz")}`, "train", { stream: true })).toThrow(
      /--stream reads arrays stored uncompressed; 'x' is compressed \(np\.savez_compressed\): save with np\.savez or as \.npy files/,
    );
    expect(() => loadDataset(`npz:${f("token_ids.npz")}`, "train", { stream: true })).toThrow(
      /--stream reads float or uint8 samples; 'x' holds int64 token ids/,
    );
  });

  it("read float targets as regression values and float64 samples as float32", () => {
    const ds = loadDataset(`npz:${f("regression.npz")}`, "train");
    expect(ds.labels).toBeInstanceOf(Float32Array);
    expect(bits(ds.labels)).toEqual(EXPECTED.npz.regression.y.bits);
    expect(ds.classes).toBe(0);
    expect(ds.targetShape).toEqual([2]);
    expect(ds.shape).toEqual([3]);
    expect(bits(ds.inputs)).toEqual(EXPECTED.npz.regression.x_float32);
    const small = loadDataset(`npz:${f("regression.npz")}`, "train", { subset: { count: 2 }, seed: 1 });
    expect(datasetSize(small)).toBe(2);
    expect(small.labels.length).toBe(4);
    expect(() => loadDataset(`npz:${f("regression.npz")}`, "train", { layout: "nhwc" })).toThrow(
      /data 'npz:.*regression\.npz': layout nhwc needs 'x' of rank 4 \[N, H, W, C\]; it has shape \[6, 3\]/,
    );
    expect(() => loadDataset(`npz:${f("regression.npz")}`, "test")).toThrow(
      /no array 'x_test' for the test split; the archive holds x, y .*or give the test data with --test-data/,
    );
  });

  it("read integer samples as int32 token ids with per-position targets, negative targets kept", () => {
    const ds = loadDataset(`npz:${f("token_ids.npz")}`, "train");
    expect(ds.inputs).toBeInstanceOf(Int32Array);
    expect(Array.from(ds.inputs)).toEqual(EXPECTED.npz.token_ids.x.values);
    expect(Array.from(ds.labels)).toEqual(EXPECTED.npz.token_ids.y.values);
    expect(ds.labels).toContain(-100);
    expect(ds.targetShape).toEqual([5]);
    expect(ds.classes).toBe(Math.max(...EXPECTED.npz.token_ids.y.values) + 1);
    expect(ds.normalization).toBe("token ids");
    expect(() => loadDataset(`npz:${f("token_ids.npz")}`, "train", { normalize: "0.5/0.5" })).toThrow(
      /'x' holds int64 token ids; normalization \(mean 0\.5 std 0\.5\) applies to float or uint8 samples only/,
    );
  });

  it("reject mismatched sample counts, bool samples and wrong channel counts, naming file and array", () => {
    expect(() => loadDataset(`npz:${f("mismatch.npz")}`, "train")).toThrow(
      /data 'npz:.*mismatch\.npz': 'y' has shape \[4\] but 'x' has 5 samples; expected \[5, \.\.\.\]/,
    );
    expect(() => loadDataset(`npz:${f("bool_x.npz")}`, "train")).toThrow(
      /'x' has dtype bool; expected float samples, uint8 pixels or integer token ids/,
    );
    expect(() => loadDataset(`npz:${f("images.npz")}`, "train", { normalize: "imagenet" })).toThrow(
      /data 'npz:.*images\.npz': 'x' \(sample shape \[5, 4, 3\]\) has 5 channels but the normalization gives 3 mean values/,
    );
    expect(() => loadDataset(`npz:${f("truncated.npz")}`, "train")).toThrow(
      /truncated\.npz: not a readable zip archive/,
    );
  });

  it("read safetensors files by the same rules: uint8 scaled, layout, float targets", () => {
    const path = join(dir, "data.safetensors");
    const pixels = Uint8Array.from(EXPECTED.npz.images.x!.values);
    writeSafetensors(path, [
      { name: "x", shape: [6, 5, 4, 3], data: pixels },
      { name: "y", shape: [6], data: BigInt64Array.from(EXPECTED.images.train.labels, BigInt) },
      { name: "x_test", shape: [6, 3], data: new Float64Array(18).fill(0.1) },
      { name: "y_test", shape: [6, 1], data: new Float32Array(6).fill(2.5) },
    ]);
    const train = loadDataset(`safetensors:${path}`, "train", { layout: "nhwc", normalize: "imagenet" });
    expect(sampleBits(train)).toEqual(EXPECTED.images.train.imagenet);
    expect(Array.from(train.labels)).toEqual(EXPECTED.images.train.labels);
    const test = loadDataset(`safetensors:${path}`, "test");
    expect(Array.from(test.inputs)).toEqual(new Array(18).fill(Math.fround(0.1)));
    expect(Array.from(test.labels)).toEqual(new Array(6).fill(2.5));
    expect(test.targetShape).toEqual([1]);
    expect(() => loadDataset(`safetensors:${path}`, "train", { stream: true })).toThrow(
      /a safetensors dataset is loaded whole/,
    );
  });
});

describe("--test-data", () => {
  it("reads the test split from another spec, as a dataset of its own", () => {
    const test = loadDataset(`npz:${f("regression.npz")}`, "test", { testData: NPY, layout: "nhwc" });
    expect(sampleBits(test)).toEqual(EXPECTED.images.train.none);
    expect(test.name).toBe("images_nhwc.npy+images_labels.npy/test");
    // The train split ignores it; an npz test file is read through its x and y.
    expect(datasetSize(loadDataset(`npz:${f("regression.npz")}`, "train", { testData: NPY }))).toBe(6);
    const npzTest = loadDataset(NPY, "test", { testData: `npz:${f("images.npz")}`, layout: "nhwc" });
    expect(sampleBits(npzTest)).toEqual(EXPECTED.images.train.none);
    expect(npzTest.name).toBe("images.npz/test");
    const tokens = `tokens:${f("tokens_u16.bin")}`;
    const tokenTest = loadDataset(tokens, "test", { testData: tokens, context: 10 });
    expect(Array.from(tokenTest.inputs.subarray(0, 10))).toEqual(EXPECTED.tokens.uint16.values.slice(0, 10));
    expect(tokenTest.name).toBe("tokens_u16.bin/test");
  });

  it("is required for a test split of kinds without one, and its spec is checked by name", () => {
    expect(() => loadDataset(NPY, "test")).toThrow(
      /an npy:X\.npy,Y\.npy pair has no test split of its own; give the test data with --test-data/,
    );
    expect(() => loadDataset(`tokens:${f("tokens_u16.bin")}`, "test")).toThrow(
      /a tokens:FILE stream has no test split of its own; give the test data with --test-data/,
    );
    expect(() => loadDataset(NPY, "test", { testData: "npz:/no/test.npz" })).toThrow(
      /--test-data 'npz:\/no\/test\.npz': file '\/no\/test\.npz' does not exist/,
    );
    expect(() => loadDataset(NPY, "test", { testData: "parquet:x" })).toThrow(
      /--test-data 'parquet:x': unknown dataset 'parquet'/,
    );
  });
});

describe("normalization of the built-in datasets", () => {
  it("defaults to the dataset's statistics and is replaced by --normalize", () => {
    const standard = loadDataset("fashion-mnist", "test", { subset: { count: 50 } });
    expect(standard.normalization).toBe("mean 0.286 std 0.353");
    const raw = loadDataset("fashion-mnist", "test", { normalize: "none", subset: { count: 50 } });
    expect(raw.normalization).toBe("none");
    const none = subset(loadEmbedded("test", { normalize: "none" }), { count: 50, seed: 0 });
    expect(bits(raw.inputs)).toEqual(bits(none.inputs));
    const mnist = loadDataset("fashion-mnist", "test", { normalize: "mnist", subset: { count: 50 } });
    expect(mnist.normalization).toBe("mean 0.1307 std 0.3081");
    expect(mnist.inputs[0]).toBe(Math.fround((raw.inputs[0]! - 0.1307) / 0.3081));
    expect(() => loadDataset("fashion-mnist", "test", { normalize: "imagenet" })).toThrow(
      /data 'fashion-mnist' has 1 channel but the normalization gives 3 mean values/,
    );
  });

  it("applies to CIFAR loaded and streamed alike, bit for bit", () => {
    for (const normalize of [undefined, "none", "0.5/0.25", "imagenet"]) {
      const options = normalize === undefined ? {} : { normalize };
      const loaded = loadDataset(`cifar10:${cifar}`, "train", options);
      const streamed = loadDataset(`cifar10:${cifar}`, "train", { ...options, stream: true });
      expect(streamed.inputs.length).toBe(0);
      expect(sampleBits(streamed)).toEqual(sampleBits(loaded));
      expect(streamed.normalization).toBe(loaded.normalization);
    }
    const raw = readFileSync(join(cifar, "test_batch.bin"));
    const none = loadDataset(`cifar10:${cifar}`, "test", { normalize: "none", stream: true });
    expect(Array.from(readSamples(none, 1, 1))).toEqual(
      Array.from(raw.subarray(3073 + 1, 2 * 3073), (v) => Math.fround(v / 255)),
    );
    expect(loadDataset(`cifar10:${cifar}`, "test").normalization).toBe(
      "mean 0.4914,0.4822,0.4465 std 0.247,0.2435,0.2616",
    );
  });
});

describe("options that do not apply", () => {
  it("are refused with the flag and the kinds they apply to", () => {
    expect(() => loadDataset(`npz:${f("images.npz")}`, "train", { dtype: "uint32" })).toThrow(
      /--dtype \(LoadOptions\.dtype\) applies to token data \(tokens, tokens:FILE\) only/,
    );
    expect(() => loadDataset(`cifar10:${cifar}`, "train", { layout: "nhwc" })).toThrow(
      /--layout nhwc \(LoadOptions\.layout\) applies to array data \(npz, npy, safetensors\) only/,
    );
    expect(() => loadDataset(`npz:${f("images.npz")}`, "train", { resize: 32 })).toThrow(
      /--resize \(LoadOptions\.resize\) applies to image folders \(images:DIR\) only/,
    );
    expect(() => loadDataset("tokens", "train", { normalize: "0.5/0.5" })).toThrow(
      /data 'tokens': --normalize 0\.5\/0\.5 \(LoadOptions\.normalize\) does not apply to token ids/,
    );
    expect(() => loadDataset("tokens", "train", { stream: true })).toThrow(
      /--stream does not apply to token data/,
    );
    expect(() => loadDataset("tokens", "train", { dtype: "uint32" })).toThrow(
      /the embedded text is uint16 tokens; --dtype uint32 does not apply/,
    );
    expect(() => loadDataset(NPY, "train", { normalize: "0.5/1/2" })).toThrow(
      /normalize "0\.5\/1\/2": expected MEAN\/STD/,
    );
  });
});

describe("image folders", () => {
  it("load as pixels / 255, normalized, with the folder's classes", () => {
    const root = join(dir, "images");
    cpSync(join(DIR, "..", "images"), root, { recursive: true }); // the reader caches into the folder
    const folder = readImageFolder(root, { crop: 16, cache: false });
    const ds = loadDataset(`images:${root}`, "train", { crop: 16, normalize: "imagenet" });
    expect(ds.shape).toEqual(folder.shape);
    expect(ds.classes).toBe(folder.classes.length);
    expect(Array.from(ds.labels)).toEqual(Array.from(folder.labels));
    expect(ds.normalization).toBe("mean 0.485,0.456,0.406 std 0.229,0.224,0.225");
    const mean = [0.485, 0.456, 0.406];
    const std = [0.229, 0.224, 0.225];
    const plane = 16 * 16;
    expect(bits(ds.inputs)).toEqual(
      bits(
        Array.from(folder.pixels, (v, i) => {
          const c = Math.floor(i / plane) % 3;
          return (Math.fround(v / 255) - mean[c]!) / std[c]!;
        }),
      ),
    );
    expect(() => loadDataset(`images:${root}`, "train", { stream: true })).toThrow(
      /--stream does not apply to image folders/,
    );
  });
});
