// NumPy .npy files (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
// the magic "\x93NUMPY", a format version, a little-endian header length, a Python dict literal
// {'descr': '<f4', 'fortran_order': False, 'shape': (N, ...)}, then the raw C-order elements.
// Parsed from bytes, or opened by offset so rows can be read batch by batch.

import { closeSync, fstatSync, openSync, readFileSync, readSync } from "node:fs";

/**
 * Element types read from .npy files (the descr codes |u1 |i1 <u2 <i2 <u4 <i4 <u8 <i8 <f2 <f4 <f8 |b1).
 *
 * @example
 * const dtype: NpyDtype = "float16"; // descr '<f2'
 */
export type NpyDtype =
  | "bool"
  | "uint8"
  | "int8"
  | "uint16"
  | "int16"
  | "uint32"
  | "int32"
  | "uint64"
  | "int64"
  | "float16"
  | "float32"
  | "float64";

/**
 * The typed arrays elements are decoded into: float16 widened to Float32Array, int64 and uint64 to Float64Array
 * of exact integers (checked to be within ±(2^53 - 1)), bool to Uint8Array of 0/1; the others keep their type.
 *
 * @example
 * const data: NpyData = new Float32Array([0.5, 1]);
 */
export type NpyData =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array;

/**
 * A parsed .npy header: element type, shape, and where the elements start.
 *
 * @example
 * const h = parseNpyHeader(bytes, { file: "x.npy" }); // { dtype: "uint8", descr: "|u1", shape: [10, 28, 28], headerBytes: 128, ... }
 */
export interface NpyHeader {
  readonly dtype: NpyDtype;
  /** The descr code as written in the file, e.g. "<f4". */
  readonly descr: string;
  readonly shape: readonly number[];
  /** Always false: Fortran-order arrays are refused. */
  readonly fortranOrder: false;
  /** Format version, e.g. "1.0". */
  readonly version: string;
  /** Bytes before the first element (magic, version, length and header dict). */
  readonly headerBytes: number;
  /** Number of elements (the product of the shape; 1 for a scalar). */
  readonly count: number;
  /** Bytes per element on disk. */
  readonly itemBytes: number;
}

/**
 * A parsed .npy file: its header and decoded elements (row-major).
 *
 * @example
 * const { shape, data } = parseNpy(readFileSync("x.npy"), { file: "x.npy" });
 */
export interface NpyArray extends NpyHeader {
  readonly data: NpyData;
}

/**
 * An .npy array opened by offset: its header and a reader of rows (slices along the first axis), so that a large
 * file is read one batch at a time.
 *
 * @example
 * const x = openNpy("x.npy");
 * const batch = x.readRows(128, 64); // rows 128..191
 */
export interface NpyFile extends NpyHeader {
  /** The file's path, as errors name it. */
  readonly file: string;
  /** Byte offset of the first element in the file. */
  readonly dataOffset: number;
  /** Number of rows (shape[0]; 1 for a scalar). */
  readonly rows: number;
  /** Decodes rows [start, start + count) (each of product(shape[1:]) elements), reading only their bytes. */
  readRows(start: number, count: number): NpyData;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
const CODES: Record<string, { dtype: NpyDtype; bytes: number }> = {
  b1: { dtype: "bool", bytes: 1 },
  u1: { dtype: "uint8", bytes: 1 },
  i1: { dtype: "int8", bytes: 1 },
  u2: { dtype: "uint16", bytes: 2 },
  i2: { dtype: "int16", bytes: 2 },
  u4: { dtype: "uint32", bytes: 4 },
  i4: { dtype: "int32", bytes: 4 },
  u8: { dtype: "uint64", bytes: 8 },
  i8: { dtype: "int64", bytes: 8 },
  f2: { dtype: "float16", bytes: 2 },
  f4: { dtype: "float32", bytes: 4 },
  f8: { dtype: "float64", bytes: 8 },
};
const DESCR_LIST = "|b1, |u1, |i1, <u2, <i2, <u4, <i4, <u8, <i8, <f2, <f4, <f8";
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Parses the header of an .npy file from its first bytes (at least the whole header; elements may follow).
 * Versions 1.0 (uint16 header length), 2.0 and 3.0 (uint32 length; 3.0 allows UTF-8). Refuses big-endian and
 * Fortran-order arrays, structured dtypes and unknown codes, naming `file` and what was found.
 *
 * @example
 * const h = parseNpyHeader(readFileSync("y.npy"), { file: "y.npy" }); // h.dtype "int64", h.shape [60000]
 */
export function parseNpyHeader(bytes: Uint8Array, options: { file?: string } = {}): NpyHeader {
  const file = options.file ?? "<npy bytes>";
  if (bytes.length < 10)
    throw new Error(
      `${file}: ${bytes.length} bytes is too short for an .npy file (a 10-byte magic, version and header length are expected at offset 0)`,
    );
  if (MAGIC.some((b, i) => bytes[i] !== b)) {
    const found = Array.from(bytes.subarray(0, 6), (b) => b.toString(16).padStart(2, "0")).join(" ");
    throw new Error(
      `${file}: not an .npy file: magic at offset 0 is ${found}, expected 93 4e 55 4d 50 59 ("\\x93NUMPY")`,
    );
  }
  const major = bytes[6] as number;
  const minor = bytes[7] as number;
  const version = `${major}.${minor}`;
  if (major < 1 || major > 3)
    throw new Error(`${file}: .npy format version ${version} at offset 6; expected 1.0, 2.0 or 3.0`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lengthBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lengthBytes)
    throw new Error(
      `${file}: ${bytes.length} bytes is too short for a version ${version} .npy header length`,
    );
  const length = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerBytes = 8 + lengthBytes + length;
  if (headerBytes > bytes.length)
    throw new Error(
      `${file}: .npy header length ${length} (offset ${8 + lengthBytes}) exceeds the ${bytes.length - 8 - lengthBytes} bytes that follow`,
    );
  const body = bytes.subarray(8 + lengthBytes, headerBytes);
  const text = major === 3 ? new TextDecoder("utf-8").decode(body) : latin1(body);
  const dict = parseHeaderDict(text, file);
  const descr = dict.descr;
  if (typeof descr !== "string")
    throw new Error(
      `${file}: .npy 'descr' is ${JSON.stringify(descr)}; structured dtypes are not read, expected one of ${DESCR_LIST}`,
    );
  const code = CODES[descr.slice(1)];
  const order = descr[0];
  if (code === undefined || !(order === "<" || order === "|" || order === ">" || order === "="))
    throw new Error(`${file}: .npy dtype '${descr}' is not read; expected one of ${DESCR_LIST}`);
  if (code.bytes > 1 && order === ">")
    throw new Error(
      `${file}: dtype '${descr}' is big-endian; only little-endian arrays are read (save with arr.astype(arr.dtype.newbyteorder('<')))`,
    );
  if (code.bytes > 1 && order !== "<")
    throw new Error(
      `${file}: dtype '${descr}' has no byte order; expected '<${descr.slice(1)}' (little-endian)`,
    );
  if (dict.fortran_order !== false) {
    if (dict.fortran_order === true)
      throw new Error(
        `${file}: array is stored in Fortran order (fortran_order True); only C order is read (save np.ascontiguousarray(arr))`,
      );
    throw new Error(`${file}: .npy 'fortran_order' is ${JSON.stringify(dict.fortran_order)}; expected False`);
  }
  const shape = dict.shape;
  if (!Array.isArray(shape) || shape.some((d) => typeof d !== "number"))
    throw new Error(`${file}: .npy 'shape' is ${JSON.stringify(shape)}; expected a tuple of integers`);
  const dims = shape as number[];
  return {
    dtype: code.dtype,
    descr,
    shape: dims,
    fortranOrder: false,
    version,
    headerBytes,
    count: dims.reduce((a, b) => a * b, 1),
    itemBytes: code.bytes,
  };
}

/**
 * Parses a whole .npy file from its bytes: header (see `parseNpyHeader`) and elements, whose byte count must
 * match the shape exactly. `file` names the source in error messages.
 *
 * @example
 * const x = parseNpy(readFileSync("x.npy"), { file: "x.npy" });
 * x.shape; // [100, 32, 32, 3]
 */
export function parseNpy(bytes: Uint8Array, options: { file?: string } = {}): NpyArray {
  const file = options.file ?? "<npy bytes>";
  const header = parseNpyHeader(bytes, { file });
  checkDataLength(header, bytes.length - header.headerBytes, header.headerBytes, file);
  const data = decodeNpy(bytes.subarray(header.headerBytes), header.dtype, header.count, file, 0);
  return { ...header, data };
}

/**
 * Checks that exactly the bytes an .npy header promises follow it: `available` bytes from `offset`.
 *
 * @example
 * checkDataLength(header, size - header.headerBytes, header.headerBytes, "x.npy");
 */
export function checkDataLength(header: NpyHeader, available: number, offset: number, file: string): void {
  const expected = header.count * header.itemBytes;
  if (available === expected) return;
  throw new Error(
    `${file}: header says ${header.descr} shape (${header.shape.join(", ")}) (${expected} bytes) but ${available} bytes follow at offset ${offset}${available < expected ? " (the file is truncated)" : `: ${available - expected} unexpected bytes from offset ${offset + expected}`}`,
  );
}

/**
 * Reads a whole .npy file from disk; see `parseNpy`.
 *
 * @example
 * readNpy("y.npy").data; // Float64Array of exact integers for int64 labels
 */
export function readNpy(path: string): NpyArray {
  return parseNpy(readFileSync(path), { file: path });
}

/**
 * Opens an .npy file reading only its header; rows are read on demand (see `NpyFile`). Checks that the file
 * holds all the bytes the header promises.
 *
 * @example
 * const x = openNpy("x.npy");
 * x.shape; // [50000, 3, 32, 32]
 * const first = x.readRows(0, 128);
 */
export function openNpy(path: string): NpyFile {
  const fd = openSync(path, "r");
  let size: number;
  let head: Uint8Array;
  try {
    size = fstatSync(fd).size;
    // The header length is a uint16 at offset 8 in version 1.0, a uint32 in 2.0 and 3.0.
    head = readAt(fd, 0, Math.min(size, 12));
    const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
    if (head.length >= 10 && head[6] === 1)
      head = readAt(fd, 0, Math.min(size, 10 + view.getUint16(8, true)));
    else if (head.length >= 12) head = readAt(fd, 0, Math.min(size, 12 + view.getUint32(8, true)));
  } finally {
    closeSync(fd);
  }
  const header = parseNpyHeader(head, { file: path });
  checkDataLength(header, size - header.headerBytes, header.headerBytes, path);
  return npyRows(path, header, header.headerBytes, size);
}

/**
 * A row reader of an array whose elements start at byte `dataOffset` of file `path` (an .npy file, or an .npy
 * member stored uncompressed in an .npz archive). The elements must end by byte `end` (the file's size, or the
 * member's end); `label` names the array in errors (default the path).
 *
 * @example
 * const x = npyRows("data.npz", header, 1234, 1234 + header.count * header.itemBytes, "data.npz member 'x.npy'");
 */
export function npyRows(
  path: string,
  header: NpyHeader,
  dataOffset: number,
  end: number,
  label: string = path,
): NpyFile {
  const rows = header.shape.length === 0 ? 1 : (header.shape[0] as number);
  const perRow = header.shape.slice(1).reduce((a, b) => a * b, 1);
  const rowBytes = perRow * header.itemBytes;
  const need = header.count * header.itemBytes;
  if (dataOffset + need > end)
    throw new Error(
      `${label}: header says ${header.descr} shape (${header.shape.join(", ")}) (${need} bytes) but only ${Math.max(0, end - dataOffset)} bytes follow at offset ${dataOffset} (the file is truncated)`,
    );
  return {
    ...header,
    file: label,
    dataOffset,
    rows,
    readRows(start: number, count: number): NpyData {
      if (
        !Number.isInteger(start) ||
        !Number.isInteger(count) ||
        start < 0 ||
        count < 0 ||
        start + count > rows
      )
        throw new Error(`${label}: readRows(${start}, ${count}) is outside rows 0..${rows - 1}`);
      const fd = openSync(path, "r");
      try {
        const bytes = readAt(fd, dataOffset + start * rowBytes, count * rowBytes);
        if (bytes.length !== count * rowBytes)
          throw new Error(
            `${label}: expected ${count * rowBytes} bytes at offset ${dataOffset + start * rowBytes}, read ${bytes.length} (was the file truncated?)`,
          );
        return decodeNpy(bytes, header.dtype, count * perRow, label, start * perRow);
      } finally {
        closeSync(fd);
      }
    },
  };
}

/**
 * Converts an IEEE 754 half-precision value (its 16 bits) to a number; exact, since every float16 is a float32.
 *
 * @example
 * halfToFloat(0x3c00); // 1
 * halfToFloat(0x0001); // 2^-24, the smallest subnormal
 */
export function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24; // zero and subnormals
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : Number.NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

// Copies (so the result shares no memory with `bytes`) and decodes `count` little-endian elements. `first` is the
// index of the first element in the whole array, for error messages.
function decodeNpy(bytes: Uint8Array, dtype: NpyDtype, count: number, file: string, first: number): NpyData {
  const size = CODES_BY_DTYPE[dtype];
  const copy = new Uint8Array(bytes.subarray(0, count * size));
  if (!LITTLE_ENDIAN_HOST && size > 1)
    for (let i = 0; i < copy.length; i += size) copy.subarray(i, i + size).reverse();
  const buffer = copy.buffer;
  switch (dtype) {
    case "bool":
    case "uint8":
      return copy;
    case "int8":
      return new Int8Array(buffer);
    case "uint16":
      return new Uint16Array(buffer);
    case "int16":
      return new Int16Array(buffer);
    case "uint32":
      return new Uint32Array(buffer);
    case "int32":
      return new Int32Array(buffer);
    case "float32":
      return new Float32Array(buffer);
    case "float64":
      return new Float64Array(buffer);
    case "float16": {
      const half = new Uint16Array(buffer);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = halfToFloat(half[i] as number);
      return out;
    }
    case "int64":
    case "uint64": {
      const wide = dtype === "int64" ? new BigInt64Array(buffer) : new BigUint64Array(buffer);
      const out = new Float64Array(count);
      const limit = BigInt(Number.MAX_SAFE_INTEGER);
      for (let i = 0; i < count; i++) {
        const v = wide[i] as bigint;
        if (v > limit || v < -limit)
          throw new Error(
            `${file}: ${dtype} element ${first + i} is ${v}, beyond ±${Number.MAX_SAFE_INTEGER} (2^53 - 1), the integers a number holds exactly`,
          );
        out[i] = Number(v);
      }
      return out;
    }
    default:
      return dtype satisfies never;
  }
}

const CODES_BY_DTYPE = Object.fromEntries(Object.values(CODES).map((c) => [c.dtype, c.bytes])) as Record<
  NpyDtype,
  number
>;

// Up to `length` bytes from `offset` (fewer at the end of the file; callers check).
function readAt(fd: number, offset: number, length: number): Uint8Array {
  const out = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const got = readSync(fd, out, done, length - done, offset + done);
    if (got === 0) break;
    done += got;
  }
  return new Uint8Array(out.buffer, out.byteOffset, done);
}

function latin1(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

type Literal = string | number | boolean | null | Literal[] | { [key: string]: Literal };

// The header is a Python dict literal of strings, True/False/None, integers and tuples (what numpy's
// format.write_array writes with repr()); parsed here without eval.
function parseHeaderDict(text: string, file: string): Record<string, Literal> {
  let at = 0;
  const fail = (what: string): never => {
    throw new Error(
      `${file}: .npy header is not a valid dict literal (${what} at character ${at}): ${JSON.stringify(text.trim())}`,
    );
  };
  const space = () => {
    while (at < text.length && /\s/.test(text[at] as string)) at++;
  };
  const value = (): Literal => {
    space();
    const c = text[at];
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, at + 1);
      if (end < 0) fail("unterminated string");
      const s = text.slice(at + 1, end);
      at = end + 1;
      return s;
    }
    if (c === "(" || c === "[") {
      const close = c === "(" ? ")" : "]";
      at++;
      const items: Literal[] = [];
      for (;;) {
        space();
        if (text[at] === close) {
          at++;
          return items;
        }
        items.push(value());
        space();
        if (text[at] === ",") at++;
        else if (text[at] !== close) fail(`expected ',' or '${close}'`);
      }
    }
    if (c === "{") {
      at++;
      const dict: Record<string, Literal> = {};
      for (;;) {
        space();
        if (text[at] === "}") {
          at++;
          return dict;
        }
        const key = value();
        if (typeof key !== "string") fail("a dict key that is not a string");
        space();
        if (text[at] !== ":") fail("expected ':'");
        at++;
        dict[key as string] = value();
        space();
        if (text[at] === ",") at++;
        else if (text[at] !== "}") fail("expected ',' or '}'");
      }
    }
    const word = /^(True|False|None|\d+)L?/.exec(text.slice(at));
    if (!word) return fail("unexpected token");
    at += word[0].length;
    const w = word[1] as string;
    return w === "True" ? true : w === "False" ? false : w === "None" ? null : Number(w);
  };
  const dict = value();
  space();
  if (at !== text.length) fail("trailing characters");
  if (typeof dict !== "object" || dict === null || Array.isArray(dict)) return fail("not a dict");
  for (const key of ["descr", "fortran_order", "shape"])
    if (!Object.hasOwn(dict, key))
      throw new Error(`${file}: .npy header has no '${key}' key: ${JSON.stringify(text.trim())}`);
  return dict as Record<string, Literal>;
}
