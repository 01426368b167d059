// The Fashion-MNIST subset shipped in the repository (data/fashion-mnist/:
// 10,000 training and 2,000 test images, class-balanced), so examples, tests
// and the demo run without downloading anything.

import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Dataset } from "./dataset.ts";
import { readMnist } from "./idx.ts";
import type { ChannelStats, Normalization } from "./transform.ts";

/** Fashion-MNIST class names, indexed by label (Xiao, Rasul & Vollgraf 2017). */
export const FASHION_MNIST_CLASSES = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
] as const;

/**
 * Pixel mean and standard deviation of the full 60,000-image Fashion-MNIST
 * training set, scaled to [0, 1]; the default normalization of `loadEmbedded`.
 *
 * @example
 * readMnist(images, labels, { normalize: FASHION_MNIST_STATS });
 */
export const FASHION_MNIST_STATS: ChannelStats = { mean: [0.286], std: [0.353] };

/**
 * A split of the embedded data: "train" (10,000 images) or "test" (2,000).
 *
 * @example
 * const split: EmbeddedSplit = "test";
 */
export type EmbeddedSplit = "train" | "test";

const TRAIN_IMAGES = "train-images-idx3-ubyte.gz";

/**
 * The folder holding the embedded IDX files, found by walking up from this
 * module (so it works from src/ and from a compiled dist/src/ alike).
 *
 * @example
 * embeddedDataDir(); // "/path/to/losscape/data/fashion-mnist"
 */
export function embeddedDataDir(): string {
  const searched: string[] = [];
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 5; up++) {
    const candidate = join(dir, "data", "fashion-mnist");
    if (existsSync(join(candidate, TRAIN_IMAGES))) return candidate;
    searched.push(candidate);
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new Error(
    `loadEmbedded(): the embedded Fashion-MNIST files (${TRAIN_IMAGES}, ...) were not found; looked in ${searched.join(", ")}`,
  );
}

/**
 * Loads a split of the embedded Fashion-MNIST subset as a Dataset of shape
 * [1, 28, 28] with labels 0..9 (see `FASHION_MNIST_CLASSES`), normalized
 * with `FASHION_MNIST_STATS` unless `normalize` says otherwise.
 *
 * @example
 * const train = loadEmbedded("train"); // 10,000 samples
 * const raw = loadEmbedded("test", { normalize: "none" }); // pixels in [0, 1]
 */
export function loadEmbedded(
  split: EmbeddedSplit,
  options: { readonly normalize?: Normalization } = {},
): Dataset {
  const { normalize = FASHION_MNIST_STATS } = options;
  let prefix: string;
  switch (split) {
    case "train":
      prefix = "train";
      break;
    case "test":
      prefix = "t10k";
      break;
    default:
      throw new Error(
        `loadEmbedded(): 'split' must be "train" or "test", got ${JSON.stringify(split satisfies never)}`,
      );
  }
  const dir = embeddedDataDir();
  return readMnist(join(dir, `${prefix}-images-idx3-ubyte.gz`), join(dir, `${prefix}-labels-idx1-ubyte.gz`), {
    normalize,
    name: `fashion-mnist-embedded/${split}`,
    classes: FASHION_MNIST_CLASSES.length,
  });
}
