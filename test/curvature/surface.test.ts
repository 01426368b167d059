// Hessian eigenvalue grids: values equal to the pointwise computation, resume
// after a crash without recomputing, refusal of other inputs with nothing lost,
// eigenvalues added to an existing loss surface, shards that merge, and the
// figure of the paper's ratio map.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { randomDirection } from "../../src/core/directions.ts";
import { axisValues, type Grid, pointCoords } from "../../src/core/grid.ts";
import { Random } from "../../src/core/random.ts";
import { combine } from "../../src/core/vector.ts";
import { hessianExtremes } from "../../src/curvature/hessian.ts";
import { hessianSurface } from "../../src/curvature/surface.ts";
import type { Dataset } from "../../src/data/dataset.ts";
import { createOrtEngine } from "../../src/engine/ort.ts";
import { readSurface } from "../../src/formats/surface-file.ts";
import { computeSurface, mergeSurfaces } from "../../src/landscape/surface.ts";
import { plotSurfaces } from "../../src/plot/plot.ts";
import { zooModel } from "../../src/zoo/zoo.ts";
import { expectAllClose, tempDir } from "../helpers.ts";

const { dir, cleanup } = tempDir("losscape-hessian-surface-");
afterAll(cleanup);

// A small MLP (one hidden ReLU layer) on 12 seeded samples: a Hessian with both signs.
const model = zooModel("mlp", { hidden: [6], inputShape: [1, 2, 2], classes: 3, seed: 2 });
const rng = new Random(5);
const data: Dataset = {
  name: "toy",
  shape: [1, 2, 2],
  inputs: Float32Array.from({ length: 12 * 4 }, () => rng.normal()),
  labels: Uint8Array.from({ length: 12 }, (_, i) => i % 3),
  classes: 3,
};
const theta = model.initial.map((v) => 2 * v);
const d1 = randomDirection(theta, model.params, { seed: 1 });
const d2 = randomDirection(theta, model.params, { seed: 2 });
const grid: Grid = {
  x: axisValues({ min: -0.5, max: 0.5, num: 3 }),
  y: axisValues({ min: 0, max: 1, num: 2 }),
};
const hessian = { tol: 1e-6, maxIterations: 40, seed: 0 };
const job = (path: string) => ({
  model,
  theta,
  directions: [d1, d2],
  grid,
  data,
  path,
  dirFile: "dirs.h5",
  hessian,
  threads: 1,
  batchSize: 5,
});

/** The eigenvalues at every grid point, computed one by one. */
async function pointwise(): Promise<{ max: number[]; min: number[] }> {
  const max: number[] = [];
  const min: number[] = [];
  const params = new Float32Array(theta.length);
  for (let k = 0; k < 6; k++) {
    combine(theta, [d1, d2], pointCoords(grid, k), params);
    const e = await hessianExtremes(model, params, data, { ...hessian, threads: 1 });
    max.push(e.max);
    min.push(e.min);
  }
  return { max, min };
}

/** The loss surface of the test plane in `path` (one shard of it with `shard`). */
async function lossSurface(path: string, shard?: { index: number; count: number }): Promise<void> {
  const engine = await createOrtEngine(model, { threads: 1 });
  try {
    await computeSurface({
      engine,
      theta,
      directions: [d1, d2],
      grid,
      train: data,
      path,
      dirFile: "dirs.h5",
      ...(shard ? { shard } : {}),
    });
  } finally {
    await engine.dispose();
  }
}

describe("hessianSurface", () => {
  let expected: { max: number[]; min: number[] };

  it("fills max_eig and min_eig with the eigenvalues at each point", async () => {
    expected = await pointwise();
    expect(Math.min(...expected.min)).toBeLessThan(0);
    const path = join(dir, "full.h5");
    const r = await hessianSurface(job(path));
    expect(r.computed).toBe(6);
    expect(r.unconverged).toBe(0);
    const s = readSurface(path);
    expect(Object.keys(s.values).sort()).toEqual(["max_eig", "min_eig"]);
    expect([...s.done]).toEqual([1, 1, 1, 1, 1, 1]);
    expectAllClose(s.values.max_eig!, expected.max, { rtol: 1e-5, atol: 1e-7 });
    expectAllClose(s.values.min_eig!, expected.min, { rtol: 1e-5, atol: 1e-7 });
    expect(s.meta["hessian_tol"]).toBe("0.000001");
    expect(s.dirFile).toBe("dirs.h5");
    // The paper's map draws from it.
    const svg = plotSurfaces([s], { kind: "hessian", names: [path] });
    expect(svg).toContain("<svg");
  });

  it("resumes after a crash, computing only the missing points", async () => {
    const path = join(dir, "crash.h5");
    await expect(
      hessianSurface({
        ...job(path),
        flushSeconds: 0,
        onProgress: (done) => {
          if (done === 2) throw new Error("simulated crash");
        },
      }),
    ).rejects.toThrow(/simulated crash/);
    expect(readSurface(path).done.reduce((a, b) => a + b, 0)).toBe(2);
    const r = await hessianSurface(job(path));
    expect(r.computed).toBe(4);
    const s = readSurface(path);
    expectAllClose(s.values.max_eig!, expected.max, { rtol: 1e-5, atol: 1e-7 });
    expectAllClose(s.values.min_eig!, expected.min, { rtol: 1e-5, atol: 1e-7 });
    // Nothing left to do.
    expect((await hessianSurface(job(path))).computed).toBe(0);
  });

  it("refuses to resume with other settings or directions, leaving the file untouched", async () => {
    const path = join(dir, "full.h5");
    const before = readFileSync(path);
    await expect(hessianSurface({ ...job(path), hessian: { ...hessian, tol: 1e-3 } })).rejects.toThrow(
      /cannot resume '.*full\.h5'.*hessian_tol is 0\.000001 in the file but 0\.001 now/,
    );
    await expect(hessianSurface({ ...job(path), directions: [d2, d1] })).rejects.toThrow(
      /directions_hash is \w+ in the file but \w+ now/,
    );
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  it("adds the eigenvalues to an existing loss surface, at the points whose loss is computed", async () => {
    const path = join(dir, "loss.h5");
    await lossSurface(path);
    const loss = readSurface(path);
    const r = await hessianSurface(job(path));
    expect(r.computed).toBe(6);
    const s = readSurface(path);
    expect(Object.keys(s.values).sort()).toEqual([
      "max_eig",
      "min_eig",
      "train_acc",
      "train_loss",
      "train_loss_se",
    ]);
    expect([...s.values.train_loss!]).toEqual([...loss.values.train_loss!]);
    expectAllClose(s.values.max_eig!, expected.max, { rtol: 1e-5, atol: 1e-7 });
    expect(s.meta["hessian_data_hash"]).toBeDefined();
  });

  it("skips points of a partial loss surface, and shards of a Hessian grid merge", async () => {
    const path = join(dir, "partial.h5");
    await lossSurface(path, { index: 0, count: 2 });
    const r = await hessianSurface(job(path));
    expect(r.skipped).toBe(3);
    expect(r.computed).toBe(3);

    const parts = [0, 1].map((index) => join(dir, `shard.${index}.h5`));
    for (const [index, p] of parts.entries()) {
      await hessianSurface({ ...job(p), shard: { index, count: 2 } });
    }
    const merged = mergeSurfaces(parts.map(readSurface), parts);
    expect([...merged.done]).toEqual([1, 1, 1, 1, 1, 1]);
    expectAllClose(merged.values.min_eig!, expected.min, { rtol: 1e-5, atol: 1e-7 });
  });

  it("checks its inputs by name", async () => {
    await expect(hessianSurface({ ...job(join(dir, "x.h5")), directions: [d1] })).rejects.toThrow(
      /a 2D grid needs 2 direction\(s\), got 1/,
    );
    await expect(hessianSurface({ ...job(join(dir, "x.h5")), theta: theta.subarray(2) })).rejects.toThrow(
      /'theta' has \d+ values but model 'mlp' has \d+/,
    );
  });
});
