// Vector PDF output: every figure kind converts without loss (no converter
// warning), embeds DejaVu Sans as a TrueType subset (FontFile2, no base-14
// font), has the SVG's page size at 0.75 pt per pixel, and matches its golden
// (drawing operators, numbers rounded; see normalizePdf). writeFigure and
// `losscape plot --out x.pdf` write it; bad input writes nothing.

import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { spectralDensity } from "../../src/curvature/spectrum.ts";
import { sideBySide } from "../../src/plot/compose.ts";
import { connectionFigure, curvePlaneFigure } from "../../src/plot/connect.ts";
import { trajectoryFigure } from "../../src/plot/contour.ts";
import { type PdfOptions, pdfFonts, svgToPdf } from "../../src/plot/pdf.ts";
import { type PlotKind, plotSurfaces, writeFigure } from "../../src/plot/plot.ts";
import { spectrumFigure } from "../../src/plot/spectrum.ts";
import { runCli, tempDir } from "../helpers.ts";
import { expectPdfGolden, normalizePdf } from "./_golden.ts";
import { bumpySurface, curve1D, holeySurface } from "./_surfaces.ts";

const { dir, cleanup } = tempDir("losscape-pdf-");
afterAll(cleanup);

const FIXED: PdfOptions = { compress: false, creationDate: new Date(Date.UTC(2024, 0, 1)) };
const BASE14 =
  /\/BaseFont \/(Times|Helvetica|Courier|Symbol|ZapfDingbats)(-(Roman|Bold|Italic|Oblique|BoldItalic|BoldOblique))?\b/;

/** Converts with the fixed test options, failing on any converter warning. */
function pdfOf(svg: string): { pdf: Uint8Array; width: number; height: number; text: string } {
  const warnings: string[] = [];
  const r = svgToPdf(svg, { ...FIXED, onWarning: (m) => warnings.push(m) });
  expect(warnings).toEqual([]);
  return { ...r, text: Buffer.from(r.pdf).toString("latin1") };
}

function expectEmbeddedDejaVu(text: string): void {
  expect(text).toMatch(/\/FontFile2 \d+ 0 R/);
  expect(text).not.toMatch(BASE14);
  const names = [...text.matchAll(/\/BaseFont \/([^\s/]+)/g)].map((m) => m[1]);
  expect(names.length).toBeGreaterThan(0);
  for (const n of names) expect(n).toMatch(/^[A-Z]{6}\+DejaVuSans(-Bold)?$/);
  expect(text).toMatch(/\/ToUnicode \d+ 0 R/); // text stays searchable and copyable
}

const surf = bumpySurface(9, 9);
const holes = holeySurface(9, 7);
const eig = bumpySurface(7, 7);
eig.values.min_eig = eig.values.train_loss!.map((v) => -0.1 * v);
eig.values.max_eig = eig.values.train_loss!.map((v) => 1 + v);
const line = curve1D(21, 3, { gap: true });
const line2 = curve1D(21, 4, { sharpness: 12 });
const eig1 = curve1D(11);
eig1.values.min_eig = eig1.values.train_loss!.map((v) => -0.2 * v);
eig1.values.max_eig = eig1.values.train_loss!.map((v) => 2 + v);

// A spectrum of two probes with known nodes and weights: a bulk near 0 and an outlier at 8.
const quadrature = {
  nodes: [Float64Array.of(8, 1.5, 0.2, -0.3), Float64Array.of(7.6, 1.1, 0.05, -0.5)],
  weights: [Float64Array.of(0.05, 0.15, 0.5, 0.3), Float64Array.of(0.04, 0.2, 0.56, 0.2)],
};
const density = spectralDensity(quadrature, { sigma: 0.1, points: 200 });
// Loss along a curve (low everywhere) and along the straight line (a barrier in the middle).
const t = Array.from({ length: 11 }, (_, i) => i / 10);
const paths = {
  t,
  kind: "bezier",
  curve: {
    train_loss: t.map((x) => 0.3 + 0.05 * Math.sin(Math.PI * x)),
    test_loss: t.map((x) => 0.4 + 0.08 * x),
  },
  line: {
    train_loss: t.map((x) => 0.3 + 2 * x * (1 - x) * 4),
    test_loss: t.map((x) => 0.4 + 7 * x * (1 - x)),
  },
};

const KINDS: [string, () => string][] = [
  ["contour", () => plotSurfaces([surf], { kind: "contour", title: "contour" })],
  ["filled", () => plotSurfaces([holes], { kind: "filled", lines: true })],
  ["heatmap", () => plotSurfaces([holes], { kind: "heatmap", cmap: "magma" })],
  ["surface3d", () => plotSurfaces([holes], { kind: "surface3d", zmax: 3 })],
  ["1d", () => plotSurfaces([line], { kind: "1d" })],
  ["overlay", () => plotSurfaces([line, line2], { kind: "1d", labels: ["bs128", "bs8192"] })],
  ["hessian", () => plotSurfaces([eig], { kind: "hessian" })],
  ["hessian-1d", () => plotSurfaces([eig1], { kind: "hessian" })],
  [
    "trajectory",
    () =>
      trajectoryFigure(
        { x: surf.x, y: surf.y!, values: surf.values.train_loss!, done: surf.done },
        { x: [-0.8, -0.4, -0.1, 0], y: [0.5, 0.2, 0.05, 0], labels: ["0", "", "", "30"] },
        { xlabel: "1st PC: 48.21 %", ylabel: "2nd PC: 21.07 %" },
      ),
  ],
  ["spectrum", () => spectrumFigure([{ ...density, label: "two probes" }], { title: "Hessian spectrum" })],
  ["connect", () => connectionFigure(paths, { title: "w1 to w2, bezier vs line" })],
  [
    "connect-plane",
    () =>
      curvePlaneFigure(
        { x: surf.x, y: surf.y!, values: surf.values.train_loss!, done: surf.done },
        { x: [-0.9, -0.5, 0, 0.5, 0.9], y: [0, 0.4, 0.55, 0.4, 0], labels: ["w1", "", "phi(0.5)", "", "w2"] },
        { title: "plane of the curve" },
      ),
  ],
];

describe("vector PDF of every figure kind", () => {
  for (const [name, make] of KINDS) {
    it(`${name}: converts without warnings, DejaVu Sans embedded, 480 x 360 pt, as its golden`, () => {
      const { pdf, width, height, text } = pdfOf(make());
      expect(text.startsWith("%PDF-1.4")).toBe(true);
      expect(text.trimEnd().endsWith("%%EOF")).toBe(true);
      expect([width, height]).toEqual([480, 360]);
      expect(text).toMatch(/\/MediaBox \[0 0 480 360\]/);
      expectEmbeddedDejaVu(text);
      expectPdfGolden(`pdf-${name}`, pdf);
    });
  }

  it("figures side by side (sideBySide) and a custom size keep the SVG's size at 0.75 pt per pixel", () => {
    const a = plotSurfaces([surf], { kind: "contour", width: 400, height: 300, idPrefix: "a" });
    const b = plotSurfaces([surf], { kind: "heatmap", width: 400, height: 300, idPrefix: "b" });
    const both = pdfOf(sideBySide([a, b]));
    expect([both.width, both.height]).toEqual([(400 * 2 + 16) * 0.75, 300 * 0.75]);
    expect(both.text).toMatch(/\/MediaBox \[0 0 612 225\]/);
    expectEmbeddedDejaVu(both.text);
    const big = pdfOf(plotSurfaces([surf], { kind: "contour", width: 800, height: 600 }));
    expect(big.text).toMatch(/\/MediaBox \[0 0 600 450\]/);
  });

  it("the text is set in the embedded font: the level labels and axis titles are in the page", () => {
    const { text } = pdfOf(plotSurfaces([surf], { kind: "contour", xlabel: "alpha" }));
    // Text is drawn with the Type0 font (Tf) and the ToUnicode map covers the glyphs used.
    expect(text.match(/\/F\d+ [\d.]+ Tf/g)?.length ?? 0).toBeGreaterThan(10);
    expect(text).toMatch(/beginbfchar|beginbfrange/);
  });

  it("the same figure and creation date give the same bytes; compression shrinks them", () => {
    const svg = plotSurfaces([surf], { kind: "contour" });
    const a = svgToPdf(svg, FIXED).pdf;
    const b = svgToPdf(svg, FIXED).pdf;
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    const packed = svgToPdf(svg, { creationDate: FIXED.creationDate! }).pdf;
    expect(packed.length).toBeLessThan(a.length / 1.5);
    expect(Buffer.from(packed).toString("latin1")).toMatch(/\/FlateDecode/);
    expect(normalizePdf(a)).toMatch(/^obj \d+: /);
  });

  it("embeds the packaged DejaVu TrueType files", () => {
    const fonts = pdfFonts();
    for (const f of [fonts.regular, fonts.bold]) {
      expect(f).toMatch(/dejavu-fonts-ttf[\\/]ttf[\\/]DejaVuSans(-Bold)?\.ttf$/);
      expect(Array.from(readFileSync(f).subarray(0, 4))).toEqual([0, 1, 0, 0]); // TrueType sfnt version
    }
  });

  it("rejects bad input with the argument's name", () => {
    expect(() => svgToPdf("<p>not svg</p>")).toThrow(/svgToPdf\(\): 'svg' has no <svg> element/);
    expect(() => svgToPdf('<svg width="100%" height="10"></svg>')).toThrow(
      /needs a positive 'width' in pixels, got '100%'/,
    );
    expect(() => svgToPdf('<svg width="10"></svg>')).toThrow(/needs a positive 'height' in pixels, got none/);
    expect(() => svgToPdf(KINDS[0]![1](), { fonts: { regular: join(dir, "none.ttf") } })).toThrow(
      /font file '.*none\.ttf' \('fonts\.regular'\) does not exist/,
    );
    expect(() => svgToPdf(KINDS[0]![1](), { creationDate: new Date(Number.NaN) })).toThrow(
      /'creationDate' must be a valid Date/,
    );
    expect(() =>
      svgToPdf('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><path d="M 0 0 Q"/></svg>'),
    ).toThrow(/svgToPdf\(\): the figure cannot be converted exactly: SvgPath/);
  });
});

describe("writeFigure", () => {
  it("writes .pdf (size in points), .svg and .png by extension", () => {
    const svg = plotSurfaces([surf], { kind: "contour" });
    const pdf = writeFigure(join(dir, "fig.pdf"), svg, FIXED);
    expect(pdf).toMatchObject({ format: "pdf", width: 480, height: 360 });
    const bytes = readFileSync(join(dir, "fig.pdf"));
    expect(bytes.length).toBe(pdf.bytes);
    expect(bytes.subarray(0, 5).toString()).toBe("%PDF-");
    expect(writeFigure(join(dir, "fig.svg"), svg)).toMatchObject({ format: "svg", width: 640, height: 480 });
    expect(writeFigure(join(dir, "FIG.PDF"), svg).format).toBe("pdf");
  });

  it("refuses another extension, naming the allowed ones, and writes nothing", () => {
    const before = readdirSync(dir).sort();
    const svg = plotSurfaces([surf], { kind: "contour" });
    for (const bad of ["fig.eps", "fig", "fig.pdf.txt"]) {
      expect(() => writeFigure(join(dir, bad), svg)).toThrow(/must end in \.svg, \.png or \.pdf, got '/);
    }
    expect(readdirSync(dir).sort()).toEqual(before);
    expect(existsSync(join(dir, "fig.eps"))).toBe(false);
  });

  it("every `plot --kind` writes a PDF", () => {
    const kinds: [PlotKind, typeof surf][] = [
      ["contour", surf],
      ["filled", surf],
      ["heatmap", surf],
      ["surface3d", surf],
      ["1d", line],
      ["hessian", eig],
    ];
    for (const [kind, s] of kinds) {
      const r = writeFigure(join(dir, `${kind}.pdf`), plotSurfaces([s], { kind }));
      expect(r.format).toBe("pdf");
      expectEmbeddedDejaVu(readFileSync(join(dir, `${kind}.pdf`)).toString("latin1"));
    }
  });
});

describe("the analyses' commands write PDF figures", () => {
  it("connect --pdf writes connect.pdf and connect-plane.pdf beside the SVGs; spectrum --figure x.pdf writes a PDF", () => {
    const a = join(dir, "a");
    const b = join(dir, "b");
    expect(runCli("zoo", "cnn", "--out", a, "--seed", "0").code).toBe(0);
    expect(runCli("zoo", "cnn", "--out", b, "--seed", "1").code).toBe(0);
    const out = join(dir, "connect");
    const small = ["--subset", "64", "--threads", "1"];
    const r = runCli(
      "connect",
      "--model",
      `${a}.onnx`,
      "--from",
      `${a}.safetensors`,
      "--to",
      `${b}.safetensors`,
      "--out",
      out,
      "--steps",
      "2",
      "--train-batch-size",
      "16",
      "--points",
      "3",
      "--plane-points",
      "3",
      "--bn-batches",
      "1",
      "--bn-batch-size",
      "16",
      "--pdf",
      ...small,
    );
    expect(r.code, r.err).toBe(0);
    for (const name of ["connect", "connect-plane"]) {
      const pdf = readFileSync(join(out, `${name}.pdf`)).toString("latin1");
      expect(pdf.startsWith("%PDF-1.4")).toBe(true);
      expect(pdf).toMatch(/\/MediaBox \[0 0 480 360\]/);
      expectEmbeddedDejaVu(pdf);
      expect(existsSync(join(out, `${name}.svg`))).toBe(true);
    }
    expect(r.out).toMatch(/connect-plane\.pdf/);
    const fig = join(dir, "spectrum.pdf");
    const s = runCli(
      "spectrum",
      "--model",
      "cnn",
      "--probes",
      "1",
      "--steps",
      "3",
      "--figure",
      fig,
      ...small,
    );
    expect(s.code, s.err).toBe(0);
    expect(s.out).toContain(`wrote figure ${fig}`);
    expectEmbeddedDejaVu(readFileSync(fig).toString("latin1"));
  }, 120_000);
});
