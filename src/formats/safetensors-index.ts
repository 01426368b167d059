// Random access to the tensors of a safetensors file without reading the whole
// file: the header is parsed once and tensors are read at their offsets. Used
// to stream parameters of many checkpoints (trajectory PCA) one tensor at a time.

import { closeSync, fstatSync, openSync, readSync } from "node:fs";

/** An open safetensors file. */
export interface SafetensorsReader {
  readonly path: string;
  /** Tensor names with dtype and shape, in header order. */
  readonly tensors: ReadonlyMap<string, { dtype: string; shape: number[]; begin: number; end: number }>;
  readonly metadata: Record<string, string>;
  /** Reads one F32 (or F64, converted) tensor. */
  readFloat32(name: string): Float32Array;
  close(): void;
}

/**
 * Opens a safetensors file for reading single tensors.
 *
 * @example
 * const r = openSafetensors("runs/cnn/epoch-003.safetensors");
 * const w = r.readFloat32("conv1.weight");
 * r.close();
 */
export function openSafetensors(path: string): SafetensorsReader {
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(8);
    if (size < 8 || readSync(fd, head, 0, 8, 0) !== 8)
      throw new Error(`${path}: file is ${size} bytes, too short for a safetensors header`);
    const length = Number(head.readBigUInt64LE(0));
    if (8 + length > size)
      throw new Error(`${path}: safetensors header length ${length} exceeds file size ${size}`);
    const json = Buffer.alloc(length);
    readSync(fd, json, 0, length, 8);
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(json.toString("utf8")) as Record<string, unknown>;
    } catch (e) {
      throw new Error(`${path}: safetensors header is not valid JSON: ${(e as Error).message}`);
    }
    const dataStart = 8 + length;
    const tensors = new Map<string, { dtype: string; shape: number[]; begin: number; end: number }>();
    let metadata: Record<string, string> = {};
    for (const [name, entry] of Object.entries(header)) {
      if (name === "__metadata__") {
        metadata = entry as Record<string, string>;
        continue;
      }
      const e = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
      const [begin, end] = e.data_offsets;
      if (!(begin >= 0 && end >= begin && dataStart + end <= size)) {
        throw new Error(
          `${path}: tensor '${name}' has data_offsets [${begin}, ${end}] outside the file (${size} bytes); is it truncated?`,
        );
      }
      tensors.set(name, { dtype: e.dtype, shape: e.shape, begin: dataStart + begin, end: dataStart + end });
    }
    return {
      path,
      tensors,
      metadata,
      readFloat32(name) {
        const t = tensors.get(name);
        if (!t) throw new Error(`${path}: no tensor '${name}'`);
        const bytes = Buffer.alloc(t.end - t.begin);
        readSync(fd, bytes, 0, bytes.length, t.begin);
        if (t.dtype === "F32")
          return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4).slice();
        if (t.dtype === "F64")
          return Float32Array.from(
            new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)),
          );
        throw new Error(`${path}: tensor '${name}' is ${t.dtype}; expected F32 or F64`);
      },
      close() {
        closeSync(fd);
      },
    };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}
