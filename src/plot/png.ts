// SVG -> PNG with resvg (no browser). resvg only draws text with fonts it has
// loaded, so DejaVu Sans is loaded explicitly: from the dejavu-fonts-ttf
// package (a dependency), else the system's (Debian's fonts-dejavu-core);
// without either the system fonts are searched instead.

import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { Resvg } from "@resvg/resvg-js";

/** Where Debian and most Linux distributions put DejaVu. */
const DEJAVU_DIRS = ["/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/share/fonts/TTF"];
const DEJAVU_FILES = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf"];

/** DejaVu Sans from the dejavu-fonts-ttf package, or [] when it is not installed. */
function packagedFontFiles(): string[] {
  const require = createRequire(import.meta.url);
  try {
    return DEJAVU_FILES.map((f) => require.resolve(`dejavu-fonts-ttf/ttf/${f}`));
  } catch {
    return [];
  }
}

/**
 * The DejaVu Sans files (regular and bold): the dejavu-fonts-ttf package's,
 * else the system's, or [] when neither is installed.
 *
 * @example
 * defaultFontFiles(); // [".../node_modules/dejavu-fonts-ttf/ttf/DejaVuSans.ttf", ".../DejaVuSans-Bold.ttf"]
 */
export function defaultFontFiles(): string[] {
  const packaged = packagedFontFiles();
  if (packaged.length > 0) return packaged;
  return systemFontFiles();
}

/**
 * The DejaVu Sans files of the system (Debian's fonts-dejavu-core and the
 * like), or [] when none is installed.
 *
 * @example
 * systemFontFiles(); // ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", ".../DejaVuSans-Bold.ttf"]
 */
export function systemFontFiles(): string[] {
  for (const dir of DEJAVU_DIRS) {
    const files = DEJAVU_FILES.map((f) => `${dir}/${f}`).filter((f) => existsSync(f));
    if (files.length > 0) return files;
  }
  return [];
}

/**
 * Options of `svgToPng` / `rasterize`.
 *
 * @example
 * const o: PngOptions = { scale: 2, fontFiles: ["/path/to/Font.ttf"] };
 */
export interface PngOptions {
  /** Font files to load (default: DejaVu Sans, see defaultFontFiles). */
  fontFiles?: readonly string[];
  /** Also search the system's fonts (default: only when no font file is found). */
  loadSystemFonts?: boolean;
  /** Pixels per SVG pixel (default 1; 2 or 3 for print). */
  scale?: number;
}

/** A rendered image: PNG bytes plus its raw RGBA pixels. */
export interface RasterImage {
  png: Uint8Array;
  width: number;
  height: number;
  /** RGBA, 4 bytes per pixel, row-major. */
  pixels: Uint8Array;
}

/**
 * Renders an SVG string to PNG bytes and RGBA pixels.
 *
 * @example
 * const { png, width, height } = rasterize(contourFigure(field), { scale: 2 });
 */
export function rasterize(
  svg: string,
  { fontFiles, loadSystemFonts, scale = 1 }: PngOptions = {},
): RasterImage {
  if (!Number.isFinite(scale) || scale <= 0 || scale > 16) {
    throw new Error(`svgToPng(): 'scale' must be a number in (0, 16], got ${scale}`);
  }
  const files = fontFiles ? [...fontFiles] : defaultFontFiles();
  const missing = files.find((f) => !existsSync(f));
  if (missing !== undefined) throw new Error(`svgToPng(): font file '${missing}' does not exist`);
  const resvg = new Resvg(svg, {
    font: {
      fontFiles: files,
      loadSystemFonts: loadSystemFonts ?? files.length === 0,
      ...(files.length > 0 ? { defaultFontFamily: "DejaVu Sans", sansSerifFamily: "DejaVu Sans" } : {}),
    },
    fitTo: { mode: "zoom", value: scale },
    background: "white",
    logLevel: "off",
  });
  const image = resvg.render();
  return {
    png: new Uint8Array(image.asPng()),
    width: image.width,
    height: image.height,
    pixels: new Uint8Array(image.pixels),
  };
}

/**
 * Renders an SVG string to PNG bytes.
 *
 * @example
 * writeFileSync("fig.png", svgToPng(heatmapFigure(field)));
 */
export function svgToPng(svg: string, options: PngOptions = {}): Uint8Array {
  return rasterize(svg, options).png;
}
