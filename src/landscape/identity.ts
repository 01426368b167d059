// Identities of what a surface was computed from (model, parameters,
// directions, data), as short SHA-256 hashes stored in the surface file, so a
// resume or merge can refuse to mix results of different inputs.

import { createHash } from "node:crypto";
import { type Dataset, datasetSize, readSamples, sampleSize } from "../data/dataset.ts";
import type { Model } from "../model/model.ts";

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** First 16 hex digits of the SHA-256 of the given byte views. */
export function hashOf(...parts: ArrayBufferView[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(bytesOf(p));
  return h.digest("hex").slice(0, 16);
}

/**
 * Hash of a model's graph and the parameter vector it is evaluated at.
 *
 * @example
 * modelHash(model, model.initial); // "3f2a9c0d1e4b5a67"
 */
export function modelHash(model: Model, params: Float32Array): string {
  return hashOf(model.onnx, params);
}

/** Hash of a dataset's samples and labels (a streamed dataset is read through in chunks: same hash as in memory). */
export function dataHash(data: Dataset): string {
  if (!data.read) return hashOf(data.inputs, data.labels);
  const h = createHash("sha256");
  const n = datasetSize(data);
  const chunk = 256;
  const scratch = new Float32Array(chunk * sampleSize(data));
  for (let start = 0; start < n; start += chunk)
    h.update(bytesOf(readSamples(data, start, Math.min(chunk, n - start), scratch)));
  h.update(bytesOf(data.labels));
  return h.digest("hex").slice(0, 16);
}

/** Hash of one or more direction vectors. */
export function directionsHash(directions: readonly Float32Array[]): string {
  return hashOf(...directions);
}
