// Golden-file checks for figures (Observable Plot's snapshot tests): an SVG is
// compared with test/plot/golden/<name>.svg; on a mismatch the new SVG is
// written beside it as <name>-changed.svg and the test fails. Goldens are
// written only with UPDATE_GOLDENS=1, and never when CI is set (in CI a
// missing golden is a failure).

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const DIR = new URL("./golden/", import.meta.url).pathname;

/** Re-rounds every number to 3 decimals, so goldens compare after rounding. */
export function normalizeSvg(svg: string): string {
  return svg.replace(/-?\d+\.\d+(?:e[-+]?\d+)?/g, (m) => {
    const r = Math.round(Number(m) * 1000) / 1000;
    return r === 0 ? "0" : String(r);
  });
}

/** Compares `svg` with the golden `name`; throws with a clear message on a mismatch. */
export function expectGolden(name: string, svg: string): void {
  const golden = join(DIR, `${name}.svg`);
  const changed = join(DIR, `${name}-changed.svg`);
  const update = process.env["UPDATE_GOLDENS"] === "1" && !process.env["CI"];
  if (!existsSync(golden)) {
    if (update) {
      writeFileSync(golden, svg);
      return;
    }
    writeFileSync(changed, svg);
    throw new Error(
      `golden ${name}.svg is missing (wrote ${name}-changed.svg); create it with UPDATE_GOLDENS=1 npx vitest run test/plot${process.env["CI"] ? " (never in CI)" : ""}`,
    );
  }
  const want = readFileSync(golden, "utf8");
  if (normalizeSvg(want) === normalizeSvg(svg)) {
    rmSync(changed, { force: true });
    return;
  }
  if (update) {
    writeFileSync(golden, svg);
    rmSync(changed, { force: true });
    return;
  }
  writeFileSync(changed, svg);
  const a = want.split("\n");
  const b = svg.split("\n");
  const line = a.findIndex((l, k) => l !== b[k]);
  throw new Error(
    `figure ${name} differs from its golden at line ${line + 1}:\n  golden:  ${a[line]?.slice(0, 200)}\n  now:     ${b[line]?.slice(0, 200)}\nwrote ${changed}; if the change is intended, rerun with UPDATE_GOLDENS=1`,
  );
}

const ARTIFACTS = new URL("../../test-artifacts/plot/", import.meta.url).pathname;

/**
 * A PDF (written uncompressed) as comparable text: every object in order, its
 * dictionary and, for drawing streams (page content, form XObjects,
 * patterns), its operators, with numbers rounded to 2 decimals; font files
 * and ToUnicode maps are reduced to their length class, so the drawing, the
 * fonts' names and widths and the page size are compared, not bytes.
 */
export function normalizePdf(pdf: Uint8Array): string {
  const text = Buffer.from(pdf).toString("latin1");
  const round = (s: string) =>
    s.replace(/-?\d+\.\d+/g, (m) => {
      const r = Math.round(Number(m) * 100) / 100;
      return r === 0 ? "0" : String(r);
    });
  const out: string[] = [];
  for (const m of text.matchAll(/(\d+) 0 obj\n([\s\S]*?)\nendobj/g)) {
    const body = m[2]!;
    const at = body.indexOf("\nstream\n");
    if (at < 0) {
      out.push(`obj ${m[1]}: ${round(body.replace(/\s+/g, " "))}`);
      continue;
    }
    const dict = body
      .slice(0, at)
      .replace(/\s+/g, " ")
      .replace(/\/Length \d+/, "/Length *");
    const data = body.slice(at + 8).replace(/\n?endstream$/, "");
    const binary =
      data.startsWith("/CIDInit") ||
      Array.from(data).some((c) => {
        const k = c.charCodeAt(0);
        return k < 9 || (k > 13 && k < 32) || k > 126;
      });
    out.push(`obj ${m[1]}: ${round(dict)} stream`);
    if (binary) out.push(`  (${data.length > 0 ? "binary or font map" : "empty"})`);
    else for (const line of data.split("\n")) if (line.trim() !== "") out.push(`  ${round(line)}`);
  }
  return `${out.join("\n")}\n`;
}

/** Compares a PDF with the golden `<name>.pdf.txt` (normalizePdf); on a mismatch writes it to test-artifacts/plot/. */
export function expectPdfGolden(name: string, pdf: Uint8Array): void {
  const golden = join(DIR, `${name}.pdf.txt`);
  const now = normalizePdf(pdf);
  const update = process.env["UPDATE_GOLDENS"] === "1" && !process.env["CI"];
  const changed = join(ARTIFACTS, `${name}-changed.pdf.txt`);
  if (existsSync(golden) && readFileSync(golden, "utf8") === now) {
    rmSync(changed, { force: true });
    return;
  }
  if (update) {
    writeFileSync(golden, now);
    return;
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  writeFileSync(changed, now);
  writeFileSync(join(ARTIFACTS, `${name}-changed.pdf`), pdf);
  if (!existsSync(golden)) {
    throw new Error(
      `golden ${name}.pdf.txt is missing (wrote ${changed}); create it with UPDATE_GOLDENS=1 npx vitest run test/plot${process.env["CI"] ? " (never in CI)" : ""}`,
    );
  }
  const a = readFileSync(golden, "utf8").split("\n");
  const b = now.split("\n");
  const line = a.findIndex((l, k) => l !== b[k]);
  throw new Error(
    `PDF ${name} differs from its golden at line ${line + 1}:\n  golden:  ${a[line]?.slice(0, 200)}\n  now:     ${b[line]?.slice(0, 200)}\nwrote ${changed} and the PDF beside it; if the change is intended, rerun with UPDATE_GOLDENS=1`,
  );
}
