// The Hessian's spectral density as a figure (Ghorbani et al. 2019, Fig. 1 style): the
// Gaussian-broadened stochastic Lanczos quadrature density on a log axis against the eigenvalue,
// so the bulk near zero and the few outliers are both visible. Pure: data in, SVG string out.

import { type LineFigureOptions, lineFigure } from "./lines.ts";
import type { FigureOptions } from "./options.ts";

/** A density to draw: the grid and phi(t) of `spectralDensity`, with the broadening used. */
export interface SpectrumCurve {
  grid: ArrayLike<number>;
  density: ArrayLike<number>;
  sigma: number;
  /** Legend label (default "SLQ density"). */
  label?: string;
}

/** Options of `spectrumFigure`. */
export interface SpectrumFigureOptions extends FigureOptions {
  /**
   * Lowest density drawn, relative to the largest (default 1e-8): the log axis starts there and
   * lower values (the Gaussian tails between nodes) are drawn on it.
   */
  floor?: number;
}

/**
 * Log-density against eigenvalue for one or more spectra (e.g. two minima overlaid).
 *
 * @example
 * const d = spectralDensity(await hessianSpectrum(model, theta, data));
 * writeFigure("spectrum.svg", spectrumFigure([{ ...d, label: "cnn" }], { title: "Hessian spectrum" }));
 */
export function spectrumFigure(
  curves: readonly SpectrumCurve[],
  options: SpectrumFigureOptions = {},
): string {
  const { floor = 1e-8, xlabel = "eigenvalue", ylabel = "density (log scale)", ...rest } = options;
  if (curves.length === 0) throw new Error("spectrumFigure(): no spectrum to draw");
  if (!(floor > 0 && floor < 1)) throw new Error(`spectrumFigure(): 'floor' must be in (0, 1), got ${floor}`);
  let peak = 0;
  for (const c of curves) {
    if (c.grid.length !== c.density.length)
      throw new Error(
        `spectrumFigure(): '${c.label ?? "SLQ density"}' has ${c.grid.length} grid points but ${c.density.length} densities`,
      );
    for (let i = 0; i < c.density.length; i++) peak = Math.max(peak, c.density[i] as number);
  }
  if (!(peak > 0) || !Number.isFinite(peak))
    throw new Error("spectrumFigure(): the densities are not positive");
  const low = 10 ** Math.floor(Math.log10(peak * floor));
  const high = 10 ** Math.ceil(Math.log10(peak));
  const series = curves.map((c) => ({
    x: c.grid,
    y: Array.from(c.density, (v) => Math.max(v, low)),
    label: `${c.label ?? "SLQ density"} (sigma ${c.sigma.toPrecision(3)})`,
  }));
  const line: LineFigureOptions = {
    ...rest,
    xlabel,
    ylabel,
    ylog: true,
    ylim: [low, high > low ? high : low * 10],
  };
  return lineFigure(series, line);
}
