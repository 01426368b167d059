// Benchmark: a 2D surface computed by 1 and 2 `losscape worker` processes (one
// ONNX Runtime thread each) through a private local redis-server, against
// computeSurface in one process with 2 threads on the same cores; then the
// queue's own cost per point, on a tiny model whose evaluation is near zero.
// The three setups alternate round by round (median of --rounds), so load from
// other processes on the machine hits them alike.
// Run: npm run bench:scale [-- --model cnn --samples 1000 --nx 5 --tiny-nx 12 --rounds 3]
// Needs Debian's redis-server (apt-get install redis-server).

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { axisValues, type Grid } from "../src/core/grid.ts";
import { type Dataset, datasetSize } from "../src/data/dataset.ts";
import { loadDataset } from "../src/data/load.ts";
import { createOrtEngine } from "../src/engine/ort.ts";
import { directionsAt, makeDirections } from "../src/landscape/plan.ts";
import { computeSurface } from "../src/landscape/surface.ts";
import { saveModel } from "../src/model/checkpoint.ts";
import type { Model } from "../src/model/model.ts";
import { computeSurfaceOnQueue } from "../src/queue/collect.ts";
import { parseQueueUrl } from "../src/queue/connection.ts";
import type { QueuedSurfaceJob } from "../src/queue/submit.ts";
import { zooModel } from "../src/zoo/zoo.ts";
import { startRedis } from "../test/queue/_redis.ts";
import { machineLine, median } from "./_peer.ts";

const { values } = parseArgs({
  options: {
    model: { type: "string", default: "cnn" },
    samples: { type: "string", default: "1000" },
    nx: { type: "string", default: "5" },
    "tiny-nx": { type: "string", default: "12" },
    rounds: { type: "string", default: "3" },
  },
});
const samples = Number(values.samples);
const nx = Number(values.nx);
const tinyNx = Number(values["tiny-nx"]);
const rounds = Number(values.rounds);

const BIN = new URL("../bin/losscape.js", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "losscape-scale-"));
const redis = await startRedis();
const connection = parseQueueUrl(redis.url);
const workers: ChildProcess[] = [];

/** A model saved where workers can open it, its directions file, and the job computing its surface. */
function setup(name: string, model: Model, train: Dataset, n: number): (path: string) => QueuedSurfaceJob {
  const base = join(dir, name);
  saveModel(model, model.initial, base);
  const dirFile = join(dir, `${name}.directions.h5`);
  const { directions } = directionsAt(dirFile, 2, model, () =>
    makeDirections(model, model.initial, { dims: 2, seed: 1 }),
  );
  const axis = axisValues({ min: -1, max: 1, num: n });
  const grid: Grid = { x: axis, y: axis };
  return (path) => ({
    model,
    theta: model.initial,
    directions,
    grid,
    train,
    path,
    dirFile,
    evaluate: { batchSize: 256, loss: "cross-entropy" },
    sources: {
      model: { spec: `${base}.onnx`, params: `${base}.safetensors` },
      data: { spec: "fashion-mnist", subset: { count: datasetSize(train) }, seed: 0 },
    },
  });
}

let files = 0;
const fresh = () => join(dir, `surface-${files++}.h5`);

/** Points/s of computeSurface in this process. */
async function single(job: QueuedSurfaceJob, threads: number): Promise<number> {
  const engine = await createOrtEngine(job.model, { threads });
  const t0 = performance.now();
  await computeSurface({ ...job, path: fresh(), engine });
  const rate = (job.grid.x.length * job.grid.y!.length) / ((performance.now() - t0) / 1000);
  await engine.dispose();
  return rate;
}

/** One queued run: points/s, the queue's cost per point, and the workers' evaluation time per point. */
interface QueuedRun {
  rate: number;
  /** Wall time not spent evaluating, per point (meaningful with one worker). */
  overheadMs: number;
  /** Evaluation time per point inside the workers: it grows when workers compete for cores. */
  evalMs: number;
  /** Evaluation time over wall time x workers: how busy the workers were. */
  busy: number;
}

/** Points/s through queue `name`, whose `workers` already hold the plan after a first, untimed run. */
async function queued(
  job: QueuedSurfaceJob,
  name: string,
  chunkSize: number,
  workers = 1,
): Promise<QueuedRun> {
  const t0 = performance.now();
  const r = await computeSurfaceOnQueue({ connection, name }, { ...job, path: fresh() }, { chunkSize });
  const secs = (performance.now() - t0) / 1000;
  return {
    rate: r.received / secs,
    overheadMs: (1000 * (secs - r.evaluationSeconds)) / r.received,
    evalMs: (1000 * r.evaluationSeconds) / r.received,
    busy: r.evaluationSeconds / (secs * workers),
  };
}

/** Medians of each field over runs. */
function medianRun(runs: QueuedRun[]): QueuedRun {
  return {
    rate: median(runs.map((x) => x.rate)),
    overheadMs: median(runs.map((x) => x.overheadMs)),
    evalMs: median(runs.map((x) => x.evalMs)),
    busy: median(runs.map((x) => x.busy)),
  };
}

/** A `losscape worker` process with one thread on queue `name`; resolves when it is ready. */
function startWorker(name: string, i: number): Promise<void> {
  const child = spawn(
    process.execPath,
    [BIN, "worker", "--queue", redis.url, "--queue-name", name, "--threads", "1", "--name", `${name}-${i}`],
    { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, CI: "true" } },
  );
  workers.push(child);
  return new Promise((resolve, reject) => {
    let err = "";
    child.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
      if (err.includes(" ready: ")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`worker ${i} exited (${code}):\n${err}`)));
  });
}

try {
  const train = loadDataset("fashion-mnist", "train", { subset: { count: samples }, seed: 0 });
  const heavy = setup(values.model, zooModel(values.model, { seed: 0 }), train, nx);
  const tinyTrain = loadDataset("fashion-mnist", "train", { subset: { count: 16 }, seed: 0 });
  const tiny = setup("tiny", zooModel("mlp", { seed: 0, hidden: [8] }), tinyTrain, tinyNx);

  console.log(
    `${values.model} 2D surface ${nx}x${nx} on ${samples} Fashion-MNIST samples, batch 256; queue: local redis-server, in-process collector; median of ${rounds} alternating rounds after an untimed one`,
  );
  console.log(await machineLine());
  console.log(`load average before: ${loadavg()[0]!.toFixed(2)} on ${availableParallelism()} cores`);
  // Queue "one" has one worker, queue "two" two; idle workers wait on Redis without using the CPU.
  await Promise.all([startWorker("one", 1), startWorker("two", 1), startWorker("two", 2)]);

  const tinyJob = tiny(fresh());
  await single(tinyJob, 1);
  await queued(tinyJob, "one", 1);
  const tinyRuns = { single: [] as number[], chunk1: [] as QueuedRun[], chunk16: [] as QueuedRun[] };
  for (let r = 0; r < rounds; r++) {
    tinyRuns.single.push(await single(tinyJob, 1));
    tinyRuns.chunk1.push(await queued(tinyJob, "one", 1));
    tinyRuns.chunk16.push(await queued(tinyJob, "one", 16));
  }
  const tinySingle = median(tinyRuns.single);
  const tinyChunk1 = medianRun(tinyRuns.chunk1);
  const tinyChunk16 = medianRun(tinyRuns.chunk16);

  const heavyJob = heavy(fresh());
  await Promise.all([single(heavyJob, 2), queued(heavyJob, "one", 1), queued(heavyJob, "two", 1)]);
  const refRates: number[] = [];
  const oneRuns: QueuedRun[] = [];
  const twoRuns: QueuedRun[] = [];
  for (let r = 0; r < rounds; r++) {
    refRates.push(await single(heavyJob, 2));
    oneRuns.push(await queued(heavyJob, "one", 1, 1));
    twoRuns.push(await queued(heavyJob, "two", 1, 2));
    console.log(
      `round ${r + 1}: single ${refRates[r]!.toFixed(2)}, 1 worker ${oneRuns[r]!.rate.toFixed(2)}, 2 workers ${twoRuns[r]!.rate.toFixed(2)} points/s`,
    );
  }
  const ref = median(refRates);
  const one = medianRun(oneRuns);
  const two = medianRun(twoRuns);

  const ms = (rate: number) => (1000 / rate).toFixed(1);
  console.log("| setup | points/s | ms/point | evaluation ms/point in a worker | workers busy |");
  console.log("|---|---|---|---|---|");
  console.log(`| single process, 2 threads (computeSurface) | ${ref.toFixed(2)} | ${ms(ref)} | - | - |`);
  for (const [label, q] of [
    ["1 worker process x 1 thread", one],
    ["2 worker processes x 1 thread", two],
  ] as const) {
    console.log(
      `| ${label} | ${q.rate.toFixed(2)} | ${ms(q.rate)} | ${q.evalMs.toFixed(1)} | ${(100 * q.busy).toFixed(0)} % |`,
    );
  }
  console.log();
  console.log(`queue overhead, tiny MLP (784-8-10) on 16 samples, ${tinyNx}x${tinyNx} grid, 1 worker:`);
  console.log("| setup | points/s | ms/point | queue overhead ms/point |");
  console.log("|---|---|---|---|");
  console.log(`| single process, 1 thread | ${tinySingle.toFixed(1)} | ${ms(tinySingle)} | - |`);
  for (const [label, q] of [
    ["queue, chunk 1", tinyChunk1],
    ["queue, chunk 16", tinyChunk16],
  ] as const) {
    console.log(`| ${label} | ${q.rate.toFixed(1)} | ${ms(q.rate)} | ${q.overheadMs.toFixed(2)} |`);
  }
  console.log(`load average after: ${loadavg()[0]!.toFixed(2)}`);
  console.log(`ratio vs 1 worker: ${(two.rate / one.rate).toFixed(2)}`);
} finally {
  for (const w of workers) w.kill("SIGTERM");
  await Promise.all(
    workers.map((w) => new Promise((r) => (w.exitCode === null ? w.once("exit", r) : r(null)))),
  );
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
}
