// The samples and targets of one batch as ONNX Runtime tensors, in the element
// types the model's graph declares: float32 samples, or int64/int32 token ids;
// int64 class indices. Shared by the engine and the gradient/HVP sessions.

import * as ort from "onnxruntime-node";
import { type Model, shapeSize } from "../model/model.ts";

/** Samples of a batch: float32 values, or integer token ids. */
export type Samples = Float32Array | Int32Array;

/**
 * `count` samples as the model's input tensor [count, ...shape]; token ids are widened to int64
 * when the graph takes int64.
 *
 * @example
 * const x = samplesTensor(model, batch.inputs, 128, "evaluate()");
 */
export function samplesTensor(model: Model, x: Samples, count: number, where: string): ort.Tensor {
  const dims = [count, ...model.input.shape];
  const type = model.input.type ?? "float32";
  if (type === "float32") {
    if (!(x instanceof Float32Array))
      throw new Error(`${where}: model '${model.name}' takes float32 samples, got integer token ids`);
    return new ort.Tensor("float32", x, dims);
  }
  if (x instanceof Float32Array && !x.every(Number.isInteger))
    throw new Error(`${where}: model '${model.name}' takes ${type} token ids, got non-integer float samples`);
  if (type === "int32")
    return new ort.Tensor("int32", x instanceof Int32Array ? x : Int32Array.from(x), dims);
  const wide = new BigInt64Array(x.length);
  for (let i = 0; i < x.length; i++) wide[i] = BigInt(x[i]!);
  return new ort.Tensor("int64", wide, dims);
}

/**
 * Targets as a tensor of `dims` ([count], or [count, ...targetShape]): class indices as int64 (or
 * int32), real-valued targets as float32.
 *
 * @example
 * const y = targetsTensor(batch.labels, [128]);
 * const r = targetsTensor(batch.targets, [128, 1], "float32");
 */
export function targetsTensor(
  labels: ArrayLike<number>,
  dims: readonly number[],
  type: "int64" | "int32" | "float32" = "int64",
): ort.Tensor {
  if (type === "float32")
    return new ort.Tensor("float32", labels instanceof Float32Array ? labels : Float32Array.from(labels), [
      ...dims,
    ]);
  if (type === "int32")
    return new ort.Tensor("int32", labels instanceof Int32Array ? labels : Int32Array.from(labels), [
      ...dims,
    ]);
  const wide = new BigInt64Array(labels.length);
  for (let i = 0; i < labels.length; i++) wide[i] = BigInt(labels[i]!);
  return new ort.Tensor("int64", wide, [...dims]);
}

/**
 * The number of samples in a batch of `labels` (one per target position) and `inputs`, checked
 * against each other in the name of `where`.
 *
 * @example
 * const count = batchCount(model, [], inputs, labels, "step()");
 */
export function batchCount(
  model: Model,
  targetShape: readonly number[],
  inputs: Samples,
  labels: ArrayLike<number>,
  where: string,
): number {
  const positions = shapeSize(targetShape);
  const count = labels.length / positions;
  const per = shapeSize(model.input.shape);
  if (!Number.isInteger(count) || count < 1) {
    throw new Error(
      `${where}: ${labels.length} labels are not a whole number of samples with targets of shape [${targetShape.join(", ")}] (${positions} per sample)`,
    );
  }
  if (inputs.length !== count * per) {
    throw new Error(
      `${where}: ${count} samples (${labels.length} labels) need ${count * per} input values (samples of shape [${model.input.shape.join(", ")}]), got ${inputs.length}`,
    );
  }
  return count;
}
