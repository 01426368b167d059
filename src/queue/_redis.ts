// Internal: Redis keys of a queued surface, connections that fail fast with a
// redacted message, and the result stream's writes. Used by submit, collect
// and worker; not re-exported.

import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { type QueueConnection, type QueueTarget, redact, redisOptions } from "./connection.ts";
import { type ChunkJob, chunkJobId, chunkPoints, type SurfacePlan } from "./plan.ts";

export const DEFAULT_QUEUE_NAME = "surfaces";
export const DEFAULT_PREFIX = "losscape";

/** Redis keys of one plan. BullMQ's own keys are `<prefix>:<name>:<type or job id>`; job ids never contain ':'. */
export function planKeys(
  target: QueueTarget,
  plan: string,
): { plan: string; results: string; collector: string } {
  const base = `${target.prefix ?? DEFAULT_PREFIX}:${target.name ?? DEFAULT_QUEUE_NAME}`;
  return {
    plan: `${base}:plan:${plan}`,
    results: `${base}:results:${plan}`,
    collector: `${base}:collector:${plan}`,
  };
}

/** Checks a queue name the way BullMQ will, with a message that names the option. */
export function checkQueueName(name: string): void {
  if (name === "" || name.includes(":"))
    throw new Error(`queue name '${name}' must be non-empty and may not contain ':'`);
}

/**
 * A connected ioredis client; an unreachable server or a refused password throws at once (instead of
 * ioredis retrying forever), with the password removed from the message.
 */
export async function connectRedis(target: QueueTarget, purpose: string): Promise<Redis> {
  const c = target.connection;
  const client = new Redis({
    ...redisOptions(c),
    lazyConnect: true,
    connectTimeout: 10_000,
    connectionName: `losscape-${purpose}`,
  });
  // The handshake's real cause (WRONGPASS, ECONNREFUSED, a TLS error) arrives as an 'error' event, while
  // connect() itself may only reject with "Connection is closed".
  let cause: Error | undefined;
  client.on("error", (e: Error) => {
    cause ??= e;
  });
  try {
    await client.connect();
    await client.ping();
  } catch (e) {
    client.disconnect();
    throw new Error(`cannot use the queue at ${c.display}: ${redact((cause ?? (e as Error)).message, c)}`);
  }
  return client;
}

/** A BullMQ queue handle for the target (the caller closes it). */
export function openQueue(target: QueueTarget): Queue {
  const queue = new Queue(target.name ?? DEFAULT_QUEUE_NAME, {
    connection: redisOptions(target.connection),
    prefix: target.prefix ?? DEFAULT_PREFIX,
  });
  queue.on("error", () => {
    // Connection errors surface as rejected calls; ioredis keeps reconnecting.
  });
  return queue;
}

/**
 * XADD to a plan's result stream only while its plan record exists, so a late duplicate from a worker after the
 * collector finished (and deleted both keys) leaves nothing behind. Returns the entry id, or null when the plan is gone.
 */
export async function addResult(
  client: Redis,
  keys: { plan: string; results: string },
  fields: Record<string, string>,
): Promise<string | null> {
  const args = Object.entries(fields).flat();
  const id = await client.eval(
    "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('XADD', KEYS[2], '*', unpack(ARGV)) end return false",
    2,
    keys.plan,
    keys.results,
    ...args,
  );
  return typeof id === "string" ? id : null;
}

/** The stream id just after `id` ("ms-seq" -> "ms-(seq+1)"), for XTRIM MINID (which keeps ids >= it). */
export function nextStreamId(id: string): string {
  const [ms, seq] = id.split("-");
  return `${ms}-${Number(seq ?? 0) + 1}`;
}

/** Removes the password from an error's message, for printing. */
export function redactError(e: unknown, c: QueueConnection): string {
  return redact(e instanceof Error ? e.message : String(e), c);
}

/** Attempts of a chunk that fails with an ordinary error (a refusal is never retried). */
const ATTEMPTS = 3;

/**
 * Publishes a plan and queues a job for every chunk with points still to do. Idempotent: jobs of chunks still
 * queued or running keep their id and are not queued twice. Failed jobs of the plan are removed first (their
 * reason was reported when they failed) so that their chunks are queued again. Returns the number of jobs sent.
 */
export async function enqueuePlan(
  queue: Queue,
  client: Redis,
  target: QueueTarget,
  id: string,
  plan: SurfacePlan,
  todo: readonly number[],
  chunkSize: number,
  /** Distinguishes the job ids of one round of points from another's (--refine rounds). */
  tag?: string,
): Promise<number> {
  await client.set(planKeys(target, id).plan, JSON.stringify(plan));
  for (const failed of await planJobIds(queue, id, ["failed"])) await queue.remove(failed);
  const chunks = chunkPoints(todo, chunkSize);
  for (let start = 0; start < chunks.length; start += 500) {
    await queue.addBulk(
      chunks.slice(start, start + 500).map(({ chunk, points }) => ({
        name: "points",
        data: { plan: id, points } satisfies ChunkJob,
        opts: {
          jobId: chunkJobId(tag ? `${id}.${tag}` : id, chunkSize, chunk),
          attempts: ATTEMPTS,
          backoff: { type: "fixed", delay: 1000 },
          removeOnComplete: true,
          removeOnFail: false,
        },
      })),
    );
  }
  return chunks.length;
}

/** Ids of a plan's jobs in the given states. */
export async function planJobIds(
  queue: Queue,
  id: string,
  states: ("failed" | "waiting" | "delayed" | "prioritized" | "active")[],
): Promise<string[]> {
  return (await queue.getRanges(states)).filter((j) => j.startsWith(`${id}.`));
}
