import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { randomDirection } from "../../src/core/directions.ts";
import { axisValues } from "../../src/core/grid.ts";
import type { Dataset } from "../../src/data/dataset.ts";
import { loadDataset } from "../../src/data/load.ts";
import { createOrtEngine } from "../../src/engine/ort.ts";
import { readSurface } from "../../src/formats/surface-file.ts";
import { computeSurface, mergeSurfaces } from "../../src/landscape/surface.ts";
import type { ParamSpec } from "../../src/model/model.ts";
import { zooModel } from "../../src/zoo/zoo.ts";
import { expectAllClose, tempDir } from "../helpers.ts";
import { quadraticModel } from "./_quadratic.ts";

const { dir, cleanup } = tempDir("losscape-surface-");
afterAll(cleanup);
const BIN = new URL("../../bin/losscape.js", import.meta.url).pathname;
const tiny: Dataset = {
  name: "one",
  shape: [1],
  inputs: new Float32Array(1),
  labels: new Uint8Array(1),
  classes: 2,
};

describe("computeSurface", () => {
  it("samples an exact quadratic as the expected paraboloid on a non-square grid", async () => {
    const { model, engine } = quadraticModel([2, 0.5, 3]);
    const theta = new Float32Array([0.1, -0.2, 0.3]);
    const d1 = new Float32Array([1, 0, 0]);
    const d2 = new Float32Array([0, 1, 1]);
    const grid = { x: axisValues({ min: -1, max: 1, num: 5 }), y: axisValues({ min: -0.5, max: 1, num: 4 }) };
    const path = join(dir, "quad.h5");
    const s = await computeSurface({
      engine,
      theta,
      directions: [d1, d2],
      grid,
      train: tiny,
      path,
      dirFile: "none",
    });
    const f = (a: number, b: number) =>
      0.5 * (2 * (0.1 + a) ** 2 + 0.5 * (-0.2 + b) ** 2 + 3 * (0.3 + b) ** 2);
    const expected: number[] = [];
    for (const a of grid.x) for (const b of grid.y) expected.push(f(a, b));
    expectAllClose(s.values.train_loss!, expected, { rtol: 1e-6, atol: 1e-7 });
    expectAllClose(readSurface(path).values.train_loss!, expected, { rtol: 1e-6, atol: 1e-7 });
    expect(model.size).toBe(3);
  });

  it("equals the model's own loss and accuracy at the origin", async () => {
    const train = loadDataset("fashion-mnist", "train", { subset: { count: 256 }, seed: 3 });
    const model = zooModel("cnn", { seed: 1 });
    const engine = await createOrtEngine(model, { threads: 1 });
    const d1 = randomDirection(model.initial, model.params, { seed: 1 });
    const s = await computeSurface({
      engine,
      theta: model.initial,
      directions: [d1],
      grid: { x: axisValues({ min: -1, max: 1, num: 3 }), y: null },
      train,
      path: join(dir, "origin.h5"),
      dirFile: "d.h5",
    });
    const own = await engine.evaluate(model.initial, train);
    await engine.dispose();
    expect(s.values.train_loss![1]).toBe(own.loss);
    expect(s.values.train_acc![1]).toBe(100 * own.accuracy);
    expect(s.values.train_loss![0]).not.toBe(own.loss);
  });

  it("is unchanged by rescaling one layer by 10 and the next by 1/10 when filter-normalized, and changed when not", async () => {
    const train = loadDataset("fashion-mnist", "train", { subset: { count: 200 }, seed: 1 });
    const model = zooModel("mlp", { hidden: [32], seed: 5 });
    const [w1, b1, w2] = model.params as [ParamSpec, ParamSpec, ParamSpec];
    const scaled = model.initial.slice();
    for (const p of [w1, b1])
      for (let i = p.offset; i < p.offset + p.size; i++) scaled[i] = (scaled[i] as number) * 10;
    for (let i = w2.offset; i < w2.offset + w2.size; i++) scaled[i] = (scaled[i] as number) / 10;
    const engine = await createOrtEngine(model, { threads: 1 });
    const grid = { x: axisValues({ min: -1, max: 1, num: 5 }), y: null };
    const run = async (theta: Float32Array, normalization: "filter" | "none", name: string) => {
      const d = randomDirection(theta, model.params, { seed: 2, normalization });
      const s = await computeSurface({
        engine,
        theta,
        directions: [d],
        grid,
        train,
        path: join(dir, name),
        dirFile: "d",
      });
      return s.values.train_loss!;
    };
    const base = await run(model.initial, "filter", "f0.h5");
    const rescaled = await run(scaled, "filter", "f1.h5");
    expectAllClose(rescaled, base, { rtol: 1e-4 });
    const rawBase = await run(model.initial, "none", "n0.h5");
    const rawScaled = await run(scaled, "none", "n1.h5");
    await engine.dispose();
    expect(Math.abs((rawScaled[0] as number) - (rawBase[0] as number))).toBeGreaterThan(0.05);
  });

  it("resumes only the missing points and refuses a resume with other inputs, naming what differs", async () => {
    const { engine } = quadraticModel([1, 1]);
    const theta = new Float32Array([0, 0]);
    const grid = { x: axisValues({ min: -1, max: 1, num: 4 }), y: axisValues({ min: -1, max: 1, num: 3 }) };
    const path = join(dir, "resume.h5");
    const directions = [new Float32Array([1, 0]), new Float32Array([0, 1])];
    const job = { engine, theta, directions, grid, train: tiny, path, dirFile: "d" };
    const half = { index: 0, count: 2 };
    await computeSurface({ ...job, shard: half });
    // Pretend the run stopped: the same file resumed without a shard computes exactly the other half.
    const first = readSurface(path);
    expect(first.done.reduce((a, b) => a + b, 0)).toBe(6);
    const seen: number[] = [];
    const wrongShard = computeSurface(job);
    await expect(wrongShard).rejects.toThrow(
      /cannot resume '.*resume.h5'.*shard is 0\/2 in the file but all now/,
    );
    const other = computeSurface({ ...job, theta: new Float32Array([0, 1]), shard: half });
    await expect(other).rejects.toThrow(/model_hash is \w+ in the file but \w+ now/);
    const again = await computeSurface({ ...job, shard: half, onProgress: (n) => seen.push(n) });
    expect(seen).toEqual([]);
    expect(Array.from(again.values.train_loss!)).toEqual(Array.from(first.values.train_loss!));
  });

  it("merges shards into the single-process surface and refuses overlapping or foreign shards", async () => {
    const { engine } = quadraticModel([1, 3]);
    const theta = new Float32Array([0.5, 0]);
    const grid = { x: axisValues({ min: -1, max: 1, num: 3 }), y: axisValues({ min: -1, max: 1, num: 5 }) };
    const directions = [new Float32Array([1, 0]), new Float32Array([0, 1])];
    const job = { engine, theta, directions, grid, train: tiny, dirFile: "d" };
    const whole = await computeSurface({ ...job, path: join(dir, "whole.h5") });
    const shards = await Promise.all(
      [0, 1, 2].map((index) =>
        computeSurface({ ...job, path: join(dir, `shard${index}.h5`), shard: { index, count: 3 } }),
      ),
    );
    const merged = mergeSurfaces(shards, ["s0", "s1", "s2"]);
    expect(Array.from(merged.values.train_loss!)).toEqual(Array.from(whole.values.train_loss!));
    expect(merged.done.every((v) => v === 1)).toBe(true);
    expect(() => mergeSurfaces([shards[0]!, shards[0]!], ["a.h5", "b.h5"])).toThrow(
      /point 0 \(x = -1, y = -1\) was computed by both 'a.h5' and 'b.h5'; shards overlap/,
    );
    const foreign = await computeSurface({
      ...job,
      theta: new Float32Array([0, 0]),
      path: join(dir, "foreign.h5"),
      shard: { index: 1, count: 3 },
    });
    expect(() => mergeSurfaces([shards[0]!, foreign], ["a.h5", "f.h5"])).toThrow(
      /'f.h5' has model_hash = \w+ but 'a.h5' has \w+; they are not shards of one surface/,
    );
  });
});

describe("surface command", () => {
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env: { ...process.env, CI: "true" } });

  it("survives kill -9 mid-run and a rerun of the same command completes the file", async () => {
    const out = join(dir, "killed.h5");
    const args = [
      "surface",
      "--model",
      "mlp",
      "--subset",
      "2000",
      "--x",
      "-1:1:40",
      "--out",
      out,
      "--flush",
      "0.0001",
      "--threads",
      "1",
    ];
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, CI: "true" },
      stdio: "ignore",
    });
    // Kill it once the file holds some finished points.
    await new Promise<void>((resolve, reject) => {
      const started = Date.now();
      const poll = setInterval(() => {
        try {
          if (existsSync(out) && readSurface(out).done.some((v) => v === 1)) {
            child.kill("SIGKILL");
            clearInterval(poll);
            resolve();
          } else if (Date.now() - started > 50_000) reject(new Error("no point finished in time"));
        } catch {
          // the file may be mid-rename; poll again
        }
      }, 20);
    });
    await new Promise((r) => child.on("exit", r));
    const partial = readSurface(out);
    const donePartial = partial.done.reduce((a, b) => a + b, 0);
    expect(donePartial).toBeGreaterThan(0);
    // A kill mid-write may leave the killed process's temporary: the rerun removes it.
    const r = cli(...args);
    expect(r.status).toBe(0);
    expect(readdirSync(dir).filter((f) => f.includes(".tmp-"))).toEqual([]);
    expect(r.stdout).toMatch(new RegExp(`computed ${40 - donePartial} points`));
    const full = readSurface(out);
    expect(full.done.every((v) => v === 1)).toBe(true);
    for (let k = 0; k < 40; k++)
      if (partial.done[k]) expect(full.values.train_loss![k]).toBe(partial.values.train_loss![k]);
    // A rerun with another grid is refused and leaves the file as it was.
    const bad = cli("surface", "--model", "mlp", "--subset", "2000", "--x", "-1:1:41", "--out", out);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/cannot resume .*x coordinates differ \(40 in the file, 41 now\)/);
    expect(Array.from(readSurface(out).values.train_loss!)).toEqual(Array.from(full.values.train_loss!));
  });

  it("writes shards that merge into one file, and inspect reports it", () => {
    const common = [
      "--model",
      "mlp",
      "--subset",
      "100",
      "--x",
      "-1:1:3",
      "--y",
      "-1:1:3",
      "--dir-file",
      join(dir, "m.dirs.h5"),
    ];
    for (const i of [0, 1])
      expect(cli("surface", ...common, "--out", join(dir, `m${i}.h5`), "--shard", `${i}/2`).status).toBe(0);
    const merged = join(dir, "merged.h5");
    const r = cli("merge", "--out", merged, join(dir, "m0.h5"), join(dir, "m1.h5"));
    expect(r.status).toBe(0);
    const inspect = cli("inspect", merged);
    expect(inspect.stdout).toMatch(/2D surface, grid 3 x 3 .* 9\/9 points computed/);
    const again = cli("merge", "--out", merged, join(dir, "m0.h5"));
    expect(again.stderr).toMatch(/--out '.*merged.h5' exists; merge never overwrites a file/);
  });
});

describe("interpolate command", () => {
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env: { ...process.env, CI: "true" } });

  it("starts at model A's loss and ends at model B's, BN statistics included", async () => {
    for (const seed of ["1", "2"])
      expect(cli("zoo", "cnn", "--seed", seed, "--out", join(dir, `cnn${seed}`)).status).toBe(0);
    // Make B's BN statistics differ from A's so that interpolating them matters.
    const { readOnnx } = await import("../../src/model/import.ts");
    const { saveModel } = await import("../../src/model/checkpoint.ts");
    const b = await readOnnx(join(dir, "cnn2.onnx"));
    const theta = b.initial.slice();
    for (const p of b.params)
      if (p.role === "bn-stat") theta.fill(p.name.endsWith("var") ? 2 : 0.3, p.offset, p.offset + p.size);
    saveModel(b, theta, join(dir, "cnn2"));
    const out = join(dir, "interp.h5");
    const r = cli(
      "interpolate",
      "--model",
      join(dir, "cnn1.onnx"),
      "--to",
      join(dir, "cnn2.safetensors"),
      "--x",
      "0:1:3",
      "--subset",
      "200",
      "--out",
      out,
    );
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.status).toBe(0);
    const s = readSurface(out);
    expect(s.meta.direction_kind).toBe("between-models");
    expect(s.meta.direction_mode).toBe("states");
    const train = loadDataset("fashion-mnist", "train", { subset: { count: 200 }, seed: 0 });
    const a = await readOnnx(join(dir, "cnn1.onnx"));
    const engine = await createOrtEngine(a, { threads: 1 });
    const lossA = (await engine.evaluate(a.initial, train)).loss;
    const lossB = (await engine.evaluate(theta, train)).loss;
    await engine.dispose();
    expect(s.values.train_loss![0]).toBeCloseTo(lossA, 6);
    expect(s.values.train_loss![2]).toBeCloseTo(lossB, 4);
    expect(Math.abs(lossA - lossB)).toBeGreaterThan(1e-3);
  });
});
