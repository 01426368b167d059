// SVG -> vector PDF with PDFKit and SVG-to-PDFKit (pure JavaScript, no
// browser), for LaTeX users who include PDFs. Text is set in DejaVu Sans, the
// font the SVGs name first, embedded as a TrueType subset (FontFile2): the
// TTFs come from the dejavu-fonts-ttf package, so every machine has them.
// One SVG pixel is 0.75 pt (CSS's 96 px per inch), so a 640 x 480 figure is a
// 480 x 360 pt page (6.67 x 5 in) and 12 px labels are 9 pt.

import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import PDFDocument from "pdfkit";
import SVGtoPDF from "svg-to-pdfkit";
import { systemFontFiles } from "./png.ts";

/** PDF points per SVG pixel (72 pt per inch, 96 px per inch). */
export const PT_PER_PX = 0.75;

/** The TrueType files a PDF's text is set in: regular and bold. */
export interface PdfFonts {
  regular: string;
  bold: string;
}

/**
 * DejaVu Sans regular and bold as TrueType files: from the dejavu-fonts-ttf
 * package (a dependency, so always there), else the system's DejaVu
 * (Debian's fonts-dejavu-core).
 *
 * @example
 * pdfFonts(); // { regular: ".../node_modules/dejavu-fonts-ttf/ttf/DejaVuSans.ttf", bold: ".../DejaVuSans-Bold.ttf" }
 */
export function pdfFonts(): PdfFonts {
  const require = createRequire(import.meta.url);
  try {
    return {
      regular: require.resolve("dejavu-fonts-ttf/ttf/DejaVuSans.ttf"),
      bold: require.resolve("dejavu-fonts-ttf/ttf/DejaVuSans-Bold.ttf"),
    };
  } catch {
    const system = systemFontFiles();
    const regular = system.find((f) => /DejaVuSans\.ttf$/.test(f));
    if (regular === undefined) {
      throw new Error(
        "svgToPdf(): no DejaVu Sans TrueType file found: the 'dejavu-fonts-ttf' package is missing (run npm install) and so is the system's (Debian: apt-get install fonts-dejavu-core)",
      );
    }
    return { regular, bold: system.find((f) => /DejaVuSans-Bold\.ttf$/.test(f)) ?? regular };
  }
}

/**
 * Options of `svgToPdf`.
 *
 * @example
 * const o: PdfOptions = { creationDate: new Date(0), compress: false }; // reproducible, readable bytes
 */
export interface PdfOptions {
  /** TrueType fonts to embed (default: DejaVu Sans, see pdfFonts). */
  fonts?: Partial<PdfFonts>;
  /** Compress the content streams (default true). */
  compress?: boolean;
  /** Creation date in the PDF's info (default: now); a fixed date gives the same bytes for the same figure. */
  creationDate?: Date;
  /** Title in the PDF's info (default: the SVG's <title>). */
  title?: string;
  /**
   * Called for each SVG feature the converter could not render (default:
   * throw, so a figure never loses content silently).
   */
  onWarning?: (message: string) => void;
}

/** A PDF figure: its bytes and page size in points. */
export interface PdfFigure {
  pdf: Uint8Array;
  /** Page width and height in points (SVG pixels x 0.75). */
  width: number;
  height: number;
}

function unescapeXml(text: string): string {
  return text
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, "&");
}

/** Width and height of the root <svg> element, in pixels (no unit or "px"). */
function svgSize(svg: string): [number, number] {
  const root = /<svg\b[^>]*>/.exec(svg)?.[0];
  if (root === undefined) throw new Error("svgToPdf(): 'svg' has no <svg> element");
  const dim = (name: string): number => {
    const m = new RegExp(`\\s${name}="([^"]*)"`).exec(root);
    const v = m ? /^\s*([\d.]+(?:e[-+]?\d+)?)\s*(px)?\s*$/.exec(m[1]!) : null;
    const n = v ? Number(v[1]) : Number.NaN;
    if (!(n > 0) || !Number.isFinite(n)) {
      throw new Error(
        `svgToPdf(): the <svg> element needs a positive '${name}' in pixels, got ${m ? `'${m[1]}'` : "none"}`,
      );
    }
    return n;
  };
  return [dim("width"), dim("height")];
}

/**
 * Renders an SVG figure as a one-page vector PDF: paths, text (DejaVu Sans,
 * embedded as a TrueType subset), patterns, gradients and clip paths stay
 * vectors. The page is the SVG's size at 0.75 pt per pixel.
 *
 * @example
 * const { pdf } = svgToPdf(contourFigure(field), { creationDate: new Date(0) });
 * writeFileSync("contour.pdf", pdf);
 */
export function svgToPdf(svg: string, options: PdfOptions = {}): PdfFigure {
  const {
    compress = true,
    creationDate = new Date(),
    onWarning = (m: string) => {
      throw new Error(`svgToPdf(): the figure cannot be converted exactly: ${m}`);
    },
  } = options;
  if (!(creationDate instanceof Date) || Number.isNaN(creationDate.getTime())) {
    throw new Error(`svgToPdf(): 'creationDate' must be a valid Date, got ${String(creationDate)}`);
  }
  const [w, h] = svgSize(svg);
  const width = w * PT_PER_PX;
  const height = h * PT_PER_PX;
  const found = options.fonts?.regular === undefined ? pdfFonts() : undefined;
  const regular = options.fonts?.regular ?? found!.regular;
  const bold = options.fonts?.bold ?? (options.fonts?.regular !== undefined ? regular : found!.bold);
  for (const [name, file] of [
    ["regular", regular],
    ["bold", bold],
  ] as const) {
    if (!existsSync(file))
      throw new Error(`svgToPdf(): font file '${file}' ('fonts.${name}') does not exist`);
  }
  const title = options.title ?? unescapeXml(/<title>([^<]*)<\/title>/.exec(svg)?.[1] ?? "figure");
  const doc = new PDFDocument({
    size: [width, height],
    margin: 0,
    compress,
    autoFirstPage: true,
    pdfVersion: "1.4",
    font: regular,
    info: { Title: title, Creator: "losscape", Producer: "losscape (PDFKit)", CreationDate: creationDate },
  });
  doc.registerFont("text", regular);
  doc.registerFont("text-bold", bold);
  SVGtoPDF(doc, svg, 0, 0, {
    width,
    height,
    fontCallback: (_family, isBold) => (isBold ? "text-bold" : "text"),
    warningCallback: onWarning,
  });
  doc.end();
  // PDFKit writes the whole document on end(); its stream buffers it until read.
  const chunks: Buffer[] = [];
  for (let c = doc.read(); c !== null; c = doc.read()) chunks.push(c);
  return { pdf: new Uint8Array(Buffer.concat(chunks)), width, height };
}
