// Plotly figures of the viewer, as plain data: the 3D surface, the contour
// map (shaded image + marching-squares lines + an invisible pick grid that
// makes every grid point clickable and carries the colour bar), 1D curves with
// loss and accuracy on two y axes, and slices through the plane. No DOM here:
// the page hands these objects to Plotly.react.

import type { TrajectoryJson } from "../api.ts";
import { type ColormapName, plotlyColorscale } from "./colormaps.ts";
import { contourPaths, focusedLevels } from "./contour.ts";
import { bilinear, formatValue, QUANTITY_LABELS, type ViewQuantity } from "./field.ts";

/** A Plotly trace or layout, untyped (plotly.js ships no types in the dist bundle). */
export type PlotObject = Record<string, unknown>;

/** What Plotly.react takes. */
export interface Figure {
  data: PlotObject[];
  layout: PlotObject;
}

/** A grid point, by index: (x[i], y[j]). */
export interface GridPoint {
  i: number;
  j: number;
}

/** One 2D surface's quantity, ready to draw. */
export interface PlaneView {
  name: string;
  x: number[];
  y: number[];
  /** Raw values (index i*ny + j), NaN where null; shown in hover text. */
  raw: Float64Array;
  /** Displayed values (clipped, maybe log10); NaN is not drawn. */
  z: Float64Array;
  quantity: ViewQuantity;
  log: boolean;
  /** Clip value in raw units, or null. */
  zmax: number | null;
  trajectory: TrajectoryJson | null;
}

/** Colour options shared by the views of one comparison. */
export interface ColorOptions {
  cmin: number;
  cmax: number;
  colormap: ColormapName;
  showScale: boolean;
}

const FONT = { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12, color: "#222" };
const SELECTED_COLOR = "#e4003a";
const TRAJECTORY_COLOR = "#ff2d2d";

/**
 * Axis titles of a plane: the explained variance when the directions are PCA
 * directions of a trajectory ("1st PC: 48.2 %"), else the directions' roles.
 *
 * @example
 * planeAxisTitles(null); // ["α (1st direction)", "β (2nd direction)"]
 */
export function planeAxisTitles(trajectory: TrajectoryJson | null): [string, string] {
  const r = trajectory?.explainedVarianceRatio;
  if (r) return [`1st PC: ${(100 * r[0]).toFixed(1)} %`, `2nd PC: ${(100 * r[1]).toFixed(1)} %`];
  return ["α (1st direction)", "β (2nd direction)"];
}

/**
 * The title of a displayed quantity: "log₁₀ train loss (clipped at 5)".
 *
 * @example
 * valueTitle("train_loss", true, null); // "log₁₀ train loss"
 */
export function valueTitle(q: ViewQuantity, log: boolean, zmax: number | null): string {
  const base = log ? `log₁₀ ${QUANTITY_LABELS[q]}` : QUANTITY_LABELS[q];
  return zmax === null ? base : `${base} (clipped at ${formatValue(zmax)})`;
}

function nullable(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

/** z[j][i] for Plotly's surface (rows follow y) from a flat i*ny + j field. */
function rowsByY<T>(nx: number, ny: number, f: (k: number) => T): T[][] {
  return Array.from({ length: ny }, (_, j) => Array.from({ length: nx }, (_, i) => f(i * ny + j)));
}

function colorbar(title: string): PlotObject {
  return { title: { text: title, side: "right" }, thickness: 14, len: 0.85, outlinewidth: 0 };
}

/**
 * The rotatable 3D surface of a plane, with the selected point and the trajectory (lifted onto the surface).
 *
 * @example
 * Plotly.react(div, ...Object.values(surface3dFigure(view, colors, { zrange: [0, 5], selected: null, uirevision: id })));
 */
export function surface3dFigure(
  v: PlaneView,
  c: ColorOptions,
  {
    zrange,
    selected,
    uirevision,
  }: { zrange: [number, number]; selected: GridPoint | null; uirevision: string },
): Figure {
  const nx = v.x.length;
  const ny = v.y.length;
  const [xt, yt] = planeAxisTitles(v.trajectory);
  // The clip value is on the colour bar; the z axis title stays short enough to show.
  const title = valueTitle(v.quantity, v.log, null);
  const data: PlotObject[] = [
    {
      type: "surface",
      name: v.name,
      x: v.x,
      y: v.y,
      z: rowsByY(nx, ny, (k) => nullable(v.z[k]!)),
      text: rowsByY(nx, ny, (k) => formatValue(v.raw[k])),
      hovertemplate: `α %{x:.4g}, β %{y:.4g}<br>${QUANTITY_LABELS[v.quantity]} %{text}<extra></extra>`,
      colorscale: plotlyColorscale(c.colormap),
      cmin: c.cmin,
      cmax: c.cmax,
      showscale: c.showScale,
      colorbar: colorbar(title),
      contours: { z: { show: false, usecolormap: true, project: { z: true } } },
      lighting: { ambient: 0.75, diffuse: 0.6, specular: 0.08, roughness: 0.9 },
    },
  ];
  if (v.trajectory) {
    const t = v.trajectory;
    data.push({
      type: "scatter3d",
      mode: "lines+markers",
      name: "trajectory",
      x: t.x,
      y: t.y,
      z: t.x.map((px, k) => nullable(bilinear(v.z, v.x, v.y, px, t.y[k]!))),
      line: { color: TRAJECTORY_COLOR, width: 5 },
      marker: { size: 2.5, color: TRAJECTORY_COLOR },
      hoverinfo: "skip",
      showlegend: false,
    });
  }
  if (selected !== null) {
    const z = v.z[selected.i * ny + selected.j]!;
    if (Number.isFinite(z)) {
      data.push({
        type: "scatter3d",
        mode: "markers",
        name: "selected",
        x: [v.x[selected.i]],
        y: [v.y[selected.j]],
        z: [z],
        marker: { size: 6, color: SELECTED_COLOR, line: { color: "#fff", width: 1 } },
        hoverinfo: "skip",
        showlegend: false,
      });
    }
  }
  return {
    data,
    layout: {
      uirevision,
      font: FONT,
      margin: { l: 0, r: 0, t: 0, b: 0 },
      paper_bgcolor: "rgba(0,0,0,0)",
      showlegend: false,
      scene: {
        xaxis: { title: { text: xt }, range: [v.x[0], v.x[nx - 1]] },
        yaxis: { title: { text: yt }, range: [v.y[0], v.y[ny - 1]] },
        zaxis: { title: { text: title }, range: zrange },
        aspectmode: "manual",
        aspectratio: { x: 1, y: 1, z: 0.7 },
        camera: { eye: { x: -1.4, y: -1.6, z: 1.4 } },
      },
    },
  };
}

/**
 * The contour map of a plane: the field shaded (`image`, a data URL made from
 * `shadeField`), contour lines at about `levels` levels focused on the
 * minimum and the trajectory (or at the levels given),
 * the trajectory, the selected point, and an invisible marker on every grid
 * point that answers hover and click (customdata [i, j]) and draws the colour bar.
 *
 * @example
 * const fig = contourFigure(view, colors, { levels: 20, image: dataUrl, selected: { i: 5, j: 5 }, uirevision: id });
 */
export function contourFigure(
  v: PlaneView,
  c: ColorOptions,
  {
    levels,
    image,
    selected,
    uirevision,
  }: {
    /** About this many levels focused on the view (src/viewer/app/contour.ts focusedLevels), or the levels themselves. */
    levels: number | readonly number[];
    image: string | null;
    selected: GridPoint | null;
    uirevision: string;
  },
): Figure {
  const nx = v.x.length;
  const ny = v.y.length;
  const [xt, yt] = planeAxisTitles(v.trajectory);
  const title = valueTitle(v.quantity, v.log, v.zmax);
  const drawn =
    typeof levels === "number"
      ? focusedLevels(v.z, v.x, v.y, {
          count: levels,
          trajectory: v.trajectory,
          toward: v.quantity.endsWith("_acc") ? "max" : "min",
          lo: c.cmin,
          hi: c.cmax,
        })
      : levels;
  const lines = contourPaths(v.z, v.x, v.y, drawn);
  const px: number[] = [];
  const py: number[] = [];
  const color: (number | null)[] = [];
  const text: string[] = [];
  const custom: [number, number][] = [];
  for (let i = 0; i < nx; i++) {
    for (let j = 0; j < ny; j++) {
      const k = i * ny + j;
      px.push(v.x[i]!);
      py.push(v.y[j]!);
      color.push(nullable(v.z[k]!));
      text.push(formatValue(v.raw[k]));
      custom.push([i, j]);
    }
  }
  const data: PlotObject[] = [
    {
      type: "scatter",
      mode: "lines",
      name: "contours",
      x: lines.x,
      y: lines.y,
      line: { color: "rgba(20,20,20,0.55)", width: 1 },
      hoverinfo: "skip",
      showlegend: false,
    },
    {
      type: "scatter",
      mode: "markers",
      name: "grid",
      x: px,
      y: py,
      text,
      customdata: custom,
      hovertemplate: `α %{x:.4g}, β %{y:.4g}<br>${QUANTITY_LABELS[v.quantity]} %{text}<extra></extra>`,
      marker: {
        size: Math.max(4, Math.min(14, 360 / Math.max(nx, ny))),
        opacity: 0,
        color,
        colorscale: plotlyColorscale(c.colormap),
        cmin: c.cmin,
        cmax: c.cmax,
        showscale: c.showScale,
        colorbar: colorbar(title),
      },
      showlegend: false,
    },
  ];
  if (v.trajectory) {
    const t = v.trajectory;
    data.push({
      type: "scatter",
      mode: "lines+markers",
      name: "trajectory",
      x: t.x,
      y: t.y,
      text: t.labels ?? t.x.map((_, k) => `checkpoint ${k}`),
      hovertemplate: "%{text}<br>α %{x:.4g}, β %{y:.4g}<extra>trajectory</extra>",
      line: { color: TRAJECTORY_COLOR, width: 2 },
      marker: { size: 5, color: TRAJECTORY_COLOR, line: { color: "#fff", width: 0.5 } },
      showlegend: false,
    });
  }
  if (selected !== null) {
    data.push({
      type: "scatter",
      mode: "markers",
      name: "selected",
      x: [v.x[selected.i]],
      y: [v.y[selected.j]],
      marker: { symbol: "circle-open", size: 15, color: SELECTED_COLOR, line: { width: 2.5 } },
      hoverinfo: "skip",
      showlegend: false,
    });
  }
  const x0 = v.x[0]!;
  const x1 = v.x[nx - 1]!;
  const y0 = v.y[0]!;
  const y1 = v.y[ny - 1]!;
  const pad = (a: number, b: number): [number, number] => (b > a ? [a, b] : [a - 0.5, b + 0.5]);
  return {
    data,
    layout: {
      uirevision,
      font: FONT,
      margin: { l: 56, r: 8, t: 8, b: 44 },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "#d4d4d4",
      hovermode: "closest",
      hoverdistance: 40,
      showlegend: false,
      dragmode: "zoom",
      xaxis: {
        title: { text: xt },
        range: pad(x0, x1),
        showgrid: false,
        zeroline: false,
        constrain: "domain",
      },
      yaxis: {
        title: { text: yt },
        range: pad(y0, y1),
        showgrid: false,
        zeroline: false,
        scaleanchor: "x",
        scaleratio: 1,
        constrain: "domain",
      },
      images:
        image === null
          ? []
          : [
              {
                source: image,
                xref: "x",
                yref: "y",
                x: x0,
                y: y1,
                sizex: x1 - x0,
                sizey: y1 - y0,
                sizing: "stretch",
                layer: "below",
              },
            ],
    },
  };
}

/** One 1D surface (or interpolation) to draw as curves. */
export interface CurveSet {
  name: string;
  x: number[];
  values: Partial<Record<"train_loss" | "test_loss" | "train_acc" | "test_acc", (number | null)[]>>;
}

/** Line colours of compared curves (Tableau 10). */
export const PALETTE = [
  "#4e79a7",
  "#f28e2b",
  "#59a14f",
  "#e15759",
  "#76b7b2",
  "#edc948",
  "#b07aa1",
  "#ff9da7",
  "#9c755f",
  "#bab0ac",
];

const CURVE_STYLES = [
  { q: "train_loss", axis: "y", dash: "solid", label: "train loss" },
  { q: "test_loss", axis: "y", dash: "dash", label: "test loss" },
  { q: "train_acc", axis: "y2", dash: "dot", label: "train accuracy" },
  { q: "test_acc", axis: "y2", dash: "dashdot", label: "test accuracy" },
] as const;

/**
 * 1D surfaces or interpolations: loss on the left axis (log when asked,
 * clipped at `ymax`), accuracy in percent on the right. One surface uses blue
 * for loss and red for accuracy, as the paper's figures do; several get one
 * colour each (line styles tell the quantities apart). Points carry
 * customdata [curve index, point index].
 *
 * @example
 * const fig = curvesFigure([{ name: "a.h5", x, values }], { log: false, ymax: null, selected: null, interpolation: false });
 */
export function curvesFigure(
  curves: readonly CurveSet[],
  {
    log,
    ymax,
    selected,
    interpolation,
  }: { log: boolean; ymax: number | null; selected: number | null; interpolation: boolean },
): Figure {
  const single = curves.length === 1;
  const data: PlotObject[] = [];
  let lossMin = Number.POSITIVE_INFINITY;
  curves.forEach((curve, n) => {
    for (const style of CURVE_STYLES) {
      const values = curve.values[style.q];
      if (values === undefined) continue;
      if (style.axis === "y") {
        for (const v of values) if (v !== null && (!log || v > 0) && v < lossMin) lossMin = v;
      }
      const color = single ? (style.axis === "y" ? "#1f5fa8" : "#c62828") : PALETTE[n % PALETTE.length];
      data.push({
        type: "scatter",
        mode: curve.x.length <= 60 ? "lines+markers" : "lines",
        name: single ? style.label : `${curve.name} · ${style.label}`,
        x: curve.x,
        y: values,
        yaxis: style.axis,
        customdata: curve.x.map((_, i) => [n, i]),
        line: {
          color,
          dash: single ? (style.q.startsWith("test") ? "dash" : "solid") : style.dash,
          width: 2,
        },
        marker: { size: 4, color },
        hovertemplate: `α %{x:.4g}<br>${style.label} %{y:.6g}<extra>${single ? "" : curve.name}</extra>`,
      });
    }
  });
  const shapes: PlotObject[] = [];
  const annotations: PlotObject[] = [];
  if (interpolation) {
    for (const [at, label] of [
      [0, "θA"],
      [1, "θB"],
    ] as const) {
      shapes.push(verticalLine(at, { color: "#888", dash: "dot", width: 1 }));
      annotations.push({
        x: at,
        y: 1,
        xref: "x",
        yref: "paper",
        text: label,
        showarrow: false,
        yanchor: "bottom",
      });
    }
  }
  const first = curves[0];
  if (selected !== null && first !== undefined && first.x[selected] !== undefined) {
    const at = first.x[selected]!;
    shapes.push(verticalLine(at, { color: SELECTED_COLOR, width: 1.5 }));
  }
  let range: [number, number] | undefined;
  if (ymax !== null && Number.isFinite(lossMin)) {
    range = log ? [Math.log10(lossMin), Math.log10(ymax)] : [Math.min(lossMin, ymax) - 0.02 * ymax, ymax];
  }
  return {
    data,
    layout: {
      font: FONT,
      margin: { l: 60, r: 60, t: 24, b: 44 },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "#fff",
      hovermode: "closest",
      xaxis: {
        title: { text: interpolation ? "α   (θ = (1 − α) θA + α θB)" : "α (step along the direction)" },
        zeroline: false,
        gridcolor: "#eee",
      },
      yaxis: {
        title: { text: log ? "loss (log scale)" : "loss" },
        type: log ? "log" : "linear",
        gridcolor: "#eee",
        ...(range ? { range } : { autorange: true }),
      },
      yaxis2: {
        title: { text: "accuracy (%)" },
        overlaying: "y",
        side: "right",
        range: [0, 100],
        tickmode: "linear",
        tick0: 0,
        dtick: 20,
        showgrid: false,
      },
      legend: { orientation: "h", x: 0, y: -0.22 },
      shapes,
      annotations,
    },
  };
}

/** A slice through a plane: one quantity's values along one axis. */
export interface SliceSeries {
  name: string;
  values: (number | null)[];
}

/**
 * A 1D slice through the plane (a row or column through the selected point):
 * values of one or more quantities along `coords`, with the selected
 * coordinate marked.
 *
 * @example
 * sliceFigure({ coords: s.x, series: [{ name: "train", values }], at: 3, title: "α (β = 0)", yTitle: "loss", log: false, ymax: null });
 */
export function sliceFigure({
  coords,
  series,
  at,
  title,
  yTitle,
  log,
  ymax,
}: {
  coords: readonly number[];
  series: readonly SliceSeries[];
  at: number;
  title: string;
  yTitle: string;
  log: boolean;
  ymax: number | null;
}): Figure {
  const colors = ["#1f5fa8", "#c62828", "#2e7d32", "#6a1b9a"];
  const data = series.map((s, n) => ({
    type: "scatter",
    mode: coords.length <= 60 ? "lines+markers" : "lines",
    name: s.name,
    x: coords,
    y: s.values.map((v) => (v !== null && ymax !== null && v > ymax ? ymax : v)),
    line: { color: colors[n % colors.length], width: 2 },
    marker: { size: 4 },
    hovertemplate: `%{x:.4g}: %{y:.6g}<extra>${s.name}</extra>`,
  }));
  const x = coords[at];
  return {
    data,
    layout: {
      font: FONT,
      margin: { l: 60, r: 10, t: 24, b: 40 },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "#fff",
      hovermode: "closest",
      showlegend: series.length > 1,
      legend: { orientation: "h", x: 1, xanchor: "right", y: 1.02, yanchor: "bottom" },
      xaxis: { title: { text: title }, zeroline: false, gridcolor: "#eee" },
      yaxis: { title: { text: yTitle }, type: log ? "log" : "linear", gridcolor: "#eee", automargin: true },
      shapes:
        x === undefined
          ? []
          : [
              {
                type: "line",
                xref: "x",
                yref: "paper",
                x0: x,
                x1: x,
                y0: 0,
                y1: 1,
                line: { color: SELECTED_COLOR, width: 1.5 },
              },
            ],
    },
  };
}

/** A line across the whole plot height at x = `at` (a Plotly layout shape). */
function verticalLine(at: number, line: PlotObject): PlotObject {
  return { type: "line", xref: "x", yref: "paper", x0: at, x1: at, y0: 0, y1: 1, line };
}
