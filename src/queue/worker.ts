// A queue worker: takes chunk jobs from BullMQ, opens the plan's model, data
// and directions itself, checks they hash to the plan's identity (refusing the
// job when not), evaluates each point exactly as computeSurface does, and
// reports the values on the plan's result stream. A worker killed mid-job
// loses nothing: its lock expires and BullMQ's stalled-job check requeues the job.

import { hostname } from "node:os";
import { type Job, UnrecoverableError, Worker } from "bullmq";
import type { Redis } from "ioredis";
import { type Grid, gridSize, pointCoords } from "../core/grid.ts";
import { combine } from "../core/vector.ts";
import type { Dataset } from "../data/dataset.ts";
import { loadDataset } from "../data/load.ts";
import type { CacheLimits } from "../engine/_prefix-cache.ts";
import type { Engine } from "../engine/engine.ts";
import { createOrtEngine, surfaceEngineOptions } from "../engine/ort.ts";
import type { SurfaceQuantity } from "../formats/surface-file.ts";
import { loadDirections } from "../landscape/plan.ts";
import { evaluatePoint } from "../landscape/surface.ts";
import { openModel } from "../model/open.ts";
import {
  addResult,
  checkQueueName,
  connectRedis,
  DEFAULT_PREFIX,
  DEFAULT_QUEUE_NAME,
  planKeys,
  redactError,
} from "./_redis.ts";
import { type QueueTarget, redisOptions } from "./connection.ts";
import {
  type ChunkJob,
  encodeValues,
  identityDifferences,
  parsePlan,
  planIdentity,
  planQuantities,
  type SurfacePlan,
} from "./plan.ts";

/** Options of `startSurfaceWorker`. */
export interface SurfaceWorkerOptions {
  /** ONNX Runtime intra-op threads (default: all cores). */
  threads?: number;
  /** Limits of the prefix cache of plans whose directions move only some parameters; false: none. */
  prefixCache?: CacheLimits | false;
  /** Name recorded on the jobs it takes and in its messages (default host-pid). */
  workerName?: string;
  /**
   * Seconds a job's lock lasts without renewal (default 30). A killed worker's job is requeued after about this
   * long plus `stalledSeconds`.
   */
  lockSeconds?: number;
  /** Seconds between checks for jobs whose worker died (default: lockSeconds). */
  stalledSeconds?: number;
  /** Stop after this many jobs. */
  maxJobs?: number;
  /** Stop after this many seconds without a job. */
  idleSeconds?: number;
  /** Messages (plans opened, chunks done, refusals), one line each, no password. */
  log?: (line: string) => void;
  /** Called when a job starts, before anything is loaded or evaluated. */
  onChunk?: (chunk: { job: string; plan: string; points: readonly number[] }) => void | Promise<void>;
}

/** A running worker. */
export interface SurfaceWorker {
  /** The name recorded on its jobs. */
  readonly name: string;
  /** Resolves when the worker has stopped (close, maxJobs or idleSeconds), with what it did. */
  readonly finished: Promise<{ jobs: number; points: number }>;
  /** Finishes the current job, then stops. */
  close(): Promise<void>;
}

/** What a worker holds for one plan. */
interface Loaded {
  id: string;
  plan: SurfacePlan;
  engine: Engine;
  theta: Float32Array;
  directions: Float32Array[];
  grid: Grid;
  train: Dataset;
  test?: Dataset;
}

/** A worker that cannot reproduce a plan refuses its jobs without retrying them. */
class Refusal extends UnrecoverableError {}

/** Jobs a BullMQ worker stalls on before the job fails (a point that crashes every worker it meets). */
const MAX_STALLED = 3;

/** Opens everything a plan names, as `losscape surface` does, and checks it hashes to the plan's identity. */
async function openPlan(
  id: string,
  plan: SurfacePlan,
  threads: number | undefined,
  who: string,
  prefixCache: CacheLimits | false = {},
): Promise<Loaded> {
  const sources = `model '${plan.model.spec}'${plan.model.params ? ` with params '${plan.model.params}'` : ""}, data '${plan.data.spec}', directions '${plan.directions}'`;
  try {
    const { subset } = plan.data;
    const load = (split: "train" | "test") =>
      loadDataset(plan.data.spec, split, {
        ...plan.data.read,
        ...(subset ? { subset } : {}),
        seed: plan.data.seed,
      });
    const train = load("train");
    const test = plan.data.test ? load("test") : undefined;
    // As `losscape surface` opens it: zoo models take their input shape and classes from the training data.
    const m = plan.model;
    const { model, params } = await openModel(m.spec, {
      inputShape: m.inputShape ?? train.shape,
      classes: train.classes,
      ...(m.params ? { params: m.params } : {}),
      ...(m.input ? { input: m.input } : {}),
      ...(m.output ? { output: m.output } : {}),
      allowFoldedBatchNorm: Boolean(m.allowFoldedBatchNorm),
      ...(m.seed !== undefined ? { seed: m.seed } : {}),
      ...(m.trainable !== undefined ? { trainable: new RegExp(m.trainable) } : {}),
      ...(m.constant !== undefined ? { constant: new RegExp(m.constant) } : {}),
      ...(m.lossOutput !== undefined ? { lossOutput: m.lossOutput } : {}),
      ...(m.targetsInput !== undefined ? { targetsInput: m.targetsInput } : {}),
    });
    const directions = loadDirections(model, plan.directions);
    const dims = plan.grid.y ? 2 : 1;
    if (directions.length !== dims)
      throw new Error(
        `direction file '${plan.directions}' holds ${directions.length} direction(s), the grid is ${dims}D`,
      );
    const held = planIdentity({
      model,
      theta: params,
      directions,
      train,
      ...(test ? { test } : {}),
      loss: plan.evaluate.loss,
      task: plan.evaluate,
    });
    const differences = identityDifferences(plan.identity, held);
    if (differences.length) {
      throw new Refusal(
        `worker ${who} refuses plan ${id}: it holds other inputs than the submitter (${differences.join("; ")}); it opened ${sources}. Give every worker the same files as the submitter.`,
      );
    }
    const engine = await createOrtEngine(model, {
      ...(threads ? { threads } : {}),
      ...surfaceEngineOptions(model, directions, prefixCache),
    });
    const grid = {
      x: Float64Array.from(plan.grid.x),
      y: plan.grid.y ? Float64Array.from(plan.grid.y) : null,
    };
    return { id, plan, engine, theta: params, directions, grid, train, ...(test ? { test } : {}) };
  } catch (e) {
    if (e instanceof Refusal) throw e;
    throw new Refusal(`worker ${who} cannot open plan ${id} (${sources}): ${(e as Error).message}`);
  }
}

/** The values and status of each point, exactly as computeSurface computes and stores them. */
async function evaluatePoints(
  l: Loaded,
  points: readonly number[],
): Promise<{ values: Partial<Record<SurfaceQuantity, number[]>>; status: number[] }> {
  const params = new Float32Array(l.theta.length);
  const values: Partial<Record<SurfaceQuantity, number[]>> = {};
  const status: number[] = [];
  for (const q of planQuantities(l.plan)) values[q] = [];
  for (const k of points) {
    combine(l.theta, l.directions, pointCoords(l.grid, k), params);
    const point = await evaluatePoint(l.engine, params, l.train, l.test, l.plan.evaluate);
    for (const q of planQuantities(l.plan)) values[q]!.push(point.values[q] ?? Number.NaN);
    status.push(point.status);
  }
  return { values, status };
}

/**
 * Starts a worker on a queue; it runs until closed (or `maxJobs`/`idleSeconds`). One job at a time: run one
 * worker per core group (`threads`) on each machine that can read the model and data.
 *
 * @example
 * const worker = await startSurfaceWorker({ connection: parseQueueUrl("redis://127.0.0.1:6379") }, { threads: 4, log: console.error });
 * process.on("SIGTERM", () => void worker.close());
 * await worker.finished;
 */
export async function startSurfaceWorker(
  target: QueueTarget,
  options: SurfaceWorkerOptions = {},
): Promise<SurfaceWorker> {
  const {
    threads,
    prefixCache = {},
    workerName = `${hostname()}-${process.pid}`,
    lockSeconds = 30,
    stalledSeconds = lockSeconds,
    maxJobs,
    idleSeconds,
    log = () => {},
    onChunk,
  } = options;
  for (const [name, v] of Object.entries({ lockSeconds, stalledSeconds, idleSeconds, maxJobs })) {
    if (v !== undefined && !(v > 0))
      throw new Error(`startSurfaceWorker(): '${name}' must be positive, got ${v}`);
  }
  const queueName = target.name ?? DEFAULT_QUEUE_NAME;
  checkQueueName(queueName);
  const c = target.connection;
  const client: Redis = await connectRedis(target, "worker");

  let current: Loaded | undefined;
  const refused = new Map<string, string>();
  let jobs = 0;
  let points = 0;
  let busy = false;
  let lastActivity = performance.now();

  const planFor = async (id: string): Promise<Loaded | null> => {
    const refusal = refused.get(id);
    if (refusal) throw new Refusal(refusal);
    if (current?.id === id) return current;
    const text = await client.get(planKeys(target, id).plan);
    if (text === null) return null;
    await current?.engine.dispose();
    current = undefined;
    const t0 = performance.now();
    let plan: SurfacePlan;
    try {
      plan = parsePlan(text, `plan ${id}`);
      current = await openPlan(id, plan, threads, workerName, prefixCache);
    } catch (e) {
      const refusal =
        e instanceof Refusal ? e : new Refusal(`worker ${workerName} refuses ${(e as Error).message}`);
      refused.set(id, refusal.message);
      throw refusal;
    }
    for (const w of current.engine.model.warnings) log(`warning: ${w}`);
    log(
      `opened plan ${id} in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${plan.model.spec}, ${plan.data.spec}, ${current.grid.y ? "2D" : "1D"} grid of ${gridSize(current.grid)} points`,
    );
    return current;
  };

  const processChunk = async (job: Job<ChunkJob>): Promise<{ points: number; skipped?: boolean }> => {
    const { plan: id, points: todo } = job.data;
    const jobId = job.id ?? "?";
    await onChunk?.({ job: jobId, plan: id, points: todo });
    const t0 = performance.now();
    const loaded = await planFor(id);
    if (loaded === null) {
      log(`job ${jobId}: plan ${id} is finished or withdrawn; skipped`);
      return { points: 0, skipped: true };
    }
    const size = gridSize(loaded.grid);
    const bad = todo.find((k) => !Number.isInteger(k) || k < 0 || k >= size);
    if (bad !== undefined)
      throw new Refusal(`job ${jobId}: point ${bad} is outside plan ${id}'s ${size}-point grid`);
    const t1 = performance.now();
    const { values, status } = await evaluatePoints(loaded, todo);
    const added = await addResult(client, planKeys(target, id), {
      job: jobId,
      worker: workerName,
      points: JSON.stringify(todo),
      values: JSON.stringify(encodeValues(values)),
      status: JSON.stringify(status),
      seconds: String((performance.now() - t1) / 1000),
    });
    const secs = (performance.now() - t0) / 1000;
    if (added === null) log(`job ${jobId}: plan ${id} finished meanwhile; result dropped`);
    else log(`job ${jobId}: ${todo.length} point(s) in ${secs.toFixed(2)} s`);
    return { points: todo.length };
  };

  let resolveFinished!: (v: { jobs: number; points: number }) => void;
  const finished = new Promise<{ jobs: number; points: number }>((r) => {
    resolveFinished = r;
  });

  const worker: Worker<ChunkJob> = new Worker<ChunkJob>(
    queueName,
    async (job) => {
      busy = true;
      try {
        const r = await processChunk(job);
        jobs++;
        points += r.points;
        // Closing before returning keeps BullMQ from fetching (and locking) one more job.
        if (maxJobs !== undefined && jobs >= maxJobs) void stop();
        return r;
      } finally {
        busy = false;
        lastActivity = performance.now();
      }
    },
    {
      connection: redisOptions(c),
      prefix: target.prefix ?? DEFAULT_PREFIX,
      name: workerName,
      concurrency: 1,
      lockDuration: lockSeconds * 1000,
      stalledInterval: stalledSeconds * 1000,
      maxStalledCount: MAX_STALLED,
      autorun: false,
    },
  );
  worker.on("error", (e) => log(`worker ${workerName}: ${redactError(e, c)}`));
  worker.on("failed", (job, e) => log(`job ${job?.id ?? "?"} failed: ${redactError(e, c)}`));
  worker.on("stalled", (jobId) => log(`job ${jobId} lost its worker (lock expired); requeued`));

  let idleTimer: NodeJS.Timeout | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (idleTimer) clearInterval(idleTimer);
      await worker.close();
      await current?.engine.dispose();
      current = undefined;
      client.disconnect();
      resolveFinished({ jobs, points });
    })();
    return stopping;
  };
  if (idleSeconds !== undefined) {
    idleTimer = setInterval(() => {
      if (!busy && performance.now() - lastActivity >= idleSeconds * 1000) {
        log(`worker ${workerName}: no job for ${idleSeconds} s; stopping`);
        void stop();
      }
    }, 250);
  }

  worker.run().catch((e) => {
    log(`worker ${workerName} stopped: ${redactError(e, c)}`);
    void stop();
  });
  await worker.waitUntilReady();
  log(`worker ${workerName} ready: queue '${queueName}' at ${c.display}, ${threads ?? "all"} thread(s)`);
  return { name: workerName, finished, close: stop };
}
