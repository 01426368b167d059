// The in-memory dataset every engine evaluates on: samples as one flat float32
// array in NCHW (or N x features) order (or int32 token ids), targets as class
// indices (or float regression targets): one per sample, or one per position of
// a per-sample target shape.

/**
 * A labelled set of samples, already normalized, ready for a model's input.
 *
 * @example
 * const ds: Dataset = { name: "toy", shape: [1, 2, 2], inputs: new Float32Array(8), labels: new Uint8Array(2), classes: 2 };
 */
export interface Dataset {
  /** Human-readable identity (file name, "fashion-mnist/train", ...). */
  readonly name: string;
  /** Shape of one sample, e.g. [1, 28, 28] or [3, 32, 32]. */
  readonly shape: readonly number[];
  /**
   * All samples back to back, length = count * product(shape); empty for a streamed dataset (see
   * `read`). Token ids (for models whose input is int64/int32) are an Int32Array.
   */
  readonly inputs: Float32Array | Int32Array;
  /**
   * Streamed datasets: copies samples [start, start + count) into `out` (normalized), reading them from disk, so
   * that memory holds one batch rather than the whole set. In-memory datasets leave it undefined.
   */
  readonly read?: (start: number, count: number, out: Float32Array) => void;
  /**
   * Class index of each sample, or of each position of each sample when `targetShape` is set
   * (count * product(targetShape) values: next-token targets [T], per-pixel classes [H, W]). Int32Array
   * class indices may be negative (an ignore index such as -100). A Float32Array holds regression targets
   * (`classes` is then 0).
   */
  readonly labels: Uint8Array | Uint16Array | Int32Array | Float32Array;
  /** Shape of one sample's targets (default []: one class index per sample). */
  readonly targetShape?: readonly number[];
  /** Number of classes (0 for regression targets). */
  readonly classes: number;
  /**
   * The normalization applied to the inputs, as result files record it: "mean M1,... std S1,..." (see
   * `describeNormalization`), "none", or "token ids" for token inputs. Absent where the builder did not say.
   */
  readonly normalization?: string;
}

/** Number of target positions per sample (1 unless `targetShape` is set). */
export function targetSize(data: Dataset): number {
  return (data.targetShape ?? []).reduce((a, b) => a * b, 1);
}

/** Number of samples in a dataset. */
export function datasetSize(data: Dataset): number {
  return data.labels.length / targetSize(data);
}

/** Number of values in one sample. */
export function sampleSize(data: Dataset): number {
  return data.shape.reduce((a, b) => a * b, 1);
}

/**
 * Samples [start, start + count) of a dataset as one flat array: a view of an in-memory dataset, or for a streamed
 * one the samples read into `scratch` (reused when it is large enough, so a loop holds one batch).
 *
 * @example
 * const x = readSamples(data, 0, 128, scratch);
 */
export function readSamples(
  data: Dataset,
  start: number,
  count: number,
  scratch?: Float32Array,
): Float32Array | Int32Array {
  const per = sampleSize(data);
  if (!data.read) return data.inputs.subarray(start * per, (start + count) * per);
  const out =
    scratch && scratch.length >= count * per
      ? scratch.subarray(0, count * per)
      : new Float32Array(count * per);
  data.read(start, count, out);
  return out;
}
