// The prefix cache: the part of the graph no moving parameter reaches runs once per batch and its
// outputs are reused at every point. Every number must be bit-identical to whole-graph evaluation,
// whether the cut tensors sit in memory, in the temporary file, or are recomputed for want of room.

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { modelFixture } from "../../fixtures/_models.ts";
import { movedParameters, randomDirection } from "../../src/core/directions.ts";
import { axisValues } from "../../src/core/grid.ts";
import { Random } from "../../src/core/random.ts";
import type { Dataset } from "../../src/data/dataset.ts";
import { loadDataset } from "../../src/data/load.ts";
import { splitGraph } from "../../src/engine/_prefix.ts";
import type { Engine, EvaluateOptions, Metrics } from "../../src/engine/engine.ts";
import { createOrtEngine, surfaceEngineOptions } from "../../src/engine/ort.ts";
import { readSurface } from "../../src/formats/surface-file.ts";
import { computeSurface } from "../../src/landscape/surface.ts";
import { readOnnx } from "../../src/model/import.ts";
import type { Model } from "../../src/model/model.ts";
import { zooModel } from "../../src/zoo/zoo.ts";
import { tempDir } from "../helpers.ts";

const { dir, cleanup } = tempDir("losscape-prefix-");
afterAll(cleanup);
const BIN = new URL("../../bin/losscape.js", import.meta.url).pathname;
const TASKS = new URL("../../fixtures/tasks/", import.meta.url).pathname;

/** Names of the parameters matching `re` that a default direction moves (filters; bias/BN zeroed). */
function filtersOf(model: Model, re: RegExp): string[] {
  return model.params.filter((p) => re.test(p.name) && p.role === "filter").map((p) => p.name);
}

/** `theta` with every value of `names` scaled by 1 + s. */
function moved(model: Model, names: readonly string[], s: number): Float32Array {
  const p = model.initial.slice();
  for (const spec of model.params)
    if (names.includes(spec.name)) for (let i = 0; i < spec.size; i++) p[spec.offset + i]! *= 1 + s;
  return p;
}

function same(a: Metrics, b: Metrics): void {
  expect(b.loss).toBe(a.loss);
  expect(Object.is(b.accuracy, a.accuracy) || b.accuracy === a.accuracy).toBe(true);
  expect(Object.is(b.lossSe, a.lossSe) || b.lossSe === a.lossSe).toBe(true);
  expect(b.count).toBe(a.count);
  expect(b.stopped).toBe(a.stopped);
}

/** Evaluates at several points with a whole-graph engine and a cached one; all must agree exactly. */
async function compare(
  model: Model,
  moving: readonly string[],
  data: Dataset,
  options: EvaluateOptions,
  limits: { memoryBytes?: number; diskBytes?: number; dir?: string } = {},
): Promise<Engine> {
  const full = await createOrtEngine(model, { threads: 2 });
  const cached = await createOrtEngine(model, { threads: 2, prefixCache: { moving, ...limits } });
  expect(typeof cached.prefix?.()).toBe("object");
  try {
    for (const s of [0, 0.05, -0.1, 0.2]) {
      const p = moved(model, moving, s);
      same(await full.evaluate(p, data, options), await cached.evaluate(p, data, options));
    }
  } finally {
    await full.dispose();
  }
  return cached;
}

function randomImages(n: number, shape: number[], classes: number, seed: number): Dataset {
  const rng = new Random(seed);
  const per = shape.reduce((a, b) => a * b, 1);
  return {
    name: `random-${seed}`,
    shape,
    inputs: Float32Array.from({ length: n * per }, () => rng.normal()),
    labels: Int32Array.from({ length: n }, () => rng.int(classes)),
    classes,
  };
}

function tokens(n: number, t: number, vocab: number, seed: number): Dataset {
  const rng = new Random(seed);
  return {
    name: `tokens-${seed}`,
    shape: [t],
    inputs: Int32Array.from({ length: n * t }, () => rng.int(vocab)),
    labels: Int32Array.from({ length: n * t }, () => rng.int(vocab)),
    targetShape: [t],
    classes: vocab,
  };
}

describe("prefix cache", () => {
  it("prefix cache on ResNet-20's last stage is bit-identical to the whole graph", async () => {
    const model = zooModel("resnet20", { inputShape: [1, 28, 28], seed: 3 });
    const moving = filtersOf(model, /^layer3\./);
    const data = randomImages(40, [1, 28, 28], 10, 1);
    const cached = await compare(model, moving, data, { batchSize: 16 });
    const r = cached.prefix?.();
    await cached.dispose();
    if (typeof r !== "object") throw new Error(`no split: ${r}`);
    expect(r.cuts).toHaveLength(1);
    expect(r.prefixNodes).toBeGreaterThan(r.suffixNodes);
    // 3 batches computed once (the first twice read: it also types the suffix's inputs), then
    // served at the three later points.
    expect(r.batches).toBe(3);
    expect(r.hits).toBe(1 + 9);
  });

  it("is bit-identical for a transformer's last block, with the graph scoring the tokens", async () => {
    const model = await readOnnx(join(TASKS, "lm.onnx"));
    const moving = filtersOf(model, /^blocks\.1\./);
    expect(moving.length).toBeGreaterThan(0);
    const cached = await compare(model, moving, tokens(12, model.input.shape[0]!, 30, 2), {
      batchSize: 5,
    });
    const r = cached.prefix?.();
    await cached.dispose();
    if (typeof r !== "object") throw new Error(`no split: ${r}`);
    expect(r.cuts.length).toBeGreaterThan(0);
  });

  it("is bit-identical for a graph with its own loss (targets go to the suffix)", async () => {
    const model = await readOnnx(join(TASKS, "ownloss.onnx"), { lossOutput: "loss" });
    const last = model.params.filter((p) => p.role === "filter").at(-1)!.name;
    const data = randomImages(24, [...model.input.shape], 4, 5);
    (await compare(model, [last], data, { batchSize: 8 })).dispose();
  });

  it("checks the split against the whole graph on the first batch and falls back where they differ (PyTorch exports)", async () => {
    // MobileNetV2's cut feeds a residual Add that ONNX Runtime folds into a convolution in the
    // whole graph only: there the split rounds differently and must not be used.
    for (const [name, only] of [
      ["mobilenet_v2", /features\.1[5-8]|classifier/],
      ["resnet18", /layer4/],
      ["vit", /layers\.1\.|head/],
    ] as const) {
      const { model, data } = modelFixture(name);
      const moving = filtersOf(model, only);
      const full = await createOrtEngine(model, { threads: 2 });
      const cached = await createOrtEngine(model, { threads: 2, prefixCache: { moving } });
      for (const s of [0, 0.1]) {
        const p = moved(model, moving, s);
        same(
          await full.evaluate(p, data, { batchSize: 2 }),
          await cached.evaluate(p, data, { batchSize: 2 }),
        );
      }
      const r = cached.prefix?.();
      if (typeof r === "string")
        expect(r, name).toMatch(/does not reproduce the whole graph's outputs bit for bit/);
      else expect(r?.hits, name).toBeGreaterThan(0);
      await full.dispose();
      await cached.dispose();
    }
  });

  it("spills to the temporary file, recomputes beyond both limits, and leaves no file behind", async () => {
    const model = zooModel("cnn", { seed: 1 });
    const moving = filtersOf(model, /^fc/);
    const data = randomImages(50, [1, 28, 28], 10, 3);
    const cacheDir = join(dir, "cache");
    mkdirSync(cacheDir);
    const disk = await compare(model, moving, data, { batchSize: 16 }, { memoryBytes: 0, dir: cacheDir });
    const r = disk.prefix?.();
    if (typeof r !== "object") throw new Error(`no split: ${r}`);
    expect(r.memoryBytes).toBe(0);
    expect(r.diskBytes).toBeGreaterThan(0);
    expect(r.batches).toBe(4);
    // The file is unlinked as soon as it is opened: nothing in the folder even while in use.
    expect(readdirSync(cacheDir)).toEqual([]);
    await disk.dispose();
    expect(readdirSync(cacheDir)).toEqual([]);

    const none = await compare(model, moving, data, { batchSize: 16 }, { memoryBytes: 0, diskBytes: 0 });
    const n = none.prefix?.();
    if (typeof n !== "object") throw new Error(`no split: ${n}`);
    expect(n.batches).toBe(0);
    expect(n.uncached).toBeGreaterThanOrEqual(4);
    await none.dispose();

    // Half of the batches fit in memory (each is 16 x the cut size), the rest are recomputed.
    const per = (r.diskBytes / 50) * 16;
    const part = await compare(
      model,
      moving,
      data,
      { batchSize: 16 },
      { memoryBytes: 2 * per, diskBytes: 0 },
    );
    const q = part.prefix?.();
    if (typeof q !== "object") throw new Error(`no split: ${q}`);
    expect(q.batches).toBe(2);
    await part.dispose();
  });

  it("drops the cache when a fixed parameter changes, and when the batch size does", async () => {
    const model = zooModel("mlp", { seed: 2 });
    const moving = filtersOf(model, /^fc3\./);
    const data = randomImages(30, [1, 28, 28], 10, 4);
    const full = await createOrtEngine(model, { threads: 2 });
    const cached = await createOrtEngine(model, { threads: 2, prefixCache: { moving } });
    const first = filtersOf(model, /^fc1\./);
    for (const [p, batchSize] of [
      [model.initial, 8],
      [moved(model, first, 0.3), 8],
      [moved(model, first, 0.3), 12],
      [moved(model, moving, 0.3), 12],
    ] as const)
      same(await full.evaluate(p, data, { batchSize }), await cached.evaluate(p, data, { batchSize }));
    await full.dispose();
    await cached.dispose();
  });

  it("says why a graph cannot be split", async () => {
    const model = zooModel("mlp", { seed: 2 });
    expect(splitGraph(model, new Set(filtersOf(model, /^fc1\./)))).toMatch(/only reshape the samples/);
    expect(() => splitGraph(model, new Set(["nope.weight"]))).toThrow(
      /'nope\.weight' is not a parameter of model 'mlp'/,
    );
    const engine = await createOrtEngine(model, { prefixCache: { moving: filtersOf(model, /^fc1\./) } });
    expect(engine.prefix?.()).toMatch(/only reshape the samples/);
    await engine.dispose();
    // Directions moving every parameter ask for no cache at all.
    const all = randomDirection(model.initial, model.params, { seed: 1, ignoreBiasBN: false });
    expect(surfaceEngineOptions(model, [all], {})).toEqual({});
    await expect(
      createOrtEngine(model, { prefixCache: { moving: ["fc3.weight"], memoryBytes: -1 } }),
    ).rejects.toThrow(/'memoryBytes' must be a non-negative number of bytes, got -1/);
  });

  it("computes a 2D surface along --only directions bit-identical to the whole graph", async () => {
    const model = zooModel("cnn", { seed: 5 });
    const train = loadDataset("fashion-mnist", "train", { subset: { count: 120 }, seed: 1 });
    const test = loadDataset("fashion-mnist", "test", { subset: { count: 60 }, seed: 1 });
    const only = /^fc/;
    const d = [1, 2].map((seed) => randomDirection(model.initial, model.params, { seed, only }));
    expect(movedParameters(model.params, d).every((n) => only.test(n))).toBe(true);
    const grid = { x: axisValues({ min: -1, max: 1, num: 5 }), y: axisValues({ min: -1, max: 1, num: 4 }) };
    const surfaces = [];
    for (const cache of [false, true]) {
      const engine = await createOrtEngine(model, {
        threads: 2,
        ...surfaceEngineOptions(model, d, cache ? {} : false),
      });
      surfaces.push(
        await computeSurface({
          engine,
          theta: model.initial,
          directions: d,
          grid,
          train,
          test,
          path: join(dir, `surf-${cache}.h5`),
          dirFile: "d.h5",
          evaluate: { batchSize: 32 },
        }),
      );
      if (cache) {
        const r = engine.prefix?.();
        if (typeof r !== "object") throw new Error(`no split: ${r}`);
        expect(r.hits).toBeGreaterThanOrEqual(19 * 6);
      }
      await engine.dispose();
    }
    for (const [q, v] of Object.entries(surfaces[0]!.values))
      expect(Array.from(surfaces[1]!.values[q as keyof (typeof surfaces)[0]["values"]]!), q).toEqual(
        Array.from(v),
      );
  });

  it("runs from the CLI: surface --only prints the split and matches --no-prefix-cache", () => {
    const common = [
      "--model",
      "mlp",
      "--subset",
      "100",
      "--x",
      "-1:1:3",
      "--y",
      "-1:1:3",
      "--only",
      "^fc3\\.",
    ];
    const run = (out: string, extra: string[]) =>
      spawnSync(
        process.execPath,
        [
          BIN,
          "surface",
          ...common,
          "--out",
          join(dir, out),
          "--dir-file",
          join(dir, "cli.dirs.h5"),
          ...extra,
        ],
        {
          encoding: "utf8",
        },
      );
    const a = run("cli-cached.h5", []);
    expect(a.status, a.stderr).toBe(0);
    expect(a.stdout).toMatch(/prefix cache: \d+ of \d+ nodes reach no moving parameter/);
    expect(a.stdout).toMatch(/prefix cache: \d+ batch\(es\) held .* reuses/);
    const b = run("cli-full.h5", ["--no-prefix-cache"]);
    expect(b.status, b.stderr).toBe(0);
    expect(b.stdout).not.toMatch(/prefix cache/);
    const sa = readSurface(join(dir, "cli-cached.h5"));
    const sb = readSurface(join(dir, "cli-full.h5"));
    expect(Array.from(sa.values.train_loss!)).toEqual(Array.from(sb.values.train_loss!));
    const bad = run("cli-bad.h5", ["--cache-memory", "lots"]);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/--cache-memory/);
    expect(existsSync(join(dir, "cli-bad.h5"))).toBe(false);
  });
});
