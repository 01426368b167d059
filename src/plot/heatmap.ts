// Heat maps of a 2D surface as SVG strings: one cell per grid point with a
// color bar (the reference's seaborn heat map), and the Hessian eigenvalue
// ratio |lambda_min / lambda_max| on the paper's 0..0.5 scale.

import {
  colorRange,
  colorsFor,
  composeMap,
  FINITE,
  hasMissing,
  mapLayout,
  missingItems,
  missingShapes,
  normalizer,
  prepareField,
} from "./_map.ts";
import { el } from "./_svg.ts";
import type { ColormapRole } from "./colormap.ts";
import { rgbHex } from "./colormap.ts";
import type { ColorOptions, Field2D, FigureOptions } from "./options.ts";

/**
 * Options of `heatmapFigure`.
 *
 * @example
 * const o: HeatmapOptions = { vmin: 0, vmax: 5, cmap: "magma", colorLabel: "train loss" };
 */
export interface HeatmapOptions extends FigureOptions, ColorOptions {}

function heatmap(where: string, role: ColormapRole, field: Field2D, options: HeatmapOptions): string {
  const { log = false, colorbar = true } = options;
  const p = prepareField(where, field, options.zmax);
  const [lo, hi] = colorRange(where, p, options);
  const t = normalizer(lo, hi, log);
  const cmap = colorsFor(options.cmap, role);
  const missing = hasMissing(p);
  const L = mapLayout(p, { ...options, colorbar, legendRow: missing });
  // Each point owns the rectangle halfway to its neighbours (edges at the grid's border).
  // Cells reach 0.5 px into the next one (the plot's clip path cuts the border), so
  // renderers that anti-alias every edge (PDF viewers ignore crispEdges) show no seams.
  const SEAM = 0.5;
  const cells: string[] = [];
  for (let i = 0; i < p.nx; i++) {
    for (let j = 0; j < p.ny; j++) {
      const k = i * p.ny + j;
      if (p.status[k] !== FINITE) continue;
      const [x0, y0] = L.px(Math.max(0, i - 0.5), Math.max(0, j - 0.5));
      const [x1, y1] = L.px(Math.min(p.nx - 1, i + 0.5), Math.min(p.ny - 1, j + 0.5));
      cells.push(
        el("rect", {
          x: Math.min(x0, x1),
          y: Math.min(y0, y1),
          width: Math.abs(x1 - x0) + SEAM,
          height: Math.abs(y1 - y0) + SEAM,
          fill: rgbHex(cmap(t(p.values[k]!))),
        }),
      );
    }
  }
  const miss = missing ? missingShapes(p, L, "points") : null;
  return composeMap(L, options, {
    description: "heat map",
    content: [el("g", { class: "cells", "shape-rendering": "crispEdges" }, cells), miss?.svg ?? ""],
    colorbar: {
      min: lo,
      max: hi,
      log,
      color: cmap,
    },
    legend: miss ? missingItems(miss) : [],
  });
}

/**
 * A heat map: one colored cell per grid point (halfway to its neighbours, so
 * non-uniform grids are right), a color bar, missing points hatched
 * (diverged) or grey (not computed).
 *
 * @example
 * const svg = heatmapFigure({ x: s.x, y: s.y!, values: s.values.train_loss!, done: s.done }, { vmax: 10 });
 */
export function heatmapFigure(field: Field2D, options: HeatmapOptions = {}): string {
  return heatmap("heatmapFigure()", "heatmap", field, options);
}

/**
 * |min_eig / max_eig| per point; NaN where either is not finite or max_eig is 0.
 *
 * @example
 * eigenRatio(Float64Array.of(-1, 0.5), Float64Array.of(10, 2)); // [0.1, 0.25]
 */
export function eigenRatio(minEig: ArrayLike<number>, maxEig: ArrayLike<number>): Float64Array {
  if (minEig.length !== maxEig.length) {
    throw new Error(`eigenRatio(): 'minEig' has ${minEig.length} entries but 'maxEig' has ${maxEig.length}`);
  }
  const out = new Float64Array(minEig.length);
  for (let k = 0; k < out.length; k++) {
    const r = Math.abs(minEig[k]! / maxEig[k]!);
    out[k] = Number.isFinite(r) ? r : Number.NaN;
  }
  return out;
}

/**
 * The Hessian eigenvalues of a 2D surface: both extremes on the same grid.
 *
 * @example
 * const h: HessianField = { x: s.x, y: s.y!, minEig: s.values.min_eig!, maxEig: s.values.max_eig!, done: s.done };
 */
export interface HessianField {
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  minEig: ArrayLike<number>;
  maxEig: ArrayLike<number>;
  done?: ArrayLike<number>;
}

/**
 * The paper's curvature map: a heat map of |lambda_min / lambda_max| on a 0..0.5
 * scale by default (0: locally convex; larger: more negative curvature).
 * Ratios above vmax take the top color; undefined ratios are missing.
 *
 * @example
 * const svg = hessianFigure({ x, y, minEig, maxEig }, { title: "ResNet-56" });
 */
export function hessianFigure(field: HessianField, options: HeatmapOptions = {}): string {
  const values = eigenRatio(field.minEig, field.maxEig);
  return heatmap(
    "hessianFigure()",
    "hessian",
    { x: field.x, y: field.y, values, ...(field.done ? { done: field.done } : {}) },
    { vmin: 0, vmax: 0.5, colorLabel: "|λmin / λmax|", ...options },
  );
}
