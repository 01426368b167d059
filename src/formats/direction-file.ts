// Direction files: one or two directions in parameter space, one float32 array
// per parameter tensor, in the reference code's HDF5 layout (groups
// `xdirection`/`ydirection`, datasets `0`, `1`, ... in model order) plus the
// tensor names and metadata losscape needs to map them back. See docs/files.md.

import { readFileSync } from "node:fs";
import { writeFileAtomic } from "./atomic.ts";
import { decodeH5, encodeH5, type H5Attrs, type H5Node, type H5Reader } from "./h5.ts";

/**
 * One tensor of a direction. `name` is "" when the file does not say (the
 * reference code stores none): map such tensors by position and shape.
 *
 * @example
 * const t: DirectionTensor = { name: "conv1.weight", shape: [16, 3, 3, 3], data: new Float32Array(432) };
 */
export interface DirectionTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/**
 * The contents of a direction file. `y` is null for a 1D plot. The trajectory
 * fields (PCA directions) are present only when the file holds them; they are
 * stored as `explained_variance_ratio_`, `singular_values_` and
 * `explained_variance_`, the reference (scikit-learn) names.
 *
 * @example
 * const dirs: DirectionFile = { x: [t0, t1], y: null, meta: { seed: "0", normalization: "filter" } };
 */
export interface DirectionFile {
  x: DirectionTensor[];
  y: DirectionTensor[] | null;
  /** losscape's metadata (seed, normalization, ignore, mode, model_hash, ...). */
  meta: Record<string, string>;
  explainedVarianceRatio?: Float64Array;
  singularValues?: Float64Array;
  explainedVariance?: Float64Array;
}

/** Options of `parseDirectionFile`. */
export interface ParseDirectionFileOptions {
  /** The file's path or name, used in error messages. */
  file?: string;
}

const GROUPS = { x: "xdirection", y: "ydirection" } as const;
const TRAJECTORY = {
  explainedVarianceRatio: "explained_variance_ratio_",
  singularValues: "singular_values_",
  explainedVariance: "explained_variance_",
} as const;
const NAME_ATTR = "name";
const VERSION_ATTR = "losscape_file_version";
const META_PREFIX = "losscape_";
const FILE_VERSION = "1";

function label(file: string | undefined): string {
  return file === undefined ? "direction file (bytes)" : `direction file '${file}'`;
}

function readGroup(r: H5Reader, group: string): DirectionTensor[] {
  const keys = r.keys(group);
  const bad = keys.find((k) => !/^(0|[1-9][0-9]*)$/.test(k));
  if (bad !== undefined) {
    throw r.error(
      `group '${group}' has '${bad}', expected datasets named 0, 1, ... (one per parameter tensor)`,
    );
  }
  if (keys.length === 0) throw r.error(`group '${group}' is empty, expected datasets 0, 1, ...`);
  const indices = keys.map(Number).sort((a, b) => a - b);
  const missing = indices.findIndex((n, k) => n !== k);
  if (missing >= 0) {
    throw r.error(
      `group '${group}' lacks dataset '${group}/${missing}' (has ${keys.length} datasets up to ${indices.at(-1)})`,
    );
  }
  return indices.map((k) => {
    const path = `${group}/${k}`;
    const { data, shape } = r.float32(path);
    return { name: r.attrs(path)[NAME_ATTR] ?? "", shape, data };
  });
}

/**
 * Parses direction-file bytes (losscape's or the reference code's). Tensors
 * come back in file order (dataset 0, 1, ..., 10, ... by number).
 *
 * @example
 * const dirs = parseDirectionFile(readFileSync("dirs.h5"), { file: "dirs.h5" });
 */
export function parseDirectionFile(
  bytes: Uint8Array,
  { file }: ParseDirectionFileOptions = {},
): DirectionFile {
  return decodeH5(bytes, label(file), (r) => {
    if (!r.has(GROUPS.x)) throw r.error(`group '${GROUPS.x}' is missing`);
    const x = readGroup(r, GROUPS.x);
    const y = r.has(GROUPS.y) ? readGroup(r, GROUPS.y) : null;
    if (y !== null) {
      const problem = mismatch(x, y);
      if (problem !== null) throw r.error(problem);
    }
    const meta: Record<string, string> = {};
    for (const [name, value] of Object.entries(r.attrs("/"))) {
      if (name === VERSION_ATTR || !name.startsWith(META_PREFIX)) continue;
      meta[name.slice(META_PREFIX.length)] = value;
    }
    const out: DirectionFile = { x, y, meta };
    for (const [field, dataset] of Object.entries(TRAJECTORY) as [keyof typeof TRAJECTORY, string][]) {
      if (!r.has(dataset)) continue;
      const { data, shape } = r.float64(dataset);
      if (shape.length !== 1) throw r.error(`dataset '${dataset}' has shape [${shape}], expected a 1D array`);
      out[field] = data;
    }
    return out;
  });
}

/** Why y cannot pair with x (count or shapes differ), or null. */
function mismatch(x: readonly DirectionTensor[], y: readonly DirectionTensor[]): string | null {
  if (x.length !== y.length) {
    return `xdirection has ${x.length} tensors but ydirection has ${y.length}; both must match the model's parameters`;
  }
  for (const [k, tx] of x.entries()) {
    const ty = y[k]!;
    if (tx.shape.length !== ty.shape.length || tx.shape.some((n, d) => n !== ty.shape[d])) {
      return `tensor ${k} has shape [${tx.shape}] in xdirection but [${ty.shape}] in ydirection`;
    }
  }
  return null;
}

function checkTensors(
  tensors: unknown,
  which: "x" | "y",
  where: string,
): asserts tensors is DirectionTensor[] {
  if (!Array.isArray(tensors)) throw new Error(`${where}: '${which}' must be an array of tensors`);
  if (tensors.length === 0) throw new Error(`${where}: '${which}' has no tensors`);
  for (const [k, t] of (tensors as DirectionTensor[]).entries()) {
    const at = `${where}: ${which}[${k}]${t?.name ? ` ('${t.name}')` : ""}`;
    if (typeof t?.name !== "string") throw new Error(`${at}: 'name' must be a string ("" when unknown)`);
    if (!Array.isArray(t.shape) || t.shape.some((n) => !Number.isInteger(n) || n < 0)) {
      throw new Error(`${at}: 'shape' must be an array of non-negative integers`);
    }
    if (!(t.data instanceof Float32Array)) throw new Error(`${at}: 'data' must be a Float32Array`);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== count) {
      throw new Error(`${at}: 'data' has ${t.data.length} values but shape [${t.shape}] needs ${count}`);
    }
  }
}

function checkDirectionFile(d: DirectionFile, where: string): void {
  checkTensors(d.x, "x", where);
  if (d.y !== null) {
    checkTensors(d.y, "y", where);
    const problem = mismatch(d.x, d.y);
    if (problem !== null) throw new Error(`${where}: ${problem}`);
  }
  if (d.meta === null || typeof d.meta !== "object")
    throw new Error(`${where}: 'meta' must be an object of strings`);
  for (const [key, value] of Object.entries(d.meta)) {
    if (key === "") throw new Error(`${where}: 'meta' has an empty key`);
    if (key === "file_version")
      throw new Error(`${where}: meta key 'file_version' is reserved (losscape writes it)`);
    if (typeof value !== "string") {
      throw new Error(`${where}: meta '${key}' is ${typeof value}, expected a string (stringify numbers)`);
    }
  }
  for (const field of Object.keys(TRAJECTORY) as (keyof typeof TRAJECTORY)[]) {
    const v = d[field];
    if (v !== undefined && !(v instanceof Float64Array))
      throw new Error(`${where}: '${field}' must be a Float64Array`);
  }
}

function group(tensors: readonly DirectionTensor[]): H5Node {
  const children: Record<string, H5Node> = {};
  for (const [k, t] of tensors.entries()) {
    const attrs: H5Attrs = t.name === "" ? {} : { [NAME_ATTR]: t.name };
    children[String(k)] = { kind: "dataset", data: t.data, shape: t.shape, attrs };
  }
  return { kind: "group", children };
}

/**
 * Serializes directions to HDF5 bytes: float32 datasets `xdirection/0..n-1`
 * (and `ydirection/...`), each with a `name` attribute when the name is known,
 * metadata as root attributes `losscape_<key>`. Invalid input throws first.
 *
 * @example
 * const bytes = serializeDirectionFile({ x, y, meta: { seed: "1", normalization: "filter" } });
 */
export function serializeDirectionFile(d: DirectionFile): Uint8Array {
  checkDirectionFile(d, "serializeDirectionFile()");
  const children: Record<string, H5Node> = { [GROUPS.x]: group(d.x) };
  if (d.y !== null) children[GROUPS.y] = group(d.y);
  for (const [field, dataset] of Object.entries(TRAJECTORY) as [keyof typeof TRAJECTORY, string][]) {
    const data = d[field];
    if (data !== undefined) children[dataset] = { kind: "dataset", data, shape: [data.length] };
  }
  const attrs: H5Attrs = { [VERSION_ATTR]: FILE_VERSION };
  for (const [key, value] of Object.entries(d.meta)) attrs[`${META_PREFIX}${key}`] = value;
  return encodeH5({ kind: "group", children, attrs });
}

/**
 * Reads a direction file from disk.
 *
 * @example
 * const { x, y } = readDirectionFile("resnet56_dirs.h5");
 */
export function readDirectionFile(path: string): DirectionFile {
  return parseDirectionFile(new Uint8Array(readFileSync(path)), { file: path });
}

/**
 * Writes a direction file atomically (serialized in full first, then a
 * temporary file renamed over `path`).
 *
 * @example
 * writeDirectionFile("resnet56_dirs.h5", { x, y, meta: { seed: "0" } });
 */
export function writeDirectionFile(path: string, d: DirectionFile): void {
  writeFileAtomic(path, serializeDirectionFile(d));
}
