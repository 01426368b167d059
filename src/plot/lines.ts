// 1D figures as SVG strings: a generic line chart with one or two y-axes,
// the reference's loss-and-accuracy plot (plot_1d_loss_err: loss blue on the
// left, accuracy red on the right, train solid, test dashed), and several
// 1D surfaces overlaid (e.g. small vs large batch). Non-finite points leave
// gaps; diverged ones are also marked with a cross at the top of the plot.

import { niceStep } from "../core/levels.ts";
import type { SurfaceQuantity } from "../formats/surface-file.ts";
import {
  axis,
  clipDef,
  el,
  frame,
  type LegendItem,
  legendRowCount,
  legendRows,
  num,
  pathData,
  type Rect,
  type Scale,
  scale,
  svgDocument,
  title,
} from "./_svg.ts";
import type { FigureOptions } from "./options.ts";

/**
 * One line of a line chart.
 *
 * @example
 * const s: LineSeries = { x, y: trainLoss, label: "train loss", color: "#1f77b4" };
 */
export interface LineSeries {
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  label: string;
  /** Stroke color (default: from the category palette). */
  color?: string;
  /** SVG stroke-dasharray, e.g. "6 4" for dashed. */
  dash?: string;
  /** Which y-axis (default "left"). */
  axis?: "left" | "right";
  /** Per point, 1 when computed: a non-finite computed point is marked diverged. */
  done?: ArrayLike<number>;
  /** Leave this series out of the legend (its style is explained by other items). */
  hideInLegend?: boolean;
}

/**
 * Options of `lineFigure`.
 *
 * @example
 * const o: LineFigureOptions = { xlabel: "α", ylabel: "loss", ylim: [0, 5], ylog: false };
 */
export interface LineFigureOptions extends FigureOptions {
  /** Label of the right y-axis. */
  y2label?: string;
  /** Range of the left y-axis (default: from the data, from 0 for non-negative data). */
  ylim?: readonly [number, number];
  /** Range of the right y-axis. */
  y2lim?: readonly [number, number];
  /** Log scale on the left y-axis (non-positive values leave gaps). */
  ylog?: boolean;
  /** Color of the left / right axis and its labels (default dark grey). */
  leftColor?: string;
  rightColor?: string;
  /** Extra legend entries (line styles) after the series. */
  legendExtra?: readonly LegendItem[];
}

/** matplotlib's tab10 category colors. */
export const PALETTE = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
] as const;

function autoRange(values: number[], log: boolean): [number, number] {
  if (log) {
    const pos = values.filter((v) => v > 0);
    if (pos.length === 0) return [1, 10];
    const lo = Math.min(...pos);
    const hi = Math.max(...pos);
    const a = 10 ** Math.floor(Math.log10(lo) + 1e-9);
    const b = 10 ** Math.ceil(Math.log10(hi) - 1e-9);
    return [a, b > a ? b : a * 10];
  }
  if (values.length === 0) return [0, 1];
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (lo >= 0 && lo <= 0.5 * hi) lo = 0;
  if (hi === lo) {
    hi = lo + (lo === 0 ? 1 : Math.abs(lo) * 0.1);
    lo -= lo === 0 ? 0 : Math.abs(lo) * 0.1;
  }
  const step = niceStep(lo, hi, 5);
  return [Math.floor(lo / step) * step, Math.ceil(hi / step) * step];
}

function checkRange(
  where: string,
  name: string,
  r: readonly [number, number] | undefined,
  log: boolean,
): void {
  if (r === undefined) return;
  if (!Number.isFinite(r[0]) || !Number.isFinite(r[1]) || !(r[0] < r[1])) {
    throw new Error(`${where}: '${name}' must be [low, high] with low < high, got [${r[0]}, ${r[1]}]`);
  }
  if (log && r[0] <= 0) throw new Error(`${where}: a log axis needs '${name}' low > 0, got ${r[0]}`);
}

/**
 * A line chart with a left and an optional right y-axis. Lines break at
 * non-finite points (and at non-positive ones on a log axis); a lone finite
 * point is drawn as a dot; diverged points (computed, non-finite) get a cross
 * at the top edge. The legend sits in rows below the plot.
 *
 * @example
 * const svg = lineFigure([{ x, y: loss, label: "loss" }, { x, y: acc, label: "acc", axis: "right" }],
 *   { xlabel: "α", ylabel: "loss", y2label: "accuracy (%)", y2lim: [0, 100] });
 */
export function lineFigure(series: readonly LineSeries[], options: LineFigureOptions = {}): string {
  const where = "lineFigure()";
  const { width = 640, height = 480, ylog = false, leftColor = "#222", rightColor = "#222" } = options;
  if (series.length === 0) throw new Error(`${where}: no series to draw`);
  series.forEach((s, k) => {
    if (s.x.length !== s.y.length) {
      throw new Error(
        `${where}: series ${k} ('${s.label}') has ${s.x.length} x values but ${s.y.length} y values`,
      );
    }
    if (s.done !== undefined && s.done.length !== s.x.length) {
      throw new Error(
        `${where}: series ${k} ('${s.label}') has ${s.done.length} 'done' flags for ${s.x.length} points`,
      );
    }
  });
  checkRange(where, "ylim", options.ylim, ylog);
  checkRange(where, "y2lim", options.y2lim, false);
  const hasRight = series.some((s) => s.axis === "right");
  const xsAll: number[] = [];
  const left: number[] = [];
  const right: number[] = [];
  for (const s of series) {
    for (let k = 0; k < s.x.length; k++) {
      const x = s.x[k]!;
      const y = s.y[k]!;
      if (Number.isFinite(x)) xsAll.push(x);
      if (Number.isFinite(x) && Number.isFinite(y)) (s.axis === "right" ? right : left).push(y);
    }
  }
  if (xsAll.length === 0) throw new Error(`${where}: no finite x values`);
  let x0 = Math.min(...xsAll);
  let x1 = Math.max(...xsAll);
  if (x0 === x1) {
    x0 -= 1;
    x1 += 1;
  }
  const ylim = options.ylim ?? autoRange(left, ylog);
  const y2lim = options.y2lim ?? autoRange(right, false);

  const items: LegendItem[] = [];
  const styled = series.map((s, k) => ({ ...s, color: s.color ?? PALETTE[k % PALETTE.length]! }));
  for (const s of styled) {
    if (!s.hideInLegend)
      items.push({ label: s.label, swatch: "line", color: s.color, ...(s.dash ? { dash: s.dash } : {}) });
  }
  items.push(...(options.legendExtra ?? []));
  const anyDiverged = series.some((s) =>
    Array.from(s.y).some((v, k) => !Number.isFinite(v) && (s.done === undefined || s.done[k] !== 0)),
  );
  if (anyDiverged) items.push({ label: "diverged (NaN/Inf)", swatch: "cross", color: "#555" });

  const top = options.title ? 40 : 16;
  const leftM = 78;
  const rightM = hasRight ? 78 : 24;
  const rows = legendRowCount(items, width - leftM - 10);
  const bottom = 58 + rows * 20;
  const plot: Rect = { x: leftM, y: top, width: width - leftM - rightM, height: height - top - bottom };
  if (plot.width < 40 || plot.height < 40) {
    throw new Error(`figure ${width} x ${height} is too small for a plot; use at least 300 x 240`);
  }
  const prefix = options.idPrefix ?? "lsc";
  const xs = scale([x0, x1], [plot.x, plot.x + plot.width]);
  const ysL = scale(ylim, [plot.y + plot.height, plot.y], ylog);
  const ysR = scale(y2lim, [plot.y + plot.height, plot.y]);

  const drawn: string[] = [];
  const marks: string[] = [];
  for (const s of styled) {
    const ys: Scale = s.axis === "right" ? ysR : ysL;
    const runs: [number, number][][] = [[]];
    for (let k = 0; k < s.x.length; k++) {
      const px = xs.map(s.x[k]!);
      const py = ys.map(s.y[k]!);
      if (Number.isFinite(px) && Number.isFinite(py)) runs[runs.length - 1]!.push([px, py]);
      else {
        if (runs[runs.length - 1]!.length > 0) runs.push([]);
        const v = s.y[k]!;
        if (Number.isFinite(px) && !Number.isFinite(v) && (s.done === undefined || s.done[k] !== 0)) {
          const y = plot.y + 6;
          marks.push(
            el("path", {
              d: `M${num(px - 3.5)} ${num(y - 3.5)}L${num(px + 3.5)} ${num(y + 3.5)}M${num(px + 3.5)} ${num(y - 3.5)}L${num(px - 3.5)} ${num(y + 3.5)}`,
              stroke: s.color,
              "stroke-width": 1.5,
            }),
          );
        }
      }
    }
    const d = runs
      .filter((r) => r.length >= 2)
      .map((r) => pathData(r))
      .join("");
    const g: string[] = [];
    if (d) {
      g.push(
        el("path", {
          d,
          fill: "none",
          stroke: s.color,
          "stroke-width": 1.6,
          "stroke-dasharray": s.dash,
          "stroke-linejoin": "round",
        }),
      );
    }
    for (const r of runs)
      if (r.length === 1) g.push(el("circle", { cx: r[0]![0], cy: r[0]![1], r: 2, fill: s.color }));
    drawn.push(el("g", { class: "series", "data-label": s.label }, g));
  }

  const defs = [clipDef(`${prefix}-clip`, plot)];
  const body = [
    el("g", { "clip-path": `url(#${prefix}-clip)` }, drawn),
    el("g", { class: "diverged-marks" }, marks),
    frame(plot),
    axis("bottom", xs, plot.y + plot.height, { label: options.xlabel }),
    axis("left", ysL, plot.x, { label: options.ylabel, color: leftColor }),
  ];
  if (hasRight)
    body.push(axis("right", ysR, plot.x + plot.width, { label: options.y2label, color: rightColor }));
  body.push(title(options.title, plot, width));
  body.push(legendRows(items, plot.x, plot.y + plot.height + 64, width - leftM - 10, `${prefix}-hatch`).svg);
  return svgDocument(
    width,
    height,
    defs,
    body,
    options.title ?? `line plot of ${series.map((x) => x.label).join(", ")}`,
  );
}

/**
 * A 1D surface: coordinates and the quantities computed along them.
 *
 * @example
 * const c: Curve1D = { x: s.x, values: s.values, done: s.done, label: "bs128" };
 */
export interface Curve1D {
  x: ArrayLike<number>;
  values: Partial<Record<SurfaceQuantity, ArrayLike<number>>>;
  done?: ArrayLike<number>;
  /** Name of the curve in an overlay legend. */
  label?: string;
}

/**
 * Options of the 1D loss/accuracy figures.
 *
 * @example
 * const o: Curve1DOptions = { vmax: 5, log: false, quantities: ["train_loss", "test_loss"] };
 */
export interface Curve1DOptions extends FigureOptions {
  /** Which quantities to draw (default: the losses and accuracies present). */
  quantities?: readonly SurfaceQuantity[];
  /** Loss axis range (default: 0 .. the largest finite loss, rounded up); the reference uses 0..5. */
  vmin?: number;
  vmax?: number;
  /** Clip finite losses above zmax. */
  zmax?: number;
  /** Log loss axis. */
  log?: boolean;
  /** Label of the accuracy axis (default "accuracy (%)"). */
  y2label?: string;
}

const LOSS_BLUE = "#1f5fbf";
const ACC_RED = "#c62828";
const DASHED = "6 4";
const DOTTED = "1.5 3";
const DASH_DOT = "7 3 1.5 3";

const IS_LOSS: Record<SurfaceQuantity, boolean> = {
  train_loss: true,
  test_loss: true,
  train_acc: false,
  test_acc: false,
  train_loss_se: true,
  test_loss_se: true,
  max_eig: true,
  min_eig: true,
};

const NAMES: Record<SurfaceQuantity, string> = {
  train_loss: "train loss",
  test_loss: "test loss",
  train_acc: "train accuracy",
  test_acc: "test accuracy",
  train_loss_se: "train loss SE",
  test_loss_se: "test loss SE",
  max_eig: "λmax",
  min_eig: "λmin",
};

function lossRange(where: string, o: Curve1DOptions, values: number[]): [number, number] | undefined {
  if (o.vmin === undefined && o.vmax === undefined) return undefined;
  const auto = autoRange(values, o.log ?? false);
  const r: [number, number] = [o.vmin ?? auto[0], o.vmax ?? auto[1]];
  if (!(r[0] < r[1])) throw new Error(`${where}: 'vmin' (${r[0]}) must be less than 'vmax' (${r[1]})`);
  if (o.log && r[0] <= 0) throw new Error(`${where}: a log scale needs 'vmin' > 0, got ${r[0]}`);
  return r;
}

function clip(values: ArrayLike<number>, zmax: number | undefined): ArrayLike<number> {
  if (zmax === undefined) return values;
  return Float64Array.from(values, (v) => (Number.isFinite(v) && v > zmax ? zmax : v));
}

function pickQuantities(
  where: string,
  curves: readonly Curve1D[],
  wanted?: readonly SurfaceQuantity[],
): SurfaceQuantity[] {
  const order: SurfaceQuantity[] = ["train_loss", "test_loss", "train_acc", "test_acc"];
  if (wanted !== undefined) {
    for (const q of wanted) {
      curves.forEach((c, k) => {
        if (!c.values[q]) {
          const has = Object.keys(c.values).join(", ") || "nothing";
          throw new Error(`${where}: curve ${c.label ?? k} has no '${q}' (it has ${has})`);
        }
      });
    }
    return [...wanted];
  }
  const present = order.filter((q) => curves.some((c) => c.values[q] !== undefined));
  if (present.length === 0) {
    throw new Error(`${where}: nothing to draw; the curves have none of ${order.join(", ")}`);
  }
  return present;
}

/**
 * The reference's 1D figure: loss on the left axis (blue), accuracy on the
 * right (red, 0..100 %), train solid and test dashed.
 *
 * @example
 * const svg = lossAccuracyFigure({ x: s.x, values: s.values, done: s.done }, { xlabel: "α", vmax: 5 });
 */
export function lossAccuracyFigure(curve: Curve1D, options: Curve1DOptions = {}): string {
  const where = "lossAccuracyFigure()";
  const quantities = pickQuantities(where, [curve], options.quantities);
  const series: LineSeries[] = [];
  const lossValues: number[] = [];
  for (const q of quantities) {
    const y = IS_LOSS[q] ? clip(curve.values[q]!, options.zmax) : curve.values[q]!;
    if (IS_LOSS[q]) for (const v of Array.from(y)) if (Number.isFinite(v)) lossValues.push(v);
    series.push({
      x: curve.x,
      y,
      label: NAMES[q],
      color: IS_LOSS[q] ? LOSS_BLUE : ACC_RED,
      ...(q.startsWith("test") ? { dash: DASHED } : {}),
      axis: IS_LOSS[q] ? "left" : "right",
      ...(curve.done ? { done: curve.done } : {}),
    });
  }
  const hasLoss = quantities.some((q) => IS_LOSS[q]);
  const hasAcc = quantities.some((q) => !IS_LOSS[q]);
  const ylim = lossRange(where, options, lossValues);
  // Accuracy alone goes on the left axis.
  if (!hasLoss) for (const s of series) s.axis = "left";
  return lineFigure(series, {
    ...options,
    ylabel: options.ylabel ?? (hasLoss ? "loss" : "accuracy (%)"),
    y2label: options.y2label ?? "accuracy (%)",
    leftColor: hasLoss ? LOSS_BLUE : ACC_RED,
    rightColor: ACC_RED,
    ...(hasLoss ? { ylog: options.log ?? false } : {}),
    ...(ylim ? { ylim } : !hasLoss ? { ylim: [0, 100] as const } : {}),
    ...(hasAcc && hasLoss ? { y2lim: [0, 100] as const } : {}),
  });
}

/**
 * Several 1D surfaces overlaid (e.g. the minimizers of small and large batch
 * training): one color per curve; train solid and test dashed for the loss
 * (left axis), dash-dot and dotted for the accuracy (right axis, 0..100 %).
 *
 * @example
 * const svg = overlayFigure([{ ...small, label: "bs128" }, { ...large, label: "bs8192" }], { vmax: 5 });
 */
export function overlayFigure(curves: readonly Curve1D[], options: Curve1DOptions = {}): string {
  const where = "overlayFigure()";
  if (curves.length === 0) throw new Error(`${where}: no curves to draw`);
  const quantities = pickQuantities(where, curves, options.quantities);
  const style: Record<SurfaceQuantity, string | undefined> = {
    train_loss: undefined,
    test_loss: DASHED,
    train_acc: DASH_DOT,
    test_acc: DOTTED,
    train_loss_se: DOTTED,
    test_loss_se: DOTTED,
    max_eig: undefined,
    min_eig: DASHED,
  };
  const hasLoss = quantities.some((q) => IS_LOSS[q]);
  const series: LineSeries[] = [];
  const lossValues: number[] = [];
  curves.forEach((c, k) => {
    const color = PALETTE[k % PALETTE.length]!;
    const label = c.label ?? `curve ${k + 1}`;
    quantities.forEach((q, n) => {
      const values = c.values[q];
      if (!values) return;
      const y = IS_LOSS[q] ? clip(values, options.zmax) : values;
      if (IS_LOSS[q]) for (const v of Array.from(y)) if (Number.isFinite(v)) lossValues.push(v);
      const dash = style[q];
      series.push({
        x: c.x,
        y,
        label: quantities.length === 1 ? label : `${label}`,
        color,
        ...(dash ? { dash } : {}),
        axis: IS_LOSS[q] || !hasLoss ? "left" : "right",
        ...(c.done ? { done: c.done } : {}),
        // One legend entry per curve (its first quantity); styles are explained below.
        hideInLegend: n > 0,
      });
    });
  });
  const extra: LegendItem[] =
    quantities.length > 1
      ? quantities.map((q) => ({
          label: NAMES[q],
          swatch: "line" as const,
          color: "#555",
          ...(style[q] ? { dash: style[q] } : {}),
        }))
      : [];
  const hasAcc = quantities.some((q) => !IS_LOSS[q]);
  const ylim = lossRange(where, options, lossValues);
  const single = quantities.length === 1 ? NAMES[quantities[0]!] : undefined;
  return lineFigure(series, {
    ...options,
    ylabel: options.ylabel ?? (hasLoss ? (single ?? "loss") : (single ?? "accuracy (%)")),
    y2label: options.y2label ?? "accuracy (%)",
    legendExtra: extra,
    ...(hasLoss ? { ylog: options.log ?? false } : {}),
    ...(ylim ? { ylim } : !hasLoss ? { ylim: [0, 100] as const } : {}),
    ...(hasAcc && hasLoss ? { y2lim: [0, 100] as const } : {}),
  });
}
