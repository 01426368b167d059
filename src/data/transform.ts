// Pure transforms on an in-memory Dataset: per-channel statistics and
// normalization, and the seeded subsets that landscape evaluations run on
// ("a fixed, seeded subset" of the training set). Nothing here reads files.

import { Random } from "../core/random.ts";
import { type Dataset, datasetSize, sampleSize, targetSize } from "./dataset.ts";

/**
 * Mean and standard deviation of each input channel.
 *
 * @example
 * const fashion: ChannelStats = { mean: [0.286], std: [0.353] };
 */
export interface ChannelStats {
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

/**
 * How a reader normalizes the [0, 1]-scaled pixels it decodes: with given
 * statistics, with the statistics of the data just read ("compute"), or not
 * at all ("none").
 *
 * @example
 * const how: Normalization = { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] };
 */
export type Normalization = ChannelStats | "compute" | "none";

/**
 * Number of channels in a sample shape: the leading axis of [C, H, W] (or any
 * shape of rank >= 2); a flat feature vector [F] or a scalar counts as one channel.
 *
 * @example
 * channelCount([3, 32, 32]); // 3
 * channelCount([784]); // 1
 */
export function channelCount(shape: readonly number[]): number {
  return shape.length >= 2 ? (shape[0] as number) : 1;
}

/**
 * Per-channel mean and population standard deviation over every sample and
 * position (two passes, accumulated in float64). An empty dataset gives NaN.
 *
 * @example
 * const { mean, std } = channelStats(loadEmbedded("train", { normalize: "none" }));
 * // mean ≈ [0.286], std ≈ [0.353]
 */
export function channelStats(data: Dataset): ChannelStats {
  if (data.read)
    throw new Error(
      `channelStats(): dataset '${data.name}' is streamed; give its statistics to the reader instead`,
    );
  const channels = channelCount(data.shape);
  const plane = sampleSize(data) / channels;
  const n = datasetSize(data);
  const x = data.inputs;
  const mean: number[] = [];
  const std: number[] = [];
  for (let c = 0; c < channels; c++) {
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const start = (i * channels + c) * plane;
      for (let j = start; j < start + plane; j++) sum += x[j] as number;
    }
    const m = sum / (n * plane);
    let squares = 0;
    for (let i = 0; i < n; i++) {
      const start = (i * channels + c) * plane;
      for (let j = start; j < start + plane; j++) {
        const d = (x[j] as number) - m;
        squares += d * d;
      }
    }
    mean.push(m);
    std.push(Math.sqrt(squares / (n * plane)));
  }
  return { mean, std };
}

/**
 * A copy of the dataset with each channel mapped to (x - mean[c]) / std[c].
 *
 * @example
 * const ds = normalize(raw, { mean: [0.286], std: [0.353] });
 */
export function normalize(data: Dataset, stats: ChannelStats): Dataset {
  if (data.read)
    throw new Error(
      `normalize(): dataset '${data.name}' is streamed; give the statistics to the reader instead`,
    );
  const channels = channelCount(data.shape);
  const where = `normalize(): dataset '${data.name}' (sample shape [${data.shape.join(", ")}])`;
  for (const key of ["mean", "std"] as const) {
    const values = stats[key];
    if (values.length !== channels) {
      throw new Error(
        `${where} has ${channels} channel${channels === 1 ? "" : "s"} but '${key}' has ${values.length} value${values.length === 1 ? "" : "s"}`,
      );
    }
    for (const [c, v] of values.entries()) {
      if (!Number.isFinite(v) || (key === "std" && v <= 0)) {
        const expected = key === "std" ? "a finite number > 0" : "a finite number";
        throw new Error(`${where}: '${key}[${c}]' must be ${expected}, got ${v}`);
      }
    }
  }
  const plane = sampleSize(data) / channels;
  const x = data.inputs;
  const out = new Float32Array(x.length);
  const n = datasetSize(data);
  for (let c = 0; c < channels; c++) {
    const m = stats.mean[c] as number;
    const s = stats.std[c] as number;
    for (let i = 0; i < n; i++) {
      const start = (i * channels + c) * plane;
      for (let j = start; j < start + plane; j++) out[j] = ((x[j] as number) - m) / s;
    }
  }
  return { ...data, inputs: out };
}

/**
 * Applies a reader's `normalize` option: given statistics, the dataset's own
 * statistics ("compute"), or nothing ("none", which returns the dataset as is).
 *
 * @example
 * const ds = applyNormalization(raw, "compute"); // each channel now has mean 0, std 1
 */
export function applyNormalization(data: Dataset, how: Normalization): Dataset {
  if (how === "none") return data;
  if (how === "compute") return normalize(data, channelStats(data));
  if (typeof how === "object" && how !== null) return normalize(data, how);
  throw new Error(`normalize option must be "compute", "none" or {mean, std}, got ${JSON.stringify(how)}`);
}

/**
 * Which samples to keep: exactly one of `count` (a positive integer) or
 * `fraction` (in (0, 1], rounded to the nearest count, at least 1), and the seed.
 *
 * @example
 * const options: SubsetOptions = { count: 1000, seed: 0 };
 */
export interface SubsetOptions {
  readonly count?: number;
  readonly fraction?: number;
  readonly seed: number;
}

/**
 * The sample indices a subset keeps: the first `count` entries of
 * `new Random(seed).permutation(size)`, sorted ascending so the subset keeps
 * the original order. The same size and seed always give the same indices.
 *
 * @example
 * subsetIndices(60000, { fraction: 0.1, seed: 1 }); // 6000 sorted indices
 */
export function subsetIndices(size: number, options: SubsetOptions): Uint32Array {
  return chooseIndices(size, options, "subsetIndices()");
}

/**
 * A seeded random subset of the samples, kept in their original order (see
 * `subsetIndices`).
 *
 * @example
 * const small = subset(train, { count: 1000, seed: 0 });
 * datasetSize(small); // 1000
 */
export function subset(data: Dataset, options: SubsetOptions): Dataset {
  const size = datasetSize(data);
  const indices = chooseIndices(size, options, `subset(): dataset '${data.name}'`);
  const count = indices.length;
  const per = sampleSize(data);
  const name = subsetName(data.name, options, count);
  // Per-position targets (`targetShape`) keep all of a sample's target values.
  const targets = targetSize(data);
  const labels = emptyLabelsLike(data.labels, count * targets);
  for (let k = 0; k < count; k++) {
    const i = indices[k] as number;
    labels.set(data.labels.subarray(i * targets, (i + 1) * targets), k * targets);
  }
  const source = data.read;
  if (source) {
    // A streamed dataset stays streamed: sample k of the subset is sample indices[k] of the source.
    const one = new Float32Array(per);
    const read = (start: number, n: number, out: Float32Array): void => {
      for (let k = 0; k < n; k++) {
        source(indices[start + k] as number, 1, one);
        out.set(one, k * per);
      }
    };
    return { ...data, name, labels, read };
  }
  // Token ids stay Int32Array.
  const inputs =
    data.inputs instanceof Int32Array ? new Int32Array(count * per) : new Float32Array(count * per);
  for (let k = 0; k < count; k++) {
    const i = indices[k] as number;
    inputs.set(data.inputs.subarray(i * per, (i + 1) * per), k * per);
  }
  return { ...data, name, inputs, labels };
}

/**
 * The name `subset` gives a subset of dataset `name`: "NAME[subset COUNT seed S]", or
 * "NAME[subset FRACTION seed S]" for a fraction (readers that pick samples before reading them use it too, so
 * the same subset has the same name however it was taken).
 *
 * @example
 * subsetName("train.bin", { count: 512, seed: 0 }, 512); // "train.bin[subset 512 seed 0]"
 */
export function subsetName(name: string, options: SubsetOptions, count: number): string {
  const what = options.count !== undefined ? `${count}` : `${options.fraction}`;
  return `${name}[subset ${what} seed ${options.seed}]`;
}

function chooseIndices(size: number, options: SubsetOptions, where: string): Uint32Array {
  const count = subsetCount(size, options, where);
  return new Random(options.seed).permutation(size).slice(0, count).sort();
}

function subsetCount(size: number, options: SubsetOptions, where: string): number {
  const { count, fraction } = options;
  if (count !== undefined && fraction !== undefined) {
    throw new Error(
      `${where}: give exactly one of 'count' or 'fraction', got both (${count} and ${fraction})`,
    );
  }
  if (count === undefined && fraction === undefined) {
    throw new Error(`${where}: give exactly one of 'count' or 'fraction', got neither`);
  }
  if (!Number.isInteger(options.seed)) {
    throw new Error(`${where}: 'seed' must be an integer, got ${options.seed}`);
  }
  if (count !== undefined) {
    if (!Number.isInteger(count) || count < 1) {
      throw new Error(`${where}: 'count' must be a positive integer, got ${count}`);
    }
    if (count > size) throw new Error(`${where}: 'count' ${count} exceeds the ${size} samples available`);
    return count;
  }
  const f = fraction as number;
  if (!(f > 0 && f <= 1)) throw new Error(`${where}: 'fraction' must be in (0, 1], got ${f}`);
  if (size === 0) throw new Error(`${where}: cannot take a fraction of an empty dataset`);
  return Math.max(1, Math.round(f * size));
}

function emptyLabelsLike(labels: Dataset["labels"], count: number): Dataset["labels"] {
  if (labels instanceof Uint8Array) return new Uint8Array(count);
  if (labels instanceof Uint16Array) return new Uint16Array(count);
  if (labels instanceof Float32Array) return new Float32Array(count);
  return new Int32Array(count);
}

/**
 * The part of `SubsetOptions` a command line gives: a count or a fraction.
 *
 * @example
 * const spec: SubsetSpec = { fraction: 0.1 };
 */
export type SubsetSpec = { readonly count: number } | { readonly fraction: number };

/**
 * Parses the CLI's subset syntax: an integer is a sample count ("1000"), a
 * decimal a fraction in (0, 1] ("0.1", "1.0"), a percentage a fraction ("10%").
 *
 * @example
 * subset(train, { ...parseSubset("0.1"), seed: 0 });
 * parseSubset("1000"); // { count: 1000 }
 */
export function parseSubset(text: string): SubsetSpec {
  const t = text.trim();
  const expected = `expected a sample count like "1000", a fraction in (0, 1] like "0.1" or a percentage like "10%"`;
  if (/^\d+$/.test(t)) {
    const count = Number(t);
    if (count < 1 || !Number.isSafeInteger(count)) {
      throw new Error(`subset "${text}": a sample count must be a positive integer; ${expected}`);
    }
    return { count };
  }
  const percent = /^(\d+(?:\.\d*)?|\.\d+)%$/.exec(t);
  const fraction = percent ? Number(percent[1]) / 100 : /^(\d+\.\d*|\.\d+)$/.test(t) ? Number(t) : undefined;
  if (fraction === undefined) throw new Error(`subset "${text}": ${expected}`);
  if (!(fraction > 0 && fraction <= 1)) {
    throw new Error(`subset "${text}": a fraction must be in (0, 1], got ${fraction}; ${expected}`);
  }
  return { fraction };
}

/**
 * Per-channel statistics of the named normalization presets `parseNormalize` accepts: ImageNet's (as torchvision's
 * pretrained models expect) and those of the datasets losscape reads (pixels scaled to [0, 1]).
 *
 * @example
 * NORMALIZATION_PRESETS.imagenet.mean; // [0.485, 0.456, 0.406]
 */
export const NORMALIZATION_PRESETS = {
  imagenet: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  cifar10: { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] },
  cifar100: { mean: [0.5071, 0.4865, 0.4409], std: [0.2673, 0.2564, 0.2762] },
  mnist: { mean: [0.1307], std: [0.3081] },
  "fashion-mnist": { mean: [0.286], std: [0.353] },
} as const satisfies Record<string, ChannelStats>;

/**
 * A normalization as the command line gives it: per-channel statistics (one value each for every channel, or one
 * per channel) or "none".
 *
 * @example
 * const n: NormalizeSpec = parseNormalize("imagenet");
 */
export type NormalizeSpec = ChannelStats | "none";

const PRESET_NAMES = Object.keys(NORMALIZATION_PRESETS).join(", ");
const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * Parses the CLI's normalization syntax: `MEAN/STD` with comma-separated per-channel values
 * ("0.485,0.456,0.406/0.229,0.224,0.225"; a single value applies to every channel, "0.5/0.25"), `none`, or a
 * preset name (see `NORMALIZATION_PRESETS`). Each side holds one value or the same number as the other side.
 *
 * @example
 * parseNormalize("0.5/0.25"); // { mean: [0.5], std: [0.25] }
 * parseNormalize("cifar10"); // { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] }
 * parseNormalize("none"); // "none"
 */
export function parseNormalize(text: string): NormalizeSpec {
  const t = text.trim();
  const expected = `expected MEAN/STD with comma-separated per-channel values like "0.485,0.456,0.406/0.229,0.224,0.225" (one value applies to every channel: "0.5/0.25"), "none", or a preset: ${PRESET_NAMES}`;
  if (t === "none") return "none";
  if (Object.hasOwn(NORMALIZATION_PRESETS, t)) {
    const preset = NORMALIZATION_PRESETS[t as keyof typeof NORMALIZATION_PRESETS];
    return { mean: [...preset.mean], std: [...preset.std] };
  }
  const parts = t.split("/");
  if (parts.length !== 2) throw new Error(`normalize "${text}": ${expected}`);
  const [mean, std] = parts.map((part, side) => {
    const key = side === 0 ? "mean" : "std";
    return part.split(",").map((v, c) => {
      const s = v.trim();
      if (!NUMBER.test(s))
        throw new Error(
          `normalize "${text}": ${key} value ${c + 1} is ${JSON.stringify(s)}, not a number; ${expected}`,
        );
      const x = Number(s);
      if (!Number.isFinite(x))
        throw new Error(`normalize "${text}": ${key} value ${c + 1} is ${s}; expected a finite number`);
      if (key === "std" && x <= 0)
        throw new Error(`normalize "${text}": std value ${c + 1} is ${s}; a standard deviation must be > 0`);
      return x;
    });
  }) as [number[], number[]];
  if (mean.length !== std.length && mean.length !== 1 && std.length !== 1)
    throw new Error(
      `normalize "${text}": ${mean.length} mean values but ${std.length} std values; give one value per channel on each side (or a single value for every channel)`,
    );
  return { mean, std };
}

/**
 * The statistics a normalization applies to data with `channels` channels: single values repeated for every
 * channel, per-channel values checked against the channel count. `where` names the data in the error.
 *
 * @example
 * channelNormalization({ mean: [0.5], std: [0.25] }, 3, "data 'x'"); // { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] }
 */
export function channelNormalization(spec: ChannelStats, channels: number, where: string): ChannelStats {
  const expand = (key: "mean" | "std"): number[] => {
    const values = spec[key];
    if (values.length === 1) return new Array<number>(channels).fill(values[0] as number);
    if (values.length !== channels)
      throw new Error(
        `${where} has ${channels} channel${channels === 1 ? "" : "s"} but the normalization gives ${values.length} ${key} values (${values.join(",")}); give ${channels === 1 ? "one value" : `${channels} values or one for every channel`}`,
      );
    return [...values];
  };
  return { mean: expand("mean"), std: expand("std") };
}

/**
 * The canonical text of a normalization, as result files record it: "mean M1,M2,... std S1,S2,..." (numbers in
 * their shortest round-trip form) or "none".
 *
 * @example
 * describeNormalization(NORMALIZATION_PRESETS.imagenet); // "mean 0.485,0.456,0.406 std 0.229,0.224,0.225"
 * describeNormalization("none"); // "none"
 */
export function describeNormalization(spec: NormalizeSpec): string {
  if (spec === "none") return "none";
  return `mean ${spec.mean.map(String).join(",")} std ${spec.std.map(String).join(",")}`;
}
