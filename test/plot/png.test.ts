import { describe, expect, it } from "vitest";
import { contourFigure, filledContourFigure, trajectoryFigure } from "../../src/plot/contour.ts";
import { heatmapFigure } from "../../src/plot/heatmap.ts";
import { lossAccuracyFigure } from "../../src/plot/lines.ts";
import { defaultFontFiles, rasterize, svgToPng } from "../../src/plot/png.ts";
import { surface3dFigure } from "../../src/plot/surface3d.ts";
import { systemTool } from "../_tools.ts";
import { bumpySurface, curve1D } from "./_surfaces.ts";

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Width and height from the PNG's IHDR chunk (right after the signature). */
function ihdr(png: Uint8Array): { width: number; height: number } {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  expect(new TextDecoder().decode(png.slice(12, 16))).toBe("IHDR");
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

function variance(pixels: Uint8Array): number {
  let sum = 0;
  let sq = 0;
  const n = pixels.length / 4;
  for (let k = 0; k < pixels.length; k += 4) {
    const g = (pixels[k]! + pixels[k + 1]! + pixels[k + 2]!) / 3;
    sum += g;
    sq += g * g;
  }
  return sq / n - (sum / n) ** 2;
}

const s = bumpySurface(15, 15);
const field = { x: s.x, y: s.y!, values: s.values.train_loss!, done: s.done };
const c = curve1D(21);

const fonts = systemTool("fonts", "the DejaVu text test of test/plot/png.test.ts");

describe("PNG rendering (resvg)", () => {
  const figures: Record<string, string> = {
    contour: contourFigure(field, { xlabel: "x", ylabel: "y" }),
    filled: filledContourFigure(field),
    heatmap: heatmapFigure(field),
    surface3d: surface3dFigure(field),
    "1d": lossAccuracyFigure({ x: c.x, values: c.values }),
    trajectory: trajectoryFigure(field, { x: [0.5, 0.2, 0], y: [0.5, 0.1, 0] }),
  };

  for (const [name, svg] of Object.entries(figures)) {
    it(`${name}: a PNG of the figure's size that is not blank`, () => {
      const img = rasterize(svg);
      expect(Array.from(img.png.slice(0, 8))).toEqual(PNG_SIGNATURE);
      expect(ihdr(img.png)).toEqual({ width: 640, height: 480 });
      expect(img.pixels.length).toBe(640 * 480 * 4);
      expect(variance(img.pixels)).toBeGreaterThan(100);
    });
  }

  it("scale multiplies the pixel size", () => {
    const png = svgToPng(figures["heatmap"]!, { scale: 2 });
    expect(ihdr(png)).toEqual({ width: 1280, height: 960 });
  });

  it.skipIf(fonts === undefined)("draws text with DejaVu Sans (removing the text changes the pixels)", () => {
    expect(defaultFontFiles().some((f) => f.endsWith("DejaVuSans.ttf"))).toBe(true);
    const svg = figures["contour"]!;
    const bare = svg.replace(/<text[^>]*>[^<]*<\/text>/g, "");
    const a = rasterize(svg).pixels;
    const b = rasterize(bare).pixels;
    let differing = 0;
    for (let k = 0; k < a.length; k += 4) if (a[k] !== b[k]) differing++;
    expect(differing).toBeGreaterThan(500);
  });

  it("names a missing font file", () => {
    expect(() => svgToPng(figures["1d"]!, { fontFiles: ["/nonexistent/font.ttf"] })).toThrow(
      /font file '\/nonexistent\/font.ttf' does not exist/,
    );
    expect(() => svgToPng(figures["1d"]!, { scale: 0 })).toThrow(/'scale' must be a number in \(0, 16\]/);
  });
});
