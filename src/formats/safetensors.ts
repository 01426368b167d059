// safetensors (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length N, N bytes of JSON naming each tensor's dtype,
// shape and byte range, then the packed little-endian tensor data.

import { readFileSync } from "node:fs";
import { writeFileAtomic } from "./atomic.ts";

/**
 * Element types this module reads. F16 and BF16 are widened to Float32Array;
 * every other dtype keeps its own typed array (BOOL as Uint8Array of 0/1).
 *
 * @example
 * const dtype: SafetensorsDtype = "BF16";
 */
export type SafetensorsDtype =
  | "F64"
  | "F32"
  | "F16"
  | "BF16"
  | "I64"
  | "I32"
  | "I16"
  | "I8"
  | "U64"
  | "U32"
  | "U16"
  | "U8"
  | "BOOL";

/**
 * The typed arrays tensors are held in.
 *
 * @example
 * const data: TensorData = new Float32Array([1, 2, 3]);
 */
export type TensorData =
  | Float64Array
  | Float32Array
  | BigInt64Array
  | BigUint64Array
  | Int32Array
  | Uint32Array
  | Int16Array
  | Uint16Array
  | Int8Array
  | Uint8Array;

/**
 * One tensor read from a file: its dtype on disk, shape and values (row-major).
 *
 * @example
 * const t = parseSafetensors(bytes).tensors.get("fc.weight"); // { dtype: "F32", shape: [10, 784], data: Float32Array }
 */
export interface SafetensorsTensor {
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  readonly data: TensorData;
}

/**
 * A parsed file: tensors in the order of their data in the file, and the
 * free-form string metadata of "__metadata__" (empty when absent).
 *
 * @example
 * const { tensors, metadata } = readSafetensors("model.safetensors");
 */
export interface Safetensors {
  readonly tensors: Map<string, SafetensorsTensor>;
  readonly metadata: Record<string, string>;
}

/**
 * A tensor to write. The dtype follows the array type: Float32Array is F32,
 * BigInt64Array I64, Float64Array F64, Int32Array I32, Uint8Array U8, and so on.
 *
 * @example
 * const t: TensorToWrite = { name: "fc.bias", shape: [10], data: new Float32Array(10) };
 */
export interface TensorToWrite {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: TensorData;
}

const DTYPE_BYTES: Record<SafetensorsDtype, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
};
const DTYPE_LIST = Object.keys(DTYPE_BYTES).join(", ");

// The reference implementation refuses headers above 100 MB; so do we, before decoding them.
const MAX_HEADER_BYTES = 100_000_000;
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Parses a safetensors file from its bytes. Validates the header length, the
 * JSON, each tensor's dtype, shape and data_offsets, and that the tensors
 * tile the data section exactly (no overlaps, gaps or trailing bytes, as the
 * reference implementation requires). `file` names the source in errors.
 *
 * @example
 * const { tensors } = parseSafetensors(readFileSync("w.safetensors"), { file: "w.safetensors" });
 * tensors.get("conv1.weight")?.shape; // [16, 3, 3, 3]
 */
export function parseSafetensors(bytes: Uint8Array, options: { file?: string } = {}): Safetensors {
  const file = options.file ?? "<safetensors bytes>";
  if (bytes.length < 8) {
    throw new Error(
      `${file}: file is ${bytes.length} bytes, too short for the 8-byte safetensors header length at offset 0`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const declared = view.getBigUint64(0, true);
  if (declared + 8n > BigInt(bytes.length)) {
    throw new Error(
      `${file}: safetensors header length ${declared} exceeds file size ${bytes.length} (needs 8 + ${declared} bytes)`,
    );
  }
  const headerLength = Number(declared);
  if (headerLength > MAX_HEADER_BYTES) {
    throw new Error(
      `${file}: safetensors header length ${headerLength} exceeds the limit of ${MAX_HEADER_BYTES} bytes`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + headerLength));
  } catch {
    throw new Error(`${file}: safetensors header (${headerLength} bytes at offset 8) is not valid UTF-8`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (error) {
    throw new Error(
      `${file}: safetensors header (${headerLength} bytes at offset 8) is not valid JSON: ${(error as Error).message}`,
    );
  }
  if (!isObject(header)) {
    throw new Error(`${file}: safetensors header must be a JSON object, got ${describe(header)}`);
  }

  const dataStart = 8 + headerLength;
  const dataSize = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }[] =
    [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (!isObject(entry))
        throw new Error(`${file}: "__metadata__" must be an object, got ${describe(entry)}`);
      for (const [key, value] of Object.entries(entry)) {
        if (typeof value !== "string") {
          throw new Error(
            `${file}: "__metadata__" value of '${key}' must be a string, got ${describe(value)}`,
          );
        }
        metadata[key] = value;
      }
      continue;
    }
    const where = `${file}: tensor '${name}'`;
    if (!isObject(entry))
      throw new Error(`${where}: expected {dtype, shape, data_offsets}, got ${describe(entry)}`);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (typeof dtype !== "string" || !Object.hasOwn(DTYPE_BYTES, dtype)) {
      throw new Error(`${where}: unsupported dtype ${JSON.stringify(dtype)}; expected one of ${DTYPE_LIST}`);
    }
    if (!Array.isArray(shape) || !shape.every(isCount)) {
      throw new Error(`${where}: 'shape' must be an array of non-negative integers, got ${describe(shape)}`);
    }
    const [begin, end] = Array.isArray(offsets) && offsets.length === 2 ? offsets : [];
    if (!isCount(begin) || !isCount(end) || begin > end) {
      throw new Error(
        `${where}: 'data_offsets' must be [begin, end] with 0 <= begin <= end, got ${describe(offsets)}`,
      );
    }
    const d = dtype as SafetensorsDtype;
    const need = (shape as number[]).reduce((a, b) => a * b, 1) * DTYPE_BYTES[d];
    if (end - begin !== need) {
      throw new Error(
        `${where}: shape [${shape.join(", ")}] of ${d} needs ${need} bytes but data_offsets [${begin}, ${end}] cover ${end - begin}`,
      );
    }
    if (end > dataSize) {
      throw new Error(
        `${where}: data_offsets [${begin}, ${end}] run past the end of the data section (${dataSize} bytes from offset ${dataStart}); is the file truncated?`,
      );
    }
    entries.push({ name, dtype: d, shape: shape as number[], begin, end });
  }

  // The data section must be tiled exactly, in offset order.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous: (typeof entries)[number] | undefined;
  for (const e of entries) {
    if (e.begin < covered && previous !== undefined) {
      throw new Error(
        `${file}: tensors '${previous.name}' (data_offsets [${previous.begin}, ${previous.end}]) and '${e.name}' ([${e.begin}, ${e.end}]) overlap`,
      );
    }
    if (e.begin > covered) {
      const after =
        previous === undefined
          ? "the start of the data section"
          : `tensor '${previous.name}' (ends at ${covered})`;
      throw new Error(
        `${file}: tensor '${e.name}' starts at data offset ${e.begin}, leaving ${e.begin - covered} unused bytes after ${after}; safetensors packs tensors without gaps`,
      );
    }
    covered = e.end;
    previous = e;
  }
  if (covered !== dataSize) {
    throw new Error(
      `${file}: the data section has ${dataSize} bytes (from offset ${dataStart}) but the tensors cover only ${covered}: ${dataSize - covered} trailing bytes`,
    );
  }

  const tensors = new Map<string, SafetensorsTensor>();
  for (const e of entries) {
    const raw = bytes.subarray(dataStart + e.begin, dataStart + e.end);
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: decode(e.dtype, raw) });
  }
  return { tensors, metadata };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function describe(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

// Copies `raw` (little-endian, any alignment) into a fresh aligned buffer in host byte order.
function aligned(raw: Uint8Array, width: number): ArrayBuffer {
  const copy = new Uint8Array(raw.length);
  copy.set(raw);
  if (!LITTLE_ENDIAN_HOST && width > 1) swapBytes(copy, width);
  return copy.buffer;
}

function swapBytes(bytes: Uint8Array, width: number): void {
  for (let i = 0; i < bytes.length; i += width) bytes.subarray(i, i + width).reverse();
}

function decode(dtype: SafetensorsDtype, raw: Uint8Array): TensorData {
  const buffer = aligned(raw, DTYPE_BYTES[dtype]);
  switch (dtype) {
    case "F64":
      return new Float64Array(buffer);
    case "F32":
      return new Float32Array(buffer);
    case "F16": {
      const half = new Uint16Array(buffer);
      const out = new Float32Array(half.length);
      for (let i = 0; i < half.length; i++) out[i] = halfToFloat(half[i] as number);
      return out;
    }
    case "BF16": {
      // bfloat16 is the top half of a float32.
      const half = new Uint16Array(buffer);
      const bits = new Uint32Array(half.length);
      for (let i = 0; i < half.length; i++) bits[i] = (half[i] as number) << 16;
      return new Float32Array(bits.buffer);
    }
    case "I64":
      return new BigInt64Array(buffer);
    case "U64":
      return new BigUint64Array(buffer);
    case "I32":
      return new Int32Array(buffer);
    case "U32":
      return new Uint32Array(buffer);
    case "I16":
      return new Int16Array(buffer);
    case "U16":
      return new Uint16Array(buffer);
    case "I8":
      return new Int8Array(buffer);
    case "U8":
    case "BOOL":
      return new Uint8Array(buffer);
    default:
      return dtype satisfies never;
  }
}

// IEEE 754 binary16: 1 sign bit, 5 exponent bits (bias 15), 10 fraction bits.
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

function dtypeOf(data: TensorData): SafetensorsDtype | undefined {
  if (data instanceof Float32Array) return "F32";
  if (data instanceof Float64Array) return "F64";
  if (data instanceof BigInt64Array) return "I64";
  if (data instanceof BigUint64Array) return "U64";
  if (data instanceof Int32Array) return "I32";
  if (data instanceof Uint32Array) return "U32";
  if (data instanceof Int16Array) return "I16";
  if (data instanceof Uint16Array) return "U16";
  if (data instanceof Int8Array) return "I8";
  if (data instanceof Uint8Array) return "U8";
  return undefined;
}

/**
 * Encodes tensors as a safetensors file, their data packed in the order
 * given. The JSON header is padded with spaces so the data starts at an
 * 8-byte boundary; `metadata` goes in "__metadata__" when non-empty.
 *
 * @example
 * const bytes = serializeSafetensors([{ name: "w", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) }], { format: "pt" });
 */
export function serializeSafetensors(
  tensors: readonly TensorToWrite[],
  metadata: Record<string, string> = {},
): Uint8Array {
  const fields: string[] = [];
  const meta = Object.entries(metadata);
  for (const [key, value] of meta) {
    if (typeof value !== "string") {
      throw new Error(`serializeSafetensors(): metadata '${key}' must be a string, got ${describe(value)}`);
    }
  }
  if (meta.length > 0) fields.push(`"__metadata__":${JSON.stringify(Object.fromEntries(meta))}`);
  const seen = new Set<string>();
  let offset = 0;
  const layout: { data: TensorData; begin: number }[] = [];
  for (const [i, t] of tensors.entries()) {
    const where = `serializeSafetensors(): tensor ${i} ('${t.name}')`;
    if (typeof t.name !== "string" || t.name === "" || t.name === "__metadata__") {
      throw new Error(`${where}: 'name' must be a non-empty string other than "__metadata__"`);
    }
    if (seen.has(t.name))
      throw new Error(`${where}: the name '${t.name}' is already used by an earlier tensor`);
    seen.add(t.name);
    if (!Array.isArray(t.shape) || !t.shape.every(isCount)) {
      throw new Error(
        `${where}: 'shape' must be an array of non-negative integers, got ${describe(t.shape)}`,
      );
    }
    const dtype = dtypeOf(t.data);
    if (dtype === undefined) {
      throw new Error(
        `${where}: 'data' must be a typed array (Float32Array, BigInt64Array, ...), got ${describe(t.data)}`,
      );
    }
    const values = t.shape.reduce((a, b) => a * b, 1);
    if (values !== t.data.length) {
      throw new Error(
        `${where}: shape [${t.shape.join(", ")}] has ${values} values but 'data' has ${t.data.length}`,
      );
    }
    const end = offset + t.data.byteLength;
    fields.push(
      `${JSON.stringify(t.name)}:${JSON.stringify({ dtype, shape: t.shape, data_offsets: [offset, end] })}`,
    );
    layout.push({ data: t.data, begin: offset });
    offset = end;
  }
  const json = new TextEncoder().encode(`{${fields.join(",")}}`);
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  const dataStart = 8 + headerLength;
  for (const { data, begin } of layout) {
    const target = out.subarray(dataStart + begin, dataStart + begin + data.byteLength);
    target.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    if (!LITTLE_ENDIAN_HOST) swapBytes(target, data.BYTES_PER_ELEMENT);
  }
  return out;
}

/**
 * The tensor's values as a Float32Array: the tensor's own array for F32 (and
 * the widened F16/BF16), a converted copy for every other dtype.
 *
 * @example
 * const w = tensorToFloat32(readSafetensors("model.safetensors").tensors.get("fc.weight")!);
 */
export function tensorToFloat32(tensor: SafetensorsTensor): Float32Array {
  const { data } = tensor;
  if (data instanceof Float32Array) return data;
  const out = new Float32Array(data.length);
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    for (let i = 0; i < data.length; i++) out[i] = Number(data[i]);
  } else {
    out.set(data);
  }
  return out;
}

/**
 * Reads and parses a safetensors file; errors name the path.
 *
 * @example
 * const weights = readSafetensors("resnet20.safetensors").tensors;
 */
export function readSafetensors(path: string): Safetensors {
  return parseSafetensors(readFileSync(path), { file: path });
}

/**
 * Writes tensors to a safetensors file atomically: the bytes go to
 * `<path>.tmp-<pid>`, which is then renamed over `path`, so a failure never
 * leaves a half-written or clobbered file.
 *
 * @example
 * writeSafetensors("direction.safetensors", [{ name: "fc.weight", shape: [10, 784], data }], { seed: "0" });
 */
export function writeSafetensors(
  path: string,
  tensors: readonly TensorToWrite[],
  metadata: Record<string, string> = {},
): void {
  writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}
