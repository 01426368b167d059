// losscape surface --directions hessian | hessian-min end to end: the direction file's metadata,
// the surface along the axes, resuming with them, and the options they refuse.

import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readDirectionFile } from "../../src/formats/direction-file.ts";
import { readSurface } from "../../src/formats/surface-file.ts";
import { runCli, tempDir } from "../helpers.ts";

const { dir, cleanup } = tempDir("losscape-hessian-axes-cli-");
afterAll(cleanup);

const COMMON = ["--model", "cnn", "--subset", "16", "--threads", "1", "--batch-size", "16"];

describe("losscape surface --directions hessian", () => {
  it("makes a plane along the top two Hessian eigenvectors, scaled to ||theta_filters||, and resumes with it", () => {
    const out = join(dir, "h.h5");
    const args = [
      ...COMMON,
      "--directions",
      "hessian-min",
      "--hessian-tol",
      "0.05",
      "--hessian-iterations",
      "30",
      "--x",
      "-0.1:0.1:2",
      "--y",
      "-0.1:0.1:2",
      "--out",
      out,
    ];
    const r = runCli("surface", ...args);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/Hessian axes \(hessian-min\): eigenvalues -?[\d.e+-]+, -?[\d.e+-]+; residuals/);
    expect(r.out).toMatch(/scaled to \|\|theta_filters\|\| = [\d.]+/);
    const d = readDirectionFile(join(dir, "h.directions.h5"));
    expect(d.meta.kind).toBe("hessian-min");
    expect(d.meta.normalization).toBe("eigenvector x ||theta_filters||");
    const [top, bottom] = JSON.parse(d.meta.eigenvalues!) as number[];
    expect(top!).toBeGreaterThan(bottom!);
    expect(JSON.parse(d.meta.residuals!)).toHaveLength(2);
    const s = readSurface(out);
    expect([...s.done]).toEqual([1, 1, 1, 1]);
    expect(s.meta.direction_kind).toBe("hessian-min");
    const again = runCli("surface", ...args);
    expect(again.code, again.err).toBe(0);
    expect(again.out).not.toMatch(/Hessian axes/);
    // Another kind on the same direction file is refused.
    expect(runCli("surface", ...args.map((a) => (a === "hessian-min" ? "hessian" : a))).err).toMatch(
      /was made with kind 'hessian-min', not 'hessian'/,
    );
  });

  it("refuses options that have no meaning for Hessian axes", () => {
    const out = join(dir, "bad.h5");
    const base = [...COMMON, "--directions", "hessian", "--x", "-1:1:2", "--out", out];
    const err = runCli("surface", ...base, "--keep-biasbn", "--norm", "layer").err;
    expect(err).toMatch(/--directions hessian does not take --keep-biasbn/);
    expect(err).toMatch(
      /--norm layer \(expected filter: scaled to \|\|theta_filters\|\|, or none: unit eigenvectors\)/,
    );
    expect(existsSync(out)).toBe(false);
  });
});
