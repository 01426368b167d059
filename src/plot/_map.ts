// Internal: what the 2D map figures (contours, filled contours, heat maps,
// Hessian ratio, trajectory) share: validating and clipping a field, the color
// range and levels, the layout (plot rectangle, color bar, axes), and drawing
// missing points (diverged: hatched; not computed: grey).

import { focusLevels, linearLevels, logLevels, MAX_LEVELS, niceLevels } from "../core/levels.ts";
import {
  axis,
  type ColorbarSpec,
  clipDef,
  colorbar,
  el,
  frame,
  hatchDef,
  type LegendItem,
  legendRows,
  NOT_COMPUTED_FILL,
  type Rect,
  type Scale,
  scale,
  svgDocument,
  title,
} from "./_svg.ts";
import { type ColormapName, type ColormapRole, colormap, type RGB, resolveColormap } from "./colormap.ts";
import type { Field2D, FigureOptions, LevelOptions } from "./options.ts";

/**
 * Point status: finite, diverged (non-finite but computed), not computed, or capped (the loss is
 * known only to exceed --loss-cap: drawn as its own region, left out of contours and color range).
 */
export const FINITE = 0;
export const DIVERGED = 1;
export const NOT_COMPUTED = 2;
export const CAPPED = 3;
/** Fill of capped regions. */
export const CAPPED_FILL = "#f3e3c3";
/** The surface file's status code of a capped point (formats/quantities.ts POINT.CAPPED). */
const FILE_CAPPED = 3;

/** A validated field with values clipped at zmax and each point's status. */
export interface Prepared {
  nx: number;
  ny: number;
  x: readonly number[];
  y: readonly number[];
  values: Float64Array;
  status: Uint8Array;
  /** Smallest and largest finite value (NaN when there is none). */
  min: number;
  max: number;
  /** Smallest positive finite value (NaN when there is none). */
  minPositive: number;
}

function checkAxis(where: string, name: string, c: ArrayLike<number>): number[] {
  const a = Array.from(c);
  if (a.length < 2) {
    throw new Error(
      `${where}: '${name}' has ${a.length} coordinate(s); a 2D figure needs at least 2 along each axis`,
    );
  }
  for (let k = 0; k < a.length; k++) {
    if (!Number.isFinite(a[k]!))
      throw new Error(`${where}: '${name}[${k}]' is ${a[k]}, expected a finite number`);
    if (k > 0 && !(a[k]! > a[k - 1]!)) {
      throw new Error(
        `${where}: '${name}' must be strictly increasing, but ${name}[${k}] = ${a[k]} follows ${a[k - 1]}`,
      );
    }
  }
  return a;
}

/** Checks a field and clips finite values above zmax (the reference's clipping). */
export function prepareField(where: string, field: Field2D, zmax?: number): Prepared {
  const x = checkAxis(where, "x", field.x);
  const y = checkAxis(where, "y", field.y);
  const nx = x.length;
  const ny = y.length;
  if (field.values.length !== nx * ny) {
    throw new Error(
      `${where}: 'values' has ${field.values.length} entries but the ${nx} x ${ny} grid has ${nx * ny}`,
    );
  }
  if (field.done !== undefined && field.done.length !== nx * ny) {
    throw new Error(
      `${where}: 'done' has ${field.done.length} entries but the ${nx} x ${ny} grid has ${nx * ny}`,
    );
  }
  if (zmax !== undefined && Number.isNaN(zmax)) throw new Error(`${where}: 'zmax' is NaN, expected a number`);
  const values = new Float64Array(nx * ny);
  const status = new Uint8Array(nx * ny);
  let min = Infinity;
  let max = -Infinity;
  let minPositive = Infinity;
  for (let k = 0; k < nx * ny; k++) {
    let v = field.values[k]!;
    if (field.done?.[k] === FILE_CAPPED) {
      status[k] = CAPPED;
      v = Number.NaN; // only a bound: no contour runs through it
    } else if (Number.isFinite(v)) {
      if (zmax !== undefined && v > zmax) v = zmax;
      min = Math.min(min, v);
      max = Math.max(max, v);
      if (v > 0) minPositive = Math.min(minPositive, v);
    } else status[k] = field.done !== undefined && field.done[k] === 0 ? NOT_COMPUTED : DIVERGED;
    values[k] = v;
  }
  const none = (v: number) => (Number.isFinite(v) ? v : Number.NaN);
  return { nx, ny, x, y, values, status, min: none(min), max: none(max), minPositive: none(minPositive) };
}

/** The color range [lo, hi]: explicit vmin/vmax or the finite data range, never empty. */
export function colorRange(
  where: string,
  p: Prepared,
  {
    vmin,
    vmax,
    log = false,
  }: { vmin?: number | undefined; vmax?: number | undefined; log?: boolean | undefined },
): [number, number] {
  for (const [name, v] of [
    ["vmin", vmin],
    ["vmax", vmax],
  ] as const) {
    if (v !== undefined && !Number.isFinite(v))
      throw new Error(`${where}: '${name}' must be a finite number, got ${v}`);
  }
  if (vmin !== undefined && vmax !== undefined && !(vmin < vmax)) {
    throw new Error(`${where}: 'vmin' (${vmin}) must be less than 'vmax' (${vmax})`);
  }
  if (log && vmin !== undefined && vmin <= 0) {
    throw new Error(`${where}: a log scale needs 'vmin' > 0, got ${vmin}`);
  }
  const dataLo = log ? p.minPositive : p.min;
  let lo = vmin ?? (Number.isNaN(dataLo) ? (log ? 1 : 0) : dataLo);
  let hi = vmax ?? (Number.isNaN(p.max) ? (log ? 10 : 1) : p.max);
  if (vmin === undefined && vmax !== undefined && !(lo < hi)) lo = log ? hi / 10 : hi - 1;
  if (vmax === undefined && !(hi > lo)) hi = log ? lo * 10 : lo === 0 ? 1 : lo + Math.abs(lo) * 0.1;
  if (!(hi > lo)) hi = log ? lo * 10 : lo + 1;
  return [lo, hi];
}

/**
 * The contour levels the options ask for (see LevelOptions). `region` holds
 * the values of the region of interest for focused levels (e.g. those inside
 * a trajectory's bounding box); default: the whole field.
 */
export function resolveLevels(
  where: string,
  p: Prepared,
  o: LevelOptions,
  region?: ArrayLike<number>,
): number[] {
  const { levels, step, log = false, spacing = "focus", focus = "min" } = o;
  if (spacing !== "focus" && spacing !== "even") {
    throw new Error(`${where}: 'spacing' must be "focus" or "even", got '${String(spacing)}'`);
  }
  if (focus !== "min" && focus !== "max") {
    throw new Error(`${where}: 'focus' must be "min" or "max", got '${String(focus)}'`);
  }
  if (Array.isArray(levels)) {
    const list = levels as readonly number[];
    if (list.length === 0) throw new Error(`${where}: 'levels' is an empty list`);
    if (list.length > MAX_LEVELS) throw new Error(`${where}: ${list.length} levels, at most ${MAX_LEVELS}`);
    const bad = list.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new Error(`${where}: 'levels[${bad}]' is ${list[bad]}, expected a finite number`);
    if (log && list.some((v) => v <= 0)) throw new Error(`${where}: a log scale needs positive levels`);
    return [...new Set(list)].sort((a, b) => a - b);
  }
  const count = typeof levels === "number" ? levels : undefined;
  if (count !== undefined && (!Number.isInteger(count) || count < 1)) {
    throw new Error(`${where}: 'levels' must be a positive integer count or a list of values, got ${count}`);
  }
  if (step !== undefined && (!Number.isFinite(step) || step <= 0)) {
    throw new Error(`${where}: 'step' must be a positive number, got ${step}`);
  }
  if (step !== undefined && count !== undefined) {
    throw new Error(`${where}: give either 'step' or a count of 'levels', not both`);
  }
  const [lo, hi] = colorRange(where, p, o);
  const rename = (e: unknown) => new Error(`${where}: ${(e as Error).message.replace(/^\w+\(\): /, "")}`);
  try {
    if (log) {
      if (step !== undefined)
        throw new Error(`'step' does not apply to log-spaced levels; give a count of 'levels'`);
      return logLevels(lo, hi, count);
    }
    if (step !== undefined) return linearLevels(lo, hi, step);
    if (spacing === "focus") {
      const [from, to] = focus === "min" ? [o.vmin, o.vmax] : [o.vmax, o.vmin];
      const focused = focusLevels(p.values, {
        count: count ?? 12,
        toward: focus,
        ...(region !== undefined ? { region } : {}),
        ...(from !== undefined ? { from } : {}),
        ...(to !== undefined ? { to } : {}),
      });
      if (focused.length > 0) return focused;
    }
    return niceLevels(lo, hi, count ?? 10);
  } catch (e) {
    throw rename(e);
  }
}

/** Normalized color position of a value in [lo, hi] (log or linear), clamped to [0, 1]. */
export function normalizer(lo: number, hi: number, log: boolean): (v: number) => number {
  if (log) {
    const a = Math.log10(lo);
    const b = Math.log10(hi);
    return (v) => (v <= 0 ? 0 : Math.max(0, Math.min(1, (Math.log10(v) - a) / (b - a || 1))));
  }
  return (v) => Math.max(0, Math.min(1, (v - lo) / (hi - lo || 1)));
}

/** The resolved color map function for a figure. */
export function colorsFor(name: ColormapName | undefined, role: ColormapRole): (t: number) => RGB {
  return colormap(resolveColormap(name ?? "paper", role));
}

/** Coordinate at a fractional grid index (linear between grid points). */
export function at(coords: readonly number[], g: number): number {
  const k = Math.max(0, Math.min(coords.length - 2, Math.floor(g)));
  const f = g - k;
  return coords[k]! + f * (coords[k + 1]! - coords[k]!);
}

/** Layout and scales of a 2D map figure. */
export interface MapLayout {
  width: number;
  height: number;
  plot: Rect;
  bar: Rect | null;
  xs: Scale;
  ys: Scale;
  /** Pixel position of a fractional grid point (i, j). */
  px(gi: number, gj: number): [number, number];
  id: (name: string) => string;
}

/** Computes the plot rectangle for a map with optional color bar and missing-data legend row. */
export function mapLayout(
  p: Prepared,
  o: FigureOptions & {
    colorbar: boolean;
    legendRow: boolean;
    xDomain?: [number, number];
    yDomain?: [number, number];
  },
): MapLayout {
  const width = o.width ?? 640;
  const height = o.height ?? 480;
  const top = o.title ? 40 : 16;
  const bottom = 58 + (o.legendRow ? 24 : 0);
  const left = 78;
  const right = o.colorbar ? 118 : 24;
  const plot: Rect = { x: left, y: top, width: width - left - right, height: height - top - bottom };
  if (plot.width < 40 || plot.height < 40) {
    throw new Error(`figure ${width} x ${height} is too small for a plot; use at least 300 x 240`);
  }
  const bar = o.colorbar ? { x: plot.x + plot.width + 20, y: plot.y, width: 16, height: plot.height } : null;
  const xd = o.xDomain ?? [p.x[0]!, p.x[p.nx - 1]!];
  const yd = o.yDomain ?? [p.y[0]!, p.y[p.ny - 1]!];
  const xs = scale(xd, [plot.x, plot.x + plot.width]);
  const ys = scale(yd, [plot.y + plot.height, plot.y]);
  const prefix = o.idPrefix ?? "lsc";
  return {
    width,
    height,
    plot,
    bar,
    xs,
    ys,
    px: (gi, gj) => [xs.map(at(p.x, gi)), ys.map(at(p.y, gj))],
    id: (name) => `${prefix}-${name}`,
  };
}

/**
 * Missing data as rectangles: mode "points" covers each missing point's cell
 * (halfway to its neighbours, for heat maps); mode "cells" covers each grid
 * cell left out of the contours (any corner missing). Diverged is hatched,
 * not computed is grey. Returns the SVG and which kinds occur.
 */
export function missingShapes(
  p: Prepared,
  L: MapLayout,
  mode: "points" | "cells",
): { svg: string; diverged: boolean; notComputed: boolean; capped: boolean } {
  const rects: Record<number, string[]> = { [DIVERGED]: [], [NOT_COMPUTED]: [], [CAPPED]: [] };
  const add = (kind: number, gi0: number, gj0: number, gi1: number, gj1: number) => {
    const [x0, y0] = L.px(gi0, gj0);
    const [x1, y1] = L.px(gi1, gj1);
    const x = Math.min(x0, x1);
    const y = Math.min(y0, y1);
    rects[kind]!.push(el("rect", { x, y, width: Math.abs(x1 - x0), height: Math.abs(y1 - y0) }));
  };
  if (mode === "points") {
    for (let i = 0; i < p.nx; i++) {
      for (let j = 0; j < p.ny; j++) {
        const s = p.status[i * p.ny + j]!;
        if (s === FINITE) continue;
        add(
          s,
          Math.max(0, i - 0.5),
          Math.max(0, j - 0.5),
          Math.min(p.nx - 1, i + 0.5),
          Math.min(p.ny - 1, j + 0.5),
        );
      }
    }
  } else {
    for (let i = 0; i + 1 < p.nx; i++) {
      for (let j = 0; j + 1 < p.ny; j++) {
        const corners = [i * p.ny + j, (i + 1) * p.ny + j, (i + 1) * p.ny + j + 1, i * p.ny + j + 1].map(
          (k) => p.status[k]!,
        );
        if (corners.every((s) => s === FINITE)) continue;
        add(
          corners.includes(DIVERGED) ? DIVERGED : corners.includes(CAPPED) ? CAPPED : NOT_COMPUTED,
          i,
          j,
          i + 1,
          j + 1,
        );
      }
    }
  }
  const groups: string[] = [];
  if (rects[NOT_COMPUTED]!.length > 0) {
    groups.push(
      el(
        "g",
        { class: "not-computed", fill: NOT_COMPUTED_FILL, "shape-rendering": "crispEdges" },
        rects[NOT_COMPUTED]!,
      ),
    );
  }
  if (rects[CAPPED]!.length > 0) {
    groups.push(
      el("g", { class: "capped", fill: CAPPED_FILL, "shape-rendering": "crispEdges" }, rects[CAPPED]!),
    );
  }
  if (rects[DIVERGED]!.length > 0) {
    groups.push(
      el(
        "g",
        { class: "diverged", fill: `url(#${L.id("hatch")})`, "shape-rendering": "crispEdges" },
        rects[DIVERGED]!,
      ),
    );
  }
  return {
    svg: groups.join("\n"),
    diverged: rects[DIVERGED]!.length > 0,
    notComputed: rects[NOT_COMPUTED]!.length > 0,
    capped: rects[CAPPED]!.length > 0,
  };
}

/** Legend items for the kinds of missing data present. */
export function missingItems(m: { diverged: boolean; notComputed: boolean; capped?: boolean }): LegendItem[] {
  const items: LegendItem[] = [];
  if (m.capped)
    items.push({ label: "above the loss cap (lower bound only)", swatch: "box", color: CAPPED_FILL });
  if (m.diverged) items.push({ label: "diverged (NaN/Inf)", swatch: "hatch" });
  if (m.notComputed) items.push({ label: "not computed", swatch: "box", color: NOT_COMPUTED_FILL });
  return items;
}

/** True when the prepared field has missing points. */
export function hasMissing(p: Prepared): boolean {
  return p.status.some((s) => s !== FINITE);
}

/** Assembles a map figure: clipped content, frame, axes, title, color bar and legend row. */
export function composeMap(
  L: MapLayout,
  o: FigureOptions & { colorLabel?: string },
  parts: {
    /** What the figure shows ("heat map"), for its <title> when it has no title; " of <colorLabel>" is added. */
    description: string;
    content: readonly string[];
    overlay?: readonly string[];
    /** The color scale, drawn as a bar labelled `colorLabel` where the layout has room for one (L.bar). */
    colorbar?: Omit<ColorbarSpec, "rect" | "gradientId" | "label">;
    legend?: LegendItem[];
  },
): string {
  const defs = [hatchDef(L.id("hatch")), clipDef(L.id("clip"), L.plot)];
  const body: string[] = [el("g", { "clip-path": `url(#${L.id("clip")})` }, [...parts.content])];
  body.push(frame(L.plot));
  if (parts.overlay) body.push(...parts.overlay);
  body.push(axis("bottom", L.xs, L.plot.y + L.plot.height, { label: o.xlabel }));
  body.push(axis("left", L.ys, L.plot.x, { label: o.ylabel }));
  body.push(title(o.title, L.plot, L.width));
  if (parts.colorbar && L.bar) {
    const [d, b] = colorbar({
      ...parts.colorbar,
      label: o.colorLabel,
      rect: L.bar,
      gradientId: L.id("gradient"),
    });
    if (d) defs.push(d);
    body.push(b);
  }
  if (parts.legend && parts.legend.length > 0) {
    body.push(legendRows(parts.legend, L.plot.x, L.height - 14, L.width - L.plot.x, L.id("hatch")).svg);
  }
  const described = `${parts.description}${o.colorLabel ? ` of ${o.colorLabel}` : ""}`;
  return svgDocument(L.width, L.height, defs, body, o.title ?? described);
}
