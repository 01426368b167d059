// The few PDFKit and SVG-to-PDFKit calls the PDF writer makes (neither package ships types).

declare module "pdfkit" {
  /** Options of the PDFKit document (a subset). */
  interface PDFDocumentOptions {
    size?: [number, number];
    margin?: number;
    compress?: boolean;
    autoFirstPage?: boolean;
    pdfVersion?: "1.3" | "1.4" | "1.5" | "1.6" | "1.7";
    font?: string;
    info?: { Title?: string; Creator?: string; Producer?: string; CreationDate?: Date; ModDate?: Date };
  }
  /** A PDF being written; a Node Readable of its bytes once `end()` is called. */
  class PDFDocument {
    constructor(options?: PDFDocumentOptions);
    registerFont(name: string, src: string | Uint8Array): this;
    end(): void;
    read(): Buffer | null;
  }
  export default PDFDocument;
}

declare module "svg-to-pdfkit" {
  import type PDFDocument from "pdfkit";

  /** Options of SVGtoPDF (a subset). */
  interface SvgToPdfOptions {
    width?: number;
    height?: number;
    preserveAspectRatio?: string;
    /** Font name (registered with the document) for an SVG font family. */
    fontCallback?: (family: string, bold: boolean, italic: boolean) => string;
    warningCallback?: (message: string) => void;
    assumePt?: boolean;
  }
  /** Draws an SVG string into the current page of `doc` at (x, y). */
  export default function SVGtoPDF(
    doc: PDFDocument,
    svg: string,
    x?: number,
    y?: number,
    options?: SvgToPdfOptions,
  ): void;
}
