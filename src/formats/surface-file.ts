// Surface files: the loss (and accuracy, curvature) sampled on a 1D or 2D grid,
// in the reference code's HDF5 layout plus a per-point status, so a run can be
// resumed and its files still open in the reference tools. See docs/files.md.
//
// Orientation. In memory, and in files losscape writes (root attribute
// `losscape_layout = "ij"`), a 2D quantity is [nx, ny] row-major: flat index
// i*ny + j holds the value at (x_i, y_j). The reference code allocates the same
// [nx, ny] array but fills it in meshgrid order, flat index k = j*nx + i for
// (x_i, y_j) (np.meshgrid(x, y) coordinates, `losses.ravel()[k] = loss`). So a
// file without `losscape_layout` is read as value(i, j) = flat[j*nx + i], which
// is right for square and non-square reference grids alike.
//
// Status. Points not yet computed are NaN in memory and -1 in the file (as in
// the reference). A computed point whose value is NaN (a diverged evaluation)
// is written as NaN and marked done in `losscape_status`, so the two never mix.
// Reference files carry no status: there a point is done where train_loss != -1.
// The status also says how a value was obtained (quantities.ts POINT): exact,
// diverged (stopped at the first non-finite batch), capped (a lower bound above
// --loss-cap) or interpolated (--refine).

import { readFileSync } from "node:fs";
import { writeFileAtomic } from "./atomic.ts";
import { decodeH5, encodeH5, type H5Attrs, type H5Node, type H5Reader } from "./h5.ts";
import {
  POINT,
  POINT_NAMES,
  type PointStatus,
  SURFACE_QUANTITIES,
  type SurfaceQuantity,
} from "./quantities.ts";

export { POINT, POINT_NAMES, type PointStatus, SURFACE_QUANTITIES, type SurfaceQuantity };

/**
 * A sampled loss surface. For a 2D surface every array has nx*ny entries and
 * index i*ny + j is the point (x_i, y_j); for a 1D surface (y null) index i is x_i.
 *
 * @example
 * const s = emptySurface(linspace(-1, 1, 51), null, ["train_loss", "train_acc"], "dirs.h5", { seed: "0" });
 */
export interface Surface {
  /** Grid coordinates along the first direction (`xcoordinates`). */
  x: Float64Array;
  /** Grid coordinates along the second direction (`ycoordinates`); null for a 1D surface. */
  y: Float64Array | null;
  /** Values per quantity, flat, NaN where not computed (and where a computed point diverged). */
  values: Partial<Record<SurfaceQuantity, Float64Array>>;
  /** Per point: its status (POINT): 0 not computed yet, 1 computed, 2 diverged, 3 capped, 4 interpolated. */
  done: Uint8Array;
  /** Path of the direction file (`dir_file`). */
  dirFile: string;
  /** losscape's extra metadata (seed, normalization, model_hash, data_hash, command, shard, ...). */
  meta: Record<string, string>;
}

/** Options of `parseSurface`. */
export interface ParseSurfaceOptions {
  /** The file's path or name, used in error messages. */
  file?: string;
}

/** Root attributes losscape writes itself; meta keys may not shadow them. */
const LAYOUT_ATTR = "losscape_layout";
const VERSION_ATTR = "losscape_file_version";
const META_PREFIX = "losscape_";
const RESERVED_META = new Set(["layout", "file_version"]);
const STATUS = "losscape_status";
const FILE_VERSION = "1";

function label(file: string | undefined): string {
  return file === undefined ? "surface file (bytes)" : `surface file '${file}'`;
}

function gridSize(x: Float64Array, y: Float64Array | null): number {
  return x.length * (y === null ? 1 : y.length);
}

function vector(r: H5Reader, path: string): Float64Array {
  const { data, shape } = r.float64(path);
  if (shape.length !== 1 || data.length === 0) {
    throw r.error(`dataset '${path}' has shape [${shape}], expected a non-empty 1D array`);
  }
  return data;
}

/** Reads a quantity or the status array and checks it matches the grid. */
function gridArray(r: H5Reader, path: string, grid: readonly number[]): Float64Array {
  const { data, shape } = r.float64(path);
  if (shape.length !== grid.length || shape.some((n, k) => n !== grid[k])) {
    throw r.error(
      `dataset '${path}' has shape [${shape}], expected [${grid}] (len(xcoordinates), len(ycoordinates))`,
    );
  }
  return data;
}

/** Reference meshgrid order -> losscape order: out[i*ny + j] = flat[j*nx + i]. */
function fromMeshgridOrder(flat: Float64Array, nx: number, ny: number): Float64Array {
  const out = new Float64Array(flat.length);
  for (let i = 0; i < nx; i++) {
    for (let j = 0; j < ny; j++) out[i * ny + j] = flat[j * nx + i]!;
  }
  return out;
}

/**
 * Parses surface-file bytes (losscape's or the reference code's) into a
 * `Surface` in losscape's orientation. Errors name the file and the dataset.
 *
 * @example
 * const s = parseSurface(readFileSync("surf.h5"), { file: "surf.h5" });
 * const lossAt = (i: number, j: number) => s.values.train_loss![i * s.y!.length + j];
 */
export function parseSurface(bytes: Uint8Array, { file }: ParseSurfaceOptions = {}): Surface {
  return decodeH5(bytes, label(file), (r) => {
    const x = vector(r, "xcoordinates");
    const y = r.has("ycoordinates") ? vector(r, "ycoordinates") : null;
    const dirFile = r.string("dir_file");
    const attrs = r.attrs("/");
    const layout = attrs[LAYOUT_ATTR];
    if (layout !== undefined && layout !== "ij") {
      throw r.error(`attribute '${LAYOUT_ATTR}' is '${layout}', expected 'ij'`);
    }
    const nx = x.length;
    const ny = y === null ? 1 : y.length;
    const grid = y === null ? [nx] : [nx, ny];
    const count = gridSize(x, y);

    const values: Partial<Record<SurfaceQuantity, Float64Array>> = {};
    for (const q of SURFACE_QUANTITIES) {
      if (!r.has(q)) continue;
      const flat = gridArray(r, q, grid);
      values[q] = layout === undefined && y !== null ? fromMeshgridOrder(flat, nx, ny) : flat;
    }

    const done = new Uint8Array(count);
    if (layout !== undefined) {
      const status = gridArray(r, STATUS, grid);
      for (let k = 0; k < count; k++) {
        const s = status[k]!;
        if (!(Number.isInteger(s) && s >= 0 && s < POINT_NAMES.length)) {
          throw r.error(
            `dataset '${STATUS}' holds ${s} at flat index ${k}, expected ${POINT_NAMES.map((n, c) => `${c} (${n})`).join(", ")}`,
          );
        }
        done[k] = s;
      }
      for (const data of Object.values(values)) {
        for (let k = 0; k < count; k++) if (done[k] === 0) data[k] = Number.NaN;
      }
    } else {
      // Reference file: -1 marks "not computed" in every quantity; the point's
      // status follows train_loss (else the first quantity present).
      const key = values.train_loss === undefined ? SURFACE_QUANTITIES.find((q) => values[q]) : "train_loss";
      const statusSource = key === undefined ? undefined : values[key];
      for (let k = 0; k < count; k++) done[k] = statusSource !== undefined && statusSource[k] !== -1 ? 1 : 0;
      for (const data of Object.values(values)) {
        for (let k = 0; k < count; k++) if (data[k] === -1) data[k] = Number.NaN;
      }
    }

    const meta: Record<string, string> = {};
    for (const [name, value] of Object.entries(attrs)) {
      if (name === LAYOUT_ATTR || name === VERSION_ATTR || !name.startsWith(META_PREFIX)) continue;
      meta[name.slice(META_PREFIX.length)] = value;
    }
    return { x, y, values, done, dirFile, meta };
  });
}

function checkCoordinates(name: string, c: unknown, where: string): asserts c is Float64Array {
  if (!(c instanceof Float64Array)) throw new Error(`${where}: '${name}' must be a Float64Array`);
  if (c.length === 0) throw new Error(`${where}: '${name}' is empty, expected at least one coordinate`);
  const bad = c.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new Error(`${where}: '${name}[${bad}]' is ${c[bad]}, expected a finite number`);
}

function checkMeta(meta: Record<string, string>, where: string): void {
  if (meta === null || typeof meta !== "object")
    throw new Error(`${where}: 'meta' must be an object of strings`);
  for (const [key, value] of Object.entries(meta)) {
    if (key === "") throw new Error(`${where}: 'meta' has an empty key`);
    if (RESERVED_META.has(key)) {
      throw new Error(`${where}: meta key '${key}' is reserved (losscape writes it itself)`);
    }
    if (typeof value !== "string") {
      throw new Error(`${where}: meta '${key}' is ${typeof value}, expected a string (stringify numbers)`);
    }
  }
}

/** Checks every array of `s` against the grid; throws naming the offending field. */
function checkSurface(s: Surface, where: string): void {
  checkCoordinates("x", s.x, where);
  if (s.y !== null) checkCoordinates("y", s.y, where);
  const count = gridSize(s.x, s.y);
  const grid = s.y === null ? `${s.x.length}` : `${s.x.length} x ${s.y.length}`;
  if (typeof s.dirFile !== "string") throw new Error(`${where}: 'dirFile' must be a string`);
  if (!(s.done instanceof Uint8Array)) throw new Error(`${where}: 'done' must be a Uint8Array`);
  if (s.done.length !== count) {
    throw new Error(`${where}: 'done' has ${s.done.length} entries but the ${grid} grid has ${count} points`);
  }
  const bad = s.done.findIndex((v) => v >= POINT_NAMES.length);
  if (bad >= 0)
    throw new Error(
      `${where}: 'done[${bad}]' is ${s.done[bad]}, expected a point status 0..${POINT_NAMES.length - 1}`,
    );
  for (const [q, data] of Object.entries(s.values)) {
    if (!(SURFACE_QUANTITIES as readonly string[]).includes(q)) {
      throw new Error(`${where}: unknown quantity '${q}', expected one of ${SURFACE_QUANTITIES.join(", ")}`);
    }
    if (!(data instanceof Float64Array)) throw new Error(`${where}: values '${q}' must be a Float64Array`);
    if (data.length !== count) {
      throw new Error(
        `${where}: values '${q}' has ${data.length} entries but the ${grid} grid has ${count} points`,
      );
    }
  }
  checkMeta(s.meta, where);
}

/**
 * Serializes a surface to HDF5 bytes in losscape's layout (see the module
 * comment). Invalid input throws before anything is produced.
 *
 * @example
 * const bytes = serializeSurface(surface);
 */
export function serializeSurface(s: Surface): Uint8Array {
  checkSurface(s, "serializeSurface()");
  const grid = s.y === null ? [s.x.length] : [s.x.length, s.y.length];
  const children: Record<string, H5Node> = {
    dir_file: { kind: "dataset", data: s.dirFile, shape: [] },
    xcoordinates: { kind: "dataset", data: s.x, shape: [s.x.length] },
  };
  if (s.y !== null) children["ycoordinates"] = { kind: "dataset", data: s.y, shape: [s.y.length] };
  for (const q of SURFACE_QUANTITIES) {
    const data = s.values[q];
    if (data === undefined) continue;
    // -1 only where not computed; computed points keep their value, NaN included.
    const stored = data.map((v, k) => (s.done[k] !== POINT.NOT_COMPUTED ? v : -1));
    children[q] = { kind: "dataset", data: stored, shape: grid };
  }
  children[STATUS] = { kind: "dataset", data: Uint8Array.from(s.done), shape: grid };
  const attrs: H5Attrs = { [LAYOUT_ATTR]: "ij", [VERSION_ATTR]: FILE_VERSION };
  for (const [key, value] of Object.entries(s.meta)) attrs[`${META_PREFIX}${key}`] = value;
  return encodeH5({ kind: "group", children, attrs });
}

/**
 * Reads a surface file from disk (losscape's or the reference code's).
 *
 * @example
 * const s = readSurface("resnet56_surface.h5");
 */
export function readSurface(path: string): Surface {
  return parseSurface(new Uint8Array(readFileSync(path)), { file: path });
}

/**
 * Writes a surface file atomically: the whole file is serialized first, then
 * written to a temporary file that is renamed over `path`, so invalid input or
 * a crash never leaves a half-written file or loses the previous one.
 *
 * @example
 * writeSurface("resnet56_surface.h5", surface);
 */
export function writeSurface(path: string, s: Surface): void {
  writeFileAtomic(path, serializeSurface(s));
}

/**
 * A surface with nothing computed yet: every value NaN, every point not done.
 *
 * @example
 * const s = emptySurface(Float64Array.of(-1, 0, 1), Float64Array.of(-1, 1), ["train_loss"], "dirs.h5", {});
 */
export function emptySurface(
  x: Float64Array,
  y: Float64Array | null,
  quantities: readonly SurfaceQuantity[],
  dirFile: string,
  meta: Record<string, string> = {},
): Surface {
  checkCoordinates("x", x, "emptySurface()");
  if (y !== null) checkCoordinates("y", y, "emptySurface()");
  const count = gridSize(x, y);
  const values: Partial<Record<SurfaceQuantity, Float64Array>> = {};
  for (const q of quantities) {
    if (!SURFACE_QUANTITIES.includes(q)) {
      throw new Error(
        `emptySurface(): unknown quantity '${q}', expected one of ${SURFACE_QUANTITIES.join(", ")}`,
      );
    }
    values[q] = new Float64Array(count).fill(Number.NaN);
  }
  const s: Surface = {
    x: Float64Array.from(x),
    y: y === null ? null : Float64Array.from(y),
    values,
    done: new Uint8Array(count),
    dirFile,
    meta: { ...meta },
  };
  checkSurface(s, "emptySurface()");
  return s;
}
