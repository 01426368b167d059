// Datasets from arrays a user wrote: a safetensors file with the samples under
// `x` and the class indices under `y` (and `x_test` / `y_test` for the test
// split), as python/losscape_export.py's export_data() writes them. Float
// samples are taken as they are (already normalized for the model); integer
// samples are token ids for models whose input is int64/int32.

import { basename } from "node:path";
import { readSafetensors, type SafetensorsTensor } from "../formats/safetensors.ts";
import type { Dataset } from "./dataset.ts";
import type { Split } from "./load.ts";

const FLOATS = new Set(["F64", "F32", "F16", "BF16"]);
const INTS = new Set(["I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8"]);

/**
 * One split of a safetensors dataset: `x` [N, ...sample] and `y` [N] (or [N, ...targets] for
 * per-position targets) for "train", `x_test` / `y_test` for "test".
 *
 * @example
 * const train = readArrayDataset("data.safetensors", "train");
 */
export function readArrayDataset(path: string, split: Split): Dataset {
  const { tensors } = readSafetensors(path);
  const [xKey, yKey] = split === "train" ? ["x", "y"] : ["x_test", "y_test"];
  const get = (key: string): SafetensorsTensor => {
    const t = tensors.get(key);
    if (!t)
      throw new Error(
        `data 'safetensors:${path}': no tensor '${key}' for the ${split} split; the file holds ${[...tensors.keys()].join(", ") || "nothing"} (export_data(path, x, y, x_test=..., y_test=...))`,
      );
    return t;
  };
  const x = get(xKey);
  const y = get(yKey);
  if (x.shape.length < 2)
    throw new Error(
      `data 'safetensors:${path}': '${xKey}' has shape [${x.shape.join(", ")}]; expected [samples, ...sample shape] (rank >= 2)`,
    );
  const n = x.shape[0]!;
  if (y.shape[0] !== n)
    throw new Error(
      `data 'safetensors:${path}': '${yKey}' has shape [${y.shape.join(", ")}] but '${xKey}' has ${n} samples; expected [${n}, ...]`,
    );
  if (!INTS.has(y.dtype))
    throw new Error(
      `data 'safetensors:${path}': '${yKey}' has dtype ${y.dtype}; expected integer class indices (int64, int32, uint8, ...)`,
    );
  let inputs: Float32Array | Int32Array;
  if (FLOATS.has(x.dtype))
    inputs = x.data instanceof Float32Array ? x.data : Float32Array.from(x.data as Float64Array);
  else if (INTS.has(x.dtype)) inputs = Int32Array.from(x.data as ArrayLike<number | bigint>, Number);
  else
    throw new Error(
      `data 'safetensors:${path}': '${xKey}' has dtype ${x.dtype}; expected float samples or integer token ids`,
    );
  const labels = Int32Array.from(y.data as ArrayLike<number | bigint>, Number);
  let max = 0;
  for (const [i, v] of labels.entries()) {
    if (!Number.isInteger(v) || v < 0)
      throw new Error(`data 'safetensors:${path}': '${yKey}'[${i}] is ${v}; expected class indices >= 0`);
    if (v > max) max = v;
  }
  return {
    name: `${basename(path)}/${split}`,
    shape: x.shape.slice(1),
    inputs,
    labels,
    ...(y.shape.length > 1 ? { targetShape: y.shape.slice(1) } : {}),
    classes: Math.max(2, max + 1),
  };
}
