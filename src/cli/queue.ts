// Queue commands: `losscape worker` evaluates chunks of surfaces from a Redis
// queue, `losscape collect` writes a submitted surface's results into its file,
// and the `--queue` options of `losscape surface` submit one. Each parses its
// options, calls src/queue, and reports; passwords never reach the output.
// BullMQ takes about a second to import, so src/queue is loaded only when used.

import type { Command, OptionValues } from "@commander-js/extra-typings";
import { parseSubset } from "../data/transform.ts";
import type { LossName } from "../engine/engine.ts";
import type { Surface } from "../formats/surface-file.ts";
import { parseQueueUrl, type QueueConnection, type QueueTarget } from "../queue/connection.ts";
import type { QueuedSurfaceJob } from "../queue/submit.ts";
import {
  cacheLimits,
  type DataFlags,
  type ModelFlags,
  prefixCacheOptions,
  readOptionsFromFlags,
  taskFromFlags,
} from "./_options.ts";
import { positiveInt, positiveNumber } from "./_parse.ts";
import { startProgress } from "./progress.ts";

/** Environment variable holding the Redis password, so that it stays out of command lines and `ps`. */
export const PASSWORD_ENV = "LOSSCAPE_REDIS_PASSWORD";

const DEFAULT_NAME = "surfaces";

function connectionOf(url: string): QueueConnection {
  const password = process.env[PASSWORD_ENV];
  return parseQueueUrl(url, { option: "--queue", ...(password ? { password } : {}) });
}

function queueName(text: string): string {
  if (text === "" || text.includes(":"))
    throw new Error(`--queue-name '${text}' must be non-empty without ':'`);
  return text;
}

/** `collect` command hint for a surface file on a queue. */
function collectHint(target: QueueTarget, path: string): string {
  const name = target.name && target.name !== DEFAULT_NAME ? ` --queue-name ${target.name}` : "";
  return `losscape collect --queue ${target.connection.display}${name} ${path}`;
}

/**
 * Adds --queue, --queue-name, --chunk and --detach to a command (`losscape surface`).
 *
 * @example
 * queueOptions(dataOptions(modelOptions(program.command("surface")))).action(async (o) => { if (o.queue) ... });
 */
export function queueOptions<A extends unknown[], O extends OptionValues, G extends OptionValues>(
  cmd: Command<A, O, G>,
) {
  return cmd
    .option(
      "--queue <url>",
      `compute on 'losscape worker' processes through this Redis (redis://[user[:password]@]host[:port][/db], rediss:// for TLS; password also from $${PASSWORD_ENV})`,
    )
    .option("--queue-name <name>", "queue the workers serve", DEFAULT_NAME)
    .option("--chunk <points>", "grid points per queued job", positiveInt("--chunk"), 1)
    .option("--detach", "submit and exit; collect later with 'losscape collect'")
    .option(
      "--collector-lock-seconds <s>",
      "seconds a collector's hold on the surface lasts without renewal; a second collector waits this long, then stops",
      positiveNumber("--collector-lock-seconds"),
      15,
    );
}

/** What `runQueuedSurface` needs from the surface command's options. */
export interface QueuedSurfaceFlags extends Omit<ModelFlags, "initSeed">, DataFlags {
  batchSize: number;
  loss: LossName;
  ignoreIndex?: number;
  classAxis?: "1" | "-1";
  lossCap?: number;
  flush: number;
  queue?: string;
  queueName: string;
  chunk: number;
  detach?: true;
  collectorLockSeconds: number;
}

/**
 * Submits a surface to the queue and (unless --detach) collects it with the progress display; returns the
 * finished surface, or undefined when detached.
 *
 * @example
 * if (o.queue) printSummary(await runQueuedSurface({ ...o, queue: o.queue }, { model, theta, directions, grid, train, path, dirFile }));
 */
export async function runQueuedSurface(
  o: QueuedSurfaceFlags & { queue: string },
  job: Omit<QueuedSurfaceJob, "evaluate" | "sources">,
): Promise<Surface | undefined> {
  const target: QueueTarget = { connection: connectionOf(o.queue), name: queueName(o.queueName) };
  const { submitSurface } = await import("../queue/submit.ts");
  const submitted = await submitSurface(
    target,
    {
      ...job,
      evaluate: {
        batchSize: o.batchSize,
        ...taskFromFlags(o),
        loss: o.loss,
        ...(o.lossCap !== undefined ? { lossCap: o.lossCap } : {}),
      },
      sources: {
        model: {
          spec: o.model,
          ...(o.params ? { params: o.params } : {}),
          ...(o.input ? { input: o.input } : {}),
          ...(o.output ? { output: o.output } : {}),
          ...(o.inputShape ? { inputShape: o.inputShape } : {}),
          ...(o.allowFoldedBn ? { allowFoldedBatchNorm: true } : {}),
          ...(o.trainable ? { trainable: o.trainable.source } : {}),
          ...(o.constant ? { constant: o.constant.source } : {}),
          ...(o.lossOutput ? { lossOutput: o.lossOutput } : {}),
          ...(o.targetsInput ? { targetsInput: o.targetsInput } : {}),
        },
        data: {
          spec: o.data,
          ...(o.subset ? { subset: parseSubset(o.subset) } : {}),
          seed: o.dataSeed,
          ...(Object.keys(readOptionsFromFlags(o)).length ? { read: readOptionsFromFlags(o) } : {}),
        },
      },
    },
    { chunkSize: o.chunk },
  );
  console.log(
    `submitted ${submitted.points} point(s) of ${job.path}${job.refine !== undefined ? ` (the first round of --refine ${job.refine}; the collector queues the next rounds)` : ""} as ${submitted.jobs} job(s) (plan ${submitted.plan}) to queue '${o.queueName}' at ${target.connection.display}`,
  );
  if (o.detach) {
    console.log(`collect with: ${collectHint(target, job.path)}`);
    return undefined;
  }
  return collect(target, job.path, o.flush, false, o.collectorLockSeconds);
}

async function collect(
  target: QueueTarget,
  path: string,
  flush: number,
  requeue: boolean,
  lockSeconds: number,
): Promise<Surface> {
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  let bar: ReturnType<typeof startProgress> | undefined;
  const t0 = performance.now();
  const { collectSurface } = await import("../queue/collect.ts");
  try {
    const r = await collectSurface(target, path, {
      flushSeconds: flush,
      requeue,
      lockSeconds,
      signal: abort.signal,
      log: (line) => console.error(line),
      onProgress: (done, total) => {
        bar ??= startProgress("surface", total, { unit: "points" });
        bar.update(done);
      },
    });
    bar?.stop();
    const secs = (performance.now() - t0) / 1000;
    console.log(
      `collected ${r.received} points in ${secs.toFixed(1)} s (${(r.received / Math.max(secs, 1e-9)).toFixed(2)} points/s${r.duplicates ? `, ${r.duplicates} duplicate results ignored` : ""}) -> ${path}`,
    );
    return r.surface;
  } catch (e) {
    bar?.stop();
    throw e;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/**
 * Adds `losscape worker` and `losscape collect` to the program.
 *
 * @example
 * registerQueueCommands(program);
 */
export function registerQueueCommands(program: Command): void {
  prefixCacheOptions(program.command("worker"))
    .description("evaluate chunks of surfaces submitted with 'losscape surface --queue', until stopped")
    .requiredOption(
      "--queue <url>",
      `Redis URL (redis://..., rediss:// for TLS; password also from $${PASSWORD_ENV})`,
    )
    .option("--queue-name <name>", "queue to serve", DEFAULT_NAME)
    .option("--threads <n>", "ONNX Runtime threads (default: all cores)", positiveInt("--threads"))
    .option("--name <name>", "worker name shown on jobs and in messages (default host-pid)")
    .option(
      "--lock-seconds <s>",
      "job lock; a killed worker's job is requeued after about twice this",
      positiveNumber("--lock-seconds"),
      30,
    )
    .option("--max-jobs <n>", "stop after this many jobs", positiveInt("--max-jobs"))
    .option("--idle-exit <s>", "stop after this many seconds without a job", positiveNumber("--idle-exit"))
    .action(async (o) => {
      const target: QueueTarget = { connection: connectionOf(o.queue), name: queueName(o.queueName) };
      const { startSurfaceWorker } = await import("../queue/worker.ts");
      const worker = await startSurfaceWorker(target, {
        lockSeconds: o.lockSeconds,
        prefixCache: cacheLimits(o),
        log: (line) => console.error(line),
        ...(o.threads ? { threads: o.threads } : {}),
        ...(o.name ? { workerName: o.name } : {}),
        ...(o.maxJobs ? { maxJobs: o.maxJobs } : {}),
        ...(o.idleExit ? { idleSeconds: o.idleExit } : {}),
      });
      // SIGINT/SIGTERM: finish the job in hand, then stop (a second signal kills as usual).
      const onSignal = () => {
        console.error(`worker ${worker.name}: stopping after the current job`);
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
        void worker.close();
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      const { jobs, points } = await worker.finished;
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      console.error(`worker ${worker.name}: ${jobs} job(s), ${points} point(s)`);
    });

  program
    .command("collect")
    .description("write the results of a surface submitted with --queue into its file, until it is complete")
    .argument("<file>", "the surface file the submission created")
    .requiredOption("--queue <url>", `Redis URL (password also from $${PASSWORD_ENV})`)
    .option("--queue-name <name>", "queue the surface was submitted to", DEFAULT_NAME)
    .option("--flush <seconds>", "seconds between writes of finished points", positiveNumber("--flush"), 10)
    .option(
      "--collector-lock-seconds <s>",
      "seconds a collector's hold on the surface lasts without renewal; a second collector waits this long, then stops",
      positiveNumber("--collector-lock-seconds"),
      15,
    )
    .action(async (file, o) => {
      const target: QueueTarget = { connection: connectionOf(o.queue), name: queueName(o.queueName) };
      await collect(target, file, o.flush, true, o.collectorLockSeconds);
      console.log(`see it with: losscape inspect ${file}`);
    });
}
