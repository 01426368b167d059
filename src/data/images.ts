// Image-folder datasets in the layout of torchvision's ImageFolder (one sub-folder
// per class, optionally under train/ and val/ or test/), decoded to NCHW uint8
// pixels the way PIL + torchvision's Resize(int) and CenterCrop(int) make them.

import { createHash } from "node:crypto";
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  type Stats,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { decode as decodeJpeg } from "jpeg-js";
import { PNG } from "pngjs";

/**
 * Which part of an image folder to read: "train" is DIR/train/ (or DIR itself
 * when it holds the class folders), "test" is DIR/val/ or DIR/test/.
 *
 * @example
 * const split: ImageSplit = "test";
 */
export type ImageSplit = "train" | "test";

/**
 * Options of `readImageFolder`. `resize` scales each image so its shorter side
 * has that many pixels (torchvision `Resize(resize)`, PIL bilinear with
 * antialiasing); `crop` then cuts the centred crop x crop square
 * (`CenterCrop(crop)`). `channels` 3 (default) gives RGB, 1 gives PIL's "L"
 * luma, converted before resizing (torchvision `Grayscale()` first). `cache`
 * (default true) keeps the decoded pixels in DIR/.losscape-cache/.
 *
 * @example
 * const options: ImageFolderOptions = { resize: 36, crop: 32, split: "test" };
 */
export interface ImageFolderOptions {
  readonly resize?: number;
  readonly crop?: number;
  readonly split?: ImageSplit;
  readonly cache?: boolean;
  readonly channels?: 1 | 3;
}

/**
 * The images of one split: `pixels` holds N images of `shape` [C, H, W] in
 * NCHW order, 0..255; `labels[i]` indexes `classes` (sorted folder names);
 * `files[i]` is image i's path relative to the split's class root, with "/".
 *
 * @example
 * const folder = readImageFolder("data/flowers", { resize: 64, crop: 64 });
 * folder.shape; // [3, 64, 64]
 * folder.classes[folder.labels[0]]; // "daisy"
 */
export interface ImageFolder {
  name: string;
  shape: number[];
  pixels: Uint8Array;
  labels: Int32Array;
  classes: string[];
  files: string[];
}

/**
 * A decoded image: `width` x `height` pixels of `channels` interleaved bytes
 * (1: gray, 3: RGB), row-major.
 *
 * @example
 * const img: RasterImage = { width: 2, height: 1, channels: 1, data: new Uint8Array([0, 255]) };
 */
export interface RasterImage {
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 3;
  readonly data: Uint8Array;
}

/** File name endings read as images (compared lower-case); other files are skipped. */
export const IMAGE_EXTENSIONS: readonly string[] = [".png", ".jpg", ".jpeg"];

const CACHE_FOLDER = ".losscape-cache";
const CACHE_MAGIC = "LOSSCAPE-IMAGES1";
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * Decodes a PNG or JPEG (recognised by its first bytes, not its name) to gray
 * or RGB, as PIL's `Image.open(f).convert("RGB")` sees it:
 * - PNG: every bit depth and colour type; alpha (an alpha channel or a tRNS
 *   chunk) is dropped, not composited, so transparent pixels keep their colour;
 *   16-bit samples keep their high byte (`>> 8`), which is what PIL does for
 *   16-bit RGB, RGBA and gray+alpha; for 16-bit gray, PIL's mode "I" clips at
 *   255 instead, which would turn most of the image white, so this differs.
 * - JPEG (baseline or progressive; gray, YCbCr or RGB): jpeg-js decodes the
 *   component planes, which are upsampled and converted to RGB as libjpeg
 *   does; only jpeg-js's IDCT differs from libjpeg's, so pixels can differ
 *   from PIL's by a few levels (at most 3 on the test images). CMYK and YCCK
 *   files are refused. EXIF orientation is not applied (PIL does not either).
 * Gray images come back with 1 channel. `file` names the source in errors.
 *
 * @example
 * const img = decodeImage(readFileSync("cat.png"), { file: "cat.png" });
 * img.channels; // 3
 */
export function decodeImage(bytes: Uint8Array, options: { file?: string } = {}): RasterImage {
  const file = options.file ?? "<image bytes>";
  if (PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return decodePngBytes(bytes, file);
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return decodeJpegBytes(bytes, file);
  const head = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, "0")).join(" ");
  throw new Error(
    `${file}: not a PNG or JPEG file: it starts with ${bytes.length === 0 ? "nothing (the file is empty)" : head}; expected 89 50 4e 47 (PNG) or ff d8 (JPEG)`,
  );
}

function decodePngBytes(bytes: Uint8Array, file: string): RasterImage {
  let png: ReturnType<typeof PNG.sync.read>;
  try {
    png = PNG.sync.read(withoutTransparencyChunk(bytes), { skipRescale: true });
  } catch (error) {
    throw new Error(`${file}: cannot decode PNG (pngjs: ${(error as Error).message})`);
  }
  const { width, height, depth } = png;
  // pngjs gives RGBA samples: palette entries, or raw samples (Uint16Array for 16 bits) with gray replicated.
  const rgba = png.data as Uint8Array | Uint16Array;
  const colorType = png.colorType as number;
  const gray = colorType === 0 || colorType === 4;
  const channels = gray ? 1 : 3;
  const count = width * height;
  if (rgba.length < count * 4) {
    throw new Error(
      `${file}: cannot decode PNG (pngjs returned ${rgba.length} samples for ${width}x${height})`,
    );
  }
  const data = new Uint8Array(count * channels);
  // Below 8 bits PNG samples scale exactly to 0..255 (PIL's L;1, L;2 and L;4 unpackers multiply by 255, 85, 17).
  const scale = colorType !== 3 && depth < 8 ? 255 / (2 ** depth - 1) : 1;
  const shift = colorType !== 3 && depth === 16 ? 8 : 0;
  for (let p = 0; p < count; p++) {
    for (let c = 0; c < channels; c++) {
      data[p * channels + c] = ((rgba[p * 4 + c] as number) >> shift) * scale;
    }
  }
  return { width, height, channels, data };
}

// pngjs blacks out the colour of pixels that match a tRNS colour; PIL's convert("RGB") keeps it. The
// chunk only describes alpha, which is dropped anyway, so it is cut out before decoding.
function withoutTransparencyChunk(bytes: Uint8Array): Buffer {
  const parts: Uint8Array[] = [];
  let start = 0;
  let at = 8;
  while (at + 12 <= bytes.length) {
    const length = new DataView(bytes.buffer, bytes.byteOffset + at, 4).getUint32(0, false);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    const end = at + 12 + length;
    if (type === "tRNS") {
      parts.push(bytes.subarray(start, at));
      start = end;
    }
    if (type === "IEND" || end > bytes.length) break;
    at = end;
  }
  if (parts.length === 0) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  parts.push(bytes.subarray(Math.min(start, bytes.length)));
  return Buffer.concat(parts);
}

interface JpegHeader {
  readonly components: { id: number; h: number; v: number }[];
  readonly jfif: boolean;
  readonly adobeTransform: number | undefined;
  readonly adobeTransformAt: number; // byte offset of the APP14 transform flag, -1 without one
}

// The markers before the first scan: JFIF (APP0), Adobe (APP14) and the frame header (SOFn).
function readJpegHeader(bytes: Uint8Array): JpegHeader {
  const header = {
    components: [] as JpegHeader["components"],
    jfif: false,
    adobeTransform: undefined as number | undefined,
    adobeTransformAt: -1,
  };
  const text = (from: number, n: number): string => String.fromCharCode(...bytes.subarray(from, from + n));
  let at = 2;
  while (at + 4 <= bytes.length) {
    if (bytes[at] !== 0xff) break;
    const marker = bytes[at + 1] as number;
    if (marker === 0xff) {
      at += 1;
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      at += 2;
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) break;
    const length = ((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number);
    const body = at + 4;
    if (marker === 0xe0 && text(body, 5) === "JFIF\0") header.jfif = true;
    if (marker === 0xee && text(body, 6) === "Adobe\0" && body + 11 < bytes.length) {
      header.adobeTransform = bytes[body + 11];
      header.adobeTransformAt = body + 11;
    }
    const frame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (frame && header.components.length === 0) {
      const count = bytes[body + 5] ?? 0;
      for (let c = 0; c < count; c++) {
        const at3 = body + 6 + 3 * c;
        const factors = bytes[at3 + 1] ?? 0;
        header.components.push({ id: bytes[at3] ?? 0, h: factors >> 4, v: factors & 15 });
      }
    }
    at += 2 + length;
  }
  return header;
}

function decodeJpegBytes(bytes: Uint8Array, file: string): RasterImage {
  const header = readJpegHeader(bytes);
  const count = header.components.length;
  if (count === 4) {
    throw new Error(
      `${file}: CMYK/YCCK JPEG (4 components) is not supported; expected a grayscale or RGB (YCbCr) JPEG: convert it to RGB first`,
    );
  }
  // jpeg-js ignores colorTransform: false when an Adobe marker asks for YCbCr, so a copy says "none";
  // the raw component planes are upsampled and converted below, as libjpeg does.
  let input = bytes;
  if (count === 3 && header.adobeTransform !== undefined && header.adobeTransform !== 0) {
    input = new Uint8Array(bytes);
    input[header.adobeTransformAt] = 0;
  }
  let decoded: { width: number; height: number; data: Uint8Array };
  try {
    decoded = decodeJpeg(input, { useTArray: true, formatAsRGBA: false, colorTransform: false });
  } catch (error) {
    throw new Error(`${file}: cannot decode JPEG (jpeg-js: ${(error as Error).message})`);
  }
  const { width, height, data: planes } = decoded;
  if (count === 1) {
    const data = new Uint8Array(width * height);
    for (let p = 0; p < data.length; p++) data[p] = planes[p * 3] as number;
    return { width, height, channels: 1, data };
  }
  if (count !== 3) {
    throw new Error(
      `${file}: JPEG with ${count} components is not supported; expected 1 (gray) or 3 (YCbCr or RGB)`,
    );
  }
  const maxH = Math.max(...header.components.map((c) => c.h));
  const maxV = Math.max(...header.components.map((c) => c.v));
  const data = new Uint8Array(width * height * 3);
  for (const [k, component] of header.components.entries()) {
    fancyUpsample(planes, k, width, height, maxH / component.h, maxV / component.v, data);
  }
  const [c0, c1, c2] = header.components.map((c) => c.id) as [number, number, number];
  const rgbIds = c0 === 0x52 && c1 === 0x47 && c2 === 0x42; // 'R', 'G', 'B'
  // libjpeg's choice of colour space: JFIF means YCbCr, else the Adobe flag, else the component ids.
  const rgb = !header.jfif && (header.adobeTransform !== undefined ? header.adobeTransform === 0 : rgbIds);
  if (!rgb) yccToRgb(data);
  return { width, height, channels: 3, data };
}

// jpeg-js replicates subsampled components (nearest neighbour). libjpeg, which PIL uses, interpolates
// 2:1 subsampling with its "fancy upsampling" triangle filter (3/4 of the nearer sample + 1/4 of the
// farther, edges replicated, alternating rounding biases; jdsample.c). Other ratios are replicated by
// both. Component k of the interleaved `planes` is upsampled into the same channel of `out`.
function fancyUpsample(
  planes: Uint8Array,
  k: number,
  width: number,
  height: number,
  fh: number,
  fv: number,
  out: Uint8Array,
): void {
  const cw = Math.ceil(width / fh);
  const ch = Math.ceil(height / fv);
  const h2 = fh === 2 && cw > 2;
  const v2 = fv === 2 && (fh === 1 || h2);
  if (!h2 && !v2) {
    for (let p = 0; p < width * height; p++) out[p * 3 + k] = planes[p * 3 + k] as number;
    return;
  }
  const sample = (i: number, j: number): number =>
    planes[(Math.min(Math.max(i, 0), ch - 1) * fv * width + j * fh) * 3 + k] as number;
  const put = (y: number, x: number, v: number): void => {
    if (y < height && x < width) out[(y * width + x) * 3 + k] = v;
  };
  for (let i = 0; i < ch; i++) {
    for (let half = 0; half < (v2 ? 2 : 1); half++) {
      const y = v2 ? 2 * i + half : i;
      // Vertical triangle: 3 x this row + the row above (upper output row) or below (lower one).
      const column = (j: number): number =>
        v2 ? 3 * sample(i, j) + sample(half === 0 ? i - 1 : i + 1, j) : sample(i, j);
      if (!h2) {
        // h1v2: (3 near + far + bias) >> 2 with bias 1 above, 2 below.
        for (let j = 0; j < cw; j++) put(y, j, (column(j) + (half === 0 ? 1 : 2)) >> 2);
        continue;
      }
      if (!v2) {
        // h2v1: edge samples are copied, inner ones (3 near + far + 1 or 2) >> 2.
        put(y, 0, column(0));
        put(y, 1, (3 * column(0) + column(1) + 2) >> 2);
        for (let j = 1; j < cw - 1; j++) {
          put(y, 2 * j, (3 * column(j) + column(j - 1) + 1) >> 2);
          put(y, 2 * j + 1, (3 * column(j) + column(j + 1) + 2) >> 2);
        }
        put(y, 2 * cw - 2, (3 * column(cw - 1) + column(cw - 2) + 1) >> 2);
        put(y, 2 * cw - 1, column(cw - 1));
        continue;
      }
      // h2v2: column sums of the vertical triangle, then horizontally (3 this + other + 8 or 7) >> 4.
      put(y, 0, (4 * column(0) + 8) >> 4);
      put(y, 1, (3 * column(0) + column(1) + 7) >> 4);
      for (let j = 1; j < cw - 1; j++) {
        put(y, 2 * j, (3 * column(j) + column(j - 1) + 8) >> 4);
        put(y, 2 * j + 1, (3 * column(j) + column(j + 1) + 7) >> 4);
      }
      put(y, 2 * cw - 2, (3 * column(cw - 1) + column(cw - 2) + 8) >> 4);
      put(y, 2 * cw - 1, (4 * column(cw - 1) + 7) >> 4);
    }
  }
}

// libjpeg's YCbCr -> RGB (jdcolor.c, the JFIF equations) in 16-bit fixed point, with its rounding:
// R = Y + round(1.402 (Cr-128)), B = Y + round(1.772 (Cb-128)),
// G = Y + floor((-0.34414 (Cb-128) - 0.71414 (Cr-128)) 2^16 + 2^15) >> 16), all clamped to 0..255.
function clamp(v: number): number {
  return Math.max(0, Math.min(v, 255));
}

let yccTables: { crR: Int32Array; cbB: Int32Array; crG: Float64Array; cbG: Float64Array } | undefined;

function yccToRgb(data: Uint8Array): void {
  if (yccTables === undefined) {
    const fix = (x: number): number => Math.trunc(x * 65536 + 0.5);
    const half = 1 << 15;
    const tables = {
      crR: new Int32Array(256),
      cbB: new Int32Array(256),
      crG: new Float64Array(256),
      cbG: new Float64Array(256),
    };
    for (let i = 0; i < 256; i++) {
      const x = i - 128;
      tables.crR[i] = Math.floor((fix(1.402) * x + half) / 65536);
      tables.cbB[i] = Math.floor((fix(1.772) * x + half) / 65536);
      tables.crG[i] = -fix(0.71414) * x;
      tables.cbG[i] = -fix(0.34414) * x + half;
    }
    yccTables = tables;
  }
  const { crR, cbB, crG, cbG } = yccTables;
  for (let p = 0; p < data.length; p += 3) {
    const y = data[p] as number;
    const cb = data[p + 1] as number;
    const cr = data[p + 2] as number;
    data[p] = clamp(y + (crR[cr] as number));
    data[p + 1] = clamp(y + Math.floor(((cbG[cb] as number) + (crG[cr] as number)) / 65536));
    data[p + 2] = clamp(y + (cbB[cb] as number));
  }
}

/**
 * RGB to PIL's "L": L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16, the
 * 16-bit fixed-point form of ITU-R 601-2 luma (R 299/1000 + G 587/1000 + B
 * 114/1000) that Pillow's convert("L") uses. Gray images are returned as they are.
 *
 * @example
 * toLuma({ width: 1, height: 1, channels: 3, data: new Uint8Array([255, 0, 0]) }).data; // [76]
 */
export function toLuma(image: RasterImage): RasterImage {
  if (image.channels === 1) return image;
  const count = image.width * image.height;
  const src = image.data;
  const data = new Uint8Array(count);
  for (let p = 0; p < count; p++) {
    const r = src[3 * p] as number;
    const g = src[3 * p + 1] as number;
    const b = src[3 * p + 2] as number;
    data[p] = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
  }
  return { width: image.width, height: image.height, channels: 1, data };
}

// Pillow's resampler (libImaging/Resample.c, "ImagingResample") as its documentation and source
// comments describe it: a separable convolution, horizontal pass first, with the filter stretched by
// the downscale factor (antialiasing); weights normalized to sum 1, then fixed point with 22 fraction
// bits; each pass rounds (+half, >> 22) and clamps to 0..255, so the intermediate image is 8-bit.
const PRECISION_BITS = 32 - 8 - 2;

interface Coefficients {
  readonly size: number; // taps per output pixel (the row stride of `weights`)
  readonly bounds: Int32Array; // [first input index, tap count] per output pixel
  readonly weights: Int32Array;
}

function bilinearCoefficients(inSize: number, outSize: number): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 1 * filterScale; // the triangle filter's support is 1, widened when shrinking
  const size = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * size);
  const k = new Float64Array(size);
  const inverse = 1 / filterScale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xcount = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let sum = 0;
    for (let x = 0; x < xcount; x++) {
      const t = Math.abs((x + xmin - center + 0.5) * inverse);
      const w = t < 1 ? 1 - t : 0;
      k[x] = w;
      sum += w;
    }
    for (let x = 0; x < xcount; x++) {
      const w = sum !== 0 ? (k[x] as number) / sum : (k[x] as number);
      const fixed = w * (1 << PRECISION_BITS);
      weights[xx * size + x] = Math.trunc(w < 0 ? fixed - 0.5 : fixed + 0.5);
    }
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = xcount;
  }
  return { size, bounds, weights };
}

function clamp8(sum: number): number {
  return clamp(sum >> PRECISION_BITS);
}

/**
 * Resizes to `width` x `height` like PIL's `img.resize((width, height),
 * Image.BILINEAR)`: triangle filter widened by the downscale factor
 * (antialiased), 8-bit fixed-point passes, horizontal first. Returns the same
 * image when the size does not change.
 *
 * @example
 * const small = resizeImage(img, 16, 12);
 * [small.width, small.height]; // [16, 12]
 */
export function resizeImage(image: RasterImage, width: number, height: number): RasterImage {
  for (const [what, v] of [
    ["width", width],
    ["height", height],
  ] as const) {
    if (!Number.isInteger(v) || v < 1)
      throw new Error(`resizeImage(): '${what}' must be a positive integer, got ${v}`);
  }
  if (width === image.width && height === image.height) return image;
  const channels = image.channels;
  const vertical = bilinearCoefficients(image.height, height);
  let src = image.data;
  let srcWidth = image.width;
  if (width !== image.width) {
    const horizontal = bilinearCoefficients(image.width, width);
    // Only the input rows the vertical pass reads are resampled horizontally.
    const first = vertical.bounds[0] as number;
    const last = (vertical.bounds[2 * height - 2] as number) + (vertical.bounds[2 * height - 1] as number);
    const rows = last - first;
    const out = new Uint8Array(width * rows * channels);
    const { size, bounds, weights } = horizontal;
    for (let y = 0; y < rows; y++) {
      const row = (y + first) * srcWidth * channels;
      for (let xx = 0; xx < width; xx++) {
        const xmin = bounds[2 * xx] as number;
        const count = bounds[2 * xx + 1] as number;
        for (let c = 0; c < channels; c++) {
          let sum = 1 << (PRECISION_BITS - 1);
          for (let x = 0; x < count; x++) {
            sum += (src[row + (xmin + x) * channels + c] as number) * (weights[xx * size + x] as number);
          }
          out[(y * width + xx) * channels + c] = clamp8(sum);
        }
      }
    }
    for (let yy = 0; yy < height; yy++) vertical.bounds[2 * yy] = (vertical.bounds[2 * yy] as number) - first;
    src = out;
    srcWidth = width;
  }
  if (height === image.height) return { width, height, channels, data: src };
  const out = new Uint8Array(width * height * channels);
  const { size, bounds, weights } = vertical;
  const stride = srcWidth * channels;
  for (let yy = 0; yy < height; yy++) {
    const ymin = bounds[2 * yy] as number;
    const count = bounds[2 * yy + 1] as number;
    for (let i = 0; i < stride; i++) {
      let sum = 1 << (PRECISION_BITS - 1);
      for (let y = 0; y < count; y++) {
        sum += (src[(ymin + y) * stride + i] as number) * (weights[yy * size + y] as number);
      }
      out[yy * stride + i] = clamp8(sum);
    }
  }
  return { width, height, channels, data: out };
}

/**
 * The size torchvision's `Resize(size)` gives an image of `width` x `height`:
 * the shorter side becomes `size`, the longer `int(size * long / short)`.
 *
 * @example
 * resizedSize(500, 375, 256); // { width: 341, height: 256 }
 */
export function resizedSize(width: number, height: number, size: number): { width: number; height: number } {
  if (width <= height) return { width: size, height: Math.trunc((size * height) / width) };
  return { width: Math.trunc((size * width) / height), height: size };
}

// Python's round(): halves go to the even neighbour.
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Cuts the centred `size` x `size` square, offsets as torchvision's
 * `CenterCrop`: top = round((height - size) / 2) with Python's round (half to
 * even), left likewise. The image must be at least `size` on both sides.
 *
 * @example
 * centerCrop(img, 24); // a 24 x 24 image
 */
export function centerCrop(image: RasterImage, size: number, options: { file?: string } = {}): RasterImage {
  const { width, height, channels } = image;
  if (width < size || height < size) {
    throw new Error(
      `${options.file ?? "centerCrop()"}: image is ${width}x${height} (width x height), smaller than the crop ${size}x${size}; pass a smaller --crop or --resize at least ${size}`,
    );
  }
  if (width === size && height === size) return image;
  const top = roundHalfEven((height - size) / 2);
  const left = roundHalfEven((width - size) / 2);
  const data = new Uint8Array(size * size * channels);
  for (let y = 0; y < size; y++) {
    const from = ((top + y) * width + left) * channels;
    data.set(image.data.subarray(from, from + size * channels), y * size * channels);
  }
  return { width: size, height: size, channels, data };
}

// Python's sorted() on str compares code points; JS compares UTF-16 units, which disagrees only between
// surrogates (code points above U+FFFF) and U+E000..U+FFFF. Lifting surrogates above that range fixes it.
function codePointKey(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  return unit >= 0xe000 ? unit - 0x800 : unit;
}

function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointKey(x) - codePointKey(y);
  }
  return a.length - b.length;
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

function isFolder(path: string): boolean {
  return statOrUndefined(path)?.isDirectory() === true;
}

function subFolders(path: string): string[] {
  return readdirSync(path)
    .filter((name) => name !== CACHE_FOLDER && isFolder(join(path, name)))
    .sort(compareCodePoints);
}

function isImageName(name: string): boolean {
  const lower = name.toLowerCase();
  return IMAGE_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

interface Listing {
  readonly root: string;
  readonly classes: string[];
  readonly files: string[]; // relative to root, "/"-separated
  readonly labels: Int32Array;
  readonly stats: { size: number; mtimeMs: number }[];
}

// torchvision's make_dataset: for each class, sorted(os.walk(class_dir, followlinks=True)) orders the
// folders by their whole path string (so "x-y" comes before "x/z"), then the file names in each folder.
function listClass(root: string, cls: string): { files: string[]; stats: Stats[] } {
  const folders: string[] = [];
  const seen = new Set<string>();
  const visit = (rel: string): void => {
    const real = realpathSync(join(root, rel));
    if (seen.has(real)) return; // a symbolic-link loop, which os.walk would follow forever
    seen.add(real);
    folders.push(rel);
    for (const name of readdirSync(join(root, rel))) {
      if (isFolder(join(root, rel, name))) visit(`${rel}/${name}`);
    }
  };
  visit(cls);
  folders.sort(compareCodePoints);
  const files: string[] = [];
  const stats: Stats[] = [];
  for (const folder of folders) {
    const names = readdirSync(join(root, folder)).sort(compareCodePoints);
    for (const name of names) {
      if (!isImageName(name)) continue;
      const stat = statOrUndefined(join(root, folder, name));
      if (stat === undefined || stat.isDirectory()) continue;
      files.push(`${folder}/${name}`);
      stats.push(stat);
    }
  }
  return { files, stats };
}

function listFolder(root: string): Listing {
  const classes = subFolders(root);
  if (classes.length === 0) {
    throw new Error(
      `readImageFolder(): ${root} has no class folders; expected one sub-folder per class holding ${IMAGE_EXTENSIONS.join(" ")} images (torchvision ImageFolder layout)`,
    );
  }
  const files: string[] = [];
  const labels: number[] = [];
  const stats: { size: number; mtimeMs: number }[] = [];
  for (const [label, cls] of classes.entries()) {
    const found = listClass(root, cls);
    if (found.files.length === 0) {
      throw new Error(
        `readImageFolder(): class folder ${join(root, cls)} has no images; expected files ending in ${IMAGE_EXTENSIONS.join(", ")} (any case), in it or in its sub-folders`,
      );
    }
    files.push(...found.files);
    for (const stat of found.stats) {
      labels.push(label);
      stats.push({ size: stat.size, mtimeMs: stat.mtimeMs });
    }
  }
  return { root, classes, files, labels: Int32Array.from(labels), stats };
}

// A split layout has DIR/train/ beside DIR/val/ or DIR/test/, each holding class folders.
function splitFolders(dir: string): { train: string; test: string } | undefined {
  const holdsClasses = (path: string): boolean => isFolder(path) && subFolders(path).length > 0;
  const train = join(dir, "train");
  if (!holdsClasses(train)) return undefined;
  for (const name of ["val", "test"]) {
    if (holdsClasses(join(dir, name))) return { train, test: join(dir, name) };
  }
  return undefined;
}

function checkSize(what: string, value: number | undefined): void {
  if (value === undefined) return;
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`readImageFolder(): '${what}' must be a positive integer number of pixels, got ${value}`);
  }
}

/**
 * Reads an image folder in torchvision's ImageFolder layout. The class root is
 * DIR itself, or DIR/train/ and DIR/val/ (else DIR/test/) when DIR holds both
 * (val/ wins over test/ when both exist); classes are its sub-folders in
 * code-point order (Python's sorted()), each walked recursively like
 * torchvision's make_dataset; files ending in .png, .jpg or .jpeg (any case)
 * are read, others skipped. Each image is decoded (`decodeImage`), made gray
 * (`toLuma`) when `channels` is 1, resized (`resizedSize`, `resizeImage`) when
 * `resize` is given, then centre-cropped (`centerCrop`) when `crop` is given;
 * without both, every image must end up one size. The decoded pixels are
 * cached under DIR/.losscape-cache/ (os.tmpdir()/losscape-cache/ when DIR is
 * read-only) and reused while no file is added, removed, resized or touched.
 *
 * @example
 * const train = readImageFolder("data/imagenette", { resize: 40, crop: 32 });
 * const test = readImageFolder("data/imagenette", { resize: 40, crop: 32, split: "test" });
 * train.name; // "images:imagenette/train"
 */
export function readImageFolder(dir: string, options: ImageFolderOptions = {}): ImageFolder {
  const { resize, crop, split = "train", cache = true, channels = 3 } = options;
  checkSize("resize", resize);
  checkSize("crop", crop);
  if (resize !== undefined && crop !== undefined && crop > resize) {
    throw new Error(
      `readImageFolder(): 'crop' ${crop} is larger than 'resize' ${resize}: the resized shorter side would be smaller than the crop`,
    );
  }
  if (split !== "train" && split !== "test") {
    throw new Error(`readImageFolder(): 'split' must be "train" or "test", got ${JSON.stringify(split)}`);
  }
  if (channels !== 1 && channels !== 3) {
    throw new Error(
      `readImageFolder(): 'channels' must be 1 (gray) or 3 (RGB), got ${JSON.stringify(channels)}`,
    );
  }
  const stat = statOrUndefined(dir);
  if (stat === undefined) throw new Error(`readImageFolder(): 'dir' ${dir} does not exist`);
  if (!stat.isDirectory()) throw new Error(`readImageFolder(): 'dir' ${dir} is not a folder`);

  const splits = splitFolders(dir);
  let listing: Listing;
  if (splits === undefined) {
    if (split === "test") {
      throw new Error(
        `readImageFolder(): ${dir} has no train/ beside val/ or test/, so it is one class root and has only split "train"; pass the test images as their own folder: --test-data images:DIR2`,
      );
    }
    listing = listFolder(dir);
  } else if (split === "train") {
    listing = listFolder(splits.train);
  } else {
    listing = listFolder(splits.test);
    const trainClasses = subFolders(splits.train);
    const same =
      trainClasses.length === listing.classes.length &&
      trainClasses.every((c, i) => c === listing.classes[i]);
    if (!same) {
      throw new Error(
        `readImageFolder(): the classes of ${splits.test} differ from those of ${splits.train}: test has [${listing.classes.join(", ")}] but train has [${trainClasses.join(", ")}]; both splits need the same class folders`,
      );
    }
  }

  const name = `images:${basename(resolve(dir))}/${split}`;
  const settings = { split, resize: resize ?? null, crop: crop ?? null, channels };
  const key = createHash("sha256")
    .update(
      JSON.stringify({
        format: CACHE_MAGIC,
        ...settings,
        root: listing.root.slice(dir.length),
        files: listing.files.map((f, i) => [f, listing.stats[i]?.size, listing.stats[i]?.mtimeMs]),
      }),
    )
    .digest("hex");
  const cacheName = `${split}-r${resize ?? "none"}-c${crop ?? "none"}-ch${channels}.bin`;
  const places = [
    join(dir, CACHE_FOLDER, cacheName),
    join(
      tmpdir(),
      "losscape-cache",
      `${createHash("sha256").update(resolve(dir)).digest("hex").slice(0, 16)}-${cacheName}`,
    ),
  ];
  const result = (shape: number[], pixels: Uint8Array): ImageFolder => ({
    name,
    shape,
    pixels,
    labels: listing.labels,
    classes: listing.classes,
    files: listing.files,
  });
  if (cache) {
    for (const place of places) {
      const hit = readCache(place, key, listing.files.length);
      if (hit !== undefined) return result(hit.shape, hit.pixels);
    }
  }
  const { shape, pixels } = decodeAll(listing, { resize, crop, channels });
  if (cache) {
    for (const place of places) {
      if (writeCache(place, key, shape, pixels)) break;
    }
  }
  return result(shape, pixels);
}

function decodeAll(
  listing: Listing,
  options: { resize: number | undefined; crop: number | undefined; channels: 1 | 3 },
): { shape: number[]; pixels: Uint8Array } {
  const { resize, crop, channels } = options;
  let shape: number[] | undefined;
  let firstFile = "";
  let pixels = new Uint8Array(0);
  for (const [i, rel] of listing.files.entries()) {
    const file = join(listing.root, rel);
    let image = decodeImage(readFileSync(file), { file });
    if (channels === 1) image = toLuma(image);
    if (resize !== undefined) {
      const size = resizedSize(image.width, image.height, resize);
      image = resizeImage(image, size.width, size.height);
    }
    if (crop !== undefined) image = centerCrop(image, crop, { file });
    if (shape === undefined) {
      shape = [channels, image.height, image.width];
      firstFile = file;
      pixels = new Uint8Array(listing.files.length * channels * image.height * image.width);
    } else if (image.height !== shape[1] || image.width !== shape[2]) {
      // With a crop every image is crop x crop, so only reads without one get here.
      const how = resize === undefined ? "" : ` after --resize ${resize}`;
      throw new Error(
        `readImageFolder(): ${file} is ${image.width}x${image.height} (width x height)${how} but ${firstFile} is ${shape[2]}x${shape[1]}; all images must have one size: pass --resize and/or --crop (e.g. --resize ${resize ?? Math.min(shape[1] ?? 1, shape[2] ?? 1)} --crop ${Math.min(shape[1] ?? 1, shape[2] ?? 1, resize ?? Infinity)})`,
      );
    }
    // Interleaved HWC to planar CHW; a gray image fills every channel.
    const plane = image.width * image.height;
    const base = i * channels * plane;
    const src = image.data;
    for (let c = 0; c < channels; c++) {
      const from = image.channels === 1 ? 0 : c;
      const step = image.channels;
      for (let p = 0; p < plane; p++) pixels[base + c * plane + p] = src[p * step + from] as number;
    }
  }
  return { shape: shape ?? [channels, 0, 0], pixels };
}

// Cache file: the 16 magic bytes, a uint32 little-endian header length, a JSON header
// { key, count, shape }, then count x C x H x W pixel bytes. Anything unexpected is a miss.
function readCache(
  path: string,
  key: string,
  count: number,
): { shape: number[]; pixels: Uint8Array } | undefined {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch {
    return undefined;
  }
  try {
    if (bytes.length < 20 || bytes.subarray(0, 16).toString("latin1") !== CACHE_MAGIC) return undefined;
    const headerLength = bytes.readUInt32LE(16);
    if (20 + headerLength > bytes.length) return undefined;
    const header = JSON.parse(bytes.subarray(20, 20 + headerLength).toString("utf8")) as {
      key?: unknown;
      count?: unknown;
      shape?: unknown;
    };
    const shape = header.shape;
    if (header.key !== key || header.count !== count || !Array.isArray(shape) || shape.length !== 3)
      return undefined;
    if (!shape.every((d) => Number.isInteger(d) && d >= 0)) return undefined;
    const size = count * (shape as number[]).reduce((a, b) => a * b, 1);
    if (bytes.length !== 20 + headerLength + size) return undefined;
    return { shape: shape as number[], pixels: new Uint8Array(bytes.subarray(20 + headerLength)) };
  } catch {
    return undefined;
  }
}

// Written to a temporary file and renamed, so a reader never sees half a cache. False when the folder is not writable.
function writeCache(path: string, key: string, shape: number[], pixels: Uint8Array): boolean {
  const count =
    pixels.length /
    Math.max(
      1,
      shape.reduce((a, b) => a * b, 1),
    );
  const header = Buffer.from(JSON.stringify({ key, count, shape }), "utf8");
  const prefix = Buffer.alloc(20);
  prefix.write(CACHE_MAGIC, 0, "latin1");
  prefix.writeUInt32LE(header.length, 16);
  const temporary = `${path}.${process.pid}.${Date.now()}.tmp`;
  let fd: number | undefined;
  try {
    mkdirSync(join(path, ".."), { recursive: true });
    fd = openSync(temporary, "w");
    writeSync(fd, prefix);
    writeSync(fd, header);
    for (let at = 0; at < pixels.length; ) at += writeSync(fd, pixels, at, pixels.length - at);
    closeSync(fd);
    fd = undefined;
    renameSync(temporary, path);
    return true;
  } catch {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(temporary);
    } catch {
      // nothing was created
    }
    return false;
  }
}
