// Surfaces as the viewer's JSON (see api.ts): typed arrays become plain
// arrays and every non-finite number (not computed, or diverged) becomes null,
// which JSON can carry; `done` keeps the difference between the two.

import type { Surface } from "../formats/surface-file.ts";
import type { SurfaceJson, TrajectoryJson } from "./api.ts";

/** Where the JSON says a surface came from. */
export interface SurfaceJsonOptions {
  /** The API id of the surface. */
  id: string;
  /** The name shown in the page (the path relative to its folder). */
  name: string;
  /** A projected optimization path to draw on it, if one was found. */
  trajectory?: TrajectoryJson | null;
}

/** NaN and +-Infinity -> null; finite numbers unchanged (full precision). */
function finiteOrNull(values: ArrayLike<number>): (number | null)[] {
  return Array.from(values, (v) => (Number.isFinite(v) ? v : null));
}

/**
 * A surface as the JSON the viewer's API serves; NaN and infinite values are null.
 *
 * @example
 * const json = surfaceToJson(readSurface("surf.h5"), { id: "f1", name: "surf.h5" });
 * JSON.stringify(json); // values.train_loss: [0.31, null, ...]
 */
export function surfaceToJson(s: Surface, { id, name, trajectory = null }: SurfaceJsonOptions): SurfaceJson {
  const values: SurfaceJson["values"] = {};
  for (const [q, data] of Object.entries(s.values) as [keyof Surface["values"], Float64Array][]) {
    values[q] = finiteOrNull(data);
  }
  return {
    id,
    name,
    x: Array.from(s.x),
    y: s.y === null ? null : Array.from(s.y),
    values,
    done: Array.from(s.done),
    dirFile: s.dirFile,
    meta: { ...s.meta },
    trajectory,
  };
}
