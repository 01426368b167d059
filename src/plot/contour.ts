// Contour figures of a 2D surface as SVG strings: contour lines with level
// labels (the reference's plot_2d_contour), filled contours (its contourf),
// and an optimization path drawn over contour lines (its
// plot_contour_trajectory, on PCA directions). Missing points leave holes.

import { isolines, isoRegions } from "../core/contour.ts";
import {
  colorRange,
  colorsFor,
  composeMap,
  hasMissing,
  type MapLayout,
  mapLayout,
  missingItems,
  missingShapes,
  normalizer,
  type Prepared,
  prepareField,
  resolveLevels,
} from "./_map.ts";
import { el, formatNumber, type LegendItem, num, pathData, text, textWidth } from "./_svg.ts";
import { type ColormapRole, type RGB, rgbHex, shade } from "./colormap.ts";
import type { Field2D, FigureOptions, LevelOptions } from "./options.ts";

/**
 * Options of `contourFigure`: size, labels, levels and colors.
 *
 * @example
 * const o: ContourOptions = { vmin: 0.1, vmax: 10, step: 0.5, labels: true };
 */
export interface ContourOptions extends FigureOptions, LevelOptions {
  /** Write each level's value on its lines (default true, like the reference's clabel). */
  labels?: boolean;
  /** Line width in pixels (default 1.2). */
  lineWidth?: number;
}

type Px = [number, number];

/** Points at arc lengths [from, to] along a polyline with cumulative lengths `cum`. */
function slice(px: Px[], cum: number[], from: number, to: number): Px[] {
  const at = (s: number): Px => {
    const k = Math.max(
      1,
      Math.min(
        px.length - 1,
        cum.findIndex((c) => c >= s),
      ),
    );
    const a = px[k - 1]!;
    const b = px[k]!;
    const f = (s - cum[k - 1]!) / Math.max(1e-12, cum[k]! - cum[k - 1]!);
    return [a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])];
  };
  const out: Px[] = [at(from)];
  for (let k = 0; k < px.length; k++) if (cum[k]! > from && cum[k]! < to) out.push(px[k]!);
  out.push(at(to));
  return out;
}

interface LabelBox {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/**
 * Level lines in pixels, one path per level, colored by level; with `labels`,
 * each line long enough gets its level written along it (rotated to the
 * line, upright) in a gap cut into the line, matplotlib's inline clabel.
 * Labels that would overlap one already placed are skipped.
 */
function levelPaths(
  p: Prepared,
  L: MapLayout,
  levels: readonly number[],
  color: (v: number) => RGB,
  width: number,
  labels: boolean,
): { paths: string[]; texts: string[] } {
  const paths: string[] = [];
  const texts: string[] = [];
  const placed: LabelBox[] = [];
  const size = 10;
  for (const iso of isolines(p.values, p.nx, p.ny, levels)) {
    let d = "";
    const label = formatNumber(iso.threshold);
    const w = textWidth(label, size);
    for (const line of iso.lines) {
      const px = line.map(([gi, gj]) => L.px(gi, gj));
      const cum: number[] = [0];
      for (let k = 1; k < px.length; k++) {
        cum.push(cum[k - 1]! + Math.hypot(px[k]![0] - px[k - 1]![0], px[k]![1] - px[k - 1]![1]));
      }
      const total = cum[cum.length - 1]!;
      const gap = w / 2 + 3;
      let cut: number | undefined;
      if (labels && total >= Math.max(60, 3 * w)) {
        for (const frac of [0.5, 0.3, 0.7]) {
          const s = total * frac;
          const [a, b] = [slice(px, cum, s - 1, s + 1)[0]!, slice(px, cum, s - 1, s + 1).at(-1)!];
          const x = (a[0] + b[0]) / 2;
          const y = (a[1] + b[1]) / 2;
          const box = { x0: x - gap, y0: y - gap, x1: x + gap, y1: y + gap };
          if (placed.some((q) => q.x0 < box.x1 && box.x0 < q.x1 && q.y0 < box.y1 && box.y0 < q.y1)) continue;
          // Bounds of the label along the line, then its angle from the ends of that stretch.
          const e0 = slice(px, cum, s - gap, s - gap + 0.1)[0]!;
          const e1 = slice(px, cum, s + gap - 0.1, s + gap).at(-1)!;
          let angle = (Math.atan2(e1[1] - e0[1], e1[0] - e0[0]) * 180) / Math.PI;
          if (angle > 90) angle -= 180;
          if (angle < -90) angle += 180;
          placed.push(box);
          cut = s;
          texts.push(
            text(x, y + size * 0.35, label, {
              class: "level-label",
              "text-anchor": "middle",
              "font-size": size,
              fill: rgbHex(shade(color(iso.threshold), 0.75)),
              transform: `rotate(${num(angle)} ${num(x)} ${num(y)})`,
            }),
          );
          break;
        }
      }
      if (cut === undefined) d += pathData(px);
      else {
        const closed = line.length > 2 && line[0]![0] === line.at(-1)![0] && line[0]![1] === line.at(-1)![1];
        if (closed) {
          const tail = slice(px, cum, cut + gap, total);
          const head = slice(px, cum, 0, cut - gap);
          d += pathData([...tail, ...head.slice(1)]);
        } else {
          if (cut - gap > 0) d += pathData(slice(px, cum, 0, cut - gap));
          if (cut + gap < total) d += pathData(slice(px, cum, cut + gap, total));
        }
      }
    }
    if (d === "") continue;
    paths.push(
      el("path", {
        class: "level",
        "data-level": num(iso.threshold),
        d,
        fill: "none",
        stroke: rgbHex(color(iso.threshold)),
        "stroke-width": width,
        "stroke-linejoin": "round",
      }),
    );
  }
  return { paths, texts };
}

/** Color range of contour figures: the levels' span (or the data range for a single level). */
function levelRange(
  where: string,
  p: Prepared,
  o: LevelOptions,
  levels: readonly number[],
): [number, number] {
  if (levels.length >= 2) return [levels[0]!, levels[levels.length - 1]!];
  return colorRange(where, p, o);
}

/**
 * The field, its levels and color scale: what the three level-based figures
 * share. `regionOf` picks the values of the region of interest that focused
 * levels are spread over (default: the whole field).
 */
function levelScale(
  where: string,
  field: Field2D,
  options: ContourOptions,
  role: ColormapRole,
  regionOf?: (p: Prepared) => ArrayLike<number> | undefined,
) {
  const p = prepareField(where, field, options.zmax);
  const levels = resolveLevels(where, p, options, regionOf?.(p));
  const [lo, hi] = levelRange(where, p, options, levels);
  const t = normalizer(lo, hi, options.log ?? false);
  const cmap = colorsFor(options.cmap, role);
  return { p, levels, lo, hi, t, cmap, missing: hasMissing(p) };
}

/** Contour lines colored by level, with their labels, over the missing-data shapes. */
function lineLayers(
  p: Prepared,
  L: MapLayout,
  levels: readonly number[],
  color: (v: number) => RGB,
  lineWidth: number,
  labels: boolean,
  miss: { svg: string } | null,
): string[] {
  const { paths, texts } = levelPaths(p, L, levels, color, lineWidth, labels);
  const content = [miss?.svg ?? "", el("g", { class: "levels" }, paths)];
  if (texts.length > 0) content.push(el("g", { class: "level-labels" }, texts));
  return content;
}

/**
 * Contour lines of a 2D field, colored by level, with inline level labels and
 * a color bar. Levels come from `levels`/`step`/`vmin`/`vmax`/`log`/`spacing`
 * (see LevelOptions; by default focused: dense near the minimum, see
 * src/core/levels.ts focusLevels); non-finite points leave holes, hatched
 * (diverged) or grey (not computed).
 *
 * @example
 * const svg = contourFigure({ x: s.x, y: s.y!, values: s.values.train_loss!, done: s.done },
 *   { vmin: 0.1, vmax: 10, step: 0.5, xlabel: "x", ylabel: "y" });
 */
export function contourFigure(field: Field2D, options: ContourOptions = {}): string {
  const where = "contourFigure()";
  const { labels = true, lineWidth = 1.2, log = false, colorbar = true } = options;
  const { p, levels, lo, hi, t, cmap, missing } = levelScale(where, field, options, "contour");
  const L = mapLayout(p, { ...options, colorbar, legendRow: missing });
  const miss = missing ? missingShapes(p, L, "cells") : null;
  return composeMap(L, options, {
    description: "contour lines",
    content: lineLayers(p, L, levels, (v) => cmap(t(v)), lineWidth, labels, miss),
    colorbar: {
      min: lo,
      max: hi,
      log,
      color: cmap,
      lines: levels,
    },
    legend: miss ? missingItems(miss) : [],
  });
}

/**
 * Options of `filledContourFigure`.
 *
 * @example
 * const o: FilledContourOptions = { levels: 20, lines: true, cmap: "magma" };
 */
export interface FilledContourOptions extends FigureOptions, LevelOptions {
  /** Draw thin dark lines on the level boundaries too (default false). */
  lines?: boolean;
}

/**
 * Filled contours: each band between two levels in one color, values below
 * the first level in the lowest color and above the last in the highest (the
 * bands of the color bar span the levels). Missing data leaves holes.
 *
 * @example
 * const svg = filledContourFigure(field, { levels: 15, log: true });
 */
export function filledContourFigure(field: Field2D, options: FilledContourOptions = {}): string {
  const where = "filledContourFigure()";
  const { log = false, colorbar = true } = options;
  const { p, levels, lo, hi, t, cmap, missing } = levelScale(where, field, options, "filled");
  const L = mapLayout(p, { ...options, colorbar, legendRow: missing });
  const miss = missing ? missingShapes(p, L, "cells") : null;
  // Layer k is the region >= threshold k, painted in increasing order: the base
  // (all finite cells) gets the color below the first level.
  const thresholds = [Number.NEGATIVE_INFINITY, ...levels];
  const bandT = (k: number): number => {
    if (k === 0) return 0;
    if (k === thresholds.length - 1) return levels.length === 1 ? 0.5 : 1;
    return (t(thresholds[k]!) + t(thresholds[k + 1]!)) / 2;
  };
  const layers: string[] = [];
  for (const [k, region] of isoRegions(p.values, p.nx, p.ny, thresholds).entries()) {
    const d = region.rings
      .map((ring) =>
        pathData(
          ring.map(([gi, gj]) => L.px(gi, gj)),
          true,
        ),
      )
      .join("");
    if (d === "") continue;
    layers.push(
      el("path", {
        class: "band",
        "data-level": k === 0 ? "-inf" : num(region.threshold),
        d,
        fill: rgbHex(cmap(bandT(k))),
        "fill-rule": "nonzero",
      }),
    );
  }
  const content = [miss?.svg ?? "", el("g", { class: "bands" }, layers)];
  if (options.lines) {
    const { paths } = levelPaths(p, L, levels, () => [0, 0, 0], 0.5, false);
    content.push(el("g", { class: "levels", "stroke-opacity": 0.45 }, paths));
  }
  return composeMap(L, options, {
    description: "filled contours",
    content,
    colorbar: {
      min: lo,
      max: hi,
      log,
      color: cmap,
      ...(levels.length >= 2 ? { bands: levels } : {}),
      extend: { low: p.min < levels[0]!, high: p.max > levels[levels.length - 1]! },
    },
    legend: miss ? missingItems(miss) : [],
  });
}

/**
 * The finite values of the grid points inside the bounding box of `points`
 * (widened by 5 % of its span on each side), or undefined when the box holds
 * fewer than 4 of them (then the whole field counts).
 */
function pathBoxValues(p: Prepared, points: readonly [number, number][]): number[] | undefined {
  if (points.length === 0) return undefined;
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (const [a, b] of points) {
    x0 = Math.min(x0, a);
    x1 = Math.max(x1, a);
    y0 = Math.min(y0, b);
    y1 = Math.max(y1, b);
  }
  const px = 0.05 * (x1 - x0);
  const py = 0.05 * (y1 - y0);
  const out: number[] = [];
  for (let i = 0; i < p.nx; i++) {
    if (p.x[i]! < x0 - px || p.x[i]! > x1 + px) continue;
    for (let j = 0; j < p.ny; j++) {
      if (p.y[j]! < y0 - py || p.y[j]! > y1 + py) continue;
      const v = p.values[i * p.ny + j]!;
      if (Number.isFinite(v)) out.push(v);
    }
  }
  return out.length >= 4 ? out : undefined;
}

/**
 * An optimization path in the plane of a surface: projected coordinates of
 * each checkpoint (non-finite ones leave a gap) and optional labels (e.g. epoch
 * numbers; empty strings are not drawn).
 *
 * @example
 * const path: TrajectoryPath = { x: projX, y: projY, labels: epochs.map(String) };
 */
export interface TrajectoryPath {
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  labels?: readonly string[];
}

/**
 * Options of `trajectoryFigure`: those of contour lines plus the path's look.
 *
 * @example
 * const o: TrajectoryOptions = { xlabel: "1st PC: 48.21 %", ylabel: "2nd PC: 21.07 %", step: 0.5 };
 */
export interface TrajectoryOptions extends ContourOptions {
  /** Path color (default "#d62728", red). */
  pathColor?: string;
  /** Draw a dot at every checkpoint (default true). */
  markers?: boolean;
}

/**
 * Contour lines with an optimization path on top (the reference's
 * plot_contour_trajectory). The axes cover both the surface and the path; the
 * start is an open circle, the end a filled one, labelled points get their
 * label. Axis labels usually carry the PCA explained variance. Default levels
 * are focused on the values inside the path's bounding box, so the valley the
 * path crosses gets its contours.
 *
 * @example
 * const svg = trajectoryFigure(field, { x: px, y: py, labels: ["0", "", "", "10"] },
 *   { xlabel: "1st PC: 48.21 %", ylabel: "2nd PC: 21.07 %" });
 */
export function trajectoryFigure(
  field: Field2D,
  path: TrajectoryPath,
  options: TrajectoryOptions = {},
): string {
  const where = "trajectoryFigure()";
  const {
    labels = true,
    lineWidth = 1,
    log = false,
    colorbar = true,
    pathColor = "#d62728",
    markers = true,
  } = options;
  if (path.x.length !== path.y.length) {
    throw new Error(`${where}: path 'x' has ${path.x.length} points but 'y' has ${path.y.length}`);
  }
  if (path.labels !== undefined && path.labels.length !== path.x.length) {
    throw new Error(
      `${where}: path 'labels' has ${path.labels.length} entries but the path has ${path.x.length} points`,
    );
  }
  const pts: [number, number][] = [];
  for (let k = 0; k < path.x.length; k++) pts.push([path.x[k]!, path.y[k]!]);
  const ok = pts.filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b));
  // Levels focus on the values inside the path's bounding box (5 % margin).
  const { p, levels, lo, hi, t, cmap, missing } = levelScale(where, field, options, "trajectory", (q) =>
    pathBoxValues(q, ok),
  );
  // Axes span the surface and the path, with a small margin when the path sticks out.
  const span = (lo0: number, hi0: number, vals: number[]): [number, number] => {
    const a = Math.min(lo0, ...vals);
    const b = Math.max(hi0, ...vals);
    const pad = a < lo0 || b > hi0 ? 0.05 * (b - a) : 0;
    return [a < lo0 ? a - pad : a, b > hi0 ? b + pad : b];
  };
  const xDomain = span(
    p.x[0]!,
    p.x[p.nx - 1]!,
    ok.map((q) => q[0]),
  );
  const yDomain = span(
    p.y[0]!,
    p.y[p.ny - 1]!,
    ok.map((q) => q[1]),
  );
  const L = mapLayout(p, { ...options, colorbar, legendRow: true, xDomain, yDomain });
  const miss = missing ? missingShapes(p, L, "cells") : null;
  const content = lineLayers(p, L, levels, (v) => cmap(t(v)), lineWidth, labels, miss);

  // The path, split at non-finite points.
  const runs: Px[][] = [[]];
  for (const [a, b] of pts) {
    if (Number.isFinite(a) && Number.isFinite(b)) runs[runs.length - 1]!.push([L.xs.map(a), L.ys.map(b)]);
    else if (runs[runs.length - 1]!.length > 0) runs.push([]);
  }
  const d = runs.map((r) => pathData(r)).join("");
  const trail: string[] = [
    el("path", {
      class: "trajectory",
      d,
      fill: "none",
      stroke: pathColor,
      "stroke-width": 1.8,
      "stroke-linejoin": "round",
    }),
  ];
  const finiteIdx = pts
    .map((q, k) => (Number.isFinite(q[0]) && Number.isFinite(q[1]) ? k : -1))
    .filter((k) => k >= 0);
  const first = finiteIdx[0];
  const last = finiteIdx[finiteIdx.length - 1];
  if (markers) {
    for (const k of finiteIdx) {
      if (k === first || k === last) continue;
      const [a, b] = pts[k]!;
      trail.push(el("circle", { cx: L.xs.map(a), cy: L.ys.map(b), r: 2.2, fill: pathColor }));
    }
  }
  if (first !== undefined) {
    const [a, b] = pts[first]!;
    trail.push(
      el("circle", {
        class: "start",
        cx: L.xs.map(a),
        cy: L.ys.map(b),
        r: 4.5,
        fill: "white",
        stroke: pathColor,
        "stroke-width": 2,
      }),
    );
  }
  if (last !== undefined && last !== first) {
    const [a, b] = pts[last]!;
    trail.push(
      el("circle", {
        class: "end",
        cx: L.xs.map(a),
        cy: L.ys.map(b),
        r: 4.5,
        fill: pathColor,
        stroke: "white",
      }),
    );
  }
  path.labels?.forEach((label, k) => {
    const [a, b] = pts[k]!;
    if (!label || !Number.isFinite(a) || !Number.isFinite(b)) return;
    // A white halo drawn first, then the label: a separate element rather
    // than paint-order, which PDF converters do not all honour.
    const at = { "font-size": 11, "stroke-linejoin": "round" };
    trail.push(
      text(L.xs.map(a) + 6, L.ys.map(b) - 6, label, {
        class: "point-label-halo",
        ...at,
        fill: "white",
        stroke: "white",
        "stroke-width": 3,
      }),
      text(L.xs.map(a) + 6, L.ys.map(b) - 6, label, { class: "point-label", ...at, fill: "#8b0000" }),
    );
  });
  content.push(el("g", { class: "path" }, trail));
  const legend: LegendItem[] = [
    { label: "path", swatch: "line", color: pathColor },
    { label: "start", swatch: "ring", color: pathColor },
    { label: "end", swatch: "marker", color: pathColor },
    ...(miss ? missingItems(miss) : []),
  ];
  return composeMap(L, options, {
    description: "optimization path on contour lines",
    content,
    colorbar: {
      min: lo,
      max: hi,
      log,
      color: cmap,
      lines: levels,
    },
    legend,
  });
}
