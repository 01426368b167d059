import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { randomDirection } from "../../src/core/directions.ts";
import { dot, norm } from "../../src/core/vector.ts";
import { writeFileAtomic } from "../../src/formats/atomic.ts";
import { paramsToSafetensors } from "../../src/model/checkpoint.ts";
import {
  projectTrajectory,
  readProjection,
  trajectoryPca,
  writeProjection,
} from "../../src/trajectory/trajectory.ts";
import { zooModel } from "../../src/zoo/zoo.ts";
import { expectAllClose, tempDir } from "../helpers.ts";

const { dir, cleanup } = tempDir("losscape-traj-");
afterAll(cleanup);

describe("trajectory PCA from checkpoint files", () => {
  const model = zooModel("mlp", { inputShape: [20], hidden: [16], classes: 3, seed: 1 });
  const theta = model.initial;
  // Two unit directions with zeros on biases (the trajectory ignores them by default).
  const u = randomDirection(theta, model.params, { seed: 1, normalization: "none" });
  const v0 = randomDirection(theta, model.params, { seed: 2, normalization: "none" });
  const un = u.map((x) => x / norm(u));
  const v = v0.map((x, i) => x - dot(v0, un) * (un[i] as number));
  const vn = v.map((x) => x / norm(v));
  const a = [4, 3, 2.5, 1, 0.5, 0];
  const b = [1, -1, 0.5, 0.2, -0.1, 0];
  const files = a.map((ai, i) => {
    const p = theta.map((t, k) => t + ai * (un[k] as number) + (b[i] as number) * (vn[k] as number));
    // Biases wander too: they must not enter the PCA.
    for (const spec of model.params)
      if (spec.shape.length < 2) p.fill(i * 0.3, spec.offset, spec.offset + spec.size);
    const path = join(dir, `epoch-${i}.safetensors`);
    writeFileAtomic(path, paramsToSafetensors(model, p));
    return path;
  });

  it("recovers the plane of a planar trajectory with 100 % explained variance and exact projections", async () => {
    const pca = await trajectoryPca(model, files);
    expect(pca.explainedVarianceRatio[0]! + pca.explainedVarianceRatio[1]!).toBeCloseTo(1, 5);
    const [d1, d2] = pca.directions as [Float32Array, Float32Array];
    for (const d of [d1, d2]) expect(dot(d, un) ** 2 + dot(d, vn) ** 2).toBeCloseTo(1, 4);
    const { x, y } = projectTrajectory(model, files, pca.directions);
    // theta_i - theta_final = a_i u + b_i v, so |(x_i, y_i)| = |(a_i, b_i)| whatever the rotation of the PCs.
    for (let i = 0; i < a.length; i++)
      expect(Math.hypot(x[i]!, y[i]!)).toBeCloseTo(Math.hypot(a[i]!, b[i]!), 4);
    expect(x[a.length - 1]).toBe(0);
  });

  it("projects exactly on non-orthogonal directions with least squares", () => {
    const d1 = un;
    const d2 = un.map((x, i) => x + (vn[i] as number)); // not orthogonal to d1
    const { x, y } = projectTrajectory(model, files, [d1, d2], "least-squares");
    // a u + b v = (a - b) d1 + b d2
    expectAllClose(
      x,
      a.map((ai, i) => ai - b[i]!),
      { atol: 1e-4 },
    );
    expectAllClose(y, b, { atol: 1e-4 });
  });

  it("writes and reads projection files with the reference names", () => {
    const path = join(dir, "proj.h5");
    writeProjection(path, Float64Array.of(1, 2), Float64Array.of(3, 4), ["a", "b"]);
    const p = readProjection(path);
    expect(Array.from(p.x)).toEqual([1, 2]);
    expect(Array.from(p.y)).toEqual([3, 4]);
  });

  it("names a checkpoint of another model", async () => {
    const other = zooModel("mlp", { inputShape: [20], hidden: [8], classes: 3 });
    const path = join(dir, "other.safetensors");
    writeFileAtomic(path, paramsToSafetensors(other, other.initial));
    await expect(trajectoryPca(model, [files[0]!, path])).rejects.toThrow(
      /checkpoint '.*other.safetensors' tensor 'fc1.weight' has shape \[8, 20\], model has \[16, 20\]/,
    );
  });
});

describe("trajectory command", () => {
  it("writes directions with explained variance, the projection, the PCA-plane surface and the figures", async () => {
    const { spawnSync } = await import("node:child_process");
    const { existsSync, mkdirSync } = await import("node:fs");
    const { readDirectionFile } = await import("../../src/formats/direction-file.ts");
    const { readSurface } = await import("../../src/formats/surface-file.ts");
    const { onnxWithParams } = await import("../../src/model/checkpoint.ts");
    const model = zooModel("mlp", { hidden: [16], seed: 3 });
    const run = join(dir, "run");
    mkdirSync(run);
    writeFileAtomic(join(run, "model.onnx"), onnxWithParams(model, model.initial));
    const d1 = randomDirection(model.initial, model.params, { seed: 5 });
    const d2 = randomDirection(model.initial, model.params, { seed: 6 });
    for (let e = 0; e < 4; e++) {
      const p = model.initial.map(
        (t, k) => t + (3 - e) * 0.1 * (d1[k] as number) + Math.sin(e) * 0.05 * (d2[k] as number),
      );
      writeFileAtomic(join(run, `epoch-00${e}.safetensors`), paramsToSafetensors(model, p));
    }
    const bin = new URL("../../bin/losscape.js", import.meta.url).pathname;
    const r = spawnSync(
      process.execPath,
      [
        bin,
        "trajectory",
        "--model",
        join(run, "model.onnx"),
        "--run",
        run,
        "--points",
        "5",
        "--subset",
        "100",
      ],
      {
        encoding: "utf8",
        env: { ...process.env, CI: "true" },
      },
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/4 checkpoints, 1st PC: \d+\.\d\d %, 2nd PC: \d+\.\d\d %/);
    const dirs = readDirectionFile(join(run, "trajectory.directions.h5"));
    expect(dirs.explainedVarianceRatio![0]! + dirs.explainedVarianceRatio![1]!).toBeCloseTo(1, 4);
    const s = readSurface(join(run, "trajectory.surface.h5"));
    expect(s.done.every((v) => v === 1)).toBe(true);
    expect(s.meta.x_label).toMatch(/^1st PC: /);
    // The final checkpoint sits at the origin of the plane, inside the grid.
    expect(s.x[0]!).toBeLessThan(0);
    expect(s.x[s.x.length - 1]!).toBeGreaterThan(0);
    for (const f of ["trajectory.projection.h5", "trajectory.png", "trajectory.random.png"])
      expect(existsSync(join(run, f))).toBe(true);
  });
});
