// The data and options every figure builder takes: a 2D field sampled on a
// grid, and typed option objects (size, labels, levels, color scale). Figure
// builders destructure these with defaults; nothing here reads files.

import type { ColormapName } from "./colormap.ts";

/**
 * Values sampled on a (possibly non-uniform) grid: values[i*ny + j] is the
 * value at (x[i], y[j]), the surface file's orientation. Non-finite values
 * are missing: `done[k] = 0` marks a point not computed yet, a non-finite
 * value at a done point (or without `done`) is a diverged evaluation.
 *
 * @example
 * const field: Field2D = { x: surface.x, y: surface.y!, values: surface.values.train_loss!, done: surface.done };
 */
export interface Field2D {
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  values: ArrayLike<number>;
  done?: ArrayLike<number>;
}

/**
 * Size, title and axis labels of a figure.
 *
 * @example
 * const frame: FigureOptions = { width: 640, height: 480, title: "ResNet-56", xlabel: "x", ylabel: "y" };
 */
export interface FigureOptions {
  /** Width of the figure in SVG pixels (default 640). */
  width?: number;
  /** Height in SVG pixels (default 480). */
  height?: number;
  /** Title above the plot; none by default. */
  title?: string;
  /** Label of the horizontal axis. */
  xlabel?: string;
  /** Label of the vertical axis. */
  ylabel?: string;
  /** Prefix of the ids of patterns and clip paths, so several figures can share one HTML page. */
  idPrefix?: string;
}

/**
 * How values map to colors: the range, clipping, log scale and color map.
 *
 * @example
 * const color: ColorOptions = { vmin: 0.1, vmax: 10, log: true, cmap: "viridis" };
 */
export interface ColorOptions {
  /** Low end of the color range (default: the smallest finite value; for contours, the levels' range). */
  vmin?: number;
  /** High end of the color range (default: the largest finite value). */
  vmax?: number;
  /** Clip finite values above zmax to zmax before anything else (the reference's --zmax). Non-finite values stay missing. */
  zmax?: number;
  /** Log color scale (and log-spaced levels); values <= 0 take the low end. */
  log?: boolean;
  /** Color map (default "paper": what the reference uses for this kind of figure). */
  cmap?: ColormapName;
  /** Label beside the color bar. */
  colorLabel?: string;
  /** Draw the color bar (default true). */
  colorbar?: boolean;
}

/**
 * How contour levels are spaced when neither a list, a `step` nor `log` is
 * given: "focus" (the default) puts them where the landscape is, dense near
 * the minimum and spread over the region of interest (src/core/levels.ts
 * `focusLevels`); "even" puts round levels evenly over the color range.
 *
 * @example
 * const spacing: LevelSpacing = "even";
 */
export type LevelSpacing = "focus" | "even";

/** The level spacings, for option parsing. */
export const LEVEL_SPACINGS: readonly LevelSpacing[] = ["focus", "even"];

/**
 * Which contour levels to draw: an explicit list, a step from vmin (the
 * reference's vmin/vmax/vlevel), log spacing, or a count of levels spaced by
 * `spacing` (default: focused on the minimum and the region of interest).
 *
 * @example
 * const levels: LevelOptions = { vmin: 0.1, vmax: 10, step: 0.5 }; // the reference's defaults
 * const dense: LevelOptions = { levels: 16 };                       // 16 focused levels
 */
export interface LevelOptions extends ColorOptions {
  /** A count of levels (default 12 focused, 10 even), or the levels themselves. */
  levels?: number | readonly number[];
  /** Distance between levels, starting at vmin (the reference's vlevel). */
  step?: number;
  /** Spacing of levels from a count (default "focus"); vmin/vmax bound it. */
  spacing?: LevelSpacing;
  /** Where focused levels crowd: "min" (losses, the default) or "max" (accuracies). */
  focus?: "min" | "max";
}
