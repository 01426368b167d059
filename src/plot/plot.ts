// Figures of surface files: picks the figure builder for a kind, checks that
// the surfaces fit it (1D or 2D, quantity present), fills in labels from the
// quantity, and writes SVG, PNG or PDF. What `losscape plot` runs.

import { extname } from "node:path";
import { writeFileAtomic } from "../formats/atomic.ts";
import { SURFACE_QUANTITIES, type Surface, type SurfaceQuantity } from "../formats/surface-file.ts";
import { COLORMAP_NAMES } from "./colormap.ts";
import { contourFigure, filledContourFigure } from "./contour.ts";
import { eigenRatio, heatmapFigure, hessianFigure } from "./heatmap.ts";
import { lineFigure, lossAccuracyFigure, overlayFigure } from "./lines.ts";
import type { FigureOptions, LevelOptions } from "./options.ts";
import { type PdfOptions, svgToPdf } from "./pdf.ts";
import { type PngOptions, rasterize } from "./png.ts";
import { surface3dFigure } from "./surface3d.ts";

/** The figure kinds `plotSurfaces` draws. */
export const PLOT_KINDS = ["contour", "filled", "heatmap", "surface3d", "1d", "hessian"] as const;

/**
 * A figure kind: contour lines, filled contours, heat map, 3D surface, 1D
 * loss/accuracy (one or several surfaces), Hessian eigenvalue ratio.
 *
 * @example
 * const kind: PlotKind = "surface3d";
 */
export type PlotKind = (typeof PLOT_KINDS)[number];

/**
 * Options of `plotSurfaces`: the kind, the quantity, and every figure option.
 *
 * @example
 * const o: PlotOptions = { kind: "contour", quantity: "test_loss", vmin: 0.1, vmax: 10, step: 0.5 };
 */
export interface PlotOptions extends FigureOptions, LevelOptions {
  kind: PlotKind;
  /** Quantity to draw (default "train_loss"; for 1D, default: losses and accuracies present). */
  quantity?: SurfaceQuantity;
  /** Names of the surfaces in messages (file names); also the default overlay labels. */
  names?: readonly string[];
  /** Legend labels of overlaid 1D curves, one per surface. */
  labels?: readonly string[];
  /** 3D view: azimuth and elevation in degrees. */
  azimuth?: number;
  elevation?: number;
  /** Contour figures: write level values on the lines (default true). */
  contourLabels?: boolean;
  /** Filled contours: also draw the level lines. */
  lines?: boolean;
}

/** A readable name for a quantity, used as color bar / axis label. */
export function quantityLabel(q: SurfaceQuantity): string {
  switch (q) {
    case "train_loss":
      return "train loss";
    case "test_loss":
      return "test loss";
    case "train_acc":
      return "train accuracy (%)";
    case "test_acc":
      return "test accuracy (%)";
    case "train_loss_se":
      return "train loss standard error";
    case "test_loss_se":
      return "test loss standard error";
    case "max_eig":
      return "λmax";
    case "min_eig":
      return "λmin";
    default:
      return q satisfies never;
  }
}

/** Drops undefined entries, so they do not override defaults when spread. */
function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function describe(s: Surface): string {
  return s.y === null ? `1D (${s.x.length} points)` : `2D (${s.x.length} x ${s.y.length})`;
}

function has(s: Surface): string {
  const q = Object.keys(s.values);
  return q.length > 0 ? q.join(", ") : "no quantities";
}

/**
 * Draws one figure of one or more surfaces and returns the SVG. Checks that
 * the surfaces suit the kind and name the file and what was expected when
 * they do not.
 *
 * @example
 * const svg = plotSurfaces([readSurface("surf.h5")], { kind: "contour", vmin: 0.1, vmax: 10, step: 0.5 });
 */
export function plotSurfaces(surfaces: readonly Surface[], options: PlotOptions): string {
  const { kind } = options;
  const where = `plot --kind ${kind}`;
  if (!(PLOT_KINDS as readonly string[]).includes(kind)) {
    throw new Error(`plot: unknown kind '${kind}', expected one of ${PLOT_KINDS.join(", ")}`);
  }
  if (surfaces.length === 0) throw new Error(`${where}: no surface given`);
  const names = options.names ?? surfaces.map((_, k) => `surface ${k + 1}`);
  if (names.length !== surfaces.length) {
    throw new Error(`${where}: ${names.length} names for ${surfaces.length} surfaces`);
  }
  if (options.quantity !== undefined && !SURFACE_QUANTITIES.includes(options.quantity)) {
    throw new Error(
      `${where}: unknown quantity '${options.quantity}', expected one of ${SURFACE_QUANTITIES.join(", ")}`,
    );
  }
  if (options.cmap !== undefined && !COLORMAP_NAMES.includes(options.cmap)) {
    throw new Error(
      `${where}: unknown color map '${options.cmap}', expected one of ${COLORMAP_NAMES.join(", ")}`,
    );
  }
  if (kind !== "1d" && surfaces.length > 1) {
    throw new Error(`${where} draws one surface, got ${surfaces.length}; only --kind 1d overlays several`);
  }
  if (options.labels !== undefined && options.labels.length !== surfaces.length) {
    throw new Error(
      `${where}: ${options.labels.length} labels for ${surfaces.length} surfaces; give one label per file`,
    );
  }
  for (const [name, v] of [
    ["width", options.width],
    ["height", options.height],
  ] as const) {
    if (v !== undefined && (!Number.isFinite(v) || v < 100 || v > 10000)) {
      throw new Error(`${where}: '${name}' must be between 100 and 10000 pixels, got ${v}`);
    }
  }
  const figure: FigureOptions = defined({
    width: options.width,
    height: options.height,
    title: options.title,
    idPrefix: options.idPrefix,
  });
  const color = defined({
    vmin: options.vmin,
    vmax: options.vmax,
    zmax: options.zmax,
    log: options.log,
    cmap: options.cmap,
    colorbar: options.colorbar,
  });
  const levels = defined({
    levels: options.levels,
    step: options.step,
    spacing: options.spacing,
    focus: options.focus,
  });

  if (kind === "1d") {
    for (const [k, s] of surfaces.entries()) {
      if (s.y !== null) {
        throw new Error(
          `${where}: '${names[k]}' is ${describe(s)}; a 1D figure needs a 1D surface (use --kind contour, filled, heatmap or surface3d)`,
        );
      }
    }
    if (options.step !== undefined || options.levels !== undefined || options.spacing !== undefined) {
      throw new Error(`${where}: 'step', 'levels' and 'spacing' apply to contour figures, not to 1D plots`);
    }
    const first = surfaces[0]!;
    const xlabel =
      options.xlabel ??
      (first.meta["kind"] === "interpolation" ? "interpolation coefficient α" : "α (along the direction)");
    const quantities = options.quantity ? [options.quantity] : undefined;
    if (quantities) {
      for (const [k, s] of surfaces.entries()) {
        if (!s.values[options.quantity!]) {
          throw new Error(`${where}: '${names[k]}' has no '${options.quantity}' (it has ${has(s)})`);
        }
      }
    }
    const common = defined({
      ...figure,
      xlabel,
      ylabel: options.ylabel,
      vmin: options.vmin,
      vmax: options.vmax,
      zmax: options.zmax,
      log: options.log,
      quantities,
    });
    if (surfaces.length === 1 && options.labels === undefined) {
      return lossAccuracyFigure({ x: first.x, values: first.values, done: first.done }, common);
    }
    const labels = options.labels ?? names.map((n) => n.replace(/^.*[\\/]/, "").replace(/\.h5$/, ""));
    return overlayFigure(
      surfaces.map((s, k) => ({ x: s.x, values: s.values, done: s.done, label: labels[k]! })),
      common,
    );
  }

  const s = surfaces[0]!;
  const name = names[0]!;
  if (kind === "hessian") {
    const minEig = s.values.min_eig;
    const maxEig = s.values.max_eig;
    if (!minEig || !maxEig) {
      throw new Error(
        `${where}: '${name}' lacks Hessian eigenvalues: needs 'min_eig' and 'max_eig', it has ${has(s)}`,
      );
    }
    if (s.y === null) {
      // The reference's 1D eigenvalue ratio plot.
      return lineFigure([{ x: s.x, y: eigenRatio(minEig, maxEig), label: "|λmin / λmax|", done: s.done }], {
        ...figure,
        xlabel: options.xlabel ?? "α (along the direction)",
        ylabel: options.ylabel ?? "|λmin / λmax|",
        ylim: [options.vmin ?? 0, options.vmax ?? 1],
      });
    }
    return hessianFigure(
      { x: s.x, y: s.y, minEig, maxEig, done: s.done },
      {
        ...figure,
        ...color,
        xlabel: options.xlabel ?? "direction 1",
        ylabel: options.ylabel ?? "direction 2",
      },
    );
  }
  if (s.y === null) {
    throw new Error(`${where}: '${name}' is ${describe(s)}; this figure needs a 2D surface (use --kind 1d)`);
  }
  if (s.x.length < 2 || s.y.length < 2) {
    throw new Error(
      `${where}: '${name}' is ${describe(s)}; this figure needs at least 2 points along each axis`,
    );
  }
  const quantity = options.quantity ?? "train_loss";
  const values = s.values[quantity];
  if (!values) throw new Error(`${where}: '${name}' has no '${quantity}' (it has ${has(s)})`);
  const field = { x: s.x, y: s.y, values, done: s.done };
  // Focused levels crowd where the landscape is best: the minimum of a loss, the maximum of an accuracy.
  if (levels.focus === undefined && quantity.endsWith("_acc")) levels.focus = "max";
  const labelled = {
    ...figure,
    ...color,
    xlabel: options.xlabel ?? "direction 1",
    ylabel: options.ylabel ?? "direction 2",
    colorLabel: quantityLabel(quantity),
  };
  switch (kind) {
    case "contour":
      return contourFigure(field, { ...labelled, ...levels, ...defined({ labels: options.contourLabels }) });
    case "filled":
      return filledContourFigure(field, { ...labelled, ...levels, ...defined({ lines: options.lines }) });
    case "heatmap":
      if (options.step !== undefined || options.levels !== undefined || options.spacing !== undefined) {
        throw new Error(
          `${where}: 'step', 'levels' and 'spacing' apply to contour figures; a heat map is continuous`,
        );
      }
      return heatmapFigure(field, labelled);
    case "surface3d":
      return surface3dFigure(field, {
        ...labelled,
        ...defined({ azimuth: options.azimuth, elevation: options.elevation }),
      });
    default:
      return kind satisfies never;
  }
}

/** The output formats of `writeFigure`, by file extension. */
export type FigureFormat = "svg" | "png" | "pdf";

/** The extensions `writeFigure` accepts, for messages and option help. */
export const FIGURE_EXTENSIONS = [".svg", ".png", ".pdf"] as const;

/**
 * The format of a figure path from its extension (.svg, .png or .pdf).
 *
 * @example
 * figureFormat("fig.png"); // "png"
 */
export function figureFormat(path: string): FigureFormat {
  const ext = extname(path).toLowerCase();
  if (ext === ".svg") return "svg";
  if (ext === ".png") return "png";
  if (ext === ".pdf") return "pdf";
  throw new Error(`output '${path}' must end in .svg, .png or .pdf, got '${ext || "no extension"}'`);
}

/**
 * Options of `writeFigure`: those of PNG rendering (`scale`, `fontFiles`) and
 * of PDF output (`fonts`, `creationDate`, `compress`).
 *
 * @example
 * const o: WriteFigureOptions = { scale: 2, creationDate: new Date(0) };
 */
export interface WriteFigureOptions extends PngOptions, PdfOptions {}

/**
 * Writes an SVG figure to `path` as SVG, PNG or vector PDF (by extension),
 * atomically. Width and height are pixels for SVG and PNG, points for PDF.
 *
 * @example
 * writeFigure("fig.png", plotSurfaces([s], { kind: "heatmap" }), { scale: 2 });
 * writeFigure("fig.pdf", plotSurfaces([s], { kind: "contour" })); // fonts embedded
 */
export function writeFigure(
  path: string,
  svg: string,
  options: WriteFigureOptions = {},
): { path: string; format: FigureFormat; bytes: number; width: number; height: number } {
  const format = figureFormat(path);
  if (format === "svg") {
    writeFileAtomic(path, svg);
    const m = /width="([\d.]+)" height="([\d.]+)"/.exec(svg);
    return {
      path,
      format,
      bytes: Buffer.byteLength(svg),
      width: Number(m?.[1] ?? 0),
      height: Number(m?.[2] ?? 0),
    };
  }
  if (format === "pdf") {
    const figure = svgToPdf(svg, options);
    writeFileAtomic(path, figure.pdf);
    return { path, format, bytes: figure.pdf.length, width: figure.width, height: figure.height };
  }
  const image = rasterize(svg, options);
  writeFileAtomic(path, image.png);
  return { path, format, bytes: image.png.length, width: image.width, height: image.height };
}
