// Resolves a dataset spec ("fashion-mnist", "mnist:DIR", "cifar10:DIR", ...)
// and a split into a normalized Dataset, optionally a seeded subset: the one
// entry point the CLI and the library use to get evaluation data.

import { existsSync } from "node:fs";
import { join } from "node:path";
import { readArrayDataset } from "./arrays.ts";
import { readCifar } from "./cifar.ts";
import type { Dataset } from "./dataset.ts";
import { loadEmbedded } from "./embedded.ts";
import { readMnist } from "./idx.ts";
import { streamCifar, streamIdx } from "./stream.ts";
import { type ChannelStats, type SubsetSpec, subset } from "./transform.ts";

/** Which part of a dataset. */
export type Split = "train" | "test";

/** Standard per-channel statistics of the datasets losscape reads. */
export const DATASET_STATS = {
  "fashion-mnist": { mean: [0.286], std: [0.353] },
  mnist: { mean: [0.1307], std: [0.3081] },
  cifar10: { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] },
  cifar100: { mean: [0.5071, 0.4865, 0.4409], std: [0.2673, 0.2564, 0.2762] },
} as const satisfies Record<string, ChannelStats>;

/** Options of loadDataset. */
export interface LoadOptions {
  /** Keep a seeded subset of the samples. */
  subset?: SubsetSpec;
  /** Seed of the subset (default 0). */
  seed?: number;
  /** Read samples from disk batch by batch instead of loading them (CIFAR, uncompressed IDX folders). */
  stream?: boolean;
}

const KINDS = ["fashion-mnist", "mnist", "cifar10", "cifar100", "safetensors"] as const;

/**
 * Loads a dataset by spec: `fashion-mnist` (the embedded subset), `fashion-mnist:DIR` or `mnist:DIR` (IDX files,
 * plain or .gz, standard names), `cifar10:DIR` (cifar-10-batches-bin), `cifar100:DIR` (cifar-100-binary, fine labels).
 *
 * @example
 * const test = loadDataset("fashion-mnist", "test", { subset: { count: 500 }, seed: 1 });
 */
export function loadDataset(spec: string, split: Split, options: LoadOptions = {}): Dataset {
  const [kind, dir] = splitSpec(spec);
  let data: Dataset;
  switch (kind) {
    case "fashion-mnist":
    case "mnist": {
      if (dir === undefined) {
        if (kind === "mnist")
          throw new Error(`data 'mnist' needs a folder: mnist:DIR (with train-images-idx3-ubyte[.gz] ...)`);
        data = loadEmbedded(split);
        break;
      }
      const prefix = split === "train" ? "train" : "t10k";
      if (options.stream) {
        data = streamIdx(find(dir, `${prefix}-images-idx3-ubyte`), find(dir, `${prefix}-labels-idx1-ubyte`), {
          normalize: DATASET_STATS[kind],
          name: `${kind}/${split}`,
        });
        break;
      }
      data = readMnist(find(dir, `${prefix}-images-idx3-ubyte`), find(dir, `${prefix}-labels-idx1-ubyte`), {
        normalize: DATASET_STATS[kind],
        name: `${kind}/${split}`,
      });
      break;
    }
    case "cifar10": {
      if (dir === undefined)
        throw new Error(`data 'cifar10' needs a folder: cifar10:DIR (cifar-10-batches-bin)`);
      const files =
        split === "train" ? [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`) : ["test_batch.bin"];
      if (options.stream) {
        data = streamCifar(
          files.map((f) => find(dir, f, false)),
          { variant: "cifar10", normalize: DATASET_STATS.cifar10, name: `cifar10/${split}` },
        );
        break;
      }
      data = readCifar(
        files.map((f) => find(dir, f, false)),
        { variant: "cifar10", normalize: DATASET_STATS.cifar10, name: `cifar10/${split}` },
      );
      break;
    }
    case "cifar100": {
      if (dir === undefined)
        throw new Error(`data 'cifar100' needs a folder: cifar100:DIR (cifar-100-binary)`);
      if (options.stream) {
        data = streamCifar([find(dir, `${split}.bin`, false)], {
          variant: "cifar100",
          normalize: DATASET_STATS.cifar100,
          name: `cifar100/${split}`,
        });
        break;
      }
      data = readCifar([find(dir, `${split}.bin`, false)], {
        variant: "cifar100",
        normalize: DATASET_STATS.cifar100,
        name: `cifar100/${split}`,
      });
      break;
    }
    case "safetensors": {
      if (dir === undefined)
        throw new Error(
          `data 'safetensors' needs a file: safetensors:FILE (x, y and x_test, y_test tensors)`,
        );
      if (options.stream)
        throw new Error(
          `data '${spec}': --stream reads CIFAR and IDX files; a safetensors dataset is loaded whole`,
        );
      data = readArrayDataset(dir, split);
      break;
    }
    default:
      kind satisfies never;
      throw new Error("unreachable");
  }
  return options.subset ? subset(data, { ...options.subset, seed: options.seed ?? 0 }) : data;
}

function splitSpec(spec: string): [(typeof KINDS)[number], string | undefined] {
  const at = spec.indexOf(":");
  const kind = at < 0 ? spec : spec.slice(0, at);
  const dir = at < 0 ? undefined : spec.slice(at + 1);
  if (!(KINDS as readonly string[]).includes(kind)) {
    throw new Error(
      `data '${spec}': unknown dataset '${kind}'; expected one of ${KINDS.join(", ")} (optionally KIND:DIR)`,
    );
  }
  if (dir !== undefined && !existsSync(dir))
    throw new Error(`data '${spec}': ${kind === "safetensors" ? "file" : "folder"} '${dir}' does not exist`);
  return [kind as (typeof KINDS)[number], dir];
}

function find(dir: string, name: string, gzipToo = true): string {
  for (const candidate of gzipToo ? [name, `${name}.gz`] : [name]) {
    const path = join(dir, candidate);
    if (existsSync(path)) return path;
  }
  throw new Error(`folder '${dir}' has no '${name}'${gzipToo ? ` (or '${name}.gz')` : ""}`);
}
