// Datasets from arrays a user wrote: samples `x` [N, ...sample] and targets `y` [N, ...] (`x_test` / `y_test`
// for the test split) in a safetensors file (python/losscape_export.py's export_data()), an .npz archive, or a
// pair of .npy files. One builder gives them the same rules: uint8 samples are pixels (scaled by 1/255, then
// normalized), float samples are taken as they are (normalized if asked), other integers are token ids;
// integer targets are class indices, float targets regression values.

import { basename } from "node:path";
import { readSafetensors, type SafetensorsDtype, type SafetensorsTensor } from "../formats/safetensors.ts";
import type { Dataset } from "./dataset.ts";
import type { Split } from "./load.ts";
import { type NpyData, type NpyDtype, type NpyFile, openNpy } from "./npy.ts";
import { type NpzMember, openNpz } from "./npz.ts";
import {
  type ChannelStats,
  channelCount,
  channelNormalization,
  describeNormalization,
  type NormalizeSpec,
} from "./transform.ts";

/**
 * Element types of dataset arrays: those of .npy files, and bfloat16 from safetensors.
 *
 * @example
 * const dtype: ArrayDtype = "bfloat16";
 */
export type ArrayDtype = NpyDtype | "bfloat16";

/**
 * One array of a dataset file, read by rows (slices along the first, sample axis): from memory or by file offset.
 * Elements come as numbers: float16 and bfloat16 widened to float32, int64 and uint64 as exact integers in a
 * Float64Array.
 *
 * @example
 * const x: ArrayColumn = { key: "x", dtype: "uint8", shape: [2, 4], readRows: (s, n) => pixels.subarray(s * 4, (s + n) * 4) };
 */
export interface ArrayColumn {
  /** The array's name in its file ("x", "y_test"), as errors name it. */
  readonly key: string;
  readonly dtype: ArrayDtype;
  readonly shape: readonly number[];
  readRows(start: number, count: number): NpyData;
}

/**
 * Memory layout of rank-4 image samples on disk: channels first [N, C, H, W] or last [N, H, W, C] (NumPy,
 * TensorFlow and PIL arrays). Datasets are always NCHW; "nhwc" data is transposed as it is read.
 *
 * @example
 * const layout: Layout = "nhwc";
 */
export type Layout = "nchw" | "nhwc";

/**
 * How `arrayDataset` and the file readers build a dataset.
 *
 * @example
 * const options: ArrayDatasetOptions = { normalize: parseNormalize("imagenet"), layout: "nhwc", stream: true };
 */
export interface ArrayDatasetOptions {
  /** Normalization of float and uint8 samples (default "none"); refused for token ids. */
  readonly normalize?: NormalizeSpec;
  /** Layout of rank-4 samples on disk (default "nchw"). */
  readonly layout?: Layout;
  /** Read samples by offset batch by batch (`Dataset.read`) instead of loading them (default false). */
  readonly stream?: boolean;
  /** The dataset's name (default FILE/SPLIT). */
  readonly name?: string;
}

const FLOATS = new Set<ArrayDtype>(["float16", "bfloat16", "float32", "float64"]);
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/**
 * Builds a dataset from a sample array `x` [N, ...sample] and a target array `y` [N, ...targets]:
 * - x uint8: pixels, scaled to float32 v / 255, then normalized;
 * - x float16/bfloat16/float32/float64: float32 as they are, then normalized;
 * - x of another integer type: token ids (Int32Array); normalization is refused;
 * - x bool is refused;
 * - y integer or bool: class indices (Int32Array; negative values are kept for an ignore index such as -100),
 *   classes = max(2, 1 + the largest non-negative label);
 * - y float: regression targets (Float32Array), classes 0, targetShape = y's shape after the sample axis.
 * With `layout: "nhwc"`, x must have rank 4 and samples become [C, H, W]. With `stream`, samples are read by
 * rows on demand (bit-identical to the loaded ones); token ids cannot be streamed. `source` names the data in
 * errors (e.g. "npz:data.npz").
 *
 * @example
 * const ds = arrayDataset("npz:data.npz", x, y, { normalize: { mean: [0.5], std: [0.25] } });
 */
export function arrayDataset(
  source: string,
  x: ArrayColumn,
  y: ArrayColumn,
  options: ArrayDatasetOptions = {},
): Dataset {
  const { normalize = "none", layout = "nchw", stream = false } = options;
  const where = `data '${source}'`;
  if (x.shape.length < 2)
    throw new Error(
      `${where}: '${x.key}' has shape [${x.shape.join(", ")}]; expected [samples, ...sample shape] (rank >= 2)`,
    );
  const n = x.shape[0] as number;
  if (y.shape.length < 1 || y.shape[0] !== n)
    throw new Error(
      `${where}: '${y.key}' has shape [${y.shape.join(", ")}] but '${x.key}' has ${n} samples; expected [${n}, ...]`,
    );
  if (layout !== "nchw" && layout !== "nhwc")
    throw new Error(`${where}: layout must be "nchw" or "nhwc", got ${JSON.stringify(layout)}`);
  if (layout === "nhwc" && x.shape.length !== 4)
    throw new Error(
      `${where}: layout nhwc needs '${x.key}' of rank 4 [N, H, W, C]; it has shape [${x.shape.join(", ")}]`,
    );
  const onDisk = x.shape.slice(1);
  const shape = layout === "nhwc" ? [onDisk[2], onDisk[0], onDisk[1]].map(Number) : onDisk;
  const per = shape.reduce((a, b) => a * b, 1);
  const name = options.name ?? source;

  const { labels, classes, targetShape } = targets(where, y);
  const common = { name, shape, labels, classes, ...(targetShape ? { targetShape } : {}) };

  if (x.dtype === "bool")
    throw new Error(
      `${where}: '${x.key}' has dtype bool; expected float samples, uint8 pixels or integer token ids`,
    );
  if (!FLOATS.has(x.dtype) && x.dtype !== "uint8") {
    if (normalize !== "none")
      throw new Error(
        `${where}: '${x.key}' holds ${x.dtype} token ids; normalization (${describeNormalization(normalize)}) applies to float or uint8 samples only`,
      );
    if (stream)
      throw new Error(
        `${where}: --stream reads float or uint8 samples; '${x.key}' holds ${x.dtype} token ids (load them without --stream)`,
      );
    const inputs = toInt32(x.readRows(0, n), `${where}: '${x.key}'`, "token ids");
    transposeInPlace(inputs, layout, onDisk, n);
    return { ...common, inputs, normalization: "token ids" };
  }

  const stats =
    normalize === "none"
      ? undefined
      : channelNormalization(
          normalize,
          channelCount(shape),
          `${where}: '${x.key}' (sample shape [${shape.join(", ")}])`,
        );
  const normalization = describeNormalization(stats ?? "none");
  const convert = floatConverter(x.dtype === "uint8", stats, layout, onDisk);
  if (stream) {
    const read = (start: number, count: number, out: Float32Array): void => {
      if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > n)
        throw new Error(`read(): samples ${start}..${start + count - 1} are outside 0..${n - 1}`);
      convert(x.readRows(start, count), count, out);
    };
    return { ...common, inputs: new Float32Array(0), read, normalization };
  }
  const inputs = new Float32Array(n * per);
  convert(x.readRows(0, n), n, inputs);
  return { ...common, inputs, normalization };
}

/** Integer array values as Int32Array, each checked to fit (`what` names them in the error). */
function toInt32(raw: ArrayLike<number>, where: string, what: string): Int32Array {
  const out = new Int32Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const v = raw[i] as number;
    if (v < INT32_MIN || v > INT32_MAX)
      throw new Error(`${where} element ${i} is ${v}; ${what} must fit int32 (${INT32_MIN}..${INT32_MAX})`);
    out[i] = v;
  }
  return out;
}

/** Class indices or regression targets from `y`. */
function targets(
  where: string,
  y: ArrayColumn,
): { labels: Int32Array | Float32Array; classes: number; targetShape?: number[] } {
  const n = y.shape[0] as number;
  const raw = y.readRows(0, n);
  if (FLOATS.has(y.dtype))
    return { labels: Float32Array.from(raw), classes: 0, targetShape: y.shape.slice(1) };
  const labels = toInt32(raw, `${where}: '${y.key}'`, "class indices");
  let max = -1;
  for (const v of labels) if (v > max) max = v;
  return {
    labels,
    classes: Math.max(2, max + 1),
    ...(y.shape.length > 1 ? { targetShape: y.shape.slice(1) } : {}),
  };
}

/**
 * The conversion of raw rows to float32 samples: pixels v -> float32(v / 255) (as the IDX and CIFAR readers
 * scale them), floats rounded to float32, then (x - mean[c]) / std[c] rounded to float32, transposed from NHWC.
 * Loaded and streamed datasets share it, so their samples are bit-identical.
 */
function floatConverter(
  pixels: boolean,
  stats: ChannelStats | undefined,
  layout: Layout,
  onDisk: readonly number[],
): (raw: NpyData, count: number, out: Float32Array) => void {
  const per = onDisk.reduce((a, b) => a * b, 1);
  const channels = layout === "nhwc" ? (onDisk[2] as number) : channelCount(onDisk);
  const plane = per / channels;
  // from[o]: where element o of a sample in output (NCHW) order sits in the disk order.
  const from = new Uint32Array(per);
  for (let c = 0; c < channels; c++)
    for (let j = 0; j < plane; j++)
      from[c * plane + j] = layout === "nhwc" ? j * channels + c : c * plane + j;
  const mean = stats?.mean ?? [];
  const std = stats?.std ?? [];
  return (raw, count, out) => {
    for (let i = 0; i < count; i++) {
      const base = i * per;
      for (let c = 0; c < channels; c++) {
        const m = mean[c];
        const s = std[c];
        for (let j = 0; j < plane; j++) {
          const o = c * plane + j;
          const v = raw[base + (from[o] as number)] as number;
          const f = pixels ? Math.fround(v / 255) : Math.fround(v);
          out[base + o] = m === undefined || s === undefined ? f : (f - m) / s;
        }
      }
    }
  };
}

/** Transposes token ids [N, H, W, C] to [N, C, H, W] in place (nothing to do for "nchw"). */
function transposeInPlace(data: Int32Array, layout: Layout, onDisk: readonly number[], n: number): void {
  if (layout === "nchw") return;
  const [h, w, c] = onDisk as [number, number, number];
  const per = h * w * c;
  const sample = new Int32Array(per);
  for (let i = 0; i < n; i++) {
    sample.set(data.subarray(i * per, (i + 1) * per));
    for (let ch = 0; ch < c; ch++)
      for (let j = 0; j < h * w; j++) data[i * per + ch * h * w + j] = sample[j * c + ch] as number;
  }
}

const SAFETENSORS_DTYPES: Record<SafetensorsDtype, ArrayDtype> = {
  F64: "float64",
  F32: "float32",
  F16: "float16",
  BF16: "bfloat16",
  I64: "int64",
  I32: "int32",
  I16: "int16",
  I8: "int8",
  U64: "uint64",
  U32: "uint32",
  U16: "uint16",
  U8: "uint8",
  BOOL: "bool",
};

/**
 * One split of a safetensors dataset: `x` and `y` for "train", `x_test` and `y_test` for "test" (see
 * `arrayDataset` for the rules). The file is loaded whole: `stream` is refused.
 *
 * @example
 * const train = readArrayDataset("data.safetensors", "train", { normalize: parseNormalize("cifar10") });
 */
export function readArrayDataset(path: string, split: Split, options: ArrayDatasetOptions = {}): Dataset {
  const source = `safetensors:${path}`;
  if (options.stream)
    throw new Error(
      `data '${source}': --stream reads .npy files, stored .npz members, CIFAR and IDX files; a safetensors dataset is loaded whole`,
    );
  const { tensors } = readSafetensors(path);
  const [xKey, yKey] = split === "train" ? ["x", "y"] : ["x_test", "y_test"];
  const get = (key: string): ArrayColumn => {
    const t = tensors.get(key);
    if (!t)
      throw new Error(
        `data '${source}': no tensor '${key}' for the ${split} split; the file holds ${[...tensors.keys()].join(", ") || "nothing"} (export_data(path, x, y, x_test=..., y_test=...)${split === "test" ? ", or give the test data with --test-data" : ""})`,
      );
    return tensorColumn(source, key, t);
  };
  return arrayDataset(source, get(xKey), get(yKey), {
    ...options,
    name: options.name ?? `${basename(path)}/${split}`,
  });
}

function tensorColumn(source: string, key: string, t: SafetensorsTensor): ArrayColumn {
  const dtype = SAFETENSORS_DTYPES[t.dtype];
  let data: NpyData;
  if (t.data instanceof BigInt64Array || t.data instanceof BigUint64Array) {
    const wide = t.data;
    const out = new Float64Array(wide.length);
    const limit = BigInt(Number.MAX_SAFE_INTEGER);
    for (let i = 0; i < wide.length; i++) {
      const v = wide[i] as bigint;
      if (v > limit || v < -limit)
        throw new Error(
          `data '${source}': '${key}' element ${i} is ${v}, beyond ±${Number.MAX_SAFE_INTEGER} (2^53 - 1), the integers a number holds exactly`,
        );
      out[i] = Number(v);
    }
    data = out;
  } else data = t.data;
  return memoryColumn(key, dtype, t.shape, data);
}

/**
 * An in-memory array as an `ArrayColumn`.
 *
 * @example
 * const y = memoryColumn("y", "int32", [3], new Int32Array([0, 1, 2]));
 */
export function memoryColumn(
  key: string,
  dtype: ArrayDtype,
  shape: readonly number[],
  data: NpyData,
): ArrayColumn {
  const perRow = shape.slice(1).reduce((a, b) => a * b, 1);
  return {
    key,
    dtype,
    shape,
    readRows: (start, count) => data.subarray(start * perRow, (start + count) * perRow),
  };
}

function fileColumn(key: string, file: NpyFile): ArrayColumn {
  return {
    key,
    dtype: file.dtype,
    shape: file.shape,
    readRows: (start, count) => file.readRows(start, count),
  };
}

/**
 * One split of an .npz dataset (np.savez or np.savez_compressed): arrays `x` and `y` for "train", `x_test` and
 * `y_test` for "test" (see `arrayDataset` for the rules). With `stream`, `x` must be stored uncompressed
 * (np.savez) so that its rows can be read by offset; `y` is always loaded.
 *
 * @example
 * const test = readNpzDataset("data.npz", "test", { layout: "nhwc", normalize: parseNormalize("imagenet") });
 */
export function readNpzDataset(path: string, split: Split, options: ArrayDatasetOptions = {}): Dataset {
  const source = `npz:${path}`;
  const { members } = openNpz(path);
  const [xKey, yKey] = split === "train" ? ["x", "y"] : ["x_test", "y_test"];
  const get = (key: string): NpzMember => {
    const m = members.get(key);
    if (!m)
      throw new Error(
        `data '${source}': no array '${key}' for the ${split} split; the archive holds ${[...members.keys()].join(", ") || "nothing"} (np.savez(path, x=..., y=..., x_test=..., y_test=...)${split === "test" ? ", or give the test data with --test-data" : ""})`,
      );
    return m;
  };
  const xm = get(xKey);
  const ym = get(yKey);
  let x: ArrayColumn;
  if (options.stream) {
    if (xm.method !== "stored")
      throw new Error(
        `data '${source}': --stream reads arrays stored uncompressed; '${xKey}' is compressed (np.savez_compressed): save with np.savez or as .npy files, or load it without --stream`,
      );
    x = fileColumn(xKey, xm.open());
  } else {
    const a = xm.load();
    x = memoryColumn(xKey, a.dtype, a.shape, a.data);
  }
  const ya = ym.load();
  return arrayDataset(source, x, memoryColumn(yKey, ya.dtype, ya.shape, ya.data), {
    ...options,
    name: options.name ?? `${basename(path)}/${split}`,
  });
}

/**
 * A dataset from two .npy files, samples and targets (see `arrayDataset` for the rules). Both are opened by
 * offset; samples are loaded whole unless `stream`.
 *
 * @example
 * const train = readNpyDataset("x_train.npy", "y_train.npy", { stream: true });
 */
export function readNpyDataset(xPath: string, yPath: string, options: ArrayDatasetOptions = {}): Dataset {
  const source = `npy:${xPath},${yPath}`;
  const xf = openNpy(xPath);
  const yf = openNpy(yPath);
  return arrayDataset(source, fileColumn(basename(xPath), xf), fileColumn(basename(yPath), yf), {
    ...options,
    name: options.name ?? `${basename(xPath)}+${basename(yPath)}`,
  });
}
