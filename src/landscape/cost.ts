// What a landscape will cost before it is computed: points x samples, and the
// time that takes on this machine, read off a short timed probe of the same
// engine on the first samples of the same data (a session rebuild per point,
// as at every grid point, plus a cost per sample).

import { type Dataset, datasetSize, readSamples, targetSize } from "../data/dataset.ts";
import type { Engine, EvaluateOptions } from "../engine/engine.ts";

/** The work of a landscape and its estimated time. */
export interface CostEstimate {
  /** Points to compute. */
  points: number;
  /** Samples evaluated per point (training set, plus test set when there is one). */
  samplesPerPoint: number;
  /** Seconds per point: the fixed part (new parameters) plus samples x seconds per sample. */
  secondsPerPoint: number;
  /** points x secondsPerPoint. */
  seconds: number;
  /** Fixed seconds of a point (parameter swap, first batch), from the probe. */
  fixedSeconds: number;
  /** Seconds per evaluated sample, from the probe. */
  secondsPerSample: number;
}

/** The first `count` samples of `data`, in memory. */
export function head(data: Dataset, count: number): Dataset {
  const t = targetSize(data);
  const { read: _read, ...rest } = data;
  return {
    ...rest,
    inputs: data.read ? readSamples(data, 0, count).slice() : readSamples(data, 0, count),
    labels: data.labels.subarray(0, count * t),
  };
}

/**
 * `theta` with value `at` nudged, so the engine rebuilds its session as at a new grid point (a
 * value the directions move: a fixed one would also refill a prefix cache, as no grid point does).
 */
function nudged(theta: Float32Array, k: number, at: number): Float32Array {
  const p = theta.slice();
  const v = p[at] ?? 0;
  p[at] = v === 0 ? 1e-30 * k : v * (1 + 1e-6 * k);
  return p;
}

/**
 * Times a few evaluations of the first samples of `data` (one batch, then two) at parameters near
 * `theta`, after one untimed warm-up, and extrapolates to `points` points of the whole `data`
 * (and `test`). Takes about three small evaluations. The value nudged is one `directions` moves.
 *
 * @example
 * const cost = await probeCost(engine, theta, train, test, 2601, { batchSize: 128 });
 * console.log(formatCost(cost)); // "2601 points x 1000 samples ... about 14 min"
 */
export async function probeCost(
  engine: Engine,
  theta: Float32Array,
  train: Dataset,
  test: Dataset | undefined,
  points: number,
  evaluate: EvaluateOptions = {},
  directions: readonly Float32Array[] = [],
): Promise<CostEstimate> {
  const n = datasetSize(train);
  const batch = Math.min(n, engine.model.input.batch ?? evaluate.batchSize ?? 256);
  const { lossCap: _cap, onProgress: _p, ...options } = evaluate;
  const at = Math.max(0, directions[0]?.findIndex((v) => v !== 0) ?? 0);
  const one = head(train, batch);
  const two = n >= 2 * batch ? head(train, 2 * batch) : undefined;
  // Warm-up: thread pool, allocations, and a prefix cache's batches (held at every grid point but the first).
  await engine.evaluate(nudged(theta, 1, at), one, options);
  if (two && typeof engine.prefix?.() === "object") await engine.evaluate(nudged(theta, 1, at), two, options);
  const timed = async (data: Dataset, k: number): Promise<number> => {
    const t0 = performance.now();
    await engine.evaluate(nudged(theta, k, at), data, options);
    return (performance.now() - t0) / 1000;
  };
  const t1 = await timed(one, 2);
  let perSample = t1 / batch;
  let fixed = 0;
  if (two) {
    const t2 = await timed(two, 3);
    // Timing noise can make the second batch look free: then the whole time is per sample.
    if (t2 > t1) {
      perSample = (t2 - t1) / batch;
      fixed = Math.max(0, t1 - batch * perSample);
    } else perSample = t2 / (2 * batch);
  }
  const samplesPerPoint = n + (test ? datasetSize(test) : 0);
  const secondsPerPoint = fixed + samplesPerPoint * perSample;
  return {
    points,
    samplesPerPoint,
    secondsPerPoint,
    seconds: points * secondsPerPoint,
    fixedSeconds: fixed,
    secondsPerSample: perSample,
  };
}

/**
 * A duration as people read it: "45 s", "3 min 20 s", "2 h 05 min".
 *
 * @example
 * formatDuration(200); // "3 min 20 s"
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "unknown";
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  const m = Math.round(seconds / 60);
  if (seconds < 3600)
    return `${Math.floor(seconds / 60)} min ${String(Math.round(seconds % 60)).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

/**
 * The estimate as one line; `perWorker` words the time for one queue worker like this machine.
 *
 * @example
 * formatCost(cost); // "plan: 2601 points x 1000 samples = 2.60 M sample evaluations; 0.310 s per point; about 13 min 26 s on this machine"
 */
export function formatCost(cost: CostEstimate, { perWorker = false }: { perWorker?: boolean } = {}): string {
  const evaluations = cost.points * cost.samplesPerPoint;
  const amount =
    evaluations >= 1e6
      ? `${(evaluations / 1e6).toFixed(2)} M`
      : evaluations >= 1e4
        ? `${(evaluations / 1e3).toFixed(1)} k`
        : `${evaluations}`;
  const time = perWorker
    ? `about ${formatDuration(cost.seconds)} for one worker like this machine (divided among the workers)`
    : `about ${formatDuration(cost.seconds)} on this machine`;
  return `plan: ${cost.points} points x ${cost.samplesPerPoint} samples = ${amount} sample evaluations; ${cost.secondsPerPoint.toPrecision(3)} s per point; ${time}`;
}
