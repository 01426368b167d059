// The in-memory dataset every engine evaluates on: samples as one flat float32
// array in NCHW (or N x features) order, labels as class indices.

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
  /** All samples back to back, length = count * product(shape). */
  readonly inputs: Float32Array;
  /** Class index of each sample. */
  readonly labels: Uint8Array | Uint16Array | Int32Array;
  /** Number of classes. */
  readonly classes: number;
}

/** Number of samples in a dataset. */
export function datasetSize(data: Dataset): number {
  return data.labels.length;
}

/** Number of values in one sample. */
export function sampleSize(data: Dataset): number {
  return data.shape.reduce((a, b) => a * b, 1);
}
