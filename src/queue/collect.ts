// Collecting a queued surface: results reported by workers are read from the
// plan's Redis stream and written into the surface file as they arrive. A
// result leaves Redis only after the file holding it has been written, so a
// collector killed at any moment loses nothing: the next one replays what the
// file lacks. Points already done are never overwritten (duplicates ignored).

import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { gridSize, inShard, parseShard, type Shard } from "../core/grid.ts";
import { POINT, POINT_NAMES, readSurface, type Surface, writeSurface } from "../formats/surface-file.ts";
import { refineStep } from "../landscape/surface.ts";
import {
  checkQueueName,
  connectRedis,
  DEFAULT_QUEUE_NAME,
  enqueuePlan,
  nextStreamId,
  openQueue,
  planJobIds,
  planKeys,
  redactError,
} from "./_redis.ts";
import type { QueueTarget } from "./connection.ts";
import { decodeValues, PLAN_VERSION, planQuantities, type SurfacePlan } from "./plan.ts";
import { type QueuedSurfaceJob, type SubmitOptions, submitSurface } from "./submit.ts";

/** Options of `collectSurface`. */
export interface CollectOptions {
  /** Seconds between writes of the file (default 10); results stay in Redis until written. */
  flushSeconds?: number;
  /** Seconds between checks that the plan and its jobs are still in Redis, requeueing what is missing (default 30). */
  reconcileSeconds?: number;
  /** Seconds without results (and no job running) before a hint that no worker may be running (default 60). */
  quietSeconds?: number;
  /** Called whenever results arrive, with the points done (of this surface or shard) and their total. */
  onProgress?: (done: number, total: number) => void;
  /** Messages for the user (resuming, hints). */
  log?: (line: string) => void;
  /** Stops collecting: the file is written and the promise rejects with "interrupted". */
  signal?: AbortSignal;
  /** Queue jobs for the missing points before collecting (default true; false right after `submitSurface`). */
  requeue?: boolean;
  /**
   * Seconds the collector's hold on the surface lasts without renewal (default 15; renewed every third of it).
   * Only one collector per surface runs: another one waits this long for the hold to expire (a killed collector's
   * does), then gives up with an error.
   */
  lockSeconds?: number;
}

/** What `collectSurface` did. */
export interface Collected {
  surface: Surface;
  /** Points written by this run. */
  received: number;
  /** Results for points that were already done (a retried or resubmitted chunk), ignored. */
  duplicates: number;
  /** Points done when the run started. */
  resumed: number;
  /** Seconds workers spent evaluating the results received (the rest of the wall time is waiting and the queue). */
  evaluationSeconds: number;
}

/** The plan a file was submitted with, rebuilt with the grid from the file's coordinates. */
function planOfFile(
  path: string,
  s: Surface,
): { id: string; plan: SurfacePlan; chunk: number; name: string } {
  const { queue_plan_id: id, queue_plan: stored, queue_chunk: chunk, queue_name: name } = s.meta;
  if (!id || !stored || !chunk || !name) {
    throw new Error(
      `'${path}' was not submitted to a queue (no queue_plan in its metadata); submit it with losscape surface ... --queue URL`,
    );
  }
  const p = JSON.parse(stored) as Omit<SurfacePlan, "grid">;
  if (p.version !== PLAN_VERSION)
    throw new Error(
      `'${path}' was submitted with plan version ${p.version}; this losscape reads version ${PLAN_VERSION}`,
    );
  const plan: SurfacePlan = {
    version: p.version,
    model: p.model,
    data: p.data,
    directions: p.directions,
    grid: { x: Array.from(s.x), y: s.y ? Array.from(s.y) : null },
    evaluate: p.evaluate,
    identity: p.identity,
  };
  return { id, plan, chunk: Number(chunk), name };
}

/** Stream entry fields [k1, v1, k2, v2, ...] as an object. */
function fieldsOf(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
}

/**
 * Collects the results of a submitted surface into its file until every point (of its shard) is done, then
 * removes the plan's records from Redis. Resumes from the file: a restarted collector picks up where the last
 * one stopped. Also makes sure every missing point has a job, so it can follow a submission whose jobs were lost.
 * Rejects, after writing the file, when a chunk failed (a worker refused it or kept failing).
 *
 * @example
 * const { surface } = await collectSurface({ connection: parseQueueUrl("redis://127.0.0.1:6379") }, "surf.h5");
 */
export async function collectSurface(
  target: QueueTarget,
  path: string,
  options: CollectOptions = {},
): Promise<Collected> {
  const {
    flushSeconds = 10,
    reconcileSeconds = 30,
    quietSeconds = 60,
    onProgress,
    log = () => {},
    signal,
    requeue = true,
    lockSeconds = 15,
  } = options;
  if (!(Number.isFinite(lockSeconds) && lockSeconds > 0)) {
    throw new Error(
      `collectSurface(): 'lockSeconds' must be a positive number of seconds, got ${lockSeconds}`,
    );
  }
  const surface = readSurface(path);
  const { id, plan, chunk, name } = planOfFile(path, surface);
  if ((target.name ?? DEFAULT_QUEUE_NAME) !== name) {
    throw new Error(
      `'${path}' was submitted to queue '${name}', not '${target.name ?? DEFAULT_QUEUE_NAME}'; collect it from queue '${name}'`,
    );
  }
  checkQueueName(name);
  const shard: Shard | undefined =
    surface.meta.shard && surface.meta.shard !== "all"
      ? parseShard(surface.meta.shard, "shard in the file")
      : undefined;
  const grid = { x: surface.x, y: surface.y };
  const size = gridSize(grid);
  const mine: number[] = [];
  for (let k = 0; k < size; k++) if (inShard(k, shard)) mine.push(k);
  let done = mine.filter(
    (k) => surface.done[k] !== POINT.NOT_COMPUTED && surface.done[k] !== POINT.INTERPOLATED,
  ).length;
  const resumed = done;
  const quantities = planQuantities(plan);
  for (const q of quantities)
    if (!surface.values[q]) throw new Error(`'${path}' has no '${q}' but its plan computes it`);
  const keys = planKeys(target, id);
  const c = target.connection;
  // --refine: rounds of points, each decided from the values of the rounds before (replayed from
  // the file on a resume); the last round interpolates the rest. Else every missing point.
  const refine = surface.meta["refine"] || undefined;
  let pending = new Set(refine ? refineStep(surface, refine, shard) : mine.filter((k) => !surface.done[k]));
  const dirty0 = refine !== undefined && pending.size === 0;
  const total = () => (refine ? done + pending.size : mine.length);
  const missing = () => [...pending];
  // A round's jobs get ids of their own: a chunk of the round before may still be finishing.
  const tag = () => (refine ? `r${done}` : undefined);

  const client = await connectRedis(target, "collect");
  const reader = await connectRedis(target, "collect-stream").catch((e: unknown) => {
    client.disconnect();
    throw e;
  });
  let hold: CollectorHold;
  try {
    hold = await holdCollector(client, keys.collector, lockSeconds, path, id, log);
  } catch (e) {
    client.disconnect();
    reader.disconnect();
    throw e;
  }
  const queue = openQueue(target);
  let received = 0;
  let duplicates = 0;
  let evaluationSeconds = 0;
  let dirty = dirty0;
  try {
    if (resumed > 0) log(`resuming: ${resumed} of ${total()} points are in '${path}'`);
    if (pending.size > 0 && requeue)
      await enqueuePlan(queue, client, target, id, plan, missing(), chunk, tag());
    onProgress?.(done, total());

    let lastId = "0"; // replay everything not yet trimmed: it may be missing from the file
    let trimmedTo = "0";
    const now = () => performance.now();
    let lastFlush = now();
    let lastFailedCheck = now();
    let lastReconcile = now();
    let lastResult = now();
    let hinted = false;

    const flush = async () => {
      if (dirty) writeSurface(path, surface);
      dirty = false;
      lastFlush = now();
      // Every entry up to lastId is now in the file: drop them from Redis.
      if (lastId !== trimmedTo) {
        await client.xtrim(keys.results, "MINID", nextStreamId(lastId));
        trimmedTo = lastId;
      }
    };

    while (pending.size > 0) {
      if (hold.lost()) {
        await flush();
        throw new Error(
          `another collector took over '${path}' (plan ${id}) after this one did not renew its hold for ${lockSeconds} s; ${done} of ${total()} points are in the file`,
        );
      }
      if (signal?.aborted) {
        await flush();
        throw new Error(
          `interrupted; ${done} of ${total()} points are in '${path}' (collect again to continue)`,
        );
      }
      const reply = (await reader.xread("COUNT", 1000, "BLOCK", 1000, "STREAMS", keys.results, lastId)) as
        | [string, [string, string[]][]][]
        | null;
      for (const [, entries] of reply ?? []) {
        for (const [entryId, flat] of entries) {
          lastId = entryId;
          const f = fieldsOf(flat);
          const where = `result ${entryId} of plan ${id} (job ${f.job ?? "?"}, worker ${f.worker ?? "?"})`;
          let points: number[];
          let values: ReturnType<typeof decodeValues>;
          let status: number[];
          try {
            points = JSON.parse(f.points ?? "") as number[];
            if (!Array.isArray(points) || !points.every((k) => Number.isInteger(k) && k >= 0 && k < size))
              throw new Error(`points must be indices of the ${size}-point grid`);
            values = decodeValues(
              JSON.parse(f.values ?? "") as Record<string, string>,
              points.length,
              "values",
            );
            const absent = quantities.filter((q) => !values[q]);
            if (absent.length) throw new Error(`no ${absent.join(", ")}`);
            // Results of workers from before point statuses carry none: computed.
            status =
              f.status === undefined ? points.map(() => POINT.COMPUTED) : (JSON.parse(f.status) as number[]);
            if (
              !Array.isArray(status) ||
              status.length !== points.length ||
              !status.every((c) => Number.isInteger(c) && c >= POINT.COMPUTED && c < POINT_NAMES.length)
            )
              throw new Error(`status must hold one point status (1..${POINT_NAMES.length - 1}) per point`);
          } catch (e) {
            // A malformed entry (another losscape version?) must not stop the surface; its chunk is requeued later.
            log(`ignoring ${where}: ${(e as Error).message}`);
            continue;
          }
          points.forEach((k, i) => {
            if (!inShard(k, shard)) return;
            if (surface.done[k]) {
              duplicates++;
              return;
            }
            for (const q of quantities) surface.values[q]![k] = values[q]![i]!;
            surface.done[k] = status[i]!;
            pending.delete(k);
            done++;
            received++;
            dirty = true;
          });
          evaluationSeconds += Number(f.seconds) || 0;
          lastResult = now();
          hinted = false;
        }
      }
      if (refine && pending.size === 0) {
        pending = new Set(refineStep(surface, refine, shard));
        dirty = true;
        if (pending.size > 0) {
          await flush();
          await enqueuePlan(queue, client, target, id, plan, missing(), chunk, tag());
        }
      }
      onProgress?.(done, total());
      if (pending.size === 0) break;

      if (now() - lastFlush >= flushSeconds * 1000) await flush();
      if (now() - lastFailedCheck >= 2000) {
        lastFailedCheck = now();
        const failed = await planJobIds(queue, id, ["failed"]);
        if (failed.length) {
          const job = await queue.getJob(failed[0]!);
          await flush();
          throw new Error(
            `${failed.length} chunk job(s) of '${path}' failed; ${failed[0]}: ${redactError(job?.failedReason ?? "unknown reason", c)}. ${done} of ${total()} points are in the file; fix the cause and collect again (failed chunks are requeued).`,
          );
        }
      }
      if (now() - lastReconcile >= reconcileSeconds * 1000) {
        lastReconcile = now();
        // Jobs or the plan lost (a Redis restart without persistence): queue them again. Chunks still queued or
        // running keep their ids and are not duplicated.
        await enqueuePlan(queue, client, target, id, plan, missing(), chunk, tag());
      }
      if (!hinted && now() - lastResult >= quietSeconds * 1000) {
        hinted = true;
        // Long points keep workers busy for minutes; only a queue nobody works on deserves a hint.
        if ((await planJobIds(queue, id, ["active"])).length === 0)
          log(
            `no results for ${quietSeconds} s and no job running; is a worker running? losscape worker --queue ${c.display} --queue-name ${name}`,
          );
      }
    }
    await flush();
    // Done: remove the plan, its results and any duplicate jobs still queued.
    await client.del(keys.plan, keys.results);
    for (const j of await planJobIds(queue, id, ["waiting", "delayed", "prioritized"])) await queue.remove(j);
    return { surface, received, duplicates, resumed, evaluationSeconds };
  } catch (e) {
    // Keep what arrived; it is also still in Redis, so a failed write loses nothing either.
    if (dirty) writeSurface(path, surface);
    throw e;
  } finally {
    await hold.release();
    await queue.close();
    client.disconnect();
    reader.disconnect();
  }
}

/** A collector's hold on a surface (a Redis key with an expiry, renewed in the background). */
interface CollectorHold {
  /** Whether the hold expired and someone else took it. */
  lost(): boolean;
  /** Stops renewing and deletes the key if it is still ours. */
  release(): Promise<void>;
}

const RENEW = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`;

/**
 * Takes the collector's hold on a plan, waiting up to `lockSeconds` (plus a second) for a previous holder's to
 * expire; throws when another collector keeps renewing it.
 */
async function holdCollector(
  client: Awaited<ReturnType<typeof connectRedis>>,
  key: string,
  lockSeconds: number,
  path: string,
  id: string,
  log: (line: string) => void,
): Promise<CollectorHold> {
  const token = `${hostname()}:${process.pid}:${randomBytes(6).toString("hex")}`;
  const ttl = Math.ceil(lockSeconds * 1000);
  const deadline = performance.now() + ttl + 1000;
  let waited = false;
  for (;;) {
    if ((await client.set(key, token, "PX", ttl, "NX")) === "OK") break;
    if (performance.now() > deadline) {
      const holder = (await client.get(key)) ?? "?";
      throw new Error(
        `another collector is collecting '${path}' (plan ${id}, held by ${holder}); only one collector per surface can run: wait for it to finish or stop it (a killed collector's hold expires within ${lockSeconds} s)`,
      );
    }
    if (!waited) log(`waiting up to ${lockSeconds} s for another collector's hold on '${path}' to end`);
    waited = true;
    await new Promise((r) => setTimeout(r, 250));
  }
  let lost = false;
  const timer = setInterval(() => {
    client.eval(RENEW, 1, key, token, String(ttl)).then(
      (r) => {
        if (r === 0) lost = true;
      },
      () => {}, // a failed renewal is retried on the next tick; Redis errors surface in the main loop
    );
  }, ttl / 3);
  timer.unref();
  return {
    lost: () => lost,
    async release() {
      clearInterval(timer);
      await client.eval(RELEASE, 1, key, token).catch(() => {});
    },
  };
}

/**
 * Submits a surface and collects it: the queued counterpart of `computeSurface`, with the same file.
 *
 * @example
 * const { surface } = await computeSurfaceOnQueue(target, job, { chunkSize: 4, onProgress: (d, n) => bar.update(d) });
 */
export async function computeSurfaceOnQueue(
  target: QueueTarget,
  job: QueuedSurfaceJob,
  options: SubmitOptions & CollectOptions = {},
): Promise<Collected> {
  await submitSurface(target, job, options);
  return collectSurface(target, job.path, { ...options, requeue: false });
}
