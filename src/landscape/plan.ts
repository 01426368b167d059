// Directions for a surface, created from a seed or read from a direction
// file, and stored so that every shard and every rerun uses the same ones.

import { existsSync } from "node:fs";
import {
  type DirectionMode,
  modelDirection,
  movedParameters,
  type Normalization,
  orthogonalize,
  randomDirection,
} from "../core/directions.ts";
import { type DirectionFile, readDirectionFile, writeDirectionFile } from "../formats/direction-file.ts";
import type { Model } from "../model/model.ts";
import { directionFromTensors, directionTensors } from "./direction-io.ts";

/** How to make random directions. */
export interface DirectionPlan {
  /** 1 for a line, 2 for a plane. */
  dims: 1 | 2;
  /** Seed of the first direction; the second uses seed + 1. */
  seed: number;
  normalization?: Normalization;
  ignoreBiasBN?: boolean;
  mode?: DirectionMode;
  /** Make the second direction orthogonal to the first (Gram-Schmidt). */
  orthogonal?: boolean;
  /** Move only the tensors whose names match. */
  only?: RegExp;
}

/**
 * Random directions (filter-normalized by default) around theta, with the file that stores them.
 *
 * @example
 * const { directions, file } = makeDirections(model, theta, { dims: 2, seed: 0 });
 */
export function makeDirections(
  model: Model,
  theta: Float32Array,
  plan: DirectionPlan,
): { directions: Float32Array[]; file: DirectionFile } {
  const {
    dims,
    seed,
    normalization = "filter",
    ignoreBiasBN = true,
    mode = "weights",
    orthogonal = false,
    only,
  } = plan;
  const options = { normalization, ignoreBiasBN, mode, ...(only ? { only } : {}) };
  const d1 = randomDirection(theta, model.params, { seed, ...options });
  const directions = [d1];
  let cosine = "";
  if (dims === 2) {
    const d2 = randomDirection(theta, model.params, { seed: seed + 1, ...options });
    if (orthogonal) cosine = String(orthogonalize(d2, d1));
    directions.push(d2);
  }
  const meta: Record<string, string> = {
    kind: "random",
    seed: String(seed),
    normalization,
    ignore: ignoreBiasBN ? "biasbn" : "none",
    mode,
    model: model.name,
    orthogonal: String(orthogonal),
    ...(cosine ? { cosine_before_orthogonalization: cosine } : {}),
    ...(only ? { only: only.source } : {}),
  };
  return { directions, file: directionFileOf(model, directions, mode, meta) };
}

/**
 * The direction from model A's parameters to model B's (for interpolation), with its file.
 *
 * @example
 * const { directions } = makeModelDirection(model, initial, trained);
 */
export function makeModelDirection(
  model: Model,
  thetaA: Float32Array,
  thetaB: Float32Array,
  {
    normalization = "none",
    mode = "states",
    only,
  }: { normalization?: Normalization; mode?: DirectionMode; only?: RegExp } = {},
): { directions: Float32Array[]; file: DirectionFile } {
  const d = modelDirection(thetaA, thetaB, model.params, { normalization, mode, ...(only ? { only } : {}) });
  const meta: Record<string, string> = {
    kind: "between-models",
    normalization,
    mode,
    model: model.name,
    ...(only ? { only: only.source } : {}),
  };
  return { directions: [d], file: directionFileOf(model, [d], mode, meta) };
}

function directionFileOf(
  model: Model,
  directions: Float32Array[],
  mode: DirectionMode,
  meta: Record<string, string>,
): DirectionFile {
  const moved = movedParameters(model.params, directions);
  return {
    x: directionTensors(model, directions[0]!, mode),
    y: directions[1] ? directionTensors(model, directions[1], mode) : null,
    // Which tensors move, for every file made from these directions (surfaces copy it).
    meta: { ...meta, moved: JSON.stringify(moved), moved_count: `${moved.length} of ${model.params.length}` },
  };
}

/**
 * Flat directions for `model` from a direction file (losscape's, or the reference code's matched by position and shape).
 *
 * @example
 * const [d1, d2] = loadDirections(model, "resnet56_dirs.h5");
 */
export function loadDirections(model: Model, path: string): Float32Array[] {
  const file = readDirectionFile(path);
  const out = [directionFromTensors(model, file.x, `${path} xdirection`)];
  if (file.y) out.push(directionFromTensors(model, file.y, `${path} ydirection`));
  return out;
}

/**
 * Uses the direction file at `path` if it exists (checking it has `dims` directions), else creates it
 * with `create` and writes it atomically (unless `write` is false: --plan writes nothing). Returns the directions and the file's metadata (seed, normalization, ...).
 *
 * @example
 * const dirs = directionsAt("dirs.h5", 2, model, () => makeDirections(model, theta, { dims: 2, seed: 0 }));
 */
export function directionsAt(
  path: string,
  dims: number,
  model: Model,
  create: () => { directions: Float32Array[]; file: DirectionFile },
  expected: Record<string, string> = {},
  { write = true }: { write?: boolean } = {},
): { directions: Float32Array[]; created: boolean; meta: Record<string, string> } {
  if (existsSync(path)) {
    const directions = loadDirections(model, path);
    if (directions.length !== dims) {
      throw new Error(
        `direction file '${path}' holds ${directions.length} direction(s) but a ${dims}D surface needs ${dims}`,
      );
    }
    const meta = readDirectionFile(path).meta;
    for (const [key, want] of Object.entries(expected)) {
      const have = meta[key] ?? "";
      if (have !== want)
        throw new Error(
          `direction file '${path}' was made with ${key} '${have || "(none)"}', not '${want || "(none)"}'; delete it or give another --dir-file`,
        );
    }
    return { directions, created: false, meta };
  }
  const made = create();
  if (write) writeDirectionFile(path, made.file);
  return { directions: made.directions, created: true, meta: made.file.meta };
}
