// Between flat direction vectors and direction files: which tensors a file
// holds (the reference's parameters() order for "weights", state_dict order
// for "states"), and how a file's tensors map back onto a model.

import type { DirectionMode } from "../core/directions.ts";
import type { DirectionTensor } from "../formats/direction-file.ts";
import { isTrainable, type Model } from "../model/model.ts";

/**
 * The tensors of a direction as a file stores them: trainable tensors in model order for "weights"
 * (like the reference's net.parameters()), every tensor including BN running statistics for "states".
 *
 * @example
 * const tensors = directionTensors(model, d1, "weights");
 */
export function directionTensors(model: Model, d: Float32Array, mode: DirectionMode): DirectionTensor[] {
  return model.params
    .filter((p) => mode === "states" || isTrainable(p.role))
    .map((p) => ({ name: p.name, shape: [...p.shape], data: d.slice(p.offset, p.offset + p.size) }));
}

/**
 * A flat direction for `model` from a file's tensors: by name when the file has names, else by position
 * (the file holds either the trainable tensors or all of them, in model order), shapes checked either way.
 *
 * @example
 * const d1 = directionFromTensors(model, readDirectionFile("dirs.h5").x, "dirs.h5 xdirection");
 */
export function directionFromTensors(
  model: Model,
  tensors: readonly DirectionTensor[],
  where: string,
): Float32Array {
  const d = new Float32Array(model.size);
  const named = tensors.length > 0 && tensors.every((t) => t.name !== "");
  if (named) {
    const byName = new Map(tensors.map((t) => [t.name, t]));
    const unknown = tensors.filter((t) => !model.params.some((p) => p.name === t.name)).map((t) => t.name);
    if (unknown.length) {
      throw new Error(
        `${where}: tensors ${unknown.slice(0, 5).join(", ")} are not parameters of model '${model.name}'`,
      );
    }
    for (const p of model.params) {
      const t = byName.get(p.name);
      if (!t) {
        if (isTrainable(p.role))
          throw new Error(`${where}: no tensor for parameter '${p.name}' of model '${model.name}'`);
        continue; // BN statistics absent from a "weights" file stay fixed
      }
      place(d, p, t, where);
    }
    return d;
  }
  const trainable = model.params.filter((p) => isTrainable(p.role));
  const targets =
    tensors.length === trainable.length
      ? trainable
      : tensors.length === model.params.length
        ? model.params
        : null;
  if (!targets) {
    throw new Error(
      `${where}: has ${tensors.length} tensors but model '${model.name}' has ${trainable.length} trainable tensors (${model.params.length} with BN statistics)`,
    );
  }
  targets.forEach((p, k) => {
    place(d, p, tensors[k]!, `${where} dataset '${k}'`);
  });
  return d;
}

function place(d: Float32Array, p: Model["params"][number], t: DirectionTensor, where: string): void {
  const size = t.shape.reduce((a, b) => a * b, 1);
  const same =
    size === p.size && t.data.length === p.size && squeeze(t.shape).join(",") === squeeze(p.shape).join(",");
  if (!same) {
    throw new Error(
      `${where}: tensor '${t.name || p.name}' has shape [${t.shape.join(", ")}] but '${p.name}' has [${p.shape.join(", ")}]`,
    );
  }
  d.set(t.data, p.offset);
}

function squeeze(shape: readonly number[]): number[] {
  return shape.filter((s) => s !== 1);
}
