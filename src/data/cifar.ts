// CIFAR-10 and CIFAR-100 "binary version" batches (Krizhevsky 2009,
// https://www.cs.toronto.edu/~kriz/cifar.html): fixed-size records of label
// byte(s) then 3072 pixel bytes, the R, G and B 32x32 planes in row-major order.

import { readFileSync } from "node:fs";
import type { Dataset } from "./dataset.ts";
import { applyNormalization, type Normalization } from "./transform.ts";

/**
 * Which CIFAR binary layout a file uses: CIFAR-10 records carry one label
 * byte, CIFAR-100 records two (coarse superclass, then fine class).
 *
 * @example
 * const variant: CifarVariant = "cifar100";
 */
export type CifarVariant = "cifar10" | "cifar100";

/**
 * Which CIFAR-100 label to keep: the 100 fine classes or the 20 coarse superclasses.
 *
 * @example
 * const label: CifarLabel = "coarse";
 */
export type CifarLabel = "fine" | "coarse";

/**
 * The decoded records of one batch file: raw pixels (count x 3 x 32 x 32,
 * already channel-planar) and the chosen label of each record.
 *
 * @example
 * const batch = parseCifarBatch(bytes, { file: "data_batch_1.bin" });
 * batch.count; // 10000
 */
export interface CifarBatch {
  readonly count: number;
  readonly pixels: Uint8Array;
  readonly labels: Uint8Array;
  readonly classes: number;
}

/** The 10 CIFAR-10 class names, indexed by label. */
export const CIFAR10_CLASSES = [
  "airplane",
  "automobile",
  "bird",
  "cat",
  "deer",
  "dog",
  "frog",
  "horse",
  "ship",
  "truck",
] as const;

/** Shape of one CIFAR image: 3 channels of 32x32. */
export const CIFAR_SHAPE: readonly number[] = [3, 32, 32];
const PIXELS = 3 * 32 * 32;

function layout(variant: CifarVariant): { labelBytes: number; title: string } {
  switch (variant) {
    case "cifar10":
      return { labelBytes: 1, title: "CIFAR-10" };
    case "cifar100":
      return { labelBytes: 2, title: "CIFAR-100" };
    default:
      throw new Error(
        `CIFAR: 'variant' must be "cifar10" or "cifar100", got ${JSON.stringify(variant satisfies never)}`,
      );
  }
}

function labelChoice(variant: CifarVariant, label: CifarLabel): { index: number; classes: number } {
  if (label !== "fine" && label !== "coarse") {
    throw new Error(`CIFAR: 'label' must be "fine" or "coarse", got ${JSON.stringify(label)}`);
  }
  if (variant === "cifar10") {
    if (label === "coarse") throw new Error(`CIFAR: 'label' "coarse" applies only to variant "cifar100"`);
    return { index: 0, classes: 10 };
  }
  return label === "coarse" ? { index: 0, classes: 20 } : { index: 1, classes: 100 };
}

/**
 * Options naming the layout: `variant` (default "cifar10") and, for
 * CIFAR-100, `label` (default "fine").
 *
 * @example
 * const options: CifarLayoutOptions = { variant: "cifar100", label: "coarse" };
 */
export interface CifarLayoutOptions {
  readonly variant?: CifarVariant;
  readonly label?: CifarLabel;
}

/**
 * Decodes one CIFAR binary batch file from its bytes. Checks that the file
 * is a whole number of records and every label is in range; `file` names
 * the source in error messages.
 *
 * @example
 * const batch = parseCifarBatch(readFileSync("test.bin"), { file: "test.bin", variant: "cifar100" });
 */
export function parseCifarBatch(
  bytes: Uint8Array,
  options: CifarLayoutOptions & { readonly file?: string } = {},
): CifarBatch {
  const { file = "<cifar bytes>", variant = "cifar10", label = "fine" } = options;
  const { labelBytes, title } = layout(variant);
  const { index, classes } = labelChoice(variant, label);
  const record = labelBytes + PIXELS;
  if (bytes.length === 0) throw new Error(`${file}: no ${title} records (the file is empty)`);
  const count = Math.floor(bytes.length / record);
  const rest = bytes.length - count * record;
  if (rest !== 0) {
    const other = variant === "cifar10" ? "cifar100" : "cifar10";
    const otherRecord = layout(other).labelBytes + PIXELS;
    const hint =
      bytes.length % otherRecord === 0
        ? `; its size is a whole number of ${otherRecord}-byte ${layout(other).title} records: pass variant "${other}"`
        : "";
    throw new Error(
      `${file}: ${title} record ${count} at offset ${count * record} is truncated: ${rest} of ${record} bytes (${labelBytes} label byte${labelBytes === 1 ? "" : "s"} + ${PIXELS} pixel bytes)${hint}`,
    );
  }
  const pixels = new Uint8Array(count * PIXELS);
  const labels = new Uint8Array(count);
  for (let k = 0; k < count; k++) {
    const start = k * record;
    const value = bytes[start + index] as number;
    if (value >= classes) {
      const hint = variant === "cifar10" ? ` (a CIFAR-100 file? pass variant "cifar100")` : "";
      throw new Error(
        `${file}: ${label === "coarse" ? "coarse " : ""}label ${value} of record ${k} (offset ${start + index}) is outside the ${title} classes 0..${classes - 1}${hint}`,
      );
    }
    labels[k] = value;
    pixels.set(bytes.subarray(start + labelBytes, start + record), k * PIXELS);
  }
  return { count, pixels, labels, classes };
}

/**
 * Joins decoded batches, in order, into one Dataset of shape [3, 32, 32]:
 * pixels scaled to [0, 1], then normalized per `normalize` (default "compute",
 * the per-channel statistics of the joined batches).
 *
 * @example
 * const train = cifarDataset([batch1, batch2], { name: "cifar10/train" });
 */
export function cifarDataset(
  batches: readonly CifarBatch[],
  options: { readonly normalize?: Normalization; readonly name?: string } = {},
): Dataset {
  const { normalize = "compute", name = "cifar" } = options;
  const first = batches[0];
  if (first === undefined) throw new Error("cifarDataset(): 'batches' is empty; expected at least one batch");
  const count = batches.reduce((n, b) => n + b.count, 0);
  const inputs = new Float32Array(count * PIXELS);
  const labels = new Uint8Array(count);
  let at = 0;
  for (const [i, batch] of batches.entries()) {
    if (batch.classes !== first.classes) {
      throw new Error(
        `cifarDataset(): batch ${i} has ${batch.classes} classes but batch 0 has ${first.classes}; all batches must use the same variant and label`,
      );
    }
    const px = batch.pixels;
    const base = at * PIXELS;
    for (let j = 0; j < px.length; j++) inputs[base + j] = (px[j] as number) / 255;
    labels.set(batch.labels, at);
    at += batch.count;
  }
  return applyNormalization({ name, shape: CIFAR_SHAPE, inputs, labels, classes: first.classes }, normalize);
}

/**
 * Options for `readCifar`: layout, normalization (default "compute") and name
 * (default: the file names joined with "+").
 *
 * @example
 * const options: CifarOptions = { variant: "cifar10", normalize: { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] } };
 */
export interface CifarOptions extends CifarLayoutOptions {
  readonly normalize?: Normalization;
  readonly name?: string;
}

/**
 * Reads one or more CIFAR binary batch files and concatenates their records
 * in the order given (e.g. data_batch_1.bin .. data_batch_5.bin).
 *
 * @example
 * const train = readCifar([1, 2, 3, 4, 5].map((i) => `cifar-10-batches-bin/data_batch_${i}.bin`));
 * train.shape; // [3, 32, 32]
 */
export function readCifar(paths: string | readonly string[], options: CifarOptions = {}): Dataset {
  const list = typeof paths === "string" ? [paths] : paths;
  if (list.length === 0) throw new Error("readCifar(): 'paths' is empty; expected at least one batch file");
  const batches = list.map((file) => parseCifarBatch(readFileSync(file), { ...options, file }));
  return cifarDataset(batches, { normalize: options.normalize, name: options.name ?? list.join("+") });
}
