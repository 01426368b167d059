// `losscape report`: the viewer as one self-contained HTML file. The built app
// (script and styles) and the surfaces' JSON are inlined into the app's page,
// so the file opens from disk (file://) or a mail attachment, with no server
// and no network. The app finds the data in a <script type="application/json">
// element and reads it instead of calling the API.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../formats/atomic.ts";
import { REPORT_DATA_ELEMENT, type ReportData } from "./api.ts";
import { ensureViewerBuild, readViewerBundle } from "./build.ts";
import { SurfaceCatalog } from "./catalog.ts";

/** Options of `renderReport` and `writeReport`. */
export interface ReportOptions {
  /** Folders and surface files, as for `startViewer`. */
  paths: readonly string[];
  /** The page's title (default: "losscape report"). */
  title?: string;
  /** A built app folder (default: build on demand). */
  appDir?: string;
  /** Progress messages (the app build). */
  log?: (line: string) => void;
}

/** What went into a report. */
export interface ReportSummary {
  /** Surfaces included. */
  surfaces: number;
  /** Listed files that could not be read (shown in the report with their reason). */
  errors: string[];
  /** Analyses included (connect, spectrum, sharpness). */
  analyses: number;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Text safe inside a <script> element: no "</script" and, for JSON, no "<" at all. */
function scriptText(js: string): string {
  return js.replace(/<\/(script)/gi, (_m, tag: string) => `<\\/${tag}`);
}

/**
 * Collects the surfaces under `paths` into the data a report embeds.
 *
 * @example
 * const data = collectReportData(["runs/"], "VGG-9 batch size");
 */
export function collectReportData(paths: readonly string[], title: string): ReportData {
  const catalog = new SurfaceCatalog(paths);
  const list = catalog.list();
  const surfaces: ReportData["surfaces"] = {};
  for (const entry of list.surfaces) {
    if (entry.status !== "ok") continue;
    const answer = catalog.surface(entry.id);
    surfaces[entry.id] = answer.ok ? answer.surface : answer.error;
  }
  const analyses: ReportData["analyses"] = {};
  for (const entry of list.analyses) {
    if (entry.status !== "ok") continue;
    const answer = catalog.analysis(entry.id);
    analyses[entry.id] = answer.ok ? answer.analysis : answer.error;
  }
  return { title, list, surfaces, analyses };
}

/**
 * The report's HTML: the app's page with its script, styles and `data` inlined.
 *
 * @example
 * const html = inlineReport(await ensureViewerBuild(), collectReportData(["runs/"], "runs"));
 */
export function inlineReport(appDir: string, data: ReportData): string {
  const bundle = readViewerBundle(appDir);
  const js = readFileSync(join(appDir, bundle.script), "utf8");
  const css = bundle.styles.map((f) => readFileSync(join(appDir, f), "utf8")).join("\n");
  const json = JSON.stringify(data).replace(/</g, "\\u003c");
  let html = bundle.html
    .replace(/<script\b[^>]*\bsrc="[^"]*"[^>]*><\/script>\s*/g, () => "")
    .replace(/<link\b[^>]*\brel="stylesheet"[^>]*>\s*/g, () => "")
    .replace(/<link\b[^>]*\brel="modulepreload"[^>]*>\s*/g, () => "")
    .replace(/<title>[^<]*<\/title>/, () => `<title>${escapeHtml(data.title)}</title>`);
  if (/\bsrc="\.?\/?assets\//.test(html) || /\bhref="\.?\/?assets\//.test(html)) {
    throw new Error(`viewer build '${appDir}': index.html still references assets after inlining`);
  }
  html = html.replace(
    "</head>",
    () => `<style>\n${css.replace(/<\/(style)/gi, "<\\/$1")}\n</style>\n</head>`,
  );
  html = html.replace(
    "</body>",
    () =>
      `<script type="application/json" id="${REPORT_DATA_ELEMENT}">${json}</script>\n` +
      `<script type="module">\n${scriptText(js)}\n</script>\n</body>`,
  );
  return html;
}

/**
 * The self-contained HTML report of the surfaces under `paths`, as a string.
 *
 * @example
 * const html = await renderReport({ paths: ["runs/"], title: "ResNet-56 with and without skips" });
 */
export async function renderReport({
  paths,
  title = "losscape report",
  appDir,
  log = () => {},
}: ReportOptions): Promise<{ html: string; summary: ReportSummary }> {
  const data = collectReportData(paths, title);
  const dir = appDir ?? (await ensureViewerBuild({ log }));
  const named = (s: { name: string; error: string }) =>
    s.error.includes(s.name) ? s.error : `${s.name}: ${s.error}`;
  const errors = data.list.surfaces.flatMap((s) => (s.status !== "error" ? [] : [named(s)]));
  const analysisErrors = data.list.analyses.flatMap((a) => (a.status !== "error" ? [] : [named(a)]));
  return {
    html: inlineReport(dir, data),
    summary: {
      surfaces: data.list.surfaces.length - errors.length,
      errors: [...errors, ...analysisErrors],
      analyses: data.list.analyses.length - analysisErrors.length,
    },
  };
}

/**
 * Writes the self-contained HTML report (atomically) to `out`.
 *
 * @example
 * const { surfaces } = await writeReport({ paths: ["runs/"], out: "report.html" });
 */
export async function writeReport(options: ReportOptions & { out: string }): Promise<ReportSummary> {
  const { html, summary } = await renderReport(options);
  writeFileAtomic(options.out, html);
  return summary;
}
