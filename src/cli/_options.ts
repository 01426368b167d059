// Option groups shared by several commands (model, data, engine), and the
// code that turns them into library objects.

import type { Command, OptionValues } from "@commander-js/extra-typings";
import type { Dataset } from "../data/dataset.ts";
import { loadDataset, type Split } from "../data/load.ts";
import { parseSubset } from "../data/transform.ts";
import type { LossName } from "../engine/engine.ts";
import type { Model } from "../model/model.ts";
import { openModel } from "../model/open.ts";
import { nonNegativeInt, oneOf, positiveInt, regex, shape } from "./_parse.ts";

export const SPLITS = ["train", "test"] as const satisfies readonly Split[];
export const LOSSES = ["cross-entropy", "mse"] as const satisfies readonly LossName[];

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
    ...(o.initSeed !== undefined ? { seed: o.initSeed } : {}),
  });
  for (const w of opened.model.warnings) console.error(`warning: ${w}`);
  return opened;
}

/** --data, --subset, --data-seed, --batch-size, --loss, --threads. */
export function dataOptions<A extends unknown[], O extends OptionValues, G extends OptionValues>(
  cmd: Command<A, O, G>,
) {
  return cmd
    .option(
      "--data <spec>",
      "fashion-mnist (embedded), fashion-mnist:DIR, mnist:DIR, cifar10:DIR, cifar100:DIR, safetensors:FILE",
      "fashion-mnist",
    )
    .option("--subset <n>", "a seeded subset: a count (1000), a fraction (0.1) or a percentage (10%)")
    .option("--data-seed <n>", "seed of the subset", nonNegativeInt("--data-seed"), 0)
    .option("--batch-size <n>", "samples per forward pass", positiveInt("--batch-size"), 256)
    .option("--loss <name>", "cross-entropy or mse", oneOf("--loss", LOSSES), "cross-entropy" as LossName)
    .option("--threads <n>", "ONNX Runtime threads (default: all cores)", positiveInt("--threads"))
    .option(
      "--stream",
      "read samples from disk batch by batch (CIFAR, uncompressed IDX): memory independent of the data size",
    );
}

/** Loads one split with the data flags. */
export function loadFromFlags(o: { data: string; subset?: string; dataSeed: number }, split: Split): Dataset {
  return loadDataset(o.data, split, {
    ...(o.subset ? { subset: parseSubset(o.subset) } : {}),
    seed: o.dataSeed,
  });
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
