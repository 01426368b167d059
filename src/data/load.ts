// Resolves a dataset spec ("fashion-mnist", "cifar10:DIR", "npz:FILE", "tokens:FILE.bin", ...) and a split
// into a normalized Dataset, optionally a seeded subset: the one entry point the CLI and the library use to get
// evaluation data. Options are plain JSON values, because the queue stores them with a job.

import { existsSync } from "node:fs";
import { basename, join } from "node:path";
import {
  arrayDataset,
  type Layout,
  memoryColumn,
  readArrayDataset,
  readNpyDataset,
  readNpzDataset,
} from "./arrays.ts";
import { readCifar } from "./cifar.ts";
import type { Dataset } from "./dataset.ts";
import { loadEmbedded } from "./embedded.ts";
import { readMnist } from "./idx.ts";
import { readImageFolder } from "./images.ts";
import { streamCifar, streamIdx } from "./stream.ts";
import { loadEmbeddedText, readTokens, type TokenDtype } from "./tokens.ts";
import {
  type ChannelStats,
  channelNormalization,
  describeNormalization,
  NORMALIZATION_PRESETS,
  type NormalizeSpec,
  parseNormalize,
  type SubsetSpec,
  subset,
} from "./transform.ts";

/** Which part of a dataset. */
export type Split = "train" | "test";

/** Standard per-channel statistics of the datasets losscape reads (also `--normalize` presets). */
export const DATASET_STATS = {
  "fashion-mnist": NORMALIZATION_PRESETS["fashion-mnist"],
  mnist: NORMALIZATION_PRESETS.mnist,
  cifar10: NORMALIZATION_PRESETS.cifar10,
  cifar100: NORMALIZATION_PRESETS.cifar100,
} as const satisfies Record<string, ChannelStats>;

/**
 * Options of loadDataset; every field is a plain JSON value (the queue stores them).
 *
 * @example
 * const options: LoadOptions = { normalize: "imagenet", layout: "nhwc", testData: "npz:test.npz", subset: { count: 512 } };
 */
export interface LoadOptions {
  /** Keep a seeded subset of the samples (of the windows, for token data: chosen before reading). */
  subset?: SubsetSpec;
  /** Seed of the subset (default 0). */
  seed?: number;
  /**
   * Read samples from disk batch by batch instead of loading them: CIFAR, uncompressed IDX folders, npy files and
   * npz members stored uncompressed (np.savez). Default false.
   */
  stream?: boolean;
  /**
   * Normalization in the CLI syntax of `parseNormalize` ("MEAN/STD", "none" or a preset). Default: the dataset's
   * standard statistics for fashion-mnist, mnist, cifar10 and cifar100, "none" for every other kind. Refused
   * for token data (other than "none").
   */
  normalize?: string;
  /** Layout of rank-4 array samples on disk, npz / npy / safetensors only (default "nchw"). */
  layout?: Layout;
  /** Token file element type, tokens only (default "uint16"). */
  dtype?: TokenDtype;
  /** Tokens per window, tokens only (default 256). */
  context?: number;
  /** Vocabulary size, tokens only (default 256 for the embedded text, else 1 + the largest id in the file). */
  vocab?: number;
  /**
   * A spec of the same syntax read as the "test" split (used instead of the data's own test split, if any). It is
   * read as a dataset of its own: `x` / `y` of an npz or safetensors file, the files of npy / tokens:FILE, an
   * images:DIR folder as given (its class folders, or its train/), the test split of a built-in dataset. Kinds without a test split of their own (npy, tokens:FILE, an npz or
   * safetensors file without x_test / y_test) need it for the test split.
   */
  testData?: string;
  /** Image folders only (`images:DIR`): resize the shorter side to this many pixels (default: as they are). */
  resize?: number;
  /** Image folders only: the centred crop of this many pixels square (default: none). */
  crop?: number;
  /** Image folders only: keep the decoded pixels in DIR/.losscape-cache for the next read (default true). */
  cache?: boolean;
}

const KINDS = [
  "fashion-mnist",
  "mnist",
  "cifar10",
  "cifar100",
  "safetensors",
  "npz",
  "npy",
  "tokens",
  "images",
] as const;
type Kind = (typeof KINDS)[number];

/**
 * Loads a dataset by spec:
 * - `fashion-mnist` (the embedded subset), `fashion-mnist:DIR` or `mnist:DIR` (IDX files, plain or .gz,
 *   standard names), `cifar10:DIR` (cifar-10-batches-bin), `cifar100:DIR` (cifar-100-binary, fine labels);
 * - `npz:FILE` (arrays x, y and optionally x_test, y_test), `npy:X.npy,Y.npy`, `safetensors:FILE` (tensors
 *   x, y, x_test, y_test): see `arrayDataset` for how samples and targets are read;
 * - `tokens` (the embedded text: data/text/train.bin for "train", val.bin for "test", vocab 256) or
 *   `tokens:FILE.bin` (token windows, see `readTokens`);
 * - `images:DIR`, a torchvision-style image folder (DIR/train/CLASS/*.png|jpg and DIR/val/ or DIR/test/ for
 *   "test", or DIR/CLASS/... for one split; see `readImageFolder`), pixels scaled by 1/255 like uint8 arrays,
 *   then normalized; `resize` and `crop` as torchvision's Resize and CenterCrop.
 * The result's `normalization` says what was applied.
 *
 * @example
 * const test = loadDataset("fashion-mnist", "test", { subset: { count: 500 }, seed: 1 });
 * const train = loadDataset("npz:data.npz", "train", { normalize: "imagenet", layout: "nhwc" });
 */
export function loadDataset(spec: string, split: Split, options: LoadOptions = {}): Dataset {
  const own = split === "test" && options.testData !== undefined;
  const [kind, path] = parseSpec(own ? (options.testData as string) : spec, own ? "--test-data" : "data");
  const data = loadKind(kind, path, own ? (options.testData as string) : spec, split, options, own);
  // Token windows are subset before reading (same name and samples as subsetting afterwards).
  if (!options.subset || kind === "tokens") return data;
  return subset(data, { ...options.subset, seed: options.seed ?? 0 });
}

function loadKind(
  kind: Kind,
  path: string | undefined,
  spec: string,
  split: Split,
  options: LoadOptions,
  testFile: boolean,
): Dataset {
  const where = `data '${spec}'`;
  const refuse = (option: string, flag: string, applies: string): never => {
    throw new Error(`${where}: ${flag} (LoadOptions.${option}) applies to ${applies} only`);
  };
  if (kind !== "tokens")
    for (const [option, flag] of [
      ["dtype", "--dtype"],
      ["context", "--context"],
      ["vocab", "--vocab"],
    ] as const)
      if (options[option] !== undefined) refuse(option, flag, "token data (tokens, tokens:FILE)");
  if (
    options.layout !== undefined &&
    options.layout !== "nchw" &&
    !["npz", "npy", "safetensors"].includes(kind)
  )
    refuse("layout", `--layout ${options.layout}`, "array data (npz, npy, safetensors)");
  if (kind !== "images")
    for (const [option, flag] of [
      ["resize", "--resize"],
      ["crop", "--crop"],
    ] as const)
      if (options[option] !== undefined) refuse(option, flag, "image folders (images:DIR)");
  const norm = options.normalize === undefined ? undefined : parseNormalize(options.normalize);
  const needsTestData = (what: string): never => {
    throw new Error(
      `${where}: ${what} has no test split of its own; give the test data with --test-data (LoadOptions.testData)`,
    );
  };
  switch (kind) {
    case "fashion-mnist":
    case "mnist": {
      const name = `${kind}/${split}`;
      const how = builtinNormalization(norm ?? DATASET_STATS[kind], 1, where);
      if (path === undefined) {
        if (kind === "mnist")
          throw new Error(
            `${where}: 'mnist' needs a folder: mnist:DIR (with train-images-idx3-ubyte[.gz] ...)`,
          );
        return { ...loadEmbedded(split, { normalize: how.stats ?? "none" }), normalization: how.text };
      }
      const prefix = split === "train" ? "train" : "t10k";
      const images = find(path, `${prefix}-images-idx3-ubyte`);
      const labels = find(path, `${prefix}-labels-idx1-ubyte`);
      const data = options.stream
        ? streamIdx(images, labels, { normalize: how.streamed, name })
        : readMnist(images, labels, { normalize: how.stats ?? "none", name });
      return { ...data, normalization: how.text };
    }
    case "cifar10":
    case "cifar100": {
      if (path === undefined)
        throw new Error(
          `${where}: '${kind}' needs a folder: ${kind}:DIR (${kind === "cifar10" ? "cifar-10-batches-bin" : "cifar-100-binary"})`,
        );
      const files =
        kind === "cifar100"
          ? [`${split}.bin`]
          : split === "train"
            ? [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`)
            : ["test_batch.bin"];
      const paths = files.map((f) => find(path, f, false));
      const how = builtinNormalization(norm ?? DATASET_STATS[kind], 3, where);
      const name = `${kind}/${split}`;
      const data = options.stream
        ? streamCifar(paths, { variant: kind, normalize: how.streamed, name })
        : readCifar(paths, { variant: kind, normalize: how.stats ?? "none", name });
      return { ...data, normalization: how.text };
    }
    case "safetensors":
    case "npz": {
      if (path === undefined)
        throw new Error(
          `${where}: '${kind}' needs a file: ${kind}:FILE (${kind === "npz" ? "arrays" : "tensors"} x, y and optionally x_test, y_test)`,
        );
      const array = {
        ...(norm !== undefined ? { normalize: norm } : {}),
        ...(options.layout !== undefined ? { layout: options.layout } : {}),
        ...(options.stream ? { stream: true } : {}),
        name: `${basename(path)}/${split}`,
      };
      // A --test-data file is read through its own x and y.
      const keys = testFile ? "train" : split;
      return kind === "npz" ? readNpzDataset(path, keys, array) : readArrayDataset(path, keys, array);
    }
    case "npy": {
      if (path === undefined) throw new Error(`${where}: 'npy' needs two files: npy:X.npy,Y.npy`);
      if (split === "test" && !testFile) needsTestData("an npy:X.npy,Y.npy pair");
      const [x, y] = path.split(",") as [string, string];
      return readNpyDataset(x, y, {
        ...(norm !== undefined ? { normalize: norm } : {}),
        ...(options.layout !== undefined ? { layout: options.layout } : {}),
        ...(options.stream ? { stream: true } : {}),
        name: `${basename(x)}+${basename(y)}/${split}`,
      });
    }
    case "tokens": {
      if (norm !== undefined && norm !== "none")
        throw new Error(
          `${where}: --normalize ${options.normalize} (LoadOptions.normalize) does not apply to token ids`,
        );
      if (options.stream)
        throw new Error(
          `${where}: --stream does not apply to token data: only the chosen windows are read from the file, by offset`,
        );
      const windows = {
        ...(options.context !== undefined ? { context: options.context } : {}),
        ...(options.vocab !== undefined ? { vocab: options.vocab } : {}),
        ...(options.subset ? { subset: { ...options.subset, seed: options.seed ?? 0 } } : {}),
      };
      if (path === undefined) {
        if (options.dtype !== undefined && options.dtype !== "uint16")
          throw new Error(
            `${where}: the embedded text is uint16 tokens; --dtype ${options.dtype} does not apply`,
          );
        return loadEmbeddedText(split, windows);
      }
      if (split === "test" && !testFile) needsTestData("a tokens:FILE stream");
      return readTokens(path, {
        ...windows,
        ...(options.dtype !== undefined ? { dtype: options.dtype } : {}),
        name: `${basename(path)}/${split}`,
      });
    }
    case "images": {
      if (path === undefined)
        throw new Error(
          `${where}: 'images' needs a folder: images:DIR (DIR/train/CLASS/*.png|jpg, DIR/val/...)`,
        );
      if (options.stream)
        throw new Error(
          `${where}: --stream does not apply to image folders; the decoded pixels are cached in DIR/.losscape-cache/ and loaded whole`,
        );
      // A --test-data folder is read as given (its own class folders, or its train/ subfolder).
      const folder = readImageFolder(path, {
        ...(options.resize !== undefined ? { resize: options.resize } : {}),
        ...(options.crop !== undefined ? { crop: options.crop } : {}),
        ...(options.cache !== undefined ? { cache: options.cache } : {}),
        split: testFile ? "train" : split,
      });
      const n = folder.labels.length;
      const data = arrayDataset(
        `images:${path}`,
        memoryColumn("pixels", "uint8", [n, ...folder.shape], folder.pixels),
        memoryColumn("labels", "int32", [n], folder.labels),
        { ...(norm !== undefined ? { normalize: norm } : {}), name: `${basename(path)}/${split}` },
      );
      return { ...data, classes: folder.classes.length };
    }
    default:
      kind satisfies never;
      throw new Error("unreachable");
  }
}

/**
 * A built-in reader's normalization: the statistics for in-memory readers (undefined for none), the statistics
 * for streaming readers (which always normalize: none is mean 0, std 1, which leaves every float32 unchanged),
 * and the text recorded.
 */
function builtinNormalization(
  spec: NormalizeSpec,
  channels: number,
  where: string,
): { stats: ChannelStats | undefined; streamed: ChannelStats; text: string } {
  if (spec === "none")
    return {
      stats: undefined,
      streamed: { mean: new Array(channels).fill(0), std: new Array(channels).fill(1) },
      text: "none",
    };
  const stats = channelNormalization(spec, channels, where);
  return { stats, streamed: stats, text: describeNormalization(stats) };
}

function parseSpec(spec: string, flag: string): [Kind, string | undefined] {
  const at = spec.indexOf(":");
  const kind = at < 0 ? spec : spec.slice(0, at);
  const path = at < 0 ? undefined : spec.slice(at + 1);
  const where = `${flag} '${spec}'`;
  if (!(KINDS as readonly string[]).includes(kind)) {
    throw new Error(
      `${where}: unknown dataset '${kind}'; expected one of ${KINDS.join(", ")} (optionally KIND:PATH)`,
    );
  }
  if (path === undefined) return [kind as Kind, path];
  if (kind === "npy") {
    const files = path.split(",");
    if (files.length !== 2 || files.some((f) => f === ""))
      throw new Error(`${where}: expected npy:X.npy,Y.npy (two files, samples then targets), got '${path}'`);
    for (const f of files) if (!existsSync(f)) throw new Error(`${where}: file '${f}' does not exist`);
    return [kind, path];
  }
  const isFile = kind === "safetensors" || kind === "npz" || kind === "tokens";
  if (!existsSync(path)) throw new Error(`${where}: ${isFile ? "file" : "folder"} '${path}' does not exist`);
  return [kind as Kind, path];
}

function find(dir: string, name: string, gzipToo = true): string {
  for (const candidate of gzipToo ? [name, `${name}.gz`] : [name]) {
    const path = join(dir, candidate);
    if (existsSync(path)) return path;
  }
  throw new Error(`folder '${dir}' has no '${name}'${gzipToo ? ` (or '${name}.gz')` : ""}`);
}
