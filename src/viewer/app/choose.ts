// Which surface the page opens first: the main loss surface, not whatever
// sorts first by name (in the demo's folder that was the 3x3 Hessian map).
// A pure function of the listing, shared by the live viewer and reports.

import type { SurfaceListOk } from "../api.ts";

/** The file name the demo (and the docs) give the main 2D loss surface. */
export const MAIN_SURFACE_NAME = "surface.h5";

/**
 * How good a first view a listed surface is (0 best): a 2D train-loss surface
 * named like the demo's main one; any other 2D train-loss surface, plain ones
 * (no eigenvalues) first; a 2D surface with a test loss only, or the plane of a
 * connectivity curve (metadata kind "curve-plane"); a 1D loss
 * surface; a trajectory's surface; a Hessian map (eigenvalues, no loss);
 * anything else. Trajectory surfaces (a projected path, or metadata kind
 * "trajectory") count as trajectories whatever their name.
 *
 * @example
 * firstViewRank({ dims: 2, name: "run/surface.h5", quantities: ["train_loss"], trajectory: false, kind: "random" }); // 0
 */
export function firstViewRank(
  e: Pick<SurfaceListOk, "dims" | "name" | "quantities" | "trajectory"> & { kind?: string | null },
): number {
  const has = (q: string) => (e.quantities as readonly string[]).includes(q);
  const loss = has("train_loss") || has("test_loss");
  const hessian = has("max_eig") || has("min_eig");
  const trajectory = e.trajectory || e.kind === "trajectory";
  const base = e.name.slice(e.name.lastIndexOf("/") + 1);
  if (e.dims === 2 && loss && !trajectory) {
    if (e.kind === "curve-plane") return 3;
    if (has("train_loss")) return base === MAIN_SURFACE_NAME ? 0 : hessian ? 2 : 1;
    return 3;
  }
  if (e.dims === 1 && loss) return 4;
  if (trajectory && loss) return 5;
  if (hessian) return 6;
  return 7;
}

/**
 * The id of the surface to open first: the best `firstViewRank`, ties broken
 * by the listing's order (names sorted); null for an empty listing.
 *
 * @example
 * mainSurface(list.surfaces.filter((s) => s.status === "ok")); // the id of "surface.h5", not "hessian.h5"
 */
export function mainSurface(entries: readonly SurfaceListOk[]): string | null {
  let best: SurfaceListOk | undefined;
  let bestRank = Number.POSITIVE_INFINITY;
  for (const e of entries) {
    const r = firstViewRank(e);
    if (r < bestRank) {
      best = e;
      bestRank = r;
    }
  }
  return best?.id ?? null;
}
