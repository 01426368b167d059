// losscape spectrum and losscape hessian --trace-method hutch++ end to end: the files they
// write, the same numbers as the library, and bad options.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { hessianSpectrum, spectrumMoments } from "../../src/curvature/spectrum.ts";
import { loadDataset } from "../../src/data/load.ts";
import { zooModel } from "../../src/zoo/zoo.ts";
import { runCli, tempDir } from "../helpers.ts";

const { dir, cleanup } = tempDir("losscape-spectrum-cli-");
afterAll(cleanup);

const COMMON = ["--model", "cnn", "--subset", "16", "--threads", "1", "--batch-size", "16"];

describe("losscape spectrum", () => {
  it("writes the nodes and weights (JSON, CSV) and the figure; the moments are the library's", async () => {
    const out = join(dir, "s.json");
    const csv = join(dir, "s.csv");
    const fig = join(dir, "s.svg");
    const r = runCli(
      "spectrum",
      ...COMMON,
      "--probes",
      "2",
      "--steps",
      "5",
      "--out",
      out,
      "--csv",
      csv,
      "--figure",
      fig,
    );
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/cnn: Hessian spectrum of the mean cross-entropy over .* \(16 samples\)/);
    expect(r.out).toMatch(
      /SLQ: 2 rademacher probes x 5 Lanczos steps = 10 products, density broadened with sigma/,
    );
    expect(r.out).toMatch(/trace -?[\d.e+-]+ \+- [\d.e+-]+ \(Hutchinson on the same 2 probes\)/);
    const j = JSON.parse(readFileSync(out, "utf8")) as {
      nodes: number[][];
      weights: number[][];
      moments: number[];
      grid: number[];
      density: number[];
      products: number;
    };
    expect(j.nodes).toHaveLength(2);
    expect(j.nodes[0]).toHaveLength(5);
    expect(j.grid).toHaveLength(1000);
    expect(j.products).toBe(10);
    const rows = readFileSync(csv, "utf8").trim().split("\n");
    expect(rows[0]).toBe("probe,node,weight");
    expect(rows).toHaveLength(11);
    expect(readFileSync(fig, "utf8")).toMatch(/^<svg/);
    const data = loadDataset("fashion-mnist", "train", { subset: { count: 16 }, seed: 0 });
    const model = zooModel("cnn", { inputShape: data.shape, classes: 10 });
    const s = await hessianSpectrum(model, model.initial, data, {
      probes: 2,
      steps: 5,
      threads: 1,
      batchSize: 16,
    });
    const want = spectrumMoments(s, 4);
    for (let k = 0; k <= 4; k++) expect(j.moments[k]!).toBeCloseTo(want[k]!, 8);
  });

  it("names bad options and writes nothing", () => {
    const out = join(dir, "bad.json");
    expect(runCli("spectrum", ...COMMON, "--out", join(dir, "x.txt")).err).toMatch(
      /--out '.*x\.txt' must end in \.json/,
    );
    expect(runCli("spectrum", ...COMMON, "--out", out, "--distribution", "cauchy").err).toMatch(
      /--distribution/,
    );
    expect(existsSync(out)).toBe(false);
  });
});

describe("losscape hessian --trace-method hutch++", () => {
  it("prints the Hutch++ trace with its product count", () => {
    const r = runCli(
      "hessian",
      ...COMMON,
      "--iterations",
      "4",
      "--tol",
      "0.5",
      "--trace",
      "6",
      "--trace-method",
      "hutch++",
    );
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/trace -?[\d.e+-]+ \+- [\d.e+-]+ \(Hutch\+\+, 6 products\)/);
  });
});
