// Mode connectivity (Garipov, Izmailov, Podoprikhin, Vetrov, Wilson, NeurIPS 2018): a low-loss
// curve between two trained models w1 and w2, a quadratic Bezier curve
// phi(t) = (1-t)^2 w1 + 2t(1-t) theta + t^2 w2 or a polygonal chain w1 -> theta -> w2, whose
// control point theta is trained to minimize E_{t~U(0,1)} L(phi(t)). Then loss and accuracy
// along the curve and along the straight line, the barrier height of each, and the plane through
// w1, w2 and theta in which the curve lies.

import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { createGradientSession } from "../autodiff/session.ts";
import { type OptimizerConfig, type OptimizerState, optimizerState, optimizerStep } from "../core/optim.ts";
import { Random } from "../core/random.ts";
import { dot } from "../core/vector.ts";
import { type Dataset, datasetSize, readSamples, sampleSize, targetSize } from "../data/dataset.ts";
import type { Engine, EvaluateOptions } from "../engine/engine.ts";
import type { TaskOptions } from "../engine/task.ts";
import { writeFileAtomic } from "../formats/atomic.ts";
import { readSafetensors, serializeSafetensors, tensorToFloat32 } from "../formats/safetensors.ts";
import { paramsToSafetensors } from "../model/checkpoint.ts";
import { isTrainable, type Model } from "../model/model.ts";
import type { BatchNormRecalibrator } from "./bn.ts";

/** The curve between two models: a quadratic Bezier curve or a polygonal chain with one bend. */
export type CurveKind = "bezier" | "polychain";

/** The curve kinds, for option parsing. */
export const CURVE_KINDS = ["bezier", "polychain"] as const satisfies readonly CurveKind[];

/**
 * The weights (a, b, c) of phi(t) = a w1 + b theta + c w2. Bezier: ((1-t)^2, 2t(1-t), t^2); polygonal
 * chain: (1-2t, 2t, 0) for t <= 1/2, (0, 2-2t, 2t-1) after. `b` is d phi / d theta.
 *
 * @example
 * curveWeights("bezier", 0.5); // [0.25, 0.5, 0.25]
 */
export function curveWeights(kind: CurveKind, t: number): [number, number, number] {
  switch (kind) {
    case "bezier":
      return [(1 - t) ** 2, 2 * t * (1 - t), t * t];
    case "polychain":
      return t <= 0.5 ? [1 - 2 * t, 2 * t, 0] : [0, 2 - 2 * t, 2 * t - 1];
    default:
      return kind satisfies never;
  }
}

/** Two end points and a control point (flat parameter vectors of one model). */
export interface Curve {
  kind: CurveKind;
  from: Float32Array;
  to: Float32Array;
  theta: Float32Array;
}

/**
 * The point phi(t) of a curve, written into `out` (allocated when omitted).
 *
 * @example
 * const mid = curvePoint({ kind: "bezier", from: w1, to: w2, theta }, 0.5);
 */
export function curvePoint(curve: Curve, t: number, out = new Float32Array(curve.from.length)): Float32Array {
  const { from, to, theta } = curve;
  if (to.length !== from.length || theta.length !== from.length)
    throw new Error(
      `curvePoint(): 'from' has ${from.length} values, 'to' ${to.length}, 'theta' ${theta.length}; they must agree`,
    );
  const [a, b, c] = curveWeights(curve.kind, t);
  for (let i = 0; i < out.length; i++) out[i] = a * from[i]! + b * theta[i]! + c * to[i]!;
  return out;
}

/**
 * The point (1-t) w1 + t w2 of the straight line, written into `out`.
 *
 * @example
 * const mid = linePoint(w1, w2, 0.5);
 */
export function linePoint(
  from: Float32Array,
  to: Float32Array,
  t: number,
  out = new Float32Array(from.length),
): Float32Array {
  for (let i = 0; i < out.length; i++) out[i] = (1 - t) * from[i]! + t * to[i]!;
  return out;
}

/**
 * The gradient of L(phi(t)) with respect to the control point from the gradient at phi(t) (chain
 * rule: d phi / d theta = b(t) times the identity), written into `out`.
 *
 * @example
 * const g = controlGradient("bezier", t, gradientAtPhi);
 */
export function controlGradient(
  kind: CurveKind,
  t: number,
  gradient: Float32Array,
  out = new Float32Array(gradient.length),
): Float32Array {
  const b = curveWeights(kind, t)[1];
  for (let i = 0; i < out.length; i++) out[i] = b * gradient[i]!;
  return out;
}

/**
 * Garipov et al.'s learning-rate schedule over a run of `steps`: `lr` for the first half, then down
 * linearly to lr / 100 at 90 %, then lr / 100.
 *
 * @example
 * curveLearningRate(0.05, 50, 100); // 0.05
 */
export function curveLearningRate(lr: number, step: number, steps: number): number {
  const alpha = step / steps;
  if (alpha <= 0.5) return lr;
  if (alpha <= 0.9) return lr * (1 - ((alpha - 0.5) / 0.4) * 0.99);
  return lr * 0.01;
}

/** How a control point is trained. */
export interface CurveTraining {
  kind: CurveKind;
  /** Optimizer steps (one t and one batch each). */
  steps: number;
  /** Initial learning rate (curveLearningRate's schedule). */
  lr: number;
  /** Default: SGD with momentum 0.9, no weight decay. */
  optimizer?: OptimizerConfig;
  /** Seed of t and of the batches. */
  seed: number;
}

/** Loss and gradient at a point, for the batch of step `step`. */
export type GradientOracle = (
  params: Float32Array,
  step: number,
) => Promise<{ loss: number; gradient: Float32Array }>;

/** Where a training of the control point stands (the state a checkpoint keeps). */
export interface CurveState {
  theta: Float32Array;
  optimizer: OptimizerState;
  /** Steps done. */
  step: number;
  /** Loss at phi(t) of every step done. */
  losses: number[];
  /** t of every step done. */
  ts: number[];
}

/** The t of step `step` of a seeded training: U(0, 1) from a stream of its own, so a resume repeats it. */
export function stepT(seed: number, step: number): number {
  return new Random((Math.imul(seed + 1, 0x27d4eb2f) ^ Math.imul(step + 1, 0x165667b1)) | 0).uniform();
}

/**
 * The starting state of a training: theta at the midpoint of w1 and w2 (Garipov et al.'s
 * initialization of the bend), a fresh optimizer state.
 *
 * @example
 * const state = initialCurveState(w1, w2, { kind: "sgd", momentum: 0.9 });
 */
export function initialCurveState(
  from: Float32Array,
  to: Float32Array,
  optimizer: OptimizerConfig,
): CurveState {
  return {
    theta: linePoint(from, to, 0.5),
    optimizer: optimizerState(optimizer, from.length),
    step: 0,
    losses: [],
    ts: [],
  };
}

/**
 * Trains the control point from `state` (in place) up to `config.steps` steps: at each step t ~ U(0, 1)
 * (seeded), the oracle's gradient at phi(t), chained to theta, one optimizer update of the entries
 * where `mask` is 1. `after` runs after every step (progress, checkpoints).
 *
 * @example
 * await fitCurve(w1, w2, state, { kind: "bezier", steps: 200, lr: 0.05, seed: 0 }, mask, oracle);
 */
export async function fitCurve(
  from: Float32Array,
  to: Float32Array,
  state: CurveState,
  config: CurveTraining,
  mask: Uint8Array,
  oracle: GradientOracle,
  after: (state: CurveState) => void = () => {},
): Promise<CurveState> {
  const { kind, steps, lr, seed, optimizer = { kind: "sgd", momentum: 0.9 } } = config;
  if (!Number.isInteger(steps) || steps < 0)
    throw new Error(`fitCurve(): 'steps' must be a non-negative integer, got ${steps}`);
  if (!(lr > 0) || !Number.isFinite(lr))
    throw new Error(`fitCurve(): 'lr' must be a positive number, got ${lr}`);
  const curve: Curve = { kind, from, to, theta: state.theta };
  const phi = new Float32Array(from.length);
  const g = new Float32Array(from.length);
  for (let s = state.step; s < steps; s++) {
    const t = stepT(seed, s);
    curvePoint(curve, t, phi);
    const r = await oracle(phi, s);
    if (!Number.isFinite(r.loss))
      throw new Error(
        `fitCurve(): the loss diverged (${r.loss}) at step ${s + 1} (t = ${t.toFixed(4)}); lower 'lr'`,
      );
    controlGradient(kind, t, r.gradient, g);
    optimizerStep(optimizer, state.optimizer, state.theta, g, mask, curveLearningRate(lr, s, steps));
    state.step = s + 1;
    state.losses.push(r.loss);
    state.ts.push(t);
    after(state);
  }
  return state;
}

/** Options of trainCurve beyond the curve training itself. */
export interface ModelCurveTraining extends CurveTraining {
  /** Samples per step (default 128). */
  batchSize?: number;
  /** ONNX Runtime threads. */
  threads?: number;
  task?: TaskOptions;
  /** Folder for `curve.safetensors` (theta) and `curve-resume.safetensors`; a rerun resumes it. */
  folder?: string;
  /** Steps between checkpoints (default 50; the last step always writes one). */
  checkpointEvery?: number;
  /** After every step: steps done, total, loss at phi(t). */
  onStep?: (done: number, total: number, loss: number) => void;
}

const RESUME = "curve-resume.safetensors";
/** File of the trained control point in a connect folder. */
export const CONTROL_POINT = "curve.safetensors";

/**
 * Trains the control point of a curve between `from` and `to` with the gradient engine: batch norm
 * in training mode (batch statistics, as in the paper), a seeded batch per step (a permutation of
 * the training set per pass), and the control point checkpointed in `folder`, resumed from there
 * when its configuration matches (another one is refused).
 *
 * @example
 * const { theta } = await trainCurve(model, w1, w2, train, { kind: "bezier", steps: 200, lr: 0.05, seed: 0, folder: "out/connect" });
 */
export async function trainCurve(
  model: Model,
  from: Float32Array,
  to: Float32Array,
  train: Dataset,
  config: ModelCurveTraining,
): Promise<CurveState> {
  const {
    batchSize = 128,
    threads,
    task = {},
    folder,
    checkpointEvery = 50,
    onStep,
    ...curveConfig
  } = config;
  const optimizer = curveConfig.optimizer ?? { kind: "sgd", momentum: 0.9 };
  const n = datasetSize(train);
  if (!Number.isInteger(batchSize) || batchSize < 2)
    throw new Error(
      `trainCurve(): 'batchSize' must be an integer >= 2 (batch norm needs 2 samples), got ${batchSize}`,
    );
  const size = Math.min(batchSize, n);
  const key = JSON.stringify({
    model: model.name,
    size: model.size,
    data: train.name,
    n,
    kind: curveConfig.kind,
    steps: curveConfig.steps,
    lr: curveConfig.lr,
    seed: curveConfig.seed,
    optimizer,
    batchSize: size,
    task,
    from: hashLike(from),
    to: hashLike(to),
  });
  let state = initialCurveState(from, to, optimizer);
  const resumePath = folder ? join(folder, RESUME) : undefined;
  if (resumePath && existsSync(resumePath)) {
    const saved = readSafetensors(resumePath);
    if (saved.metadata.config !== key)
      throw new Error(
        `trainCurve(): '${folder}' holds a curve with another configuration (${saved.metadata.config}); use another folder or delete it`,
      );
    state = {
      theta: tensorToFloat32(saved.tensors.get("theta")!).slice(),
      optimizer: {
        step: Number(saved.metadata.optimizer_step),
        m: tensorToFloat32(saved.tensors.get("m")!).slice(),
        v: tensorToFloat32(saved.tensors.get("v")!).slice(),
      },
      step: Number(saved.metadata.step),
      losses: JSON.parse(saved.metadata.losses ?? "[]") as number[],
      ts: JSON.parse(saved.metadata.ts ?? "[]") as number[],
    };
  }
  const checkpoint = (s: CurveState) => {
    if (!folder) return;
    mkdirSync(folder, { recursive: true });
    writeFileAtomic(
      join(folder, CONTROL_POINT),
      paramsToSafetensors(model, s.theta, { curve: curveConfig.kind, step: String(s.step) }),
    );
    writeFileAtomic(
      resumePath!,
      serializeSafetensors(
        [
          { name: "theta", shape: [model.size], data: s.theta },
          { name: "m", shape: [s.optimizer.m.length], data: s.optimizer.m },
          { name: "v", shape: [s.optimizer.v.length], data: s.optimizer.v },
        ],
        {
          config: key,
          step: String(s.step),
          optimizer_step: String(s.optimizer.step),
          losses: JSON.stringify(s.losses),
          ts: JSON.stringify(s.ts),
        },
      ),
    );
  };
  if (state.step >= curveConfig.steps) {
    if (folder && !existsSync(join(folder, CONTROL_POINT))) checkpoint(state);
    return state;
  }
  const mask = new Uint8Array(model.size);
  for (const p of model.params) if (isTrainable(p.role)) mask.fill(1, p.offset, p.offset + p.size);
  const { loss = "cross-entropy" } = task;
  if (loss === "mse-onehot")
    throw new Error(
      "trainCurve(): 'task.loss' mse-onehot is evaluated, not trained; use cross-entropy or mse",
    );
  const session = await createGradientSession(model, {
    batchNorm: "training",
    ...task,
    loss,
    targetShape: train.targetShape ?? [],
    ...(threads ? { threads } : {}),
  });
  const per = sampleSize(train);
  const perTarget = targetSize(train);
  const inputs =
    train.inputs instanceof Int32Array ? new Int32Array(size * per) : new Float32Array(size * per);
  const labels =
    train.labels instanceof Float32Array
      ? new Float32Array(size * perTarget)
      : new Int32Array(size * perTarget);
  const one = new Float32Array(per);
  const perPass = Math.floor(n / size);
  let pass = -1;
  let order: Uint32Array = new Uint32Array(0);
  const oracle: GradientOracle = async (params, step) => {
    // Full batches of a seeded permutation per pass over the data (a resume repeats them).
    const p = Math.floor(step / perPass);
    if (p !== pass) {
      pass = p;
      order = new Random(
        (Math.imul(curveConfig.seed + 7, 0x9e3779b1) ^ Math.imul(p + 1, 0x85ebca6b)) | 0,
      ).permutation(n);
    }
    const b = step % perPass;
    for (let k = 0; k < size; k++) {
      const i = order[b * size + k]!;
      inputs.set(readSamples(train, i, 1, one), k * per);
      labels.set(train.labels.subarray(i * perTarget, (i + 1) * perTarget), k * perTarget);
    }
    const r = await session.step(params, inputs, labels);
    return { loss: r.loss, gradient: r.gradient };
  };
  try {
    await fitCurve(from, to, state, { ...curveConfig, optimizer }, mask, oracle, (s) => {
      onStep?.(s.step, curveConfig.steps, s.losses[s.losses.length - 1]!);
      if (s.step % checkpointEvery === 0 || s.step === curveConfig.steps) checkpoint(s);
    });
  } finally {
    await session.dispose();
  }
  return state;
}

/** A short fingerprint of a parameter vector for a configuration key (length, sums). */
function hashLike(v: Float32Array): string {
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < v.length; i++) {
    s += v[i]!;
    s2 += v[i]! * v[i]! * ((i % 7) + 1);
  }
  return `${v.length}:${s.toPrecision(12)}:${s2.toPrecision(12)}`;
}

/** Loss and accuracy (percent) at the points of a path. */
export interface PathMetrics {
  train_loss: number[];
  train_acc: number[];
  test_loss?: number[];
  test_acc?: number[];
}

/** A barrier along a path: its height and where it is. */
export interface Barrier {
  /** max over t of value(t) - ((1 - t) value(0) + t value(1)). */
  height: number;
  /** The t of the maximum. */
  at: number;
}

/**
 * The barrier height of a path (Garipov et al. 2018; Frankle et al. 2020): the largest excess of
 * value(t) over the linear interpolation of the end values, max_t [value(t) - ((1-t) value(0) +
 * t value(1))], on a grid `t` from 0 to 1. It is >= 0 (the ends give 0); NaN when a value is not finite.
 *
 * @example
 * barrierHeight([0, 0.5, 1], [0.1, 2.1, 0.3]); // { height: 1.9, at: 0.5 }
 */
export function barrierHeight(t: ArrayLike<number>, values: ArrayLike<number>): Barrier {
  const n = t.length;
  if (n < 2 || values.length !== n)
    throw new Error(
      `barrierHeight(): expected t and values of the same length >= 2, got ${n} and ${values.length}`,
    );
  if (t[0] !== 0 || t[n - 1] !== 1)
    throw new Error(`barrierHeight(): t must run from 0 to 1, got ${t[0]} .. ${t[n - 1]}`);
  const v0 = values[0]!;
  const v1 = values[n - 1]!;
  let height = Number.NEGATIVE_INFINITY;
  let at = 0;
  for (let i = 0; i < n; i++) {
    const excess = values[i]! - ((1 - t[i]!) * v0 + t[i]! * v1);
    if (!Number.isFinite(excess)) return { height: Number.NaN, at: t[i]! };
    if (excess > height) {
      height = excess;
      at = t[i]!;
    }
  }
  return { height, at };
}

/** What evaluateConnection computes. */
export interface Connection {
  kind: CurveKind;
  /** The t grid, 0 .. 1. */
  t: number[];
  curve: PathMetrics;
  line: PathMetrics;
  /** Barrier heights of the train (and test) loss and error (100 - accuracy, in points) along each path. */
  barriers: {
    curve: Record<string, Barrier>;
    line: Record<string, Barrier>;
  };
  /** How batch norm was handled at the points: "recompute" or "interpolate". */
  bn: string;
}

/**
 * Loss and accuracy along the curve and the straight line at `points` values of t in [0, 1], with
 * the batch-norm statistics recomputed at every point when `bn` is given (else the curve's own
 * combination of the end points' statistics), and their barrier heights.
 *
 * @example
 * const c = await evaluateConnection(engine, curve, { points: 11, train, test, bn });
 */
export async function evaluateConnection(
  engine: Engine,
  curve: Curve,
  options: {
    points: number;
    train: Dataset;
    test?: Dataset;
    bn?: BatchNormRecalibrator;
    evaluate?: Omit<EvaluateOptions, "onProgress">;
    onProgress?: (done: number, total: number) => void;
  },
): Promise<Connection> {
  const { points, train, test, bn, evaluate = {}, onProgress } = options;
  if (!Number.isInteger(points) || points < 2)
    throw new Error(`evaluateConnection(): 'points' must be an integer >= 2, got ${points}`);
  const t = Array.from({ length: points }, (_, i) => (i === points - 1 ? 1 : i / (points - 1)));
  const empty = (): PathMetrics => ({
    train_loss: [],
    train_acc: [],
    ...(test ? { test_loss: [], test_acc: [] } : {}),
  });
  const curveM = empty();
  const lineM = empty();
  const buffer = new Float32Array(curve.from.length);
  let done = 0;
  const measure = async (params: Float32Array, into: PathMetrics) => {
    const at = bn ? await bn.recompute(params) : params;
    const a = await engine.evaluate(at, train, evaluate);
    into.train_loss.push(a.loss);
    into.train_acc.push(100 * a.accuracy);
    if (test) {
      const b = await engine.evaluate(at, test, evaluate);
      into.test_loss!.push(b.loss);
      into.test_acc!.push(100 * b.accuracy);
    }
    onProgress?.(++done, 2 * points);
  };
  for (const ti of t) await measure(curvePoint(curve, ti, buffer), curveM);
  for (const ti of t) await measure(linePoint(curve.from, curve.to, ti, buffer), lineM);
  const barriers = (m: PathMetrics): Record<string, Barrier> => {
    const out: Record<string, Barrier> = {
      train_loss: barrierHeight(t, m.train_loss),
      train_error: barrierHeight(
        t,
        m.train_acc.map((a) => 100 - a),
      ),
    };
    if (m.test_loss && m.test_acc) {
      out.test_loss = barrierHeight(t, m.test_loss);
      out.test_error = barrierHeight(
        t,
        m.test_acc.map((a) => 100 - a),
      );
    }
    return out;
  };
  return {
    kind: curve.kind,
    t,
    curve: curveM,
    line: lineM,
    barriers: { curve: barriers(curveM), line: barriers(lineM) },
    bn: bn ? "recompute" : "interpolate",
  };
}

/** The plane through w1, w2 and theta, and the curve's coordinates in it. */
export interface CurvePlane {
  /** u = w2 - w1. */
  u: Float32Array;
  /** v = the part of theta - w1 orthogonal to u. */
  v: Float32Array;
  /** theta - w1 = alpha u + v. */
  alpha: number;
  /** Coordinates (x, y) of phi(t) = w1 + x u + y v at each t (exact: the curve lies in the plane). */
  x: number[];
  y: number[];
  /** |u| and |v|. */
  normU: number;
  normV: number;
}

/**
 * The plane of a curve, with w1 at (0, 0), w2 at (1, 0) and theta at (alpha, 1), in units of u and v
 * (not of length: |u| and |v| are given), and the curve at the values `t`.
 *
 * @example
 * const plane = curvePlane(curve, [0, 0.25, 0.5, 0.75, 1]);
 */
export function curvePlane(curve: Curve, t: readonly number[]): CurvePlane {
  const { from, to, theta } = curve;
  const n = from.length;
  const u = new Float32Array(n);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    u[i] = to[i]! - from[i]!;
    v[i] = theta[i]! - from[i]!;
  }
  const uu = dot(u, u);
  if (!(uu > 0)) throw new Error("curvePlane(): 'from' and 'to' are the same point; there is no plane");
  const alpha = dot(v, u) / uu;
  for (let i = 0; i < n; i++) v[i] = v[i]! - alpha * u[i]!;
  const vv = dot(v, v);
  if (!(vv > 1e-12 * uu))
    throw new Error(
      "curvePlane(): the control point lies on the line through 'from' and 'to'; there is no plane",
    );
  const x: number[] = [];
  const y: number[] = [];
  for (const ti of t) {
    const [, b, c] = curveWeights(curve.kind, ti);
    // phi - w1 = b (theta - w1) + c (w2 - w1) = (b alpha + c) u + b v.
    x.push(b * alpha + c);
    y.push(b);
  }
  return { u, v, alpha, x, y, normU: Math.sqrt(uu), normV: Math.sqrt(vv) };
}
