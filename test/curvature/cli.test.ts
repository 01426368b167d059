// losscape hessian end to end: a single point (the same numbers as the library), a resumable
// grid written to a surface file, and the errors of bad option combinations.

import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { hessianExtremes } from "../../src/curvature/hessian.ts";
import { loadDataset } from "../../src/data/load.ts";
import { readSurface } from "../../src/formats/surface-file.ts";
import { zooModel } from "../../src/zoo/zoo.ts";
import { runCli, tempDir } from "../helpers.ts";

const { dir, cleanup } = tempDir("losscape-hessian-cli-");
afterAll(cleanup);

const cli = (...args: string[]) => runCli("hessian", ...args);

const COMMON = ["--model", "cnn", "--subset", "64", "--threads", "1", "--batch-size", "32"];

describe("losscape hessian", () => {
  it("prints lambda_max, lambda_min, the ratio, top-k and trace at the model; --json matches the library", async () => {
    const r = cli(...COMMON, "--tol", "1e-2", "--iterations", "30", "--top-k", "2", "--trace", "3");
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(
      /cnn: Hessian of the mean cross-entropy over .* \(64 samples\) w\.r\.t\. 4 filter tensors \(\d+ parameters\), eval mode/,
    );
    expect(r.out).toMatch(/lambda_max -?\d[\d.e+-]* \(within [\d.e+-]+\)/);
    expect(r.out).toMatch(/lambda_min -?\d[\d.e+-]* \(within [\d.e+-]+\)/);
    expect(r.out).toMatch(/\|lambda_min \/ lambda_max\| \d/);
    expect(r.out).toMatch(/top 2 Ritz values: /);
    expect(r.out).toMatch(/trace -?\d[\d.e+-]* \+- [\d.e+-]+ \(Hutchinson, 3 probes\)/);
    expect(r.out).toMatch(/Lanczos: \d+ products, tol 0\.01 of max \|lambda\|, converged/);

    const j = cli(...COMMON, "--tol", "1e-2", "--iterations", "30", "--json");
    expect(j.code, j.err).toBe(0);
    const got = JSON.parse(j.out.trim()) as { max: number; min: number; iterations: number };
    const data = loadDataset("fashion-mnist", "train", { subset: { count: 64 }, seed: 0 });
    const model = zooModel("cnn", { inputShape: data.shape, classes: 10 });
    const e = await hessianExtremes(model, model.initial, data, {
      tol: 1e-2,
      maxIterations: 30,
      batchSize: 32,
      threads: 1,
    });
    expect(got.iterations).toBe(e.iterations);
    expect(got.max).toBeCloseTo(e.max, 6);
    expect(got.min).toBeCloseTo(e.min, 6);
  });

  it("fills a resumable grid of max_eig/min_eig in a surface file", () => {
    const out = join(dir, "grid.h5");
    const args = [
      "--model",
      "cnn",
      "--subset",
      "16",
      "--threads",
      "1",
      "--iterations",
      "8",
      "--x",
      "-0.5:0.5:2",
      "--y",
      "0:1:2",
      "--out",
      out,
    ];
    const r = cli(...args);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/created direction file .*grid\.directions\.h5/);
    expect(r.out).toMatch(/computed 4 points in [\d.]+ s/);
    expect(r.out).toMatch(/draw it: losscape plot .*grid\.h5 --kind hessian/);
    expect(existsSync(join(dir, "grid.directions.h5"))).toBe(true);
    const s = readSurface(out);
    expect([...s.done]).toEqual([1, 1, 1, 1]);
    expect(s.values.max_eig!.every((v) => v > 0)).toBe(true);
    const again = cli(...args);
    expect(again.code, again.err).toBe(0);
    expect(again.out).toMatch(/using direction file/);
    expect(again.out).toMatch(/computed 0 points/);
  });

  it("names bad option combinations", () => {
    expect(cli(...COMMON, "--loss", "mse-onehot").err).toMatch(
      /the Hessian is of cross-entropy or mse \(regression\); --loss mse-onehot is not supported/,
    );
    expect(cli(...COMMON, "--x", "-1:1:3").err).toMatch(/a grid \(--x\) needs --out <file>/);
    expect(cli(...COMMON, "--out", join(dir, "a.h5")).err).toMatch(
      /--y, --out and --shard describe a grid; give --x too/,
    );
    expect(cli(...COMMON, "--x", "-1:1:3", "--out", join(dir, "b.h5"), "--trace").err).toMatch(
      /--trace, --top-k and --json apply to a single point/,
    );
    expect(cli(...COMMON, "--tol", "2").err).toMatch(/--tol expects a number in \(0, 1\), got 2/);
    expect(existsSync(join(dir, "b.h5"))).toBe(false);
  });
});
