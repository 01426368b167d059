// The contour map's background: a 2D field shaded with a colour map, as RGBA
// pixels (row 0 at the top = largest y), bilinearly interpolated between grid
// points. NaN (not computed, diverged, log of a non-positive value) is
// transparent, so the plot's background shows through.

import { type ColormapName, colormapTable } from "./colormaps.ts";
import { bilinear } from "./field.ts";

/** Options of `shadeField`. */
export interface ShadeOptions {
  width: number;
  height: number;
  /** Values mapped to the first and last colour (clamped outside). */
  cmin: number;
  cmax: number;
  colormap: ColormapName;
}

/**
 * RGBA pixels (4 * width * height bytes) of `field` over [x0, xn] x [y0, yn],
 * each pixel sampled at its centre.
 *
 * @example
 * const rgba = shadeField(z, xs, ys, { width: 256, height: 256, cmin: 0, cmax: 2, colormap: "viridis" });
 * ctx.putImageData(new ImageData(rgba, 256, 256), 0, 0);
 */
export function shadeField(
  field: ArrayLike<number>,
  x: readonly number[],
  y: readonly number[],
  { width, height, cmin, cmax, colormap }: ShadeOptions,
): Uint8ClampedArray<ArrayBuffer> {
  const lut = colormapTable(colormap, 256);
  const out = new Uint8ClampedArray(new ArrayBuffer(width * height * 4));
  const x0 = x[0]!;
  const x1 = x[x.length - 1]!;
  const y0 = y[0]!;
  const y1 = y[y.length - 1]!;
  const span = cmax - cmin;
  for (let py = 0; py < height; py++) {
    const cy = y1 - ((py + 0.5) / height) * (y1 - y0);
    for (let px = 0; px < width; px++) {
      const cx = x0 + ((px + 0.5) / width) * (x1 - x0);
      const v = bilinear(field, x, y, cx, cy);
      const o = (py * width + px) * 4;
      if (Number.isNaN(v)) continue; // transparent
      const t = span > 0 ? Math.min(1, Math.max(0, (v - cmin) / span)) : 0.5;
      const k = Math.round(t * 255) * 3;
      out[o] = lut[k]!;
      out[o + 1] = lut[k + 1]!;
      out[o + 2] = lut[k + 2]!;
      out[o + 3] = 255;
    }
  }
  return out;
}
