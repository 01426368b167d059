// Model files: the ONNX graph with its parameters inside, plus the same
// parameters in safetensors under the initializer names (PyTorch state_dict
// names for zoo models and PRESERVE exports), so either can be read back.

import { existsSync } from "node:fs";
import { writeFileAtomic } from "../formats/atomic.ts";
import {
  readSafetensors,
  type Safetensors,
  serializeSafetensors,
  tensorToFloat32,
} from "../formats/safetensors.ts";
import { type Model, paramView } from "./model.ts";

/** Safetensors metadata key holding the model name a parameter file was written for. */
const MODEL_KEY = "losscape.model";

/**
 * The ONNX bytes of `model` with `values` as its parameters.
 *
 * @example
 * writeFileSync("trained.onnx", onnxWithParams(model, trained));
 */
export function onnxWithParams(model: Model, values: Float32Array): Uint8Array {
  const bytes = model.onnx.slice();
  model.params.forEach((p, i) => {
    const v = paramView(values, p);
    bytes.set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), model.rawOffsets[i]!);
  });
  return bytes;
}

/**
 * Parameters as safetensors bytes, one tensor per parameter under its initializer name.
 *
 * @example
 * const bytes = paramsToSafetensors(model, model.initial, { epoch: "3" });
 */
export function paramsToSafetensors(
  model: Model,
  values: Float32Array,
  metadata: Record<string, string> = {},
): Uint8Array {
  return serializeSafetensors(
    model.params.map((p) => ({ name: p.name, shape: p.shape, data: paramView(values, p) })),
    { [MODEL_KEY]: model.name, ...metadata },
  );
}

/**
 * Writes `<base>.onnx` and `<base>.safetensors` atomically; returns both paths.
 *
 * @example
 * saveModel(model, model.initial, "out/cnn"); // out/cnn.onnx, out/cnn.safetensors
 */
export function saveModel(
  model: Model,
  values: Float32Array,
  base: string,
  metadata: Record<string, string> = {},
): { onnx: string; safetensors: string } {
  const onnx = `${base}.onnx`;
  const safetensors = `${base}.safetensors`;
  writeFileAtomic(onnx, onnxWithParams(model, values));
  writeFileAtomic(safetensors, paramsToSafetensors(model, values, metadata));
  return { onnx, safetensors };
}

/** Tensor names that PyTorch state_dicts carry but that are not model parameters. */
const IGNORED = /(^|\.)num_batches_tracked$/;

/**
 * A flat parameter vector for `model` from safetensors tensors matched by name and shape.
 * Every parameter must be present; extra tensors other than `num_batches_tracked` are an error,
 * since they usually mean the file belongs to another model.
 *
 * @example
 * const values = paramsFromSafetensors(model, readSafetensors("epoch-10.safetensors"), "epoch-10.safetensors");
 */
export function paramsFromSafetensors(model: Model, file: Safetensors, where: string): Float32Array {
  const values = new Float32Array(model.size);
  const missing: string[] = [];
  for (const p of model.params) {
    const t = file.tensors.get(p.name);
    if (!t) {
      missing.push(p.name);
      continue;
    }
    const same = t.shape.length === p.shape.length && t.shape.every((d, i) => d === p.shape[i]);
    if (!same) {
      throw new Error(
        `${where}: tensor '${p.name}' has shape [${t.shape.join(", ")}] but model '${model.name}' expects [${p.shape.join(", ")}]`,
      );
    }
    values.set(tensorToFloat32(t), p.offset);
  }
  if (missing.length) {
    throw new Error(
      `${where}: ${missing.length} of model '${model.name}''s ${model.params.length} parameters are missing: ${missing.slice(0, 6).join(", ")}${missing.length > 6 ? ", ..." : ""}`,
    );
  }
  const known = new Set(model.params.map((p) => p.name));
  const extra = [...file.tensors.keys()].filter((k) => !known.has(k) && !IGNORED.test(k));
  if (extra.length) {
    throw new Error(
      `${where}: has ${extra.length} tensors that model '${model.name}' does not have: ${extra.slice(0, 6).join(", ")}${extra.length > 6 ? ", ..." : ""} (is it another model's file?)`,
    );
  }
  return values;
}

/**
 * Reads a parameter vector from a safetensors file.
 *
 * @example
 * const trained = loadParams(model, "runs/cnn/epoch-5.safetensors");
 */
export function loadParams(model: Model, path: string): Float32Array {
  if (!existsSync(path)) throw new Error(`parameter file '${path}' does not exist`);
  return paramsFromSafetensors(model, readSafetensors(path), path);
}
