// A small synchronous seam over HDF5 (h5wasm): bytes -> a read-only view, and a
// declarative tree -> bytes. The surface and direction file modules build on it;
// nothing here knows about landscapes.
//
// We load h5wasm's default (ESM) build, whose WebAssembly is embedded and whose
// files live in Emscripten's in-memory MEMFS. The `h5wasm/node` build is
// compiled with NODERAWFS, i.e. it opens paths on the real disk relative to the
// process's working directory, which would force `parse(bytes)` through
// temporary files. With MEMFS a parse copies the bytes into memory, opens them,
// reads and unlinks: no disk access, and the `read*`/`write*` wrappers do the
// only I/O (atomically, see atomic.ts). Module loading awaits `h5wasm.ready`
// once (top-level await, ~0.2 s; ESM only), so every function below is
// synchronous. A file is held in memory whole while it is parsed or written.

import h5wasm, { Dataset, Group } from "h5wasm";

const Module = await h5wasm.ready;
const FS = Module.FS;

// HDF5 prints its error stack to stderr (fd 2). Point fd 2 at an in-memory log
// instead: the noise stays off the terminal and the deepest message ("file
// signature not found", "truncated file: eof = 100 ...") goes into our errors.
// The redirect is process-wide for h5wasm's default build (any other importer of
// "h5wasm" shares this instance); its HDF5 diagnostics land in the same log.
const ERROR_LOG = "/losscape-hdf5-errors.log";
{
  const streams = (FS as unknown as { streams: (object | null | undefined)[] }).streams;
  const stderr = streams[2];
  if (stderr) FS.close(stderr as Parameters<typeof FS.close>[0]);
  FS.open(ERROR_LOG, "a"); // lowest free descriptor: 2
}

let scratchCounter = 0;

/** Attribute values losscape writes: always strings (numbers are stringified by the caller). */
export type H5Attrs = Record<string, string>;

/**
 * A dataset to write. `shape` `[]` means a scalar; `data.length` must equal the
 * product of `shape`. Strings are written as scalar variable-length UTF-8.
 *
 * @example
 * const d: H5DatasetNode = { kind: "dataset", data: new Float64Array([1, 2]), shape: [2] };
 */
export interface H5DatasetNode {
  readonly kind: "dataset";
  readonly data: Float64Array | Float32Array | Uint8Array | string;
  readonly shape: readonly number[];
  readonly attrs?: H5Attrs;
}

/**
 * A group to write, with its children by name.
 *
 * @example
 * const g: H5GroupNode = { kind: "group", children: { "0": dataset } };
 */
export interface H5GroupNode {
  readonly kind: "group";
  readonly children: Readonly<Record<string, H5Node>>;
  readonly attrs?: H5Attrs;
}

/** A node of the tree `encodeH5` writes. */
export type H5Node = H5DatasetNode | H5GroupNode;

/**
 * A malformed or unreadable HDF5 file, or one that lacks what a format needs.
 * The message names the file and the dataset.
 *
 * @example
 * try { readSurface("x.h5"); } catch (e) { if (e instanceof H5FormatError) console.error(e.message); }
 */
export class H5FormatError extends Error {
  override readonly name = "H5FormatError";
}

/** A numeric dataset widened to one JS element type, with its shape ([] for a scalar). */
export interface H5Array<T extends Float64Array | Float32Array> {
  readonly data: T;
  readonly shape: number[];
}

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/** Where the HDF5 superblock may start: 0, 512, 1024, 2048, ... (after a user block). */
function hasHdf5Signature(bytes: Uint8Array): boolean {
  for (
    let offset = 0;
    offset + HDF5_SIGNATURE.length <= bytes.length;
    offset = offset === 0 ? 512 : offset * 2
  ) {
    if (HDF5_SIGNATURE.every((b, k) => bytes[offset + k] === b)) return true;
  }
  return false;
}

function clearErrorLog(): void {
  FS.truncate(ERROR_LOG, 0);
}

/**
 * The innermost message of the first HDF5 error stack logged since the last
 * clear (the root cause; later stacks are follow-ups), e.g. "truncated file:
 * eof = 3000, sblock->base_addr = 0, stored_eof = 10800".
 */
function hdf5RootCause(): string | null {
  const log = FS.readFile(ERROR_LOG, { encoding: "utf8" });
  const first = log.split("HDF5-DIAG").find((block) => block.includes("#000"));
  if (first === undefined) return null;
  const frames = [...first.matchAll(/#\d+: .*? in [\w.]+\(\): (.*)$/gm)];
  const message = frames.at(-1)?.[1]?.trim();
  return message === undefined || message === "" ? null : message;
}

function describe(kind: "dataset" | "group" | "other" | null): string {
  return kind === null ? "missing" : kind === "other" ? "neither a dataset nor a group" : `a ${kind}`;
}

function errorText(error: unknown): string {
  const hdf5 = hdf5RootCause();
  if (hdf5 !== null) return hdf5;
  return error instanceof Error ? error.message.split("\n")[0]! : String(error);
}

/**
 * Read-only view of an open HDF5 file. Paths are relative to the root
 * ("xdirection/0"). Every error names `label` (e.g. "surface file 'a.h5'").
 */
export class H5Reader {
  /** @internal */
  constructor(
    private readonly file: InstanceType<typeof h5wasm.File>,
    /** How errors name the file, e.g. "surface file 'a.h5'". */
    readonly label: string,
  ) {}

  /** The error thrown for this file; `H5FormatError` with the label prefixed. */
  error(message: string): H5FormatError {
    return new H5FormatError(`${this.label}: ${message}`);
  }

  private entity(path: string): ReturnType<Group["get"]> {
    clearErrorLog();
    let entity: ReturnType<Group["get"]>;
    try {
      entity = path === "/" ? this.file : this.file.get(path);
    } catch (error) {
      throw this.error(`cannot open '${path}' (${errorText(error)})`);
    }
    // h5wasm swallows some failures (a damaged object header reads as a group);
    // anything HDF5 logged on the way means the answer cannot be trusted.
    const cause = hdf5RootCause();
    if (cause !== null) throw this.error(`cannot open '${path}' (${cause}); is the file corrupt?`);
    return entity;
  }

  /** What sits at `path`: "dataset", "group", "other" (links, named types) or null when absent. */
  kind(path: string): "dataset" | "group" | "other" | null {
    const entity = this.entity(path);
    if (entity instanceof Dataset) return "dataset";
    if (entity instanceof Group) return "group";
    return entity === null ? null : "other";
  }

  /** Whether anything exists at `path`. */
  has(path: string): boolean {
    return this.kind(path) !== null;
  }

  private keysOf(path: string): string[] {
    const entity = this.entity(path);
    clearErrorLog();
    try {
      return entity instanceof Group ? entity.keys() : [];
    } catch (error) {
      throw this.error(`cannot list '${path}' (${errorText(error)})`);
    }
  }

  /** Names of the children of group `path` (HDF5's order: by name). */
  keys(path = "/"): string[] {
    const kind = this.kind(path);
    if (kind !== "group") throw this.error(`'${path}' is ${describe(kind)}, expected a group`);
    return this.keysOf(path);
  }

  /** A dataset's value, with h5wasm's error turned into one naming the file and dataset. */
  private valueOf(ds: Dataset, path: string): unknown {
    clearErrorLog();
    try {
      return ds.value;
    } catch (error) {
      throw this.error(`cannot read dataset '${path}' (${errorText(error)})`);
    }
  }

  private dataset(path: string, what: string): Dataset {
    const kind = this.kind(path);
    if (kind === null) throw this.error(`${what} '${path}' is missing`);
    const entity = this.entity(path);
    if (!(entity instanceof Dataset)) throw this.error(`'${path}' is ${describe(kind)}, expected ${what}`);
    return entity;
  }

  private numericRaw(path: string): { values: ArrayLike<number>; shape: number[] } {
    const ds = this.dataset(path, "numeric dataset");
    const { type, size, littleEndian } = ds.metadata;
    const isFloat = type === Module.H5T_class_t.H5T_FLOAT.value;
    const isInt = type === Module.H5T_class_t.H5T_INTEGER.value;
    if (!isFloat && !isInt)
      throw this.error(`dataset '${path}' has type ${String(ds.dtype)}, expected numbers`);
    if (isFloat && size !== 4 && size !== 8)
      throw this.error(`dataset '${path}' has ${size}-byte floats, expected 4 or 8`);
    if (!littleEndian && size > 1)
      throw this.error(`dataset '${path}' is big-endian, which losscape does not read`);
    const shape = ds.shape ?? [];
    const value = this.valueOf(ds, path);
    const count = shape.reduce((a, b) => a * b, 1);
    let values: ArrayLike<number>;
    if (typeof value === "number") values = [value];
    else if (typeof value === "bigint") values = [Number(value)];
    else if (value instanceof BigInt64Array || value instanceof BigUint64Array)
      values = Array.from(value, Number);
    else if (ArrayBuffer.isView(value)) values = value as unknown as ArrayLike<number>;
    else throw this.error(`dataset '${path}' did not read as numbers`);
    if (values.length !== count) {
      throw this.error(
        `dataset '${path}' holds ${values.length} values but its shape [${shape}] needs ${count}`,
      );
    }
    return { values, shape };
  }

  /**
   * A numeric dataset (any float or integer type) as Float64Array.
   *
   * @example
   * const { data, shape } = reader.float64("xcoordinates");
   */
  float64(path: string): H5Array<Float64Array> {
    const { values, shape } = this.numericRaw(path);
    return { data: Float64Array.from(values), shape };
  }

  /**
   * A numeric dataset as Float32Array (float64 data is rounded).
   *
   * @example
   * const { data, shape } = reader.float32("xdirection/0");
   */
  float32(path: string): H5Array<Float32Array> {
    const { values, shape } = this.numericRaw(path);
    return { data: Float32Array.from(values), shape };
  }

  /**
   * A string dataset holding one string (scalar or a one-element array, fixed
   * or variable length).
   *
   * @example
   * const dirFile = reader.string("dir_file");
   */
  string(path: string): string {
    const ds = this.dataset(path, "string dataset");
    if (ds.metadata.type !== Module.H5T_class_t.H5T_STRING.value) {
      throw this.error(`dataset '${path}' has type ${String(ds.dtype)}, expected a string`);
    }
    let value = this.valueOf(ds, path);
    if (Array.isArray(value) && value.length === 1) value = value[0];
    if (typeof value !== "string") throw this.error(`dataset '${path}' holds several strings, expected one`);
    return value;
  }

  /**
   * Attributes of `path` as strings: numbers are stringified, one-element
   * arrays unwrapped, other arrays JSON-encoded.
   *
   * @example
   * const meta = reader.attrs("/"); // { losscape_layout: "ij", ... }
   */
  attrs(path = "/"): H5Attrs {
    clearErrorLog();
    const out: H5Attrs = {};
    try {
      const entity = this.entity(path);
      if (entity === null || !("attrs" in entity)) return out;
      for (const name of Object.keys(entity.attrs)) {
        let value: unknown = entity.get_attribute(name, true);
        if (Array.isArray(value) && value.length === 1) value = value[0];
        out[name] = typeof value === "string" ? value : JSON.stringify(value);
      }
    } catch (error) {
      throw this.error(`cannot read the attributes of '${path}' (${errorText(error)})`);
    }
    return out;
  }
}

/**
 * Opens HDF5 `bytes` in memory, runs `read` on them and closes them again.
 * Non-HDF5, truncated and corrupt bytes throw `H5FormatError` naming `label`.
 *
 * @example
 * const x = decodeH5(bytes, "surface file 'a.h5'", (r) => r.float64("xcoordinates").data);
 */
export function decodeH5<T>(bytes: Uint8Array, label: string, read: (reader: H5Reader) => T): T {
  if (!(bytes instanceof Uint8Array)) throw new H5FormatError(`${label}: expected bytes (Uint8Array)`);
  if (bytes.length === 0) throw new H5FormatError(`${label}: is empty (0 bytes), not an HDF5 file`);
  if (!hasHdf5Signature(bytes)) {
    throw new H5FormatError(`${label}: is not an HDF5 file (no HDF5 signature in its ${bytes.length} bytes)`);
  }
  const scratch = `/losscape-read-${process.pid}-${scratchCounter++}.h5`;
  FS.writeFile(scratch, bytes);
  let file: InstanceType<typeof h5wasm.File> | undefined;
  try {
    clearErrorLog();
    try {
      file = new h5wasm.File(scratch, "r");
      // h5wasm does not throw on a failed open: it hands back file_id -1.
      if (file.file_id < 0n) throw new Error("H5Fopen failed");
    } catch (error) {
      throw new H5FormatError(
        `${label}: cannot be opened as HDF5 (${errorText(error)}); is it truncated or corrupt?`,
      );
    }
    try {
      return read(new H5Reader(file, label));
    } catch (error) {
      // Damage past the superblock surfaces as odd errors from h5wasm's
      // accessors (or the wasm runtime); name the file rather than leak them.
      if (error instanceof H5FormatError) throw error;
      throw new H5FormatError(`${label}: cannot be read (${errorText(error)}); is it corrupt?`);
    }
  } finally {
    if (file !== undefined && file.file_id >= 0n) file.close();
    FS.unlink(scratch);
  }
}

function checkShape(node: H5DatasetNode, path: string): void {
  if (typeof node.data === "string") {
    if (node.shape.length !== 0)
      throw new Error(`encodeH5(): string dataset '${path}' must be scalar (shape [])`);
    return;
  }
  for (const n of node.shape) {
    if (!Number.isInteger(n) || n < 0)
      throw new Error(`encodeH5(): dataset '${path}' has invalid shape [${node.shape}]`);
  }
  const count = node.shape.reduce((a, b) => a * b, 1);
  if (count !== node.data.length) {
    throw new Error(
      `encodeH5(): dataset '${path}' has ${node.data.length} values but shape [${node.shape}] needs ${count}`,
    );
  }
}

function validateName(name: string, parent: string): void {
  if (name === "" || name.includes("/") || name === "." || name === "..") {
    throw new Error(
      `encodeH5(): invalid name '${name}' in '${parent}' (names must be non-empty and contain no '/')`,
    );
  }
}

/** Throws before anything is written, so `encodeH5` fails without partial state. */
function validateTree(group: H5GroupNode, path: string): void {
  for (const [name, node] of Object.entries(group.children)) {
    validateName(name, path);
    const child = `${path === "/" ? "" : path}/${name}`;
    if (node.kind === "group") validateTree(node, child);
    else checkShape(node, child);
  }
}

function writeAttrs(target: Group | Dataset, attrs: H5Attrs | undefined): void {
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (typeof value !== "string") throw new Error(`encodeH5(): attribute '${name}' must be a string`);
    target.create_attribute(name, value);
  }
}

function writeGroup(group: Group, node: H5GroupNode): void {
  writeAttrs(group, node.attrs);
  for (const [name, child] of Object.entries(node.children)) {
    if (child.kind === "group") {
      writeGroup(group.create_group(name), child);
    } else {
      const ds =
        typeof child.data === "string"
          ? group.create_dataset({ name, data: child.data })
          : group.create_dataset({ name, data: child.data, shape: [...child.shape] });
      writeAttrs(ds, child.attrs);
    }
  }
}

/**
 * Writes a tree of groups, datasets and string attributes to HDF5 bytes
 * (object formats no newer than HDF5 1.10, so h5py on HDF5 >= 1.10 reads them).
 *
 * @example
 * const bytes = encodeH5({ kind: "group", children: { x: { kind: "dataset", data: new Float64Array([0]), shape: [1] } } });
 */
export function encodeH5(root: H5GroupNode): Uint8Array {
  validateTree(root, "/");
  const scratch = `/losscape-write-${process.pid}-${scratchCounter++}.h5`;
  clearErrorLog();
  let file: InstanceType<typeof h5wasm.File> | undefined;
  try {
    file = new h5wasm.File(scratch, "w", { libver: ["earliest", "v110"] });
    writeGroup(file, root);
    file.close();
    file = undefined;
    return FS.readFile(scratch);
  } catch (error) {
    throw new Error(`encodeH5(): HDF5 write failed (${errorText(error)})`);
  } finally {
    try {
      file?.close();
    } catch {
      // already failed; the scratch file is removed below
    }
    try {
      FS.unlink(scratch);
    } catch {
      // never created
    }
  }
}
