import { describe, expect, it } from "vitest";
import { Random } from "../../src/core/random.ts";
import { type Dataset, datasetSize } from "../../src/data/dataset.ts";
import {
  applyNormalization,
  channelCount,
  channelNormalization,
  channelStats,
  describeNormalization,
  NORMALIZATION_PRESETS,
  normalize,
  parseNormalize,
  parseSubset,
  subset,
  subsetIndices,
  subsetName,
} from "../../src/data/transform.ts";

/** n samples of shape [2, 1, 3]; channel 0 holds sample index i, channel 1 holds 10 + position. */
function twoChannel(n: number): Dataset {
  const inputs = new Float32Array(n * 6);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < 3; j++) {
      inputs[i * 6 + j] = i;
      inputs[i * 6 + 3 + j] = 10 + j;
    }
  }
  const labels = new Uint16Array(n).map((_, i) => i % 3);
  return { name: "toy", shape: [2, 1, 3], inputs, labels, classes: 3 };
}

describe("channelStats", () => {
  it("gives each channel's mean and population standard deviation", () => {
    const stats = channelStats(twoChannel(4));
    // channel 0: values 0,1,2,3 three times each: mean 1.5, variance 1.25
    expect(stats.mean[0]).toBeCloseTo(1.5, 12);
    expect(stats.std[0]).toBeCloseTo(Math.sqrt(1.25), 12);
    // channel 1: values 10, 11, 12 four times each: mean 11, variance 2/3
    expect(stats.mean[1]).toBeCloseTo(11, 12);
    expect(stats.std[1]).toBeCloseTo(Math.sqrt(2 / 3), 12);
  });

  it("treats a flat feature vector as one channel", () => {
    expect(channelCount([784])).toBe(1);
    expect(channelCount([3, 32, 32])).toBe(3);
    const ds: Dataset = {
      name: "flat",
      shape: [2],
      inputs: new Float32Array([1, 3, 5, 7]),
      labels: new Uint8Array(2),
      classes: 2,
    };
    expect(channelStats(ds)).toEqual({ mean: [4], std: [Math.sqrt(5)] });
  });
});

describe("normalize", () => {
  it("gives every channel mean 0 and standard deviation 1 under its own statistics", () => {
    const ds = twoChannel(5);
    const normalized = normalize(ds, channelStats(ds));
    const after = channelStats(normalized);
    for (let c = 0; c < 2; c++) {
      expect(after.mean[c]).toBeCloseTo(0, 6);
      expect(after.std[c]).toBeCloseTo(1, 6);
    }
    expect(normalized.labels).toBe(ds.labels);
    expect(ds.inputs[0]).toBe(0); // the input is untouched
  });

  it("maps x to (x - mean) / std per channel", () => {
    const out = normalize(twoChannel(2), { mean: [1, 10], std: [2, 4] });
    expect(Array.from(out.inputs)).toEqual([-0.5, -0.5, -0.5, 0, 0.25, 0.5, 0, 0, 0, 0, 0.25, 0.5]);
  });

  it("applyNormalization passes 'none' through and computes on 'compute'", () => {
    const ds = twoChannel(3);
    expect(applyNormalization(ds, "none")).toBe(ds);
    expect(channelStats(applyNormalization(ds, "compute")).mean[1]).toBeCloseTo(0, 6);
  });

  it("rejects statistics of the wrong length or a non-positive std", () => {
    expect(() => normalize(twoChannel(1), { mean: [0.5], std: [1, 1] })).toThrow(
      /normalize\(\): dataset 'toy' \(sample shape \[2, 1, 3\]\) has 2 channels but 'mean' has 1 value$/,
    );
    expect(() => normalize(twoChannel(1), { mean: [0, 0], std: [1, 0] })).toThrow(
      /'std\[1\]' must be a finite number > 0, got 0/,
    );
    expect(() => normalize(twoChannel(1), { mean: [Number.NaN, 0], std: [1, 1] })).toThrow(
      /'mean\[0\]' must be a finite number, got NaN/,
    );
  });
});

describe("subset", () => {
  it("keeps the first count entries of the seeded permutation, in original order", () => {
    const indices = subsetIndices(100, { count: 10, seed: 7 });
    const expected = Array.from(new Random(7).permutation(100).slice(0, 10)).sort((a, b) => a - b);
    expect(Array.from(indices)).toEqual(expected);
  });

  it("gives the same subset for the same seed and a different one for another seed", () => {
    const ds = twoChannel(50);
    const a = subset(ds, { count: 10, seed: 1 });
    const b = subset(ds, { count: 10, seed: 1 });
    const c = subset(ds, { count: 10, seed: 2 });
    expect(Array.from(a.inputs)).toEqual(Array.from(b.inputs));
    expect(Array.from(a.inputs)).not.toEqual(Array.from(c.inputs));
  });

  it("copies the chosen samples and labels, keeping the label type", () => {
    const ds = twoChannel(30);
    const small = subset(ds, { count: 6, seed: 3 });
    expect(datasetSize(small)).toBe(6);
    expect(small.labels).toBeInstanceOf(Uint16Array);
    expect(small.name).toBe("toy[subset 6 seed 3]");
    const kept = Array.from(subsetIndices(30, { count: 6, seed: 3 }));
    for (const [k, i] of kept.entries()) {
      expect(small.inputs[k * 6]).toBe(i); // channel 0 holds the sample index
      expect(small.labels[k]).toBe(i % 3);
    }
    const order = Array.from({ length: 6 }, (_, k) => small.inputs[k * 6] as number);
    expect(order).toEqual([...order].sort((x, y) => x - y));
  });

  it("keeps every target of a sample with a target shape, float targets and int32 token ids", () => {
    const ds: Dataset = {
      name: "seq",
      shape: [2],
      inputs: new Int32Array([0, 1, 10, 11, 20, 21, 30, 31]),
      labels: new Float32Array([0.5, 1.5, 10.5, 11.5, 20.5, 21.5, 30.5, 31.5]),
      targetShape: [2],
      classes: 0,
    };
    const small = subset(ds, { count: 2, seed: 5 });
    const kept = Array.from(subsetIndices(4, { count: 2, seed: 5 }));
    expect(small.inputs).toBeInstanceOf(Int32Array);
    expect(small.labels).toBeInstanceOf(Float32Array);
    expect(Array.from(small.inputs)).toEqual(kept.flatMap((i) => [10 * i, 10 * i + 1]));
    expect(Array.from(small.labels)).toEqual(kept.flatMap((i) => [10 * i + 0.5, 10 * i + 1.5]));
    expect(datasetSize(small)).toBe(2);
    expect(small.name).toBe(subsetName("seq", { count: 2, seed: 5 }, 2));
    expect(subsetName("x", { fraction: 0.5, seed: 1 }, 7)).toBe("x[subset 0.5 seed 1]");
  });

  it("rounds a fraction to a count and keeps everything at fraction 1", () => {
    expect(datasetSize(subset(twoChannel(30), { fraction: 0.1, seed: 0 }))).toBe(3);
    expect(datasetSize(subset(twoChannel(30), { fraction: 0.001, seed: 0 }))).toBe(1);
    const all = subset(twoChannel(8), { fraction: 1, seed: 5 });
    expect(Array.from(all.inputs)).toEqual(Array.from(twoChannel(8).inputs));
  });

  it("rejects counts beyond the dataset, bad fractions and conflicting options", () => {
    const ds = twoChannel(10);
    expect(() => subset(ds, { count: 11, seed: 0 })).toThrow(
      /subset\(\): dataset 'toy': 'count' 11 exceeds the 10 samples available/,
    );
    expect(() => subset(ds, { count: 2.5, seed: 0 })).toThrow(/'count' must be a positive integer, got 2\.5/);
    expect(() => subset(ds, { count: 0, seed: 0 })).toThrow(/'count' must be a positive integer, got 0/);
    expect(() => subset(ds, { fraction: 0, seed: 0 })).toThrow(/'fraction' must be in \(0, 1\], got 0/);
    expect(() => subset(ds, { fraction: 1.5, seed: 0 })).toThrow(/'fraction' must be in \(0, 1\], got 1\.5/);
    expect(() => subset(ds, { count: 2, fraction: 0.5, seed: 0 })).toThrow(
      /exactly one of 'count' or 'fraction', got both/,
    );
    expect(() => subset(ds, { seed: 0 })).toThrow(/exactly one of 'count' or 'fraction', got neither/);
    expect(() => subset(ds, { count: 2, seed: 0.5 })).toThrow(/'seed' must be an integer, got 0\.5/);
  });
});

describe("parseSubset", () => {
  it("reads integers as counts and decimals or percentages as fractions", () => {
    expect(parseSubset("1000")).toEqual({ count: 1000 });
    expect(parseSubset(" 1 ")).toEqual({ count: 1 });
    expect(parseSubset("0.1")).toEqual({ fraction: 0.1 });
    expect(parseSubset(".25")).toEqual({ fraction: 0.25 });
    expect(parseSubset("1.0")).toEqual({ fraction: 1 });
    expect(parseSubset("10%")).toEqual({ fraction: 0.1 });
    expect(parseSubset("2.5%")).toEqual({ fraction: 0.025 });
  });

  it("rejects anything else and lists the accepted forms", () => {
    expect(() => parseSubset("abc")).toThrow(
      /subset "abc": expected a sample count like "1000", a fraction in \(0, 1\] like "0\.1" or a percentage like "10%"/,
    );
    expect(() => parseSubset("1.5")).toThrow(/subset "1\.5": a fraction must be in \(0, 1\], got 1\.5/);
    expect(() => parseSubset("0")).toThrow(/subset "0": a sample count must be a positive integer/);
    expect(() => parseSubset("0.0")).toThrow(/a fraction must be in \(0, 1\], got 0/);
    expect(() => parseSubset("150%")).toThrow(/a fraction must be in \(0, 1\], got 1\.5/);
    expect(() => parseSubset("-5")).toThrow(/subset "-5": expected a sample count/);
    expect(() => parseSubset("1e3")).toThrow(/subset "1e3": expected a sample count/);
  });
});

describe("parseNormalize", () => {
  it("reads MEAN/STD per channel or for every channel, none, and the presets", () => {
    expect(parseNormalize("0.485,0.456,0.406/0.229,0.224,0.225")).toEqual({
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
    });
    expect(parseNormalize(" 0.5/0.25 ")).toEqual({ mean: [0.5], std: [0.25] });
    expect(parseNormalize("0/1,2,3")).toEqual({ mean: [0], std: [1, 2, 3] });
    expect(parseNormalize("-1e-1, .5/2")).toEqual({ mean: [-0.1, 0.5], std: [2] });
    expect(parseNormalize("none")).toBe("none");
    expect(parseNormalize("imagenet")).toEqual({ mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
    expect(parseNormalize("cifar10")).toEqual(NORMALIZATION_PRESETS.cifar10);
    expect(parseNormalize("cifar100")).toEqual(NORMALIZATION_PRESETS.cifar100);
    expect(parseNormalize("mnist")).toEqual({ mean: [0.1307], std: [0.3081] });
    expect(parseNormalize("fashion-mnist")).toEqual({ mean: [0.286], std: [0.353] });
  });

  it("rejects bad syntax, non-numbers, std <= 0 and unequal per-channel counts", () => {
    expect(() => parseNormalize("imagenet2")).toThrow(
      /normalize "imagenet2": expected MEAN\/STD with comma-separated per-channel values like "0\.485,0\.456,0\.406\/0\.229,0\.224,0\.225".*"none", or a preset: imagenet, cifar10, cifar100, mnist, fashion-mnist/,
    );
    expect(() => parseNormalize("0.5/0.2/0.1")).toThrow(/normalize "0\.5\/0\.2\/0\.1": expected MEAN\/STD/);
    expect(() => parseNormalize("0.5,x/1")).toThrow(
      /normalize "0\.5,x\/1": mean value 2 is "x", not a number/,
    );
    expect(() => parseNormalize("0.5/")).toThrow(/std value 1 is "", not a number/);
    expect(() => parseNormalize("0.5/0")).toThrow(
      /normalize "0\.5\/0": std value 1 is 0; a standard deviation must be > 0/,
    );
    expect(() => parseNormalize("0/1,-2")).toThrow(/std value 2 is -2; a standard deviation must be > 0/);
    expect(() => parseNormalize("1e999/1")).toThrow(/mean value 1 is 1e999; expected a finite number/);
    expect(() => parseNormalize("1,2/1,2,3")).toThrow(
      /normalize "1,2\/1,2,3": 2 mean values but 3 std values; give one value per channel/,
    );
  });
});

describe("channelNormalization and describeNormalization", () => {
  it("repeats single values for every channel and checks per-channel counts against the data", () => {
    expect(channelNormalization({ mean: [0.5], std: [0.25] }, 3, "data 'x'")).toEqual({
      mean: [0.5, 0.5, 0.5],
      std: [0.25, 0.25, 0.25],
    });
    expect(channelNormalization({ mean: [1, 2], std: [3] }, 2, "data 'x'")).toEqual({
      mean: [1, 2],
      std: [3, 3],
    });
    expect(() => channelNormalization(NORMALIZATION_PRESETS.imagenet, 1, "data 'fashion-mnist'")).toThrow(
      /data 'fashion-mnist' has 1 channel but the normalization gives 3 mean values \(0\.485,0\.456,0\.406\); give one value$/,
    );
    expect(() => channelNormalization({ mean: [0, 0], std: [1, 1] }, 3, "data 'y'")).toThrow(
      /data 'y' has 3 channels but the normalization gives 2 mean values \(0,0\); give 3 values or one for every channel/,
    );
  });

  it("gives the canonical text result files record", () => {
    expect(describeNormalization(NORMALIZATION_PRESETS.imagenet)).toBe(
      "mean 0.485,0.456,0.406 std 0.229,0.224,0.225",
    );
    expect(describeNormalization(parseNormalize("0.5/0.25"))).toBe("mean 0.5 std 0.25");
    expect(describeNormalization(parseNormalize("none"))).toBe("none");
  });
});
