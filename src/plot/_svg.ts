// Internal SVG helpers shared by the figure builders: number rounding (3
// decimals, so goldens are stable), escaping, elements, scales, axes, color
// bars, legends and the "missing data" swatches. Not re-exported.

import { logTicks, ticks } from "../core/levels.ts";
import { type RGB, rgbHex } from "./colormap.ts";

/** Font stack: DejaVu Sans (loaded for PNG by svgToPng) with common fallbacks. */
export const FONT = "DejaVu Sans, Helvetica, Arial, sans-serif";
export const TICK_SIZE = 12;
export const LABEL_SIZE = 14;
export const TITLE_SIZE = 16;
/** Fill of points not computed yet. */
export const NOT_COMPUTED_FILL = "#d9d9d9";

/** A number rounded to 3 decimals, without "-0". */
export function num(v: number): string {
  const r = Math.round(v * 1000) / 1000;
  return r === 0 ? "0" : String(r);
}

/** Escapes text for SVG content and attributes. */
export function esc(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

type AttrValue = string | number | undefined | false;

/** An element; numbers are rounded, undefined/false attributes left out, children joined by newlines. */
export function el(
  tag: string,
  attrs: Record<string, AttrValue>,
  children?: string | readonly string[],
): string {
  let a = "";
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    a += ` ${k}="${typeof v === "number" ? num(v) : esc(v)}"`;
  }
  if (children === undefined) return `<${tag}${a}/>`;
  const body = typeof children === "string" ? children : children.filter((c) => c !== "").join("\n");
  return `<${tag}${a}>${typeof children === "string" ? body : `\n${body}\n`}</${tag}>`;
}

/** A text element (content escaped). */
export function text(x: number, y: number, content: string, attrs: Record<string, AttrValue> = {}): string {
  return el("text", { x, y, ...attrs }, esc(content));
}

/** Approximate width of a string in DejaVu Sans at `size` px (for layout only). */
export function textWidth(content: string, size: number): number {
  return content.length * size * 0.6;
}

/** A path "d" through points, "M x y L x y ...", optionally closed. */
export function pathData(points: ReadonlyArray<readonly [number, number]>, close = false): string {
  if (points.length === 0) return "";
  let d = "";
  for (let k = 0; k < points.length; k++) {
    const p = points[k]!;
    d += `${k === 0 ? "M" : "L"}${num(p[0])} ${num(p[1])}`;
  }
  return close ? `${d}Z` : d;
}

/** The whole document: accessible title (not drawn), white background, font, defs, body. */
export function svgDocument(
  width: number,
  height: number,
  defs: readonly string[],
  body: readonly string[],
  description: string,
): string {
  return `${el(
    "svg",
    {
      xmlns: "http://www.w3.org/2000/svg",
      width,
      height,
      viewBox: `0 0 ${num(width)} ${num(height)}`,
      "font-family": FONT,
      "font-size": TICK_SIZE,
      role: "img",
    },
    [
      el("title", {}, esc(description)),
      defs.length > 0 ? el("defs", {}, defs) : "",
      el("rect", { width, height, fill: "white" }),
      ...body,
    ],
  )}\n`;
}

/** A map from data values to pixels, linear or log. */
export interface Scale {
  readonly domain: readonly [number, number];
  readonly range: readonly [number, number];
  readonly log: boolean;
  /** Pixel position of a value; NaN for values a log scale cannot place (<= 0, non-finite). */
  map(v: number): number;
  /** Round tick values inside the domain. */
  ticks(count: number): number[];
}

/** A linear or log scale from `domain` to `range`. */
export function scale(
  domain: readonly [number, number],
  range: readonly [number, number],
  log = false,
): Scale {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  const f = log ? Math.log10 : (v: number) => v;
  const a = f(d0);
  const b = f(d1);
  const span = b - a || 1;
  return {
    domain,
    range,
    log,
    map: (v: number) => {
      if (!Number.isFinite(v) || (log && v <= 0)) return Number.NaN;
      return r0 + ((f(v) - a) / span) * (r1 - r0);
    },
    ticks: (count: number) => (log ? logTicks(d0, d1) : ticks(d0, d1, count)),
  };
}

/** Decimals needed to print v exactly (up to 6). */
function decimals(v: number): number {
  for (let d = 0; d <= 6; d++)
    if (Math.abs(Number(v.toFixed(d)) - v) <= 1e-9 * Math.max(1, Math.abs(v))) return d;
  return 6;
}

/** Labels for a set of ticks: the same number of decimals for all, exponents for very large or small. */
export function formatTicks(values: readonly number[]): string[] {
  const finite = values.filter((v) => v !== 0 && Number.isFinite(v)).map(Math.abs);
  const big = finite.some((v) => v >= 1e5);
  const small = finite.length > 0 && Math.max(...finite) < 1e-3;
  if (big || small || finite.some((v) => decimals(v) > 5)) return values.map(formatNumber);
  const d = Math.max(0, ...values.map(decimals));
  return values.map((v) => (v === 0 ? "0" : v.toFixed(d)));
}

/** One number in short form: up to 3 significant decimals, exponent outside 1e-3..1e5. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3)
    return v
      .toExponential(2)
      .replace(/\.?0+e/, "e")
      .replace("e+", "e");
  return String(Number(v.toPrecision(a >= 1 ? Math.max(3, Math.floor(Math.log10(a)) + 1) : 3)));
}

export interface AxisOptions {
  label?: string | undefined;
  color?: string;
  tickCount?: number;
}

/**
 * Ticks and label of one axis of the plot rectangle: "bottom" at y = `at`,
 * "left"/"right" at x = `at`. Returns the SVG and the space the labels take.
 */
export function axis(
  orient: "bottom" | "left" | "right",
  s: Scale,
  at: number,
  { label, color = "#222", tickCount = 6 }: AxisOptions = {},
): string {
  const values = s.ticks(tickCount);
  const labels = formatTicks(values);
  const parts: string[] = [];
  let widest = 0;
  values.forEach((v, k) => {
    const p = s.map(v);
    if (!Number.isFinite(p)) return;
    const t = labels[k]!;
    widest = Math.max(widest, textWidth(t, TICK_SIZE));
    if (orient === "bottom") {
      parts.push(el("line", { x1: p, y1: at, x2: p, y2: at + 5, stroke: color }));
      parts.push(text(p, at + 18, t, { "text-anchor": "middle", fill: color }));
    } else {
      const dir = orient === "left" ? -1 : 1;
      parts.push(el("line", { x1: at, y1: p, x2: at + 5 * dir, y2: p, stroke: color }));
      parts.push(
        text(at + 8 * dir, p + 4, t, { "text-anchor": orient === "left" ? "end" : "start", fill: color }),
      );
    }
  });
  if (label) {
    const mid = (s.range[0] + s.range[1]) / 2;
    if (orient === "bottom") {
      parts.push(
        text(mid, at + 40, label, { "text-anchor": "middle", "font-size": LABEL_SIZE, fill: color }),
      );
    } else {
      const x = orient === "left" ? at - widest - 20 : at + widest + 24;
      parts.push(
        text(x, mid, label, {
          "text-anchor": "middle",
          "font-size": LABEL_SIZE,
          fill: color,
          transform: `rotate(-90 ${num(x)} ${num(mid)})`,
        }),
      );
    }
  }
  return el("g", { class: `axis axis-${orient}` }, parts);
}

/** The plot rectangle's frame. */
export function frame(r: Rect): string {
  return el("rect", { x: r.x, y: r.y, width: r.width, height: r.height, fill: "none", stroke: "#222" });
}

/** A rectangle in SVG pixels. */
export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Title centered above the plot rectangle. */
export function title(content: string | undefined, r: Rect, width: number): string {
  if (!content) return "";
  const x = Math.min(Math.max(r.x + r.width / 2, textWidth(content, TITLE_SIZE) / 2 + 8), width / 2 + r.x);
  return text(x, 26, content, {
    "text-anchor": "middle",
    "font-size": TITLE_SIZE,
    "font-weight": "bold",
  });
}

/** A hatch pattern (diverged points) and a clip path of the plot rectangle. */
export function hatchDef(id: string): string {
  return el(
    "pattern",
    { id, patternUnits: "userSpaceOnUse", width: 6, height: 6, patternTransform: "rotate(45)" },
    [
      el("rect", { width: 6, height: 6, fill: "#f0f0f0" }),
      el("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#7a7a7a", "stroke-width": 2 }),
    ],
  );
}

export function clipDef(id: string, r: Rect): string {
  return el("clipPath", { id }, el("rect", { x: r.x, y: r.y, width: r.width, height: r.height }));
}

/** One entry of a legend. */
export interface LegendItem {
  label: string;
  /** Stroke (lines, markers) or fill (boxes). */
  color?: string;
  /** SVG stroke-dasharray of a line swatch. */
  dash?: string;
  swatch: "line" | "box" | "hatch" | "marker" | "ring" | "cross";
}

/** The small picture of a legend item, centered vertically on cy, starting at x. */
export function swatch(item: LegendItem, x: number, cy: number, hatchId: string): string {
  const color = item.color ?? "#222";
  switch (item.swatch) {
    case "line":
      return el("line", {
        x1: x,
        y1: cy,
        x2: x + 22,
        y2: cy,
        stroke: color,
        "stroke-width": 2,
        "stroke-dasharray": item.dash,
      });
    case "marker":
      return el("circle", { cx: x + 11, cy, r: 4.5, fill: color, stroke: "white" });
    case "ring":
      return el("circle", { cx: x + 11, cy, r: 4.5, fill: "white", stroke: color, "stroke-width": 2 });
    case "cross":
      return el("path", {
        d: `M${num(x + 7)} ${num(cy - 4)}L${num(x + 15)} ${num(cy + 4)}M${num(x + 15)} ${num(cy - 4)}L${num(x + 7)} ${num(cy + 4)}`,
        stroke: color,
        "stroke-width": 1.8,
      });
    case "box":
    case "hatch":
      return el("rect", {
        x: x + 3,
        y: cy - 6,
        width: 16,
        height: 12,
        fill: item.swatch === "hatch" ? `url(#${hatchId})` : color,
        stroke: "#777",
      });
    default:
      return item.swatch satisfies never;
  }
}

/**
 * Legend items in rows (no box) from (x, y), wrapped at `maxWidth`. Returns
 * the SVG and the number of rows.
 */
export function legendRows(
  items: readonly LegendItem[],
  x: number,
  y: number,
  maxWidth: number,
  hatchId: string,
): { svg: string; rows: number } {
  if (items.length === 0) return { svg: "", rows: 0 };
  const parts: string[] = [];
  let cx = x;
  let cy = y;
  let rows = 1;
  for (const item of items) {
    const w = 34 + textWidth(item.label, TICK_SIZE);
    if (cx > x && cx + w > x + maxWidth) {
      cx = x;
      cy += 20;
      rows++;
    }
    parts.push(swatch(item, cx, cy, hatchId));
    parts.push(text(cx + 26, cy + 4, item.label));
    cx += w + 12;
  }
  return { svg: el("g", { class: "legend" }, parts), rows };
}

/** How many rows `legendRows` needs. */
export function legendRowCount(items: readonly LegendItem[], maxWidth: number): number {
  return items.length === 0 ? 0 : legendRows(items, 0, 0, maxWidth, "").rows;
}

/** A continuous or banded color bar with a value axis on its right. */
export interface ColorbarSpec {
  rect: Rect;
  /** Value range of the bar (bottom, top). */
  min: number;
  max: number;
  log: boolean;
  /** Color at a normalized position t in [0, 1] (bottom to top). */
  color: (t: number) => RGB;
  /** Discrete bands between these values (filled contours); continuous without. */
  bands?: readonly number[];
  /** Values at which to draw thin lines across the bar (contour levels). */
  lines?: readonly number[];
  label?: string | undefined;
  gradientId: string;
  /** Triangles below / above the bar: values beyond the range take the end colors. */
  extend?: { low: boolean; high: boolean };
}

/** Draws a color bar; returns [defs, body]. */
export function colorbar(spec: ColorbarSpec): [string, string] {
  const { rect: r, min, max, log, color, bands, lines, label, gradientId, extend } = spec;
  const s = scale([min, max], [r.y + r.height, r.y], log);
  const tOf = (v: number) => (s.range[0] - s.map(v)) / r.height;
  const parts: string[] = [];
  let defs = "";
  if (bands && bands.length >= 2) {
    for (let k = 0; k + 1 < bands.length; k++) {
      const lo = bands[k]!;
      const hi = bands[k + 1]!;
      const y1 = s.map(lo);
      const y2 = s.map(hi);
      if (!Number.isFinite(y1) || !Number.isFinite(y2)) continue;
      const mid = (tOf(lo) + tOf(hi)) / 2;
      parts.push(
        el("rect", {
          x: r.x,
          y: Math.min(y1, y2),
          width: r.width,
          height: Math.abs(y1 - y2),
          fill: rgbHex(color(mid)),
          "shape-rendering": "crispEdges",
        }),
      );
    }
  } else {
    const stops: string[] = [];
    for (let k = 0; k <= 32; k++) {
      const t = k / 32;
      stops.push(el("stop", { offset: t, "stop-color": rgbHex(color(t)) }));
    }
    defs = el("linearGradient", { id: gradientId, x1: 0, y1: 1, x2: 0, y2: 0 }, stops);
    parts.push(el("rect", { x: r.x, y: r.y, width: r.width, height: r.height, fill: `url(#${gradientId})` }));
  }
  for (const v of lines ?? []) {
    const y = s.map(v);
    if (Number.isFinite(y))
      parts.push(
        el("line", { x1: r.x, y1: y, x2: r.x + r.width, y2: y, stroke: "#222", "stroke-width": 0.6 }),
      );
  }
  parts.push(el("rect", { x: r.x, y: r.y, width: r.width, height: r.height, fill: "none", stroke: "#222" }));
  const tip = Math.min(12, r.width);
  if (extend?.high) {
    const d = `M${num(r.x)} ${num(r.y)}L${num(r.x + r.width / 2)} ${num(r.y - tip)}L${num(r.x + r.width)} ${num(r.y)}Z`;
    parts.push(el("path", { class: "extend-high", d, fill: rgbHex(color(1)), stroke: "#222" }));
  }
  if (extend?.low) {
    const y = r.y + r.height;
    const d = `M${num(r.x)} ${num(y)}L${num(r.x + r.width / 2)} ${num(y + tip)}L${num(r.x + r.width)} ${num(y)}Z`;
    parts.push(el("path", { class: "extend-low", d, fill: rgbHex(color(0)), stroke: "#222" }));
  }
  parts.push(axis("right", s, r.x + r.width, { label, tickCount: 6 }));
  return [defs, el("g", { class: "colorbar" }, parts)];
}
