// Submitting a surface to a queue: the surface file is created (or resumed)
// exactly as computeSurface would, the plan that lets workers reproduce the
// inputs is published in Redis, and every chunk of points still missing
// becomes a BullMQ job. Collecting the results is collect.ts.

import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { gridSize, inShard } from "../core/grid.ts";
import type { LossName, TaskOptions } from "../engine/task.ts";
import { POINT, type Surface, writeSurface } from "../formats/surface-file.ts";
import type { SurfaceJob } from "../landscape/surface.ts";
import { refineStep, reopenInterpolated } from "../landscape/surface.ts";
import type { Model } from "../model/model.ts";
import { openSurfaceFile } from "./_file.ts";
import { checkQueueName, connectRedis, DEFAULT_QUEUE_NAME, enqueuePlan, openQueue } from "./_redis.ts";
import { type QueueTarget, redact } from "./connection.ts";
import {
  type DataSource,
  type ModelSource,
  PLAN_VERSION,
  planId,
  planIdentity,
  planQuantities,
  type SurfacePlan,
} from "./plan.ts";

/**
 * A surface to compute through a queue: what `computeSurface` takes without the engine, plus where workers
 * find the model and the data.
 *
 * @example
 * const job: QueuedSurfaceJob = { model, theta, directions, grid, train, path: "surf.h5", dirFile: "dirs.h5",
 *   evaluate: { batchSize: 256, loss: "cross-entropy" },
 *   sources: { model: { spec: "resnet56.onnx" }, data: { spec: "cifar10:/data/cifar", seed: 0 } } };
 */
export interface QueuedSurfaceJob
  extends Omit<SurfaceJob, "engine" | "evaluate" | "flushSeconds" | "onProgress"> {
  /** The model (to hash its graph; workers open their own copy from `sources.model` and read `dirFile`). */
  model: Model;
  /** Batch size and loss of each evaluation (workers use the same). */
  evaluate: { batchSize: number; loss: LossName; lossCap?: number } & TaskOptions;
  /** Where workers open the model and the data; relative paths are made absolute here. */
  sources: { model: ModelSource; data: Omit<DataSource, "test"> };
}

/** Options of `submitSurface`. */
export interface SubmitOptions {
  /** Grid points per job (default 1). Larger chunks amortize the queue's per-job cost; see docs/scale-out.md. */
  chunkSize?: number;
}

/** What `submitSurface` did. */
export interface Submission {
  /** Plan id: the Redis records and job ids of this surface. */
  plan: string;
  /** Points still to compute. */
  points: number;
  /** Jobs queued (chunks with points to compute). */
  jobs: number;
  /** The surface file's contents after creating or resuming it. */
  surface: Surface;
}

function absolute(path: string | undefined): string | undefined {
  return path === undefined ? undefined : resolve(path);
}

/** A model spec that names a file becomes absolute; a zoo name stays. */
function modelSpec(spec: string): string {
  return spec.endsWith(".onnx") || existsSync(spec) ? resolve(spec) : spec;
}

/** "cifar10:rel/dir" -> "cifar10:/abs/rel/dir", "npy:x.npy,y.npy" -> both absolute; "fashion-mnist" (embedded) stays. */
function dataSpec(spec: string): string {
  const colon = spec.indexOf(":");
  if (colon < 0) return spec;
  const kind = spec.slice(0, colon);
  const rest = spec.slice(colon + 1);
  const paths = kind === "npy" ? rest.split(",") : [rest];
  return `${kind}:${paths.map((p) => resolve(p)).join(",")}`;
}

/**
 * The plan of a job, as workers will receive it.
 *
 * @example
 * const plan = surfacePlan(job); // { version: 1, model: { spec: "/abs/resnet56.onnx" }, ... }
 */
export function surfacePlan(job: QueuedSurfaceJob): SurfacePlan {
  const { sources } = job;
  const model: ModelSource = { ...sources.model, spec: modelSpec(sources.model.spec) };
  const params = absolute(sources.model.params);
  if (params !== undefined) model.params = params;
  return {
    version: PLAN_VERSION,
    model,
    data: {
      ...sources.data,
      spec: dataSpec(sources.data.spec),
      test: job.test !== undefined,
      ...(sources.data.read
        ? {
            read: {
              ...sources.data.read,
              ...(sources.data.read.testData !== undefined
                ? { testData: dataSpec(sources.data.read.testData) }
                : {}),
            },
          }
        : {}),
    },
    directions: resolve(job.dirFile),
    grid: { x: Array.from(job.grid.x), y: job.grid.y ? Array.from(job.grid.y) : null },
    evaluate: { ...job.evaluate },
    identity: planIdentity({
      model: job.model,
      theta: job.theta,
      directions: job.directions,
      train: job.train,
      ...(job.test ? { test: job.test } : {}),
      loss: job.evaluate.loss,
      task: job.evaluate,
      ...(job.shard ? { shard: job.shard } : {}),
    }),
  };
}

/** The plan as stored in the surface file: without the grid, which the file holds as x/y coordinates. */
function planForFile(plan: SurfacePlan): string {
  const { grid: _grid, ...rest } = plan;
  return JSON.stringify(rest);
}

/**
 * Creates or resumes the surface file, publishes the plan and queues every chunk with points still missing.
 * Nothing is evaluated here; run `losscape worker` processes, and collect with `collectSurface`.
 *
 * @example
 * const target = { connection: parseQueueUrl("redis://127.0.0.1:6379") };
 * const { plan, jobs } = await submitSurface(target, job, { chunkSize: 4 });
 */
export async function submitSurface(
  target: QueueTarget,
  job: QueuedSurfaceJob,
  { chunkSize = 1 }: SubmitOptions = {},
): Promise<Submission> {
  const dims = job.grid.y ? 2 : 1;
  if (job.directions.length !== dims) {
    throw new Error(
      `submitSurface(): a ${dims}D grid needs ${dims} direction(s), got ${job.directions.length}`,
    );
  }
  for (const [k, d] of job.directions.entries()) {
    if (d.length !== job.theta.length)
      throw new Error(
        `submitSurface(): direction ${k + 1} has ${d.length} values but theta has ${job.theta.length}`,
      );
  }
  if (!Number.isInteger(chunkSize) || chunkSize < 1)
    throw new Error(`submitSurface(): 'chunkSize' must be a positive integer, got ${chunkSize}`);
  const name = target.name ?? DEFAULT_QUEUE_NAME;
  checkQueueName(name);
  const plan = surfacePlan(job);
  const id = planId(plan);
  const c = target.connection;
  const meta = Object.fromEntries(Object.entries(job.meta ?? {}).map(([k, v]) => [k, redact(v, c)]));
  // Connect before touching the file, so a wrong URL or password changes nothing.
  const client = await connectRedis(target, "submit");
  const queue = openQueue(target);
  try {
    const surface = openSurfaceFile(
      job.path,
      job.grid,
      planQuantities(plan),
      job.dirFile,
      plan.identity,
      meta,
      {
        queue_plan_id: id,
        queue_plan: planForFile(plan),
        queue_chunk: String(chunkSize),
        queue_name: name,
        queue_url: c.display,
        ...(job.refine !== undefined ? { refine: job.refine } : {}),
      },
      plan.evaluate.lossCap,
    );
    let todo: number[] = [];
    let tag: string | undefined;
    if (job.refine !== undefined) {
      // The first round (the coarse grid, or where a resumed refinement stands); the collector
      // decides the next rounds from the values that come back.
      todo = refineStep(surface, job.refine, job.shard);
      tag = `r${surface.done.filter((v) => v !== POINT.NOT_COMPUTED && v !== POINT.INTERPOLATED).length}`;
      if (todo.length === 0) writeSurface(job.path, surface);
    } else {
      if (surface.meta["refine"] !== undefined) {
        // A refined file submitted without --refine: its interpolated points are computed now.
        delete surface.meta["refine"];
        reopenInterpolated(surface);
        writeSurface(job.path, surface);
      }
      for (let k = 0; k < gridSize(job.grid); k++)
        if (inShard(k, job.shard) && !surface.done[k]) todo.push(k);
    }
    const jobs = todo.length ? await enqueuePlan(queue, client, target, id, plan, todo, chunkSize, tag) : 0;
    return { plan: id, points: todo.length, jobs, surface };
  } finally {
    await queue.close();
    client.disconnect();
  }
}
