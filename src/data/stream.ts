// Streamed datasets: samples stay on disk and are read batch by batch at their
// byte offsets (CIFAR binary batches, uncompressed IDX files), so evaluating a
// surface holds one batch of samples in memory whatever the dataset's size.
// Labels (one byte per sample) are read once and kept.

import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { basename } from "node:path";
import type { Dataset } from "./dataset.ts";
import { type ChannelStats, channelCount } from "./transform.ts";

/** Options of the streaming readers. */
export interface StreamOptions {
  /** Per-channel normalization applied to every read sample (pixels are first scaled to [0, 1]). */
  normalize: ChannelStats;
  name?: string;
}

const CHUNK = 4096;

/** A byte range of a file holding `count` records. */
interface Segment {
  path: string;
  /** Offset of the first record's pixels. */
  offset: number;
  count: number;
}

/** Builds the read() of a dataset whose records are fixed-size byte records in file segments. */
function recordReader(
  segments: readonly Segment[],
  recordBytes: number,
  pixelOffset: number,
  shape: readonly number[],
  stats: ChannelStats,
) {
  const per = shape.reduce((a, b) => a * b, 1);
  const channels = channelCount(shape);
  const plane = per / channels;
  // One lookup table per channel, computed as the in-memory readers do (float32 of byte/255, then
  // (x - mean) / std rounded to float32), so streamed and loaded samples are bit-identical.
  const tables = stats.mean.map((m, c) => {
    const t = new Float32Array(256);
    for (let v = 0; v < 256; v++) t[v] = (Math.fround(v / 255) - m) / (stats.std[c] as number);
    return t;
  });
  const starts: number[] = [];
  let total = 0;
  for (const s of segments) {
    starts.push(total);
    total += s.count;
  }
  return (start: number, count: number, out: Float32Array): void => {
    if (start < 0 || count < 0 || start + count > total)
      throw new Error(`read(): samples ${start}..${start + count - 1} are outside 0..${total - 1}`);
    let done = 0;
    while (done < count) {
      const index = start + done;
      let seg = 0;
      while (seg + 1 < segments.length && (starts[seg + 1] as number) <= index) seg++;
      const s = segments[seg]!;
      const local = index - (starts[seg] as number);
      const n = Math.min(count - done, s.count - local);
      const bytes = Buffer.alloc(n * recordBytes);
      const fd = openSync(s.path, "r");
      try {
        const got = readSync(fd, bytes, 0, bytes.length, s.offset + local * recordBytes);
        if (got !== bytes.length)
          throw new Error(
            `${s.path}: expected ${bytes.length} bytes at offset ${s.offset + local * recordBytes}, read ${got} (was the file truncated?)`,
          );
      } finally {
        closeSync(fd);
      }
      for (let r = 0; r < n; r++) {
        const base = r * recordBytes + pixelOffset;
        const o = (done + r) * per;
        for (let c = 0; c < channels; c++) {
          const t = tables[c]!;
          for (let j = 0; j < plane; j++)
            out[o + c * plane + j] = t[bytes[base + c * plane + j] as number] as number;
        }
      }
      done += n;
    }
  };
}

function fileSize(path: string): number {
  const fd = openSync(path, "r");
  try {
    return fstatSync(fd).size;
  } finally {
    closeSync(fd);
  }
}

/** Reads bytes [offset, offset + length) of a file. */
function readRange(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, "r");
  try {
    const b = Buffer.alloc(length);
    const got = readSync(fd, b, 0, length, offset);
    if (got !== length) throw new Error(`${path}: expected ${length} bytes at offset ${offset}, read ${got}`);
    return b;
  } finally {
    closeSync(fd);
  }
}

/**
 * CIFAR-10/100 binary batches as a streamed dataset (labels read once, pixels on demand).
 *
 * @example
 * const train = streamCifar(["data_batch_1.bin", "data_batch_2.bin"], { normalize: DATASET_STATS.cifar10 });
 */
export function streamCifar(
  paths: readonly string[],
  options: StreamOptions & { variant?: "cifar10" | "cifar100"; label?: "fine" | "coarse" },
): Dataset {
  const { variant = "cifar10", label = "fine" } = options;
  const labelBytes = variant === "cifar10" ? 1 : 2;
  const labelAt = variant === "cifar10" || label === "coarse" ? 0 : 1;
  const classes = variant === "cifar10" ? 10 : label === "coarse" ? 20 : 100;
  const record = labelBytes + 3072;
  const segments: Segment[] = [];
  const labelParts: Uint8Array[] = [];
  for (const path of paths) {
    const size = fileSize(path);
    if (size === 0 || size % record !== 0) {
      throw new Error(
        `${path}: ${size} bytes is not a whole number of ${record}-byte ${variant} records (record ${Math.floor(size / record)} at offset ${Math.floor(size / record) * record} is truncated)`,
      );
    }
    const count = size / record;
    const labels = new Uint8Array(count);
    for (let k = 0; k < count; k += CHUNK) {
      const n = Math.min(CHUNK, count - k);
      const bytes = readRange(path, k * record, n * record);
      for (let r = 0; r < n; r++) {
        const v = bytes[r * record + labelAt] as number;
        if (v >= classes)
          throw new Error(
            `${path}: label ${v} of record ${k + r} (offset ${(k + r) * record + labelAt}) is outside 0..${classes - 1}`,
          );
        labels[k + r] = v;
      }
    }
    labelParts.push(labels);
    segments.push({ path, offset: 0, count });
  }
  const labels = new Uint8Array(labelParts.reduce((a, l) => a + l.length, 0));
  let at = 0;
  for (const l of labelParts) {
    labels.set(l, at);
    at += l.length;
  }
  const shape = [3, 32, 32];
  return {
    name: options.name ?? paths.map((p) => basename(p)).join("+"),
    shape,
    inputs: new Float32Array(0),
    labels,
    classes,
    read: recordReader(segments, record, labelBytes, shape, options.normalize),
  };
}

/**
 * An uncompressed MNIST/Fashion-MNIST IDX image file and its label file as a streamed dataset.
 *
 * @example
 * const train = streamIdx("train-images-idx3-ubyte", "train-labels-idx1-ubyte", { normalize: DATASET_STATS.mnist });
 */
export function streamIdx(
  imagesPath: string,
  labelsPath: string,
  options: StreamOptions & { classes?: number },
): Dataset {
  for (const p of [imagesPath, labelsPath]) {
    if (readRange(p, 0, 2).readUInt16BE(0) === 0x1f8b) {
      throw new Error(
        `${p}: streaming reads uncompressed IDX files; this one is gzip-compressed (gunzip it first, or load it in memory without --stream)`,
      );
    }
  }
  const head = readRange(imagesPath, 0, 16);
  if (head.readUInt32BE(0) !== 0x803)
    throw new Error(
      `${imagesPath}: magic 0x${head.readUInt32BE(0).toString(16)} at offset 0, expected 0x803 (IDX images)`,
    );
  const [count, rows, cols] = [head.readUInt32BE(4), head.readUInt32BE(8), head.readUInt32BE(12)];
  const need = 16 + count * rows * cols;
  const size = fileSize(imagesPath);
  if (size < need)
    throw new Error(
      `${imagesPath}: header says ${count} images of ${rows}x${cols} (${need - 16} bytes) but only ${size - 16} bytes follow at offset 16`,
    );
  const lhead = readRange(labelsPath, 0, 8);
  if (lhead.readUInt32BE(0) !== 0x801)
    throw new Error(
      `${labelsPath}: magic 0x${lhead.readUInt32BE(0).toString(16)} at offset 0, expected 0x801 (IDX labels)`,
    );
  if (lhead.readUInt32BE(4) !== count)
    throw new Error(`${labelsPath}: ${lhead.readUInt32BE(4)} labels but '${imagesPath}' has ${count} images`);
  const labels = new Uint8Array(readRange(labelsPath, 8, count));
  const classes = options.classes ?? 10;
  const shape = [1, rows, cols];
  return {
    name: options.name ?? basename(imagesPath),
    shape,
    inputs: new Float32Array(0),
    labels,
    classes,
    read: recordReader([{ path: imagesPath, offset: 16, count }], rows * cols, 0, shape, options.normalize),
  };
}
