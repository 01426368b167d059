/// <reference lib="dom" />
// The viewer end to end in a real browser: Debian's chromium, headless,
// driven by playwright-core, WebGL through SwiftShader. The page loads a
// surface, the 3D plot renders (pixels, not just a canvas), a click on the
// contour map shows the file's value, the comparison shows two surfaces on
// one colour scale, 1D surfaces draw as curves, a vanished file is reported
// in the page, and the report opens from file:// without a server.
// Screenshots go to test-artifacts/viewer/ (git-ignored).

import { copyFileSync, mkdirSync, readFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { readSurface } from "../../src/formats/surface-file.ts";
import { formatValue } from "../../src/viewer/app/field.ts";
import { ensureViewerBuild } from "../../src/viewer/build.ts";
import { writeReport } from "../../src/viewer/report.ts";
import { startViewer, type Viewer } from "../../src/viewer/server.ts";
import { systemTool } from "../_tools.ts";
import { tempDir } from "../helpers.ts";
import { writeAnalyses } from "./_analyses.ts";
import { writeViewerFolder } from "./_fixtures.ts";

const CHROMIUM = systemTool("chromium", "test/viewer/browser.test.ts (the viewer in a real browser)");
const ARTIFACTS = fileURLToPath(new URL("../../test-artifacts/viewer/", import.meta.url));
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--headless=new",
  "--use-angle=swiftshader",
  "--enable-unsafe-swiftshader",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];

const artifact = (name: string) => join(ARTIFACTS, name);

/** Number of renders the page has finished. */
async function renders(page: Page): Promise<number> {
  return Number((await page.evaluate(() => document.body.dataset["renders"])) ?? 0);
}

/** Waits until the page has finished a render after `before` renders. */
async function rendered(page: Page, before: number): Promise<void> {
  await page.waitForFunction(
    (n) => document.body.dataset["status"] === "ready" && Number(document.body.dataset["renders"] ?? 0) > n,
    before,
    { timeout: 30_000 },
  );
}

/** Decodes a PNG screenshot in the page and measures it: luminance spread and the share of coloured pixels. */
async function pixelStats(
  page: Page,
  png: Buffer,
): Promise<{ std: number; colourful: number; pixels: number }> {
  return page.evaluate(async (b64) => {
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const canvas = document.createElement("canvas");
    canvas.width = img.width;
    canvas.height = img.height;
    const ctx = canvas.getContext("2d", { willReadFrequently: true })!;
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, img.width, img.height).data;
    let sum = 0;
    let sum2 = 0;
    let colourful = 0;
    const n = d.length / 4;
    for (let k = 0; k < d.length; k += 4) {
      const r = d[k]!;
      const g = d[k + 1]!;
      const b = d[k + 2]!;
      const lum = 0.2126 * r + 0.7152 * g + 0.0722 * b;
      sum += lum;
      sum2 += lum * lum;
      if (Math.max(r, g, b) - Math.min(r, g, b) > 60) colourful++;
    }
    const mean = sum / n;
    return { std: Math.sqrt(Math.max(0, sum2 / n - mean * mean)), colourful: colourful / n, pixels: n };
  }, png.toString("base64"));
}

/** The page position of data point (x, y) on a 2D Plotly plot. */
async function plotPoint(page: Page, id: string, x: number, y: number): Promise<{ x: number; y: number }> {
  return page.evaluate(
    ([id, x, y]) => {
      type Axis = { _offset: number; d2p: (v: number) => number };
      const gd = document.getElementById(id as string) as unknown as {
        _fullLayout: { xaxis: Axis; yaxis: Axis };
        getBoundingClientRect(): DOMRect;
      };
      const box = gd.getBoundingClientRect();
      const xa = gd._fullLayout.xaxis;
      const ya = gd._fullLayout.yaxis;
      return {
        x: box.left + xa._offset + xa.d2p(x as number),
        y: box.top + ya._offset + ya.d2p(y as number),
      };
    },
    [id, x, y] as const,
  );
}

/** The colour range of the contour map's pick grid (the trace that draws the colour bar). */
async function colourRange(page: Page, id: string): Promise<[number, number]> {
  return page.evaluate((id) => {
    const gd = document.getElementById(id) as unknown as {
      _fullData: { marker: { cmin: number; cmax: number } }[];
    };
    const m = gd._fullData[1]!.marker;
    return [m.cmin, m.cmax] as [number, number];
  }, id);
}

// Outside CI a machine without Chromium skips these, saying so; with CI=true a missing browser fails.
describe.skipIf(CHROMIUM === undefined)(`viewer in a real browser (${CHROMIUM})`, () => {
  let dir: string;
  let data: string;
  let cleanup: () => void;
  let appDir: string;
  let viewer: Viewer;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    ({ dir, cleanup } = tempDir("losscape-browser-"));
    data = join(dir, "runs");
    writeViewerFolder(data);
    await writeAnalyses(data);
    copyFileSync(join(data, "paraboloid.h5"), join(data, "vanishing.h5"));
    appDir = await ensureViewerBuild();
    viewer = await startViewer({ paths: [data], appDir });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    page.on("pageerror", (e) => pageErrors.push(e.message));
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await viewer?.close();
    cleanup?.();
  });

  test("the page lists the surfaces and draws the opened one in 3D with WebGL", async () => {
    await page.goto(viewer.url);
    await rendered(page, 0);
    await expect.poll(() => page.locator("#surface-list li").count()).toBeGreaterThanOrEqual(6);
    await expect(page.locator("#surface-list li.error").first().textContent()).resolves.toMatch(
      /broken\.h5.*not an HDF5 file/s,
    );
    // The main loss surface opens first (a plain 2D train-loss surface), not the one with the Hessian and path.
    await expect(page.locator("h2.surface-title").textContent()).resolves.toMatch(/^steep\.h5/);
    const before = await renders(page);
    await page.getByRole("button", { name: "paraboloid.h5" }).click();
    await rendered(page, before);
    await expect(page.locator("h2.surface-title").textContent()).resolves.toMatch(/^paraboloid\.h5/);
    expect(await page.locator("#plot-3d canvas").count()).toBeGreaterThan(0);
    const shot = await page.locator("#plot-3d").screenshot({ path: artifact("surface-3d.png") });
    const stats = await pixelStats(page, shot);
    // A drawn surface: varied luminance and a good share of colour-map pixels (axes alone are grey).
    expect(stats.std).toBeGreaterThan(10);
    expect(stats.colourful).toBeGreaterThan(0.03);
    await page.screenshot({ path: artifact("surface.png"), fullPage: true });
    expect(pageErrors).toEqual([]);
  });

  test("clicking a point on the contour map shows that point's loss and accuracy from the file", async () => {
    const want = readSurface(join(data, "paraboloid.h5"));
    const [i, j, ny] = [10, 3, want.y!.length];
    const x = want.x[i]!;
    const y = want.y![j]!;
    const before = await renders(page);
    const at = await plotPoint(page, "plot-contour", x, y);
    await page.mouse.move(at.x, at.y);
    await page.mouse.click(at.x, at.y);
    await rendered(page, before);
    const cell = (q: string) => page.locator(`#details td[data-quantity="${q}"]`);
    expect(Number(await cell("x").getAttribute("data-value"))).toBe(x);
    expect(Number(await cell("y").getAttribute("data-value"))).toBe(y);
    for (const q of ["train_loss", "train_acc", "test_loss", "test_acc"] as const) {
      const value = want.values[q]![i * ny + j]!;
      expect(Number(await cell(q).getAttribute("data-value"))).toBe(value);
      expect(await cell(q).textContent()).toBe(formatValue(value));
    }
    // The slices go through the clicked point.
    await expect(page.locator("#plot-slice-x .xtitle").textContent()).resolves.toContain(
      `β = ${formatValue(y)}`,
    );
    await page.screenshot({ path: artifact("contour-click.png"), fullPage: true });
  });

  test("the comparison shows two surfaces side by side on one colour scale", async () => {
    let before = await renders(page);
    await page.locator('input[aria-label="compare paraboloid.h5"]').check();
    await rendered(page, before);
    before = await renders(page);
    await page.locator('input[aria-label="compare steep.h5"]').check();
    await rendered(page, before);
    expect(await page.locator(".compare-grid > figure").count()).toBe(2);
    await expect(page.locator(".compare-grid h3").allTextContents()).resolves.toEqual([
      "paraboloid.h5",
      "steep.h5",
    ]);
    expect(await page.locator("#compare-3d-0 canvas").count()).toBeGreaterThan(0);
    expect(await page.locator("#compare-3d-1 canvas").count()).toBeGreaterThan(0);
    const [a, b] = [
      await colourRange(page, "compare-contour-0"),
      await colourRange(page, "compare-contour-1"),
    ];
    expect(a).toEqual(b);
    // The steep surface reaches 0.1 + 3 * 3 = 9.1; the shared scale covers it for both.
    expect(a[1]).toBeGreaterThan(9);
    const shot = await page.locator("#compare-3d-1").screenshot();
    expect((await pixelStats(page, shot)).colourful).toBeGreaterThan(0.03);
    await page.screenshot({ path: artifact("compare.png"), fullPage: true });
  });

  test("a 1D surface is drawn as loss and accuracy curves", async () => {
    const before = await renders(page);
    await page.getByRole("button", { name: "interp.h5" }).click();
    await rendered(page, before);
    const traces = await page.evaluate(() =>
      (document.getElementById("plot-line") as unknown as { _fullData: { name: string }[] })._fullData.map(
        (t) => t.name,
      ),
    );
    expect(traces).toEqual(["train loss", "test loss", "train accuracy", "test accuracy"]);
    await page.screenshot({ path: artifact("interpolation.png"), fullPage: true });
  });

  test("a file that vanished shows its reason in the page, and the viewer goes on", async () => {
    unlinkSync(join(data, "vanishing.h5"));
    let before = await renders(page);
    await page.getByRole("button", { name: "vanishing.h5" }).click();
    await rendered(page, before);
    await expect(page.locator("#view .error-panel").textContent()).resolves.toMatch(
      /vanishing\.h5' no longer exists/,
    );
    // The list is rescanned: the file is no longer offered.
    await expect.poll(() => page.getByRole("button", { name: "vanishing.h5" }).count()).toBe(0);
    await page.screenshot({ path: artifact("missing-file.png"), fullPage: true });
    before = await renders(page);
    await page.getByRole("button", { name: "paraboloid.h5" }).click();
    await rendered(page, before);
    expect(await page.locator("#message").isVisible()).toBe(false);
    expect(await page.locator("#plot-3d canvas").count()).toBeGreaterThan(0);
  });

  test("log scale and the clip slider change what the colour bar covers", async () => {
    const linear = await colourRange(page, "plot-contour");
    let before = await renders(page);
    await page.locator("#log-z").check();
    await rendered(page, before);
    const log = await colourRange(page, "plot-contour");
    expect(log[1]).toBeCloseTo(Math.log10(linear[1]), 6);
    before = await renders(page);
    await page.locator("#clip").fill("500");
    await rendered(page, before);
    const clipped = await colourRange(page, "plot-contour");
    expect(clipped[1]).toBeLessThan(log[1]);
    expect(await page.locator("#clip-value").textContent()).not.toBe("no clip");
    await page.screenshot({ path: artifact("log-clip.png"), fullPage: true });
    expect(pageErrors).toEqual([]);
  });

  test("the analyses open in their panels: connectivity curves and barriers, the spectrum on a log axis, the sharpness table", async () => {
    const traceNames = (id: string) =>
      page.evaluate(
        (id) =>
          (document.getElementById(id) as unknown as { _fullData: { name: string }[] })._fullData.map(
            (t) => t.name,
          ),
        id,
      );
    let before = await renders(page);
    await page.getByRole("button", { name: "connect/connect.json" }).click();
    await rendered(page, before);
    expect(await traceNames("plot-connect-loss")).toEqual([
      "bezier curve, train",
      "straight line, train",
      "bezier curve, test",
      "straight line, test",
    ]);
    const barrier = page.locator('#barriers td[data-path="curve"][data-quantity="train loss"]');
    expect(Number(await barrier.getAttribute("data-value"))).toBeCloseTo(1.5, 6);
    await page.screenshot({ path: artifact("connect.png"), fullPage: true });
    before = await renders(page);
    await page.locator("#open-plane").click();
    await rendered(page, before);
    await expect(page.locator("h2.surface-title").textContent()).resolves.toMatch(/^connect\/plane\.h5/);
    before = await renders(page);
    await page.getByRole("button", { name: "spectrum.json" }).click();
    await rendered(page, before);
    const axis = await page.evaluate(
      () =>
        (document.getElementById("plot-spectrum") as unknown as { _fullLayout: { yaxis: { type: string } } })
          ._fullLayout.yaxis.type,
    );
    expect(axis).toBe("log");
    await expect(page.locator("#spectrum-about").textContent()).resolves.toMatch(
      /^3 rademacher probes × 4 Lanczos steps = 12 Hessian-vector products · density broadened with σ 0\.1/,
    );
    await page.screenshot({ path: artifact("spectrum.png"), fullPage: true });
    before = await renders(page);
    await page.getByRole("button", { name: "sharpness.json" }).click();
    await rendered(page, before);
    expect(await page.locator("#sharpness-table tbody tr").count()).toBe(2);
    await expect(page.locator("#sharpness-table thead").textContent()).resolves.toContain(
      "worst case ℓ2 (ρ 0.5)",
    );
    await page.screenshot({ path: artifact("sharpness.png"), fullPage: true });
    expect(pageErrors).toEqual([]);
  });

  test("the report is one file that renders from file:// without any request", async () => {
    const out = join(dir, "report.html");
    const summary = await writeReport({ paths: [data], out, title: "Paraboloid report", appDir });
    expect(summary.surfaces).toBeGreaterThanOrEqual(5);
    expect(summary.analyses).toBe(3);
    expect(summary.errors).toEqual([expect.stringMatching(/broken\.h5.*not an HDF5 file/)]);
    const html = readFileSync(out, "utf8");
    expect(html).not.toMatch(/\b(src|href)="\.?\/?assets\//);
    expect(html).toContain('<script type="application/json" id="losscape-report-data">');
    const report = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const requests: string[] = [];
    report.on("request", (r) => requests.push(r.url()));
    const errors: string[] = [];
    report.on("pageerror", (e) => errors.push(e.message));
    await report.goto(pathToFileURL(out).href);
    await rendered(report, 0);
    expect(await report.locator("#page-title").textContent()).toBe("Paraboloid report");
    expect(await report.title()).toMatch(/Paraboloid report/);
    const shot = await report.locator("#plot-3d").screenshot();
    expect((await pixelStats(report, shot)).colourful).toBeGreaterThan(0.03);
    // The values come from the embedded data: the report opens the main loss surface (steep.h5,
    // 21 x 21), and the default point is its centre (10, 10).
    await expect(report.locator("h2.surface-title").textContent()).resolves.toMatch(/^steep\.h5/);
    const want = readSurface(join(data, "steep.h5"));
    const train = report.locator('#details td[data-quantity="train_loss"]');
    expect(Number(await train.getAttribute("data-value"))).toBe(want.values.train_loss![10 * 21 + 10]);
    await report.screenshot({ path: artifact("report.png"), fullPage: true });
    // The analyses are embedded too.
    const shown = await renders(report);
    await report.getByRole("button", { name: "sharpness.json" }).click();
    await rendered(report, shown);
    expect(await report.locator("#sharpness-table tbody tr").count()).toBe(2);
    expect(requests.filter((u) => !u.startsWith("file:") && !u.startsWith("data:"))).toEqual([]);
    expect(errors).toEqual([]);
    await report.close();
  });
});
