// The viewer's analyses (connect, spectrum, sharpness): reading the files the
// library writes, refusing damaged ones by field and leaving foreign JSON out,
// the catalog's listing and the link from a connectivity run to its plane
// surface, the API route, the report's data, and the panels' figures and tables.

import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { writeSurface } from "../../src/formats/surface-file.ts";
import { parseAnalysis } from "../../src/viewer/analysis.ts";
import type {
  AnalysisJson,
  ConnectAnalysisJson,
  SharpnessAnalysisJson,
  SpectrumAnalysisJson,
  SurfaceList,
} from "../../src/viewer/api.ts";
import {
  barrierRows,
  connectDescription,
  connectFigure,
  sharpnessCells,
  sharpnessDescription,
  sharpnessHeader,
  spectrumDensityFigure,
  spectrumDescription,
} from "../../src/viewer/app/analyses.ts";
import { firstViewRank, mainSurface } from "../../src/viewer/app/choose.ts";
import { SurfaceCatalog } from "../../src/viewer/catalog.ts";
import { collectReportData } from "../../src/viewer/report.ts";
import { startViewer } from "../../src/viewer/server.ts";
import { tempDir } from "../helpers.ts";
import { EIGENVALUES, SHARPNESS_ROWS, SPECTRUM, writeAnalyses } from "./_analyses.ts";
import { paraboloid } from "./_fixtures.ts";

const { dir, cleanup } = tempDir("losscape-viewer-analyses-");
afterAll(cleanup);
const data = join(dir, "runs");

beforeAll(async () => {
  mkdirSync(join(data, "logs"), { recursive: true });
  await writeAnalyses(data);
  writeSurface(join(data, "surface.h5"), paraboloid({ dirFile: "none.h5" }));
  // Foreign JSON (left out), a damaged connect file and a spectrum with a wrong field (listed in red).
  writeFileSync(join(data, "logs", "log.json"), JSON.stringify({ epochs: [{ loss: 1 }] }));
  writeFileSync(join(data, "package.json"), "[1, 2, 3]");
  writeFileSync(join(data, "connect-broken.json"), '{ "t": [0, 0.5');
  const spectrum = JSON.parse(readFileSync(join(data, "spectrum.json"), "utf8"));
  spectrum.density = spectrum.density.slice(1);
  writeFileSync(join(data, "short-spectrum.json"), JSON.stringify(spectrum));
});

function byName(list: SurfaceList, name: string) {
  const e = list.analyses.find((a) => a.name === name);
  if (e === undefined) throw new Error(`'${name}' not listed`);
  return e;
}

function open<T extends AnalysisJson>(catalog: SurfaceCatalog, name: string): T {
  const answer = catalog.analysis(byName(catalog.list(), name).id);
  if (!answer.ok) throw new Error(answer.error.error);
  return answer.analysis as T;
}

describe("reading analysis files", () => {
  test("text that is not JSON, foreign JSON, a wrong field and a file named like an analysis are told apart", () => {
    expect(parseAnalysis("{ nope", "a/connect.json")).toEqual({
      kind: "error",
      error: expect.stringMatching(/^file 'a\/connect\.json' is not valid JSON \(/),
    });
    expect(parseAnalysis("", "x.json")).toEqual({ kind: "error", error: "file 'x.json' is empty" });
    expect(parseAnalysis('{"epochs": []}', "log.json")).toEqual({
      kind: "foreign",
      reason: "JSON, not a connect, spectrum or sharpness analysis",
    });
    expect(parseAnalysis('{"epochs": []}', "run/sharpness.json")).toEqual({
      kind: "error",
      error:
        "file 'run/sharpness.json' is named like a sharpness file but does not hold one (expected 'settings' and 'rows')",
    });
    const connect = readFileSync(join(data, "connect", "connect.json"), "utf8");
    const bad = JSON.parse(connect);
    bad.line.train_loss[3] = "high";
    expect(parseAnalysis(JSON.stringify(bad), "c.json")).toEqual({
      kind: "error",
      error:
        "file 'c.json': 'line.train_loss[3]' must be a finite number, got 'high' (read as a connect file)",
    });
    bad.line.train_loss = [1, 2];
    expect(parseAnalysis(JSON.stringify(bad), "c.json")).toMatchObject({
      error: expect.stringContaining("'line.train_loss' must be an array of 21, got an array of 2"),
    });
    const sharp = JSON.parse(readFileSync(join(data, "sharpness.json"), "utf8"));
    delete sharp.settings.rhoL2;
    expect(parseAnalysis(JSON.stringify(sharp), "s.json")).toMatchObject({
      error:
        "file 's.json': 'settings.rhoL2' must be a finite number, got undefined (read as a sharpness file)",
    });
  });

  test("a connect run: the library's values along both paths, and its barriers (none on the line, 1.5 at t = 1/2 on the curve)", () => {
    const r = parseAnalysis(readFileSync(join(data, "connect", "connect.json"), "utf8"), "connect.json");
    if (r.kind !== "analysis" || r.value.analysis !== "connect") throw new Error(JSON.stringify(r));
    const a = r.value;
    expect(a.kind).toBe("bezier");
    expect(a.t).toHaveLength(21);
    // L = |w|^2 / 2 on the curve x = 2t - 1, y = 8 t (1 - t): at t = 1/2, (0, 2) -> 2.
    expect(a.curve.train_loss[10]).toBeCloseTo(2, 6);
    expect(a.line.train_loss[10]).toBeCloseTo(0, 12);
    expect(a.curve.test_loss).toEqual(a.curve.train_loss);
    expect(a.barriers.curve["train_loss"]!.height).toBeCloseTo(1.5, 6);
    expect(a.barriers.curve["train_loss"]!.at).toBe(0.5);
    expect(a.bn).toBe("interpolate");
    expect(a.trainingLosses).toEqual([3, 2.5, 2.1, 2]);
    expect(a.settings).toMatchObject({
      model: "quadratic",
      steps: "40",
      lr: "0.05",
      "bn_settings.bn": "interpolate",
    });
    expect(a.settings).not.toHaveProperty("identity.points");
  });
});

describe("the catalog lists analyses beside the surfaces", () => {
  test("readable analyses with a summary, damaged ones with the reason, foreign JSON under other files", () => {
    const list = new SurfaceCatalog([data]).list();
    expect(list.analyses.map((a) => [a.name, a.status])).toEqual([
      ["connect-broken.json", "error"],
      ["connect/connect.json", "ok"],
      ["sharpness.json", "ok"],
      ["short-spectrum.json", "error"],
      ["spectrum.json", "ok"],
    ]);
    expect(byName(list, "connect/connect.json")).toMatchObject({
      analysis: "connect",
      summary: "bezier curve, 21 points: train-loss barrier 1.5 (line 0)",
    });
    // The nodes are the eigenvalues 0 .. 9, the 0 as float32 products give it (|node| < 1e-6).
    const spectrum = byName(list, "spectrum.json");
    expect(spectrum).toMatchObject({ analysis: "spectrum" });
    const m = /^SLQ, 3 probes x 4 steps, nodes (\S+) \.\. 9$/.exec(
      spectrum.status === "ok" ? spectrum.summary : "",
    );
    expect(m, JSON.stringify(spectrum)).not.toBeNull();
    expect(Math.abs(Number(m![1]))).toBeLessThan(1e-6);
    expect(byName(list, "sharpness.json")).toMatchObject({ summary: "2 models: bs128, bs8192" });
    expect(byName(list, "connect-broken.json")).toMatchObject({
      error: expect.stringMatching(/^file 'connect-broken\.json' is not valid JSON/),
    });
    expect(byName(list, "short-spectrum.json")).toMatchObject({
      error:
        "file 'short-spectrum.json': 'density' must be an array of 400, got an array of 399 (read as a spectrum file)",
    });
    expect(list.skipped).toEqual(
      expect.arrayContaining([
        { name: "logs/log.json", reason: "JSON, not a connect, spectrum or sharpness analysis" },
        { name: "package.json", reason: "JSON, not a connect, spectrum or sharpness analysis" },
      ]),
    );
    // The plane of the curve is an ordinary surface, but the main loss surface opens first.
    const ok = list.surfaces.filter((s) => s.status === "ok");
    expect(ok.map((s) => s.name)).toEqual(["connect/plane.h5", "surface.h5"]);
    expect(firstViewRank(ok[0]!)).toBe(3);
    expect(mainSurface(ok)).toBe(ok[1]!.id);
    expect(mainSurface(ok.slice(0, 1))).toBe(ok[0]!.id);
  });

  test("a connect run links the plane surface beside it; lookups of the wrong kind, unknown or deleted files fail by status", () => {
    const catalog = new SurfaceCatalog([data]);
    const a = open<ConnectAnalysisJson>(catalog, "connect/connect.json");
    const plane = catalog.list().surfaces.find((s) => s.name === "connect/plane.h5")!;
    expect(a.plane).toEqual({ id: plane.id, name: "connect/plane.h5" });
    expect(a.name).toBe("connect/connect.json");
    expect(catalog.analysis(plane.id)).toMatchObject({ ok: false, status: 422 });
    expect(catalog.surface(a.id)).toMatchObject({
      ok: false,
      status: 422,
      error: { error: "'connect/connect.json' is a JSON file" },
    });
    expect(catalog.analysis("f0000")).toMatchObject({ ok: false, status: 404 });
    const broken = byName(catalog.list(), "connect-broken.json");
    expect(catalog.analysis(broken.id)).toMatchObject({ ok: false, status: 422 });
    // Given as a file, without its folder, the run has no plane to link.
    const alone = new SurfaceCatalog([join(data, "connect", "connect.json")]);
    expect(open<ConnectAnalysisJson>(alone, "connect.json").plane).toBeNull();
    const gone = join(dir, "gone");
    mkdirSync(gone);
    writeFileSync(join(gone, "sharpness.json"), readFileSync(join(data, "sharpness.json")));
    const c = new SurfaceCatalog([gone]);
    const id = c.list().analyses[0]!.id;
    unlinkSync(join(gone, "sharpness.json"));
    expect(c.analysis(id)).toMatchObject({ ok: false, status: 404 });
  });

  test("the API serves an analysis by id and refuses paths; a report embeds every readable analysis", async () => {
    const app = join(dir, "app");
    mkdirSync(app, { recursive: true });
    writeFileSync(join(app, "index.html"), "<!doctype html><title>stand-in</title>");
    const viewer = await startViewer({ paths: [data], appDir: app });
    try {
      const get = (path: string) =>
        new Promise<{ status: number; body: string }>((done, fail) => {
          const url = new URL(viewer.url);
          const req = request({ host: url.hostname, port: url.port, path }, (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () =>
              done({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
            );
          });
          req.on("error", fail);
          req.end();
        });
      const list = JSON.parse((await get("/api/surfaces")).body) as SurfaceList;
      const id = byName(list, "spectrum.json").id;
      const r = await get(`/api/analysis?id=${id}`);
      expect(r.status).toBe(200);
      expect((JSON.parse(r.body) as SpectrumAnalysisJson).probes).toBe(3);
      expect((await get("/api/analysis")).status).toBe(400);
      expect((await get("/api/analysis?id=../spectrum.json")).status).toBe(403);
      expect((await get("/api/analysis?id=f0123")).status).toBe(404);
      const broken = await get(`/api/analysis?id=${byName(list, "short-spectrum.json").id}`);
      expect(broken.status).toBe(422);
      expect(JSON.parse(broken.body)).toMatchObject({ file: "short-spectrum.json" });
    } finally {
      await viewer.close();
    }
    const report = collectReportData([data], "r");
    expect(Object.keys(report.analyses).sort()).toEqual(
      report.list.analyses
        .filter((a) => a.status === "ok")
        .map((a) => a.id)
        .sort(),
    );
  });
});

describe("the analysis panels", () => {
  test("connectivity: loss and accuracy along both paths, train and test, as the file holds them; barriers by quantity", () => {
    const a = open<ConnectAnalysisJson>(new SurfaceCatalog([data]), "connect/connect.json");
    const loss = connectFigure(a, "loss");
    expect(loss.data.map((t) => t["name"])).toEqual([
      "bezier curve, train",
      "straight line, train",
      "bezier curve, test",
      "straight line, test",
    ]);
    expect(loss.data[0]!["x"]).toEqual(a.t);
    expect(loss.data[0]!["y"]).toEqual(a.curve.train_loss);
    expect(loss.data[1]!["y"]).toEqual(a.line.train_loss);
    expect((loss.data[1]!["line"] as { dash: string }).dash).toBe("dash");
    const acc = connectFigure(a, "accuracy");
    expect(acc.data[2]!["y"]).toEqual(a.curve.test_acc);
    // accuracy = 100 / (1 + L): at t = 1/2 on the curve L = 2.
    expect((acc.data[0]!["y"] as number[])[10]).toBeCloseTo(100 / 3, 4);
    const rows = barrierRows(a);
    expect(rows.map((r) => r.quantity)).toEqual([
      "train loss",
      "test loss",
      "train error (%)",
      "test error (%)",
    ]);
    expect(rows[0]!.curve!.height).toBeCloseTo(1.5, 6);
    expect(rows[0]!.line!.height).toBeCloseTo(0, 12);
    expect(connectDescription(a)).toBe(
      "bezier curve · 21 points of t per path · batch norm interpolate · model quadratic · 40 training steps · lr 0.05 · batch 16 · seed 0",
    );
  });

  test("spectrum: log-density against eigenvalue from 1e-8 of the peak, the nodes at the eigenvalues, probes, steps and sigma stated", () => {
    const a = open<SpectrumAnalysisJson>(new SurfaceCatalog([data]), "spectrum.json");
    expect(a.sigma).toBe(SPECTRUM.sigma);
    const fig = spectrumDensityFigure(a);
    const y = fig.data[0]!["y"] as number[];
    expect(fig.data[0]!["x"]).toEqual(a.grid);
    const peak = Math.max(...(a.density as number[]));
    const yaxis = fig.layout["yaxis"] as { type: string; range: [number, number] };
    expect(yaxis.type).toBe("log");
    expect(yaxis.range[0]).toBe(Math.floor(Math.log10(peak * 1e-8)));
    expect(Math.min(...y)).toBeCloseTo(10 ** yaxis.range[0], 20);
    // Half the eigenvalues are 0: the density peaks there; every probe's nodes are the 4 distinct eigenvalues.
    expect(Math.abs(a.grid[y.indexOf(Math.max(...y))]!)).toBeLessThan(0.01);
    const nodes = fig.data[1]!["x"] as number[];
    expect(nodes).toHaveLength(SPECTRUM.probes * SPECTRUM.steps);
    for (const v of nodes)
      expect(Math.min(...[...new Set(EIGENVALUES)].map((e) => Math.abs(e - v)))).toBeLessThan(1e-4);
    const about = spectrumDescription(a);
    const m =
      /^3 rademacher probes × 4 Lanczos steps = 12 Hessian-vector products · density broadened with σ 0\.1 · nodes (\S+) \.\. 9 · trace (\S+) ± \S+ \(Hutchinson, 3 probes\) · model diagonal · seed 1$/.exec(
        about,
      );
    expect(m, about).not.toBeNull();
    expect(Math.abs(Number(m![1]))).toBeLessThan(1e-6);
    // Rademacher probes give z^T H z = tr(H) = 11 for a diagonal H.
    expect(Number(m![2])).toBeCloseTo(11, 4);
  });

  test("sharpness: one row per model with the radii in the header; NaN where the file has null", () => {
    const a = open<SharpnessAnalysisJson>(new SurfaceCatalog([data]), "sharpness.json");
    expect(sharpnessHeader(a)).toEqual([
      "model",
      "loss",
      "acc %",
      "ε-sharpness % (ε 0.001)",
      "average case (ρ 0.05)",
      "worst case ℓ2 (ρ 0.5)",
      "worst case ℓ∞ (ρ 0.001)",
      "λmax",
      "trace",
    ]);
    expect(a.rows.map(sharpnessCells)).toEqual([
      ["bs128", "0.3125", "90.00", "1.25", "0.0132 ± 0.0011", "0.21", "0.034", "12.5", "310 ± 12"],
      ["bs8192", "0.41", "NaN", "7.5", "0.088 ± 0.004", "1.9", "0.31", "96 (not converged)", "—"],
    ]);
    expect(a.rows[0]!.worstL2.sharpness).toBe(SHARPNESS_ROWS[0]!.worstL2.sharpness);
    expect(sharpnessDescription(a)).toBe(
      "model cnn · perturbs filters (1234 values) · radii ε 0.001, ρ average 0.05, ρ ℓ2 0.5, ρ ℓ∞ 0.001 · 20 ascent steps (ε-sharpness, worst case) · 16 Gaussian draws at ±d (average case) · λmax: Lanczos, at most 50 products, tolerance 0.001 · trace: hutchinson, 20 products · fashion-mnist train (500 samples), eval mode · seed 0",
    );
  });
});
