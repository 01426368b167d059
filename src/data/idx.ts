// IDX files, the format of MNIST and Fashion-MNIST (LeCun et al.,
// http://yann.lecun.com/exdb/mnist/): a big-endian header (magic 0x0000TTDD,
// then D uint32 dimensions) followed by the elements. Plain or gzip-compressed.

import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { constants, gunzipSync } from "node:zlib";
import type { Dataset } from "./dataset.ts";
import { applyNormalization, type Normalization } from "./transform.ts";

/**
 * Element type named by the third magic byte of an IDX file.
 *
 * @example
 * const t: IdxType = "uint8"; // type code 0x08
 */
export type IdxType = "uint8" | "int8" | "int16" | "int32" | "float32" | "float64";

/**
 * A decoded IDX array: its magic number, element type, dimensions and
 * row-major elements (converted from big-endian to native numbers).
 *
 * @example
 * const { dims, data } = parseIdx(bytes); // dims [10000, 28, 28], data Uint8Array
 */
export interface IdxArray {
  readonly magic: number;
  readonly type: IdxType;
  readonly dims: readonly number[];
  readonly data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
}

/** Magic number of MNIST image files: uint8 elements, 3 dimensions [n, rows, cols]. */
export const IDX_IMAGES_MAGIC = 0x00000803;
/** Magic number of MNIST label files: uint8 elements, 1 dimension [n]. */
export const IDX_LABELS_MAGIC = 0x00000801;

const TYPES: Record<number, { type: IdxType; bytes: number }> = {
  8: { type: "uint8", bytes: 1 },
  9: { type: "int8", bytes: 1 },
  11: { type: "int16", bytes: 2 },
  12: { type: "int32", bytes: 4 },
  13: { type: "float32", bytes: 4 },
  14: { type: "float64", bytes: 8 },
};
const TYPE_LIST = Object.entries(TYPES)
  .map(([code, t]) => `0x${Number(code).toString(16).padStart(2, "0")} (${t.type})`)
  .join(", ");

/**
 * Parses an IDX file from its bytes, gunzipping first when the bytes start
 * with the gzip magic 1f 8b. `file` names the source in error messages; byte
 * offsets in them count from the start of the (decompressed) IDX data.
 *
 * @example
 * const labels = parseIdx(readFileSync("t10k-labels-idx1-ubyte.gz"), { file: "t10k-labels-idx1-ubyte.gz" });
 * labels.dims; // [10000]
 */
export function parseIdx(bytes: Uint8Array, options: { file?: string } = {}): IdxArray {
  const file = options.file ?? "<idx bytes>";
  const gzipped = bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
  if (!gzipped) return parsePayload(bytes, file, "", "");
  const { payload, truncated } = gunzip(bytes, file);
  const note = truncated ? ` (the gzip stream is cut short after ${bytes.length} compressed bytes)` : "";
  const result = parsePayload(payload, file, " of the decompressed data", note);
  if (truncated) {
    throw new Error(
      `${file}: the gzip stream is cut short after ${bytes.length} compressed bytes (its end-of-stream trailer is missing), so the file is incomplete`,
    );
  }
  return result;
}

function gunzip(bytes: Uint8Array, file: string): { payload: Uint8Array; truncated: boolean } {
  try {
    return { payload: gunzipSync(bytes), truncated: false };
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code !== "Z_BUF_ERROR") {
      throw new Error(`${file}: corrupt gzip data (${(error as Error).message})`);
    }
  }
  // "unexpected end of file": decompress what is there so the error can say how far the IDX data got.
  try {
    return { payload: gunzipSync(bytes, { finishFlush: constants.Z_SYNC_FLUSH }), truncated: true };
  } catch (error) {
    throw new Error(`${file}: corrupt gzip data (${(error as Error).message})`);
  }
}

// `where` qualifies byte offsets (gzip files count them in the decompressed data); `note` ends truncation errors.
function parsePayload(bytes: Uint8Array, file: string, where: string, note: string): IdxArray {
  if (bytes.length < 4) {
    throw new Error(
      `${file}: ${bytes.length} bytes is too short for an IDX file (a 4-byte magic number is expected at offset 0${where})${note}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  const typeCode = bytes[2] as number;
  const rank = bytes[3] as number;
  const element = TYPES[typeCode];
  if (bytes[0] !== 0 || bytes[1] !== 0 || element === undefined || rank === 0) {
    const found = `0x${magic.toString(16).padStart(8, "0")}`;
    const why =
      bytes[0] !== 0 || bytes[1] !== 0
        ? "the first two bytes must be zero"
        : element === undefined
          ? `type byte 0x${typeCode.toString(16).padStart(2, "0")} is not one of ${TYPE_LIST}`
          : "it declares 0 dimensions";
    throw new Error(
      `${file}: not an IDX file: magic number at offset 0 is ${found} (${why}); expected 0x00000803 for images or 0x00000801 for labels`,
    );
  }
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes) {
    throw new Error(
      `${file}: IDX header declares ${rank} dimension${rank === 1 ? "" : "s"} (${headerBytes} header bytes) but the file has only ${bytes.length} bytes${note}`,
    );
  }
  const dims: number[] = [];
  for (let d = 0; d < rank; d++) dims.push(view.getUint32(4 + 4 * d, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const expected = count * element.bytes;
  const available = bytes.length - headerBytes;
  const what =
    rank === 3
      ? `${dims[0]} images of ${dims[1]}x${dims[2]}`
      : rank === 1
        ? `${dims[0]} labels`
        : `dimensions [${dims.join(", ")}]`;
  if (available < expected) {
    throw new Error(
      `${file}: header says ${what} (${expected} bytes) but only ${available} bytes follow at offset ${headerBytes}${where}${note}`,
    );
  }
  if (available > expected) {
    throw new Error(
      `${file}: header says ${what} (${expected} bytes) but ${available} bytes follow at offset ${headerBytes}${where}: ${available - expected} unexpected bytes from offset ${headerBytes + expected}`,
    );
  }
  return {
    magic,
    type: element.type,
    dims,
    data: decode(bytes, headerBytes, count, element.bytes, element.type),
  };
}

// Always copies, so the result is a plain typed array that shares no memory with the input (or a Buffer pool).
function decode(
  bytes: Uint8Array,
  offset: number,
  count: number,
  size: number,
  type: IdxType,
): IdxArray["data"] {
  const body = bytes.subarray(offset, offset + count * size);
  if (type === "uint8") return new Uint8Array(body);
  if (type === "int8") return new Int8Array(new Uint8Array(body).buffer);
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  switch (type) {
    case "int16": {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(2 * i, false);
      return out;
    }
    case "int32": {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(4 * i, false);
      return out;
    }
    case "float32": {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, false);
      return out;
    }
    case "float64": {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, false);
      return out;
    }
    default:
      return type satisfies never;
  }
}

/**
 * Options for building an MNIST-style dataset. `normalize` defaults to
 * "compute" (the per-channel mean/std of the images read); pass
 * `{ mean, std }` to use fixed statistics, e.g. the training set's on the
 * test set. `classes` (default 10) bounds the labels.
 *
 * @example
 * const options: MnistOptions = { normalize: { mean: [0.1307], std: [0.3081] } };
 */
export interface MnistOptions {
  readonly normalize?: Normalization;
  readonly name?: string;
  readonly classes?: number;
}

/**
 * Builds a Dataset of shape [1, rows, cols] from the bytes of an IDX image
 * file and an IDX label file (plain or gzip), pixels scaled to [0, 1] and
 * then normalized per `options.normalize`.
 *
 * @example
 * const ds = parseMnist(imageBytes, labelBytes, { imagesFile: "train-images-idx3-ubyte.gz", labelsFile: "train-labels-idx1-ubyte.gz" });
 */
export function parseMnist(
  images: Uint8Array,
  labels: Uint8Array,
  options: MnistOptions & { readonly imagesFile?: string; readonly labelsFile?: string } = {},
): Dataset {
  const { imagesFile = "<images>", labelsFile = "<labels>", normalize = "compute", classes = 10 } = options;
  if (!Number.isInteger(classes) || classes < 1 || classes > 256) {
    throw new Error(`parseMnist(): 'classes' must be an integer in 1..256, got ${classes}`);
  }
  const img = parseIdx(images, { file: imagesFile });
  expectMagic(img, IDX_IMAGES_MAGIC, imagesFile, "images", "uint8, 3 dimensions [n, rows, cols]");
  const lab = parseIdx(labels, { file: labelsFile });
  expectMagic(lab, IDX_LABELS_MAGIC, labelsFile, "labels", "uint8, 1 dimension [n]");
  const [n, rows, cols] = img.dims as [number, number, number];
  const labelCount = lab.dims[0] as number;
  if (n !== labelCount) {
    throw new Error(
      `MNIST images and labels disagree: ${imagesFile} has ${n} images but ${labelsFile} has ${labelCount} labels`,
    );
  }
  const labelData = lab.data as Uint8Array;
  for (let i = 0; i < labelCount; i++) {
    const v = labelData[i] as number;
    if (v >= classes) {
      throw new Error(
        `${labelsFile}: label ${v} of sample ${i} (offset ${8 + i}) is outside the ${classes} classes 0..${classes - 1}`,
      );
    }
  }
  const pixels = img.data as Uint8Array;
  const inputs = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) inputs[i] = (pixels[i] as number) / 255;
  const raw: Dataset = {
    name: options.name ?? imagesFile,
    shape: [1, rows, cols],
    inputs,
    labels: labelData,
    classes,
  };
  return applyNormalization(raw, normalize);
}

function expectMagic(idx: IdxArray, magic: number, file: string, what: string, layout: string): void {
  if (idx.magic === magic) return;
  throw new Error(
    `${file}: expected IDX ${what} (magic 0x${magic.toString(16).padStart(8, "0")}: ${layout}) but magic 0x${idx.magic.toString(16).padStart(8, "0")} says ${idx.type} with ${idx.dims.length} dimension${idx.dims.length === 1 ? "" : "s"} [${idx.dims.join(", ")}]`,
  );
}

/**
 * Reads an MNIST or Fashion-MNIST split from its IDX image and label files
 * (plain or .gz). The dataset is named after the image file unless `name` is given.
 *
 * @example
 * const test = readMnist("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", { normalize: { mean: [0.286], std: [0.353] } });
 * test.shape; // [1, 28, 28]
 */
export function readMnist(imagesPath: string, labelsPath: string, options: MnistOptions = {}): Dataset {
  return parseMnist(readFileSync(imagesPath), readFileSync(labelsPath), {
    ...options,
    name: options.name ?? basename(imagesPath),
    imagesFile: imagesPath,
    labelsFile: labelsPath,
  });
}

/**
 * Reads an IDX file (plain or .gz) from disk; see `parseIdx`.
 *
 * @example
 * readIdx("train-labels-idx1-ubyte.gz").dims; // [60000]
 */
export function readIdx(path: string): IdxArray {
  return parseIdx(readFileSync(path), { file: path });
}
