// Option groups shared by several commands (model, data, engine), and the
// code that turns them into library objects.

import type { Command, OptionValues } from "@commander-js/extra-typings";
import type { Dataset } from "../data/dataset.ts";
import { type LoadOptions, loadDataset, type Split } from "../data/load.ts";
import { parseSubset } from "../data/transform.ts";
import { DEFAULT_IGNORE_INDEX, LOSS_NAMES, type LossName, type TaskOptions } from "../engine/task.ts";
import {
  BATCH_NORM_HANDLINGS,
  type BatchNormHandling,
  DEFAULT_BN_BATCH_SIZE,
  DEFAULT_BN_BATCHES,
} from "../landscape/bn.ts";
import { parseRefine } from "../landscape/surface.ts";
import type { Model } from "../model/model.ts";
import { openModel } from "../model/open.ts";
import { integer, nonNegativeInt, nonNegativeNumber, oneOf, positiveInt, regex, shape } from "./_parse.ts";

export const SPLITS = ["train", "test"] as const satisfies readonly Split[];
export const LOSSES = LOSS_NAMES;

/** --model, --params, --input, --output, --input-shape, --allow-folded-bn, --trainable, --constant. */
export function modelOptions<A extends unknown[], O extends OptionValues, G extends OptionValues>(
  cmd: Command<A, O, G>,
) {
  return cmd
    .requiredOption("--model <model>", "an .onnx file or a zoo name")
    .option("--params <file>", "safetensors file with the parameters (matched by name)")
    .option("--input <name>", "graph input holding the samples (when the graph has several)")
    .option("--output <name>", "graph output holding the logits (when the graph has several)")
    .option(
      "--input-shape <shape>",
      "shape of one sample, e.g. 3,32,32 (zoo models: default from the data)",
      shape("--input-shape"),
    )
    .option("--allow-folded-bn", "accept a graph whose BatchNorm was folded into Conv weights")
    .option(
      "--trainable <regex>",
      "float initializers whose names match are parameters, whatever reads them (see losscape describe)",
      regex("--trainable"),
    )
    .option(
      "--constant <regex>",
      "float initializers whose names match stay constant (not moved, not trained)",
      regex("--constant"),
    )
    .option(
      "--loss-output <name>",
      "graph output holding the model's own scalar loss (inputs: samples and targets); evaluated and differentiated as it is",
    )
    .option(
      "--targets-input <name>",
      "graph input taking the targets of --loss-output (default: the other input)",
    );
}

/** The parsed model options. */
export interface ModelFlags {
  model: string;
  params?: string;
  input?: string;
  output?: string;
  inputShape?: number[];
  allowFoldedBn?: true;
  trainable?: RegExp;
  constant?: RegExp;
  lossOutput?: string;
  targetsInput?: string;
  /** Seed of a zoo model's initial parameters. */
  initSeed?: number;
}

/** Opens the model the flags name; zoo models take their input shape and classes from `data`. */
export async function openFromFlags(
  o: ModelFlags,
  data?: Dataset,
): Promise<{ model: Model; params: Float32Array }> {
  const opened = await openModel(o.model, {
    ...(o.inputShape ? { inputShape: o.inputShape } : data ? { inputShape: data.shape } : {}),
    ...(data ? { classes: data.classes } : {}),
    ...(o.params ? { params: o.params } : {}),
    ...(o.input ? { input: o.input } : {}),
    ...(o.output ? { output: o.output } : {}),
    allowFoldedBatchNorm: Boolean(o.allowFoldedBn),
    ...(o.trainable ? { trainable: o.trainable } : {}),
    ...(o.constant ? { constant: o.constant } : {}),
    ...(o.lossOutput ? { lossOutput: o.lossOutput } : {}),
    ...(o.targetsInput ? { targetsInput: o.targetsInput } : {}),
    ...(o.initSeed !== undefined ? { seed: o.initSeed } : {}),
  });
  for (const w of opened.model.warnings) console.error(`warning: ${w}`);
  return opened;
}

const DATA_HELP =
  "fashion-mnist (embedded), fashion-mnist:DIR, mnist:DIR, cifar10:DIR, cifar100:DIR, npz:FILE, npy:X.npy,Y.npy, safetensors:FILE, images:DIR, tokens (embedded text), tokens:FILE.bin";

/**
 * --data, --test-data, --subset, --data-seed, --normalize, --layout, --stream, --resize, --crop,
 * --dtype, --context, --vocab (what the data is) and --batch-size, --loss, --ignore-index,
 * --class-axis, --threads (how it is scored and run).
 */
export function dataOptions<A extends unknown[], O extends OptionValues, G extends OptionValues>(
  cmd: Command<A, O, G>,
) {
  return cmd
    .option("--data <spec>", DATA_HELP, "fashion-mnist")
    .option(
      "--test-data <spec>",
      "the test split, for data without one (npy, a single-split npz/safetensors, tokens:FILE, images:DIR without train/ and val/)",
    )
    .option("--subset <n>", "a seeded subset: a count (1000), a fraction (0.1) or a percentage (10%)")
    .option("--data-seed <n>", "seed of the subset", nonNegativeInt("--data-seed"), 0)
    .option(
      "--normalize <spec>",
      "per-channel MEAN/STD (e.g. 0.485,0.456,0.406/0.229,0.224,0.225), none, or a preset: imagenet, cifar10, cifar100, mnist, fashion-mnist (default: the dataset's own statistics for the built-in kinds, none otherwise)",
    )
    .option(
      "--layout <layout>",
      "channel layout of array samples: nchw or nhwc",
      oneOf("--layout", ["nchw", "nhwc"] as const),
    )
    .option(
      "--stream",
      "read samples from disk batch by batch (CIFAR, uncompressed IDX, .npy, stored .npz): memory independent of the data size",
    )
    .option(
      "--resize <n>",
      "images: resize the shorter side to n pixels (bilinear, antialiased)",
      positiveInt("--resize"),
    )
    .option("--crop <n>", "images: centre crop of n x n pixels", positiveInt("--crop"))
    .option(
      "--dtype <type>",
      "tokens: uint16 (default) or uint32",
      oneOf("--dtype", ["uint16", "uint32"] as const),
    )
    .option("--context <n>", "tokens: window length T (default 256)", positiveInt("--context"))
    .option(
      "--vocab <n>",
      "tokens: vocabulary size (default: 1 + the largest id in the file)",
      positiveInt("--vocab"),
    )
    .option("--batch-size <n>", "samples per forward pass", positiveInt("--batch-size"), 256)
    .option(
      "--loss <name>",
      "cross-entropy, mse (regression against real-valued targets) or mse-onehot (softmax vs one-hot, the reference's mse)",
      oneOf("--loss", LOSSES),
      "cross-entropy" as LossName,
    )
    .option(
      "--ignore-index <n>",
      `class targets equal to this count for nothing (default ${DEFAULT_IGNORE_INDEX}, PyTorch's)`,
      integer("--ignore-index"),
    )
    .option(
      "--class-axis <axis>",
      "axis of the logits holding the classes: -1 ([N, T, V]) or 1 ([N, C, H, W]); default: the one that fits the targets",
      oneOf("--class-axis", ["1", "-1"] as const),
    )
    .option("--threads <n>", "ONNX Runtime threads (default: all cores)", positiveInt("--threads"));
}

/** The data flags as dataOptions parses them. */
export interface DataFlags {
  data: string;
  testData?: string;
  subset?: string;
  dataSeed: number;
  normalize?: string;
  layout?: "nchw" | "nhwc";
  stream?: true;
  resize?: number;
  crop?: number;
  dtype?: "uint16" | "uint32";
  context?: number;
  vocab?: number;
}

/** How the data flags read a dataset, apart from the subset (plain JSON values: the queue stores them). */
export function readOptionsFromFlags(o: DataFlags): Omit<LoadOptions, "subset" | "seed"> {
  return {
    ...(o.testData !== undefined ? { testData: o.testData } : {}),
    ...(o.normalize !== undefined ? { normalize: o.normalize } : {}),
    ...(o.layout !== undefined ? { layout: o.layout } : {}),
    ...(o.stream ? { stream: true } : {}),
    ...(o.resize !== undefined ? { resize: o.resize } : {}),
    ...(o.crop !== undefined ? { crop: o.crop } : {}),
    ...(o.dtype !== undefined ? { dtype: o.dtype } : {}),
    ...(o.context !== undefined ? { context: o.context } : {}),
    ...(o.vocab !== undefined ? { vocab: o.vocab } : {}),
  };
}

/** Loads one split with the data flags. */
export function loadFromFlags(o: DataFlags, split: Split): Dataset {
  return loadDataset(o.data, split, {
    ...readOptionsFromFlags(o),
    ...(o.subset ? { subset: parseSubset(o.subset) } : {}),
    seed: o.dataSeed,
  });
}

/**
 * What a result file records about its data: the specs, and the normalization each split got.
 *
 * @example
 * meta: { ...dataMeta(o, train, test) } // { data: "cifar10:DIR", normalization: "mean ... std ..." }
 */
export function dataMeta(o: DataFlags, train: Dataset, test?: Dataset): Record<string, string> {
  return {
    data: o.data,
    ...(o.testData !== undefined && test ? { test_data: o.testData } : {}),
    ...(train.normalization !== undefined ? { normalization: train.normalization } : {}),
  };
}

/** The task flags (--loss, --ignore-index, --class-axis) as TaskOptions. */
export function taskFromFlags(o: {
  loss: LossName;
  ignoreIndex?: number;
  classAxis?: "1" | "-1";
}): TaskOptions {
  return {
    loss: o.loss,
    ...(o.ignoreIndex !== undefined ? { ignoreIndex: o.ignoreIndex } : {}),
    ...(o.classAxis !== undefined ? { classAxis: Number(o.classAxis) as 1 | -1 } : {}),
  };
}

/**
 * --loss-cap (stop a point once its mean provably exceeds C) and --plan (print the points, samples
 * and estimated time, then exit) for the commands that compute landscapes.
 */
export function costOptions<A extends unknown[], O extends OptionValues, G extends OptionValues>(
  cmd: Command<A, O, G>,
) {
  return prefixCacheOptions(cmd)
    .option(
      "--loss-cap <c>",
      "stop a point as soon as the losses summed so far prove its mean exceeds c; it is stored as a lower bound, status capped",
      nonNegativeNumber("--loss-cap"),
    )
    .option("--plan", "print points x samples and the estimated time (from a short timed probe), then exit")

    .option(
      "--refine <tol>",
      "adaptive grid: compute a coarse subgrid, refine cells whose midpoints differ from interpolation by more than tol (loss units, 0.01, or % of the contour spacing, 10%), interpolate the rest",
      (text: string) => parseRefine(text),
    );
}

/** --cache-memory, --cache-disk, --cache-dir, --no-prefix-cache: the prefix cache of surfaces (docs/landscapes.md). */
export function prefixCacheOptions<A extends unknown[], O extends OptionValues, G extends OptionValues>(
  cmd: Command<A, O, G>,
) {
  return cmd
    .option(
      "--cache-memory <MiB>",
      "prefix cache: when the directions move only some parameters (--only), the graph's outputs they cannot reach are computed once per batch and kept, up to this much memory",
      nonNegativeNumber("--cache-memory"),
      1024,
    )
    .option(
      "--cache-disk <MiB>",
      "prefix cache: then up to this much in a temporary file (0: none)",
      nonNegativeNumber("--cache-disk"),
      4096,
    )
    .option("--cache-dir <dir>", "prefix cache: folder of the temporary file (default: the system's)")
    .option("--no-prefix-cache", "evaluate the whole graph at every point");
}

/** The prefix-cache limits of those flags, or false for --no-prefix-cache. */
export function cacheLimits(o: {
  cacheMemory: number;
  cacheDisk: number;
  cacheDir?: string;
  prefixCache: boolean;
}): false | { memoryBytes: number; diskBytes: number; dir?: string } {
  if (!o.prefixCache) return false;
  return {
    memoryBytes: o.cacheMemory * 2 ** 20,
    diskBytes: o.cacheDisk * 2 ** 20,
    ...(o.cacheDir ? { dir: o.cacheDir } : {}),
  };
}

/** --only <regex>: directions move only the parameters whose names match. */
export function onlyOption<A extends unknown[], O extends OptionValues, G extends OptionValues>(
  cmd: Command<A, O, G>,
  help = "move only the parameters whose names match (e.g. '^layer4\\.' or 'attn'); the others stay fixed",
) {
  return cmd.option("--only <regex>", help, regex("--only"));
}

/**
 * The --only part of a direction plan, and the direction-file field an existing file must match
 * (directionsAt's `expected`): a file made with another --only moves other parameters.
 */
export function onlyPlan(o: { only?: RegExp }): {
  plan: { only?: RegExp };
  expected: Record<string, string>;
} {
  return { plan: o.only ? { only: o.only } : {}, expected: { only: o.only?.source ?? "" } };
}

/**
 * --bn, --bn-batches, --bn-batch-size and --bn-seed (surface, interpolate, connect): batch-norm
 * running statistics at each point, interpolated like weights or recomputed from seeded training
 * batches (src/landscape/bn.ts). `fallback` says what "interpolate" does for this command.
 */
export function batchNormOptions<A extends unknown[], O extends OptionValues, G extends OptionValues>(
  cmd: Command<A, O, G>,
  mode: BatchNormHandling,
  fallback: string,
) {
  return cmd
    .option(
      "--bn <mode>",
      `batch-norm running statistics at each point: interpolate (${fallback}; the reference's semantics) or recompute (from --bn-batches training batches, as mode-connectivity work does)`,
      oneOf("--bn", BATCH_NORM_HANDLINGS),
      mode,
    )
    .option(
      "--bn-batches <k>",
      "--bn recompute: training batches per point",
      positiveInt("--bn-batches"),
      DEFAULT_BN_BATCHES,
    )
    .option(
      "--bn-batch-size <n>",
      "--bn recompute: samples per batch",
      positiveInt("--bn-batch-size"),
      DEFAULT_BN_BATCH_SIZE,
    )
    .option("--bn-seed <n>", "--bn recompute: seed of the choice of batches", nonNegativeInt("--bn-seed"), 0);
}
