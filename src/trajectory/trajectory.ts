// Optimization trajectories (Li et al. 2018, Sec. 7): PCA directions of the
// checkpoints theta_i - theta_final, streamed tensor by tensor from safetensors
// files, and the projection of every checkpoint onto any two directions.

import { readFileSync } from "node:fs";
import { type PcaResult, pcaDirections, type TrajectoryBlock } from "../core/pca.ts";
import { writeFileAtomic } from "../formats/atomic.ts";
import { decodeH5, encodeH5 } from "../formats/h5.ts";
import { openSafetensors, type SafetensorsReader } from "../formats/safetensors-index.ts";
import type { Model, ParamSpec } from "../model/model.ts";

/** Which parameters the trajectory uses. */
export interface TrajectoryOptions {
  /** Leave out rank-1 tensors (bias, BN), the paper's setting (default true). BN running statistics are always left out. */
  ignoreBiasBN?: boolean;
}

/** Checkpoints open for streaming; close() when done. */
interface OpenCheckpoints {
  readers: SafetensorsReader[];
  tensors: ParamSpec[];
  close(): void;
}

function openCheckpoints(
  model: Model,
  files: readonly string[],
  { ignoreBiasBN = true }: TrajectoryOptions,
): OpenCheckpoints {
  if (files.length < 2) throw new Error(`trajectory: needs at least 2 checkpoint files, got ${files.length}`);
  const readers: SafetensorsReader[] = [];
  try {
    for (const f of files) readers.push(openSafetensors(f));
  } catch (e) {
    for (const r of readers) r.close();
    throw e;
  }
  const tensors = model.params.filter((p) => p.role !== "bn-stat" && (!ignoreBiasBN || p.shape.length >= 2));
  for (const r of readers) {
    for (const p of tensors) {
      const t = r.tensors.get(p.name);
      if (!t)
        throw new Error(
          `trajectory: checkpoint '${r.path}' has no tensor '${p.name}' of model '${model.name}'`,
        );
      const size = t.shape.reduce((a, b) => a * b, 1);
      if (size !== p.size)
        throw new Error(
          `trajectory: checkpoint '${r.path}' tensor '${p.name}' has shape [${t.shape.join(", ")}], model has [${p.shape.join(", ")}]`,
        );
    }
  }
  const close = () => {
    for (const r of readers) r.close();
  };
  return { readers, tensors, close };
}

/** Blocks of theta_i - theta_final, one model tensor at a time. */
function* blocks(c: OpenCheckpoints): Generator<TrajectoryBlock> {
  for (const p of c.tensors) {
    const rows = c.readers.map((r) => r.readFloat32(p.name));
    const last = rows[rows.length - 1]!;
    const diffs = rows.map((r) => r.map((v, k) => v - (last[k] as number)));
    yield { offset: p.offset, rows: diffs };
  }
}

/**
 * PCA directions (unit vectors over the model's parameter vector, zero on excluded tensors) of a trajectory.
 *
 * @example
 * const pca = await trajectoryPca(model, ["runs/cnn/epoch-000.safetensors", ..., "runs/cnn/epoch-010.safetensors"]);
 */
export async function trajectoryPca(
  model: Model,
  files: readonly string[],
  options: TrajectoryOptions = {},
): Promise<PcaResult> {
  const c = openCheckpoints(model, files, options);
  try {
    return await pcaDirections(() => blocks(c), model.size, files.length, 2);
  } finally {
    c.close();
  }
}

/**
 * Coordinates of every checkpoint on two directions around the final one: `orthogonal` is <w, d>/||d||^2 per
 * direction (exact for PCA directions), `least-squares` solves for both at once (for non-orthogonal directions).
 *
 * @example
 * const { x, y } = projectTrajectory(model, files, pca.directions, "orthogonal");
 */
export function projectTrajectory(
  model: Model,
  files: readonly string[],
  directions: readonly Float32Array[],
  method: "orthogonal" | "least-squares" = "orthogonal",
  options: TrajectoryOptions = {},
): { x: Float64Array; y: Float64Array } {
  const c = openCheckpoints(model, files, options);
  const n = files.length;
  const [d1, d2] = directions as [Float32Array, Float32Array];
  const rhs = Array.from({ length: n }, () => [0, 0]);
  const g = [0, 0, 0]; // <d1,d1>, <d1,d2>, <d2,d2> over the used entries
  try {
    for (const { offset, rows } of blocks(c)) {
      const len = rows[0]!.length;
      for (let k = 0; k < len; k++) {
        const a = d1[offset + k] as number;
        const b = d2[offset + k] as number;
        g[0]! += a * a;
        g[1]! += a * b;
        g[2]! += b * b;
      }
      rows.forEach((r, i) => {
        let sa = 0;
        let sb = 0;
        for (let k = 0; k < len; k++) {
          sa += (r[k] as number) * (d1[offset + k] as number);
          sb += (r[k] as number) * (d2[offset + k] as number);
        }
        rhs[i]![0]! += sa;
        rhs[i]![1]! += sb;
      });
    }
  } finally {
    c.close();
  }
  const x = new Float64Array(n);
  const y = new Float64Array(n);
  const [g11, g12, g22] = g as [number, number, number];
  const det = g11 * g22 - g12 * g12;
  rhs.forEach(([r1, r2], i) => {
    if (method === "orthogonal") {
      // A zero direction (e.g. the 2nd PC of a 2-checkpoint path) gives coordinate 0.
      x[i] = g11 > 0 ? r1! / g11 : 0;
      y[i] = g22 > 0 ? r2! / g22 : 0;
    } else {
      if (!(Math.abs(det) > 1e-30))
        throw new Error("projectTrajectory(): the two directions are linearly dependent");
      x[i] = (g22 * r1! - g12 * r2!) / det;
      y[i] = (g11 * r2! - g12 * r1!) / det;
    }
  });
  return { x, y };
}

/**
 * Writes a projection file with the reference code's names `proj_xcoord` and `proj_ycoord` (plus the checkpoint files).
 *
 * @example
 * writeProjection("runs/cnn/trajectory.projection.h5", x, y, files);
 */
export function writeProjection(
  path: string,
  x: Float64Array,
  y: Float64Array,
  files: readonly string[],
  meta: Record<string, string> = {},
): void {
  writeFileAtomic(
    path,
    encodeH5({
      kind: "group",
      attrs: {
        losscape_checkpoints: JSON.stringify(files),
        ...Object.fromEntries(Object.entries(meta).map(([k, v]) => [`losscape_${k}`, v])),
      },
      children: {
        proj_xcoord: { kind: "dataset", data: x, shape: [x.length] },
        proj_ycoord: { kind: "dataset", data: y, shape: [y.length] },
      },
    }),
  );
}

/**
 * Reads a projection file (losscape's or the reference code's).
 *
 * @example
 * const { x, y } = readProjection("trajectory.projection.h5");
 */
export function readProjection(path: string): { x: Float64Array; y: Float64Array } {
  return decodeH5(new Uint8Array(readFileSync(path)), path, (r) => ({
    x: r.float64("proj_xcoord").data,
    y: r.float64("proj_ycoord").data,
  }));
}
