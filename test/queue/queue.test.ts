// Surfaces computed by worker processes through a private redis-server: a
// worker killed mid-job, a collector killed midway, a refused job, TLS and passwords.
// Every finished file must equal the single-process computeSurface result bit for bit.

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { axisValues, type Grid } from "../../src/core/grid.ts";
import { loadDataset } from "../../src/data/load.ts";
import { createOrtEngine } from "../../src/engine/ort.ts";
import { readSurface, type Surface } from "../../src/formats/surface-file.ts";
import { directionsAt, makeDirections } from "../../src/landscape/plan.ts";
import { computeSurface } from "../../src/landscape/surface.ts";
import { saveModel } from "../../src/model/checkpoint.ts";
import { collectSurface, computeSurfaceOnQueue } from "../../src/queue/collect.ts";
import { parseQueueUrl } from "../../src/queue/connection.ts";
import { encodeValues } from "../../src/queue/plan.ts";
import { type QueuedSurfaceJob, submitSurface } from "../../src/queue/submit.ts";
import { startSurfaceWorker } from "../../src/queue/worker.ts";
import { zooModel } from "../../src/zoo/zoo.ts";
import { systemTool } from "../_tools.ts";
import { tempDir } from "../helpers.ts";
import { type LocalRedis, selfSignedCertificate, startRedis } from "./_redis.ts";

const BIN = new URL("../../bin/losscape.js", import.meta.url).pathname;
const VICTIM = new URL("./_victim.ts", import.meta.url).pathname;
const { dir, cleanup } = tempDir("losscape-queue-");
afterAll(() => cleanup());

const SUBSET = 200;
const model = zooModel("mlp", { seed: 0 });
const base = join(dir, "mlp");
const dirFile = join(dir, "dirs.h5");
const grid: Grid = { x: axisValues({ min: -1, max: 1, num: 5 }), y: axisValues({ min: -1, max: 1, num: 5 }) };
const train = loadDataset("fashion-mnist", "train", { subset: { count: SUBSET }, seed: 0 });
let directions: Float32Array[];
let reference: Surface;
let redis: LocalRedis;

/** The CLI arguments of the reference surface, computed through a queue. */
function surfaceArgs(out: string): string[] {
  return [
    "surface",
    "--model",
    `${base}.onnx`,
    "--params",
    `${base}.safetensors`,
    "--subset",
    String(SUBSET),
    "--x",
    "-1:1:5",
    "--y",
    "-1:1:5",
    "--dir-file",
    dirFile,
    "--out",
    out,
  ];
}

/** A child process whose output is kept, with a way to wait for a line. */
function run(args: string[], env: Record<string, string> = {}) {
  const child: ChildProcess = spawn(process.execPath, args, {
    env: { ...process.env, CI: "true", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const p = {
    child,
    out: "",
    err: "",
    exit: new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code))),
    /** Resolves with the first match of `re` in stdout + stderr (rejects if the process exits first). */
    waitFor(re: RegExp): Promise<RegExpMatchArray> {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = (p.out + p.err).match(re);
          if (m) {
            child.stdout?.off("data", check);
            child.stderr?.off("data", check);
            resolve(m);
          }
        };
        child.stdout?.on("data", check);
        child.stderr?.on("data", check);
        void p.exit.then((code) => reject(new Error(`exited (${code}) before ${re}:\n${p.out}\n${p.err}`)));
        check();
      });
    },
  };
  child.stdout?.on("data", (d: Buffer) => {
    p.out += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    p.err += d.toString();
  });
  return p;
}

const cli = (args: string[], env?: Record<string, string>) => run([BIN, ...args], env);

/** Every value and status of two surfaces identical (NaN-safe, -0 distinct). */
function expectIdentical(a: Surface, b: Surface): void {
  expect(Array.from(a.done)).toEqual(Array.from(b.done));
  for (const q of ["train_loss", "train_acc"] as const) {
    const x = a.values[q]!;
    const y = b.values[q]!;
    const differing = Array.from(x).findIndex((v, i) => !Object.is(v, y[i]));
    expect(differing, `${q} differs at point ${differing}`).toBe(-1);
  }
}

async function until(condition: () => boolean, what: string, detail = () => "", seconds = 40): Promise<void> {
  const end = performance.now() + seconds * 1000;
  while (!condition()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}\n${detail()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Keys a finished plan must not leave behind. */
async function planKeysLeft(url: string): Promise<string[]> {
  const client = new Redis(url);
  try {
    return (await client.keys("losscape:*")).filter((k) => /:(plan|results|collector):/.test(k));
  } finally {
    client.disconnect();
  }
}

const target = (name?: string) => ({ connection: parseQueueUrl(redis.url), ...(name ? { name } : {}) });

/** The reference surface as a queued job: the workers open the files the reference was computed from. */
function queuedJob(path: string, theta = model.initial): QueuedSurfaceJob {
  return {
    model,
    theta,
    directions,
    grid,
    train,
    path,
    dirFile,
    evaluate: { batchSize: 256, loss: "cross-entropy" },
    sources: {
      model: { spec: `${base}.onnx`, params: `${base}.safetensors` },
      data: { spec: "fashion-mnist", subset: { count: SUBSET }, seed: 0 },
    },
  };
}

/** A port nothing listens on. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 1));
    });
  });
}

const children: ChildProcess[] = [];
const track = <T extends { child: ChildProcess }>(p: T): T => {
  children.push(p.child);
  return p;
};

const redisServer = systemTool("redis-server", "test/queue/queue.test.ts (surfaces on a Redis queue)");
const openssl = systemTool("openssl", "the TLS test of test/queue/queue.test.ts");

describe.skipIf(redisServer === undefined)("surfaces on a queue", () => {
  beforeAll(async () => {
    redis = await startRedis();
    saveModel(model, model.initial, base);
    ({ directions } = directionsAt(dirFile, 2, model, () =>
      makeDirections(model, model.initial, { dims: 2, seed: 0 }),
    ));
    const engine = await createOrtEngine(model, { threads: 1 });
    reference = await computeSurface({
      engine,
      theta: model.initial,
      directions,
      grid,
      train,
      path: join(dir, "reference.h5"),
      dirFile,
      evaluate: { batchSize: 256, loss: "cross-entropy" },
    });
    await engine.dispose();
  });

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await redis?.stop();
  });

  it("a worker killed with SIGKILL while it holds a job loses nothing: three workers and a collector give the single-process surface bit for bit", async () => {
    const out = join(dir, "killed.h5");
    const victim = track(run(["--import", "tsx", VICTIM, redis.url, "killed"]));
    await victim.waitFor(/^ready$/m);
    const collecting = computeSurfaceOnQueue(target("killed"), queuedJob(out), {
      chunkSize: 2,
      flushSeconds: 0.2,
    });
    const [, held] = await victim.waitFor(/^holding (\S+)$/m);
    const workers = [1, 2].map((i) =>
      track(
        cli([
          ...["worker", "--queue", redis.url, "--queue-name", "killed"],
          ...["--threads", "1", "--lock-seconds", "1", "--name", `w${i}`],
        ]),
      ),
    );
    victim.child.kill("SIGKILL");
    const r = await collecting;
    // The killed worker's job was taken over by another worker once its lock expired.
    await Promise.race(
      workers.map((w) => w.waitFor(new RegExp(`job ${held!.replaceAll(".", "\\.")}: 2 point`))),
    );
    for (const w of workers) w.child.kill("SIGTERM");
    expect(await Promise.all(workers.map((w) => w.exit))).toEqual([0, 0]);
    expect(r.received).toBe(25);
    expectIdentical(r.surface, reference);
    expectIdentical(readSurface(out), reference);
    expect(await planKeysLeft(redis.url)).toEqual([]);
  });

  it("a collector killed midway is resumed from the file, with the results that arrived meanwhile; duplicates are ignored", async () => {
    const out = join(dir, "restarted.h5");
    // One worker, let through a given number of jobs at a time.
    let allowed = 10;
    let started = 0;
    const wake: (() => void)[] = [];
    const allow = (n: number) => {
      allowed += n;
      for (const w of wake.splice(0)) w();
    };
    const worker = await startSurfaceWorker(target("restart"), {
      threads: 1,
      onChunk: async () => {
        started++;
        while (allowed === 0) await new Promise<void>((r) => wake.push(r));
        allowed--;
      },
    });
    // Its own queue: a duplicate job of the same plan left by the previous test must not count here.
    const first = track(
      cli([
        ...surfaceArgs(out),
        ...["--queue", redis.url, "--queue-name", "restart", "--flush", "0.1"],
        ...["--collector-lock-seconds", "1"],
      ]),
    );
    await first.waitFor(/submitted 25 point\(s\)/);
    const points = () => readSurface(out).done.filter((v) => v !== 0).length;
    const state = () => `${points()} points in the file, ${started} jobs started\n${first.out}\n${first.err}`;
    await until(() => points() === 10, "10 points in the file", state);
    first.child.kill("SIGKILL");
    await first.exit;
    // 5 more points are computed while no collector runs (the 16th job then waits at the gate).
    allow(5);
    await until(() => started === 16, "15 jobs done", state);
    expect(points()).toBe(10);
    // A late duplicate of a point already in the file, with other values: ignored, never written.
    const done = readSurface(out);
    const k = done.done.indexOf(1);
    const client = new Redis(redis.url);
    await client.xadd(
      `losscape:restart:results:${done.meta.queue_plan_id}`,
      "*",
      ...[
        ...["job", "forged", "worker", "nobody", "points", JSON.stringify([k])],
        ...[
          "values",
          JSON.stringify(encodeValues({ train_loss: [123], train_acc: [0], train_loss_se: [1] })),
          "seconds",
          "0",
        ],
      ],
    );
    client.disconnect();

    const logs: string[] = [];
    const second = collectSurface(target("restart"), out, {
      flushSeconds: 0.1,
      lockSeconds: 1,
      log: (l) => logs.push(l),
    });
    // The killed collector's hold expires within its 1 s; then this one resumes.
    await until(() => logs.some((l) => /resuming/.test(l)), "the collector to start");
    expect(logs.find((l) => /resuming/.test(l))).toMatch(/resuming: 10 of 25 points are in/);
    allow(Number.POSITIVE_INFINITY);
    const r = await second;
    await worker.close();
    expect(r.received).toBe(15);
    // The forged one, and results the killed collector wrote but had not yet deleted from Redis.
    expect(r.duplicates).toBeGreaterThanOrEqual(1);
    expectIdentical(readSurface(out), reference);
    expect(await planKeysLeft(redis.url)).toEqual([]);
  });

  it("a segmentation surface with an ignore index and a normalization, computed by a worker, equals the single-process one", async () => {
    const tasks = new URL("../../fixtures/tasks/", import.meta.url).pathname;
    const args = (out: string) => [
      ...[
        "surface",
        "--model",
        `${tasks}segment.onnx`,
        "--data",
        `safetensors:${tasks}segment-batch.safetensors`,
      ],
      ...["--ignore-index", "255", "--normalize", "0.5/2", "--x", "-0.5:0.5:3", "--y", "-0.5:0.5:3"],
      ...["--dir-file", join(dir, "segment-dirs.h5"), "--out", out, "--threads", "1"],
    ];
    const single = cli(args(join(dir, "segment-single.h5")));
    expect(await single.exit, single.err).toBe(0);
    const worker = await startSurfaceWorker(target("segment"), { threads: 1 });
    const queued = cli([
      ...args(join(dir, "segment-queued.h5")),
      "--queue",
      redis.url,
      "--queue-name",
      "segment",
    ]);
    expect(await queued.exit, queued.err).toBe(0);
    await worker.close();
    const a = readSurface(join(dir, "segment-single.h5"));
    const b = readSurface(join(dir, "segment-queued.h5"));
    expect(b.meta.loss).toBe("cross-entropy ignore-index=255");
    expect(b.meta.normalization).toBe(a.meta.normalization);
    expect(Array.from(b.values.train_loss!)).toEqual(Array.from(a.values.train_loss!));
    expect(Array.from(b.values.train_acc!)).toEqual(Array.from(a.values.train_acc!));
  });

  it("a --refine surface along --only directions, through the queue, equals the single-process one (rounds, statuses, values)", async () => {
    const args = (out: string) => [
      ...surfaceArgs(out).map((a) =>
        a === "-1:1:5" ? "-14:14:17" : a === dirFile ? join(dir, "refine-dirs.h5") : a,
      ),
      ...["--only", "^fc3\\.", "--refine", "0.01", "--threads", "1"],
    ];
    const single = cli(args(join(dir, "refine-single.h5")));
    expect(await single.exit, single.err).toBe(0);
    expect(single.out).toMatch(/prefix cache: \d+ of \d+ nodes/);
    const worker = await startSurfaceWorker(target("refine"), { threads: 1 });
    const queued = cli([
      ...args(join(dir, "refine-queued.h5")),
      "--queue",
      redis.url,
      "--queue-name",
      "refine",
    ]);
    expect(await queued.exit, queued.err).toBe(0);
    await worker.close();
    expect(queued.out).toMatch(/the first round of --refine 0.01/);
    const a = readSurface(join(dir, "refine-single.h5"));
    const b = readSurface(join(dir, "refine-queued.h5"));
    // Points interpolated, and points computed beyond the coarse grid and its cells' midpoints (81):
    // at least three rounds ran on the queue.
    const interpolated = Array.from(a.done).filter((v) => v === 4).length;
    expect(interpolated).toBeGreaterThan(0);
    expect(289 - interpolated).toBeGreaterThan(81);
    expect(b.meta.refine).toBe("0.01");
    expectIdentical(a, b);
    expect(await planKeysLeft(redis.url)).toEqual([]);
  });

  it("only one collector per surface: a second one waits for the hold, then stops naming the first; the first finishes", async () => {
    const out = join(dir, "two-collectors.h5");
    const t = target("two");
    await submitSurface(t, queuedJob(out));
    const logs: string[] = [];
    const first = collectSurface(t, out, { flushSeconds: 0.1, lockSeconds: 1, requeue: false });
    // Let the first take its hold, then start a second on the same file.
    await new Promise((r) => setTimeout(r, 300));
    const t0 = performance.now();
    await expect(collectSurface(t, out, { lockSeconds: 1, log: (l) => logs.push(l) })).rejects.toThrow(
      /another collector is collecting '.*two-collectors\.h5' \(plan \w+, held by [^)]+\); only one collector per surface can run/,
    );
    // It waited for a killed holder's hold to expire (1 s) before giving up.
    expect(performance.now() - t0).toBeGreaterThan(1000);
    expect(logs.join("\n")).toMatch(/waiting up to 1 s for another collector's hold/);
    const worker = await startSurfaceWorker(t, { threads: 1 });
    const r = await first;
    await worker.close();
    expect(r.received).toBe(25);
    expectIdentical(readSurface(out), reference);
    expect(await planKeysLeft(redis.url)).toEqual([]);
  });

  it("a worker refuses a job for another model, naming what differs, and the collector stops with its reason without losing the file", async () => {
    const out = join(dir, "mismatch.h5");
    // The submitter holds other parameters than the files the workers will open.
    const mismatch = target("mismatch");
    await submitSurface(mismatch, queuedJob(out, zooModel("mlp", { seed: 1 }).initial));
    const logs: string[] = [];
    const worker = await startSurfaceWorker(mismatch, { threads: 1, log: (l) => logs.push(l) });
    await expect(collectSurface(mismatch, out, { flushSeconds: 0.1 })).rejects.toThrow(
      /chunk job\(s\) of .* failed; .*: worker .* refuses plan \w+: it holds other inputs than the submitter \(model_hash is \w+ in the plan but \w+ here\); it opened model '.*mlp\.onnx'/,
    );
    await worker.close();
    expect(logs.join("\n")).toMatch(/refuses plan/);
    const s = readSurface(out);
    expect(s.done.every((d) => d === 0)).toBe(true);
    expect(s.meta.model_hash).not.toBe(reference.meta.model_hash);
  });

  it.skipIf(openssl === undefined)(
    "a TLS-only, password-protected Redis works from the URL or $LOSSCAPE_REDIS_PASSWORD, and the password is never printed or stored",
    async () => {
      const secret = "pw-Xy7-never-shown";
      const tls = selfSignedCertificate(dir);
      const locked = await startRedis({ password: secret, tls });
      const trust = { NODE_EXTRA_CA_CERTS: tls.cert };
      const ca = readFileSync(tls.cert, "utf8");
      try {
        const out = join(dir, "password.h5");
        expect(locked.url).toMatch(/^rediss:\/\//);
        const submit = cli([...surfaceArgs(out), "--queue", locked.url, "--detach"], trust);
        expect(await submit.exit).toBe(0);
        expect(submit.out).toMatch(/collect with: losscape collect --queue rediss:\/\/:\*\*\*@127\.0\.0\.1/);
        expect(submit.out + submit.err).not.toContain(secret);
        expect(readFileSync(out).includes(Buffer.from(secret))).toBe(false);
        expect(readSurface(out).meta.command).toContain("rediss://:***@127.0.0.1");

        const wrong = parseQueueUrl(locked.url.replace(secret, `wrong-${secret}`), { ca });
        const refused = startSurfaceWorker({ connection: wrong });
        await expect(refused).rejects.toThrow(
          /cannot use the queue at rediss:\/\/:\*\*\*@127\.0\.0\.1:\d+\/0: WRONGPASS/,
        );
        await expect(refused).rejects.not.toThrow(secret);

        const logs: string[] = [];
        const worker = await startSurfaceWorker(
          { connection: parseQueueUrl(locked.url, { ca }) },
          { threads: 1, log: (l) => logs.push(l) },
        );
        const plainUrl = `rediss://127.0.0.1:${locked.port}`;
        const collect = cli(["collect", "--queue", plainUrl, out], {
          ...trust,
          LOSSCAPE_REDIS_PASSWORD: secret,
        });
        expect(await collect.exit).toBe(0);
        await worker.close();
        expect(collect.out + collect.err + logs.join("\n")).not.toContain(secret);
        expect(logs[0]).toMatch(/ready: queue 'surfaces' at rediss:\/\/:\*\*\*@127\.0\.0\.1/);
        expectIdentical(readSurface(out), reference);
      } finally {
        await locked.stop();
      }
    },
  );

  it("bad targets are refused with what is wrong, before any file is written", async () => {
    await expect(collectSurface(target(), join(dir, "reference.h5"))).rejects.toThrow(
      /'.*reference\.h5' was not submitted to a queue \(no queue_plan in its metadata\)/,
    );
    await expect(collectSurface(target(), join(dir, "mismatch.h5"))).rejects.toThrow(
      /was submitted to queue 'mismatch', not 'surfaces'; collect it from queue 'mismatch'/,
    );
    const nowhere = { connection: parseQueueUrl(`redis://127.0.0.1:${await closedPort()}`) };
    const out = join(dir, "never.h5");
    await expect(submitSurface(nowhere, queuedJob(out))).rejects.toThrow(
      /cannot use the queue at redis:\/\/127\.0\.0\.1:\d+\/0: connect ECONNREFUSED/,
    );
    expect(existsSync(out)).toBe(false);
  });
});
