// Internal: creating or resuming the surface file of a queued surface, with
// the same identity check as computeSurface, so a file computed by workers
// and one computed in a single process resume each other.

import { existsSync } from "node:fs";
import type { Grid } from "../core/grid.ts";
import {
  emptySurface,
  readSurface,
  type Surface,
  type SurfaceQuantity,
  writeSurface,
} from "../formats/surface-file.ts";
import { checkResume, reopenCapped } from "../landscape/surface.ts";
import type { SurfaceIdentity } from "./plan.ts";

/**
 * Creates the surface file with `meta`, or resumes it after checking it holds the same surface (keeping its
 * metadata). `queueMeta` is set in both cases: it changes when a surface is resubmitted. Capped points of
 * another `lossCap` are reopened (reopenCapped). Written atomically.
 */
export function openSurfaceFile(
  path: string,
  grid: Grid,
  quantities: readonly SurfaceQuantity[],
  dirFile: string,
  identity: SurfaceIdentity,
  meta: Record<string, string>,
  queueMeta: Record<string, string>,
  lossCap?: number,
): Surface {
  let surface: Surface;
  if (existsSync(path)) {
    surface = readSurface(path);
    checkResume(path, surface, grid, quantities, identity);
    reopenCapped(surface, lossCap);
    surface.meta = { ...surface.meta, ...queueMeta };
  } else {
    surface = emptySurface(grid.x, grid.y, quantities, dirFile, {
      ...meta,
      ...identity,
      loss_cap: lossCap === undefined ? "none" : String(lossCap),
      ...queueMeta,
    });
  }
  writeSurface(path, surface);
  return surface;
}
