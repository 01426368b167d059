// Opens a model from what a user names: a zoo model or an .onnx file, with
// parameters optionally replaced from a safetensors file.

import { existsSync } from "node:fs";
import { basename } from "node:path";
import { type ZooOptions, zooModel } from "../zoo/zoo.ts";
import { loadParams } from "./checkpoint.ts";
import { type ImportOptions, readOnnx } from "./import.ts";
import type { Model } from "./model.ts";

/** Options of openModel: importer options for files, zoo options for zoo names, and a parameter file. */
export interface OpenOptions extends ImportOptions, ZooOptions {
  /** safetensors file whose tensors replace the model's parameters (matched by name). */
  params?: string;
}

/**
 * A model and its parameter vector from a zoo name ("resnet20") or a path to an .onnx file.
 *
 * @example
 * const { model, params } = await openModel("runs/cnn.onnx", { params: "runs/epoch-5.safetensors" });
 */
export async function openModel(
  spec: string,
  options: OpenOptions = {},
): Promise<{ model: Model; params: Float32Array }> {
  let model: Model;
  if (spec.endsWith(".onnx") || existsSync(spec)) {
    if (!existsSync(spec)) throw new Error(`model file '${spec}' does not exist`);
    model = await readOnnx(spec, { ...options, name: options.name ?? basename(spec) });
  } else {
    model = zooModel(spec, options);
  }
  const params = options.params ? loadParams(model, options.params) : model.initial;
  return { model, params };
}
