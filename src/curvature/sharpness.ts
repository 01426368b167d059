// Sharpness of a minimum: epsilon-sharpness (Keskar et al. 2017), adaptive
// average-case and worst-case sharpness (Kwon et al. 2021; Andriushchenko et
// al. 2023). The measures work on any loss with a gradient (SharpnessObjective);
// modelObjective gives them a model's evaluation-mode loss over a dataset, with
// gradients from the ONNX gradient graph. See docs/curvature.md, "Sharpness".

import { createGradientSession } from "../autodiff/session.ts";
import { Random } from "../core/random.ts";
import { type Dataset, datasetSize, readSamples, sampleSize, targetSize } from "../data/dataset.ts";
import type { Metrics } from "../engine/engine.ts";
import { createOrtEngine } from "../engine/ort.ts";
import { scoredTargets, type TaskOptions } from "../engine/task.ts";
import type { Model } from "../model/model.ts";
import { hessianExtremes, type TraceMethod } from "./hessian.ts";

/** Which parameters a sharpness measure perturbs: the filter (rank >= 2) weights, as the Hessian, or every trainable one. */
export type PerturbedParameters = "filters" | "trainable";

/** A loss and its gradient at any parameter vector, and the entries that may move. */
export interface SharpnessObjective {
  /** 1 at the entries that are perturbed, 0 elsewhere. */
  readonly mask: Uint8Array;
  /** The loss at `params`. */
  loss(params: Float32Array): Promise<number>;
  /** The loss at `params` and its gradient (zero outside the mask). */
  lossAndGradient(params: Float32Array): Promise<{ loss: number; gradient: Float32Array }>;
}

/** Options of the worst-case (ascent) measures. */
export interface AscentOptions {
  /** Ascent steps after the random start (default 20); each is one gradient evaluation. */
  steps?: number;
  /** Seed of the random start (default 0). */
  seed?: number;
}

/** What a worst-case measure found. */
export interface AscentResult {
  /** The sharpness value (see each measure). */
  readonly sharpness: number;
  /** L(theta), from the same loss as the perturbed points. */
  readonly loss: number;
  /** The largest loss found inside the set. */
  readonly maxLoss: number;
  /** Ascent steps after the random start, and how many of them raised the loss. */
  readonly steps: number;
  readonly accepted: number;
  /** Gradient evaluations, the one at theta included (steps + 2). */
  readonly evaluations: number;
  /** The perturbation that gave maxLoss (zero outside the mask). */
  readonly delta: Float32Array;
}

function checkAscent(o: AscentOptions, where: string): Required<AscentOptions> {
  const { steps = 20, seed = 0 } = o;
  if (!Number.isInteger(steps) || steps < 1)
    throw new Error(`${where}: 'steps' must be a positive integer, got ${steps}`);
  if (!Number.isInteger(seed) || seed < 0)
    throw new Error(`${where}: 'seed' must be a non-negative integer, got ${seed}`);
  return { steps, seed };
}

function checkTheta(f: SharpnessObjective, theta: Float32Array, where: string): void {
  if (theta.length !== f.mask.length)
    throw new Error(
      `${where}: 'theta' has ${theta.length} values but the objective has ${f.mask.length} parameters`,
    );
}

/**
 * Projected gradient ascent of L(theta + c * z) over z in the unit box (|z_i| <= 1) or the ball
 * ||z||_2 <= radius, with c_i = 0 outside the mask. Random start at half the size of the set
 * (seeded); each step moves along sign(c g) (box: steepest ascent in the max norm) or c g / ||c g||
 * (ball) and projects back. The step starts at twice the set's size (as Auto-PGD's does) and halves
 * after a step that does not raise the loss; the best point is kept, so the result never decreases.
 */
async function projectedAscent(
  f: SharpnessObjective,
  theta: Float32Array,
  scale: Float64Array,
  set: { kind: "box" } | { kind: "ball"; radius: number },
  { steps, seed }: Required<AscentOptions>,
): Promise<Omit<AscentResult, "sharpness">> {
  const n = theta.length;
  const at = await f.lossAndGradient(theta);
  const rng = new Random(seed);
  const z = new Float64Array(n);
  const active: number[] = [];
  for (let i = 0; i < n; i++) if (f.mask[i] && scale[i]! > 0) active.push(i);
  const size = set.kind === "box" ? 1 : set.radius;
  if (set.kind === "box") for (const i of active) z[i] = 0.5 * (2 * rng.uniform() - 1);
  else {
    let s = 0;
    for (const i of active) {
      z[i] = rng.normal();
      s += z[i]! * z[i]!;
    }
    const k = s > 0 ? (0.5 * set.radius) / Math.sqrt(s) : 0;
    for (const i of active) z[i] = z[i]! * k;
  }
  const point = (zz: Float64Array): Float32Array => {
    const p = theta.slice();
    for (const i of active) p[i] = theta[i]! + scale[i]! * zz[i]!;
    return p;
  };
  const project = (zz: Float64Array): void => {
    if (set.kind === "box") {
      for (const i of active) zz[i] = Math.min(1, Math.max(-1, zz[i]!));
      return;
    }
    let s = 0;
    for (const i of active) s += zz[i]! * zz[i]!;
    const norm = Math.sqrt(s);
    if (norm > set.radius) for (const i of active) zz[i] = (zz[i]! * set.radius) / norm;
  };
  let best = { z, ...(await f.lossAndGradient(point(z))) };
  let step = 2 * size;
  let accepted = 0;
  for (let k = 0; k < steps; k++) {
    const next = best.z.slice();
    if (set.kind === "box") {
      for (const i of active) next[i] = next[i]! + step * Math.sign(scale[i]! * best.gradient[i]!);
    } else {
      let s = 0;
      for (const i of active) s += (scale[i]! * best.gradient[i]!) ** 2;
      const g = Math.sqrt(s);
      if (g === 0) break; // a stationary point of the ball's interior: no ascent direction
      for (const i of active) next[i] = next[i]! + (step * scale[i]! * best.gradient[i]!) / g;
    }
    project(next);
    const r = await f.lossAndGradient(point(next));
    if (r.loss > best.loss) {
      best = { z: next, ...r };
      accepted++;
    } else step /= 2;
  }
  const delta = new Float32Array(n);
  for (const i of active) delta[i] = scale[i]! * best.z[i]!;
  return {
    loss: at.loss,
    maxLoss: Math.max(best.loss, at.loss),
    steps,
    accepted,
    evaluations: steps + 2,
    delta,
  };
}

/**
 * Epsilon-sharpness of Keskar et al. 2017 in the full space (A = I, their default) of the masked
 * entries: 100 * (max_{y in C} L(theta + y) - L(theta)) / (1 + L(theta)) over the box
 * C = { |y_i| <= epsilon (|theta_i| + 1) }, maximized by projected sign-gradient ascent (the paper
 * used L-BFGS-B; see projectedAscent for the step rule).
 *
 * @example
 * const e = await epsilonSharpness(objective, theta, { epsilon: 1e-3, steps: 20 });
 * console.log(e.sharpness); // percent
 */
export async function epsilonSharpness(
  f: SharpnessObjective,
  theta: Float32Array,
  options: AscentOptions & { epsilon?: number } = {},
): Promise<AscentResult & { readonly epsilon: number }> {
  const where = "epsilonSharpness()";
  const { epsilon = 1e-3 } = options;
  if (!(epsilon > 0)) throw new Error(`${where}: 'epsilon' must be a positive number, got ${epsilon}`);
  checkTheta(f, theta, where);
  const scale = new Float64Array(theta.length);
  for (let i = 0; i < theta.length; i++) if (f.mask[i]) scale[i] = epsilon * (Math.abs(theta[i]!) + 1);
  const r = await projectedAscent(f, theta, scale, { kind: "box" }, checkAscent(options, where));
  return { ...r, epsilon, sharpness: (100 * (r.maxLoss - r.loss)) / (1 + r.loss) };
}

/** The norm of a worst-case adaptive sharpness: ||delta / |theta| ||_2 or _inf. */
export type SharpnessNorm = "l2" | "linf";

/**
 * Adaptive worst-case sharpness (Andriushchenko et al. 2023, elementwise): max L(theta + delta) -
 * L(theta) over || delta / |theta| ||_p <= rho, p = 2 or infinity, by projected (sign-)gradient
 * ascent. Entries with theta_i = 0 do not move (the set is scaled by |theta|).
 *
 * @example
 * const w = await worstCaseSharpness(objective, theta, { rho: 0.5, norm: "l2", steps: 20 });
 */
export async function worstCaseSharpness(
  f: SharpnessObjective,
  theta: Float32Array,
  options: AscentOptions & { rho?: number; norm?: SharpnessNorm } = {},
): Promise<AscentResult & { readonly rho: number; readonly norm: SharpnessNorm }> {
  const where = "worstCaseSharpness()";
  const { norm = "l2" } = options;
  const rho = options.rho ?? (norm === "l2" ? 0.5 : 1e-3);
  if (!(rho > 0)) throw new Error(`${where}: 'rho' must be a positive number, got ${rho}`);
  if (norm !== "l2" && norm !== "linf")
    throw new Error(`${where}: 'norm' must be one of l2, linf, got '${String(norm)}'`);
  checkTheta(f, theta, where);
  const ascent = checkAscent(options, where);
  const scale = new Float64Array(theta.length);
  for (let i = 0; i < theta.length; i++)
    if (f.mask[i]) scale[i] = Math.abs(theta[i]!) * (norm === "linf" ? rho : 1);
  const r = await projectedAscent(
    f,
    theta,
    scale,
    norm === "linf" ? { kind: "box" } : { kind: "ball", radius: rho },
    ascent,
  );
  return { ...r, rho, norm, sharpness: r.maxLoss - r.loss };
}

/** What the average-case measure estimated. */
export interface AverageSharpness {
  /** The estimate of E L(theta + delta) - L(theta). */
  readonly sharpness: number;
  /** Its standard error over the samples. */
  readonly stderr: number;
  readonly loss: number;
  readonly rho: number;
  /** Gaussian draws; each is evaluated at +delta and -delta. */
  readonly samples: number;
  /** Loss evaluations (2 samples + 1). */
  readonly evaluations: number;
}

/**
 * Adaptive average-case sharpness (Kwon et al. 2021; Andriushchenko et al. 2023):
 * E_delta L(theta + delta) - L(theta) with delta ~ N(0, rho^2 diag(theta^2)) on the masked entries.
 * Each seeded draw is used antithetically, (L(theta + delta) + L(theta - delta)) / 2 - L(theta),
 * which has the same mean and cancels the gradient's share of the variance; the standard error is
 * that of the mean of these pair values.
 *
 * @example
 * const a = await averageCaseSharpness(objective, theta, { rho: 0.05, samples: 20, seed: 0 });
 * console.log(`${a.sharpness} +- ${a.stderr}`);
 */
export async function averageCaseSharpness(
  f: SharpnessObjective,
  theta: Float32Array,
  options: { rho?: number; samples?: number; seed?: number } = {},
): Promise<AverageSharpness> {
  const where = "averageCaseSharpness()";
  const { rho = 0.05, samples = 20, seed = 0 } = options;
  if (!(rho > 0)) throw new Error(`${where}: 'rho' must be a positive number, got ${rho}`);
  if (!Number.isInteger(samples) || samples < 2)
    throw new Error(`${where}: 'samples' must be an integer >= 2, got ${samples}`);
  if (!Number.isInteger(seed) || seed < 0)
    throw new Error(`${where}: 'seed' must be a non-negative integer, got ${seed}`);
  checkTheta(f, theta, where);
  const loss = await f.loss(theta);
  const rng = new Random(seed);
  const plus = theta.slice();
  const minus = theta.slice();
  const values: number[] = [];
  for (let s = 0; s < samples; s++) {
    for (let i = 0; i < theta.length; i++) {
      if (!f.mask[i]) continue;
      const d = rho * Math.abs(theta[i]!) * rng.normal();
      plus[i] = theta[i]! + d;
      minus[i] = theta[i]! - d;
    }
    values.push(((await f.loss(plus)) + (await f.loss(minus))) / 2 - loss);
  }
  const mean = values.reduce((a, b) => a + b, 0) / samples;
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / (samples - 1);
  return {
    sharpness: mean,
    stderr: Math.sqrt(variance / samples),
    loss,
    rho,
    samples,
    evaluations: 2 * samples + 1,
  };
}

/** Options of a model's objective. */
export interface ObjectiveOptions {
  /** Which parameters move (default "filters"). */
  perturb?: PerturbedParameters;
  /** Samples per ORT run (default 256). */
  batchSize?: number;
  /** ONNX Runtime intra-op threads (default: all cores). */
  threads?: number;
  /** The loss (default cross-entropy; mse for regression). */
  task?: TaskOptions;
}

/**
 * The evaluation-mode mean loss of `model` over `data` as a SharpnessObjective: losses from the
 * evaluation engine, losses with gradients from the gradient graph (batch norm on its running
 * statistics), both exact means over the whole dataset.
 *
 * @example
 * const f = await modelObjective(model, data, { perturb: "filters", threads: 2 });
 * const w = await worstCaseSharpness(f, theta, { rho: 0.5 });
 * await f.dispose();
 */
export async function modelObjective(
  model: Model,
  data: Dataset,
  options: ObjectiveOptions = {},
): Promise<
  SharpnessObjective & {
    /** Values perturbed (entries of the mask). */
    readonly perturbed: number;
    /** Loss, accuracy and count at `params` (the evaluation engine's). */
    metrics(params: Float32Array): Promise<Metrics>;
    dispose(): Promise<void>;
  }
> {
  const where = "modelObjective()";
  const { perturb = "filters", batchSize = 256, threads, task = {} } = options;
  if (perturb !== "filters" && perturb !== "trainable")
    throw new Error(`${where}: 'perturb' must be one of filters, trainable, got '${String(perturb)}'`);
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new Error(`${where}: 'batchSize' must be a positive integer, got ${batchSize}`);
  const { loss = "cross-entropy" } = task;
  if (loss === "mse-onehot")
    throw new Error(`${where}: sharpness needs gradients of cross-entropy or mse; mse-onehot has none here`);
  const n = datasetSize(data);
  if (n < 1) throw new Error(`${where}: dataset '${data.name}' has no samples`);
  const moving = model.params.filter((p) =>
    perturb === "filters" ? p.role === "filter" : p.role !== "bn-stat",
  );
  if (moving.length === 0)
    throw new Error(
      `${where}: model '${model.name}' has no ${perturb === "filters" ? "filter (rank >= 2)" : "trainable"} parameters`,
    );
  const mask = new Uint8Array(model.size);
  for (const p of moving) mask.fill(1, p.offset, p.offset + p.size);
  const t = threads === undefined ? {} : { threads };
  const session = await createGradientSession(model, {
    batchNorm: "inference",
    ...task,
    loss,
    targetShape: data.targetShape ?? [],
    trainable: moving.map((p) => p.name),
    ...t,
  });
  const engine = await createOrtEngine(model, t);
  const weights: number[] = [];
  for (let start = 0; start < n; start += batchSize) {
    const count = Math.min(batchSize, n - start);
    weights.push(model.loss ? count : scoredTargets(data, start, count, task));
  }
  const scored = Math.max(
    weights.reduce((a, b) => a + b, 0),
    1,
  );
  const per = sampleSize(data);
  const positions = targetSize(data);
  const scratch = data.read ? new Float32Array(Math.min(batchSize, n) * per) : undefined;
  const check = (params: Float32Array, name: string) => {
    if (params.length !== model.size)
      throw new Error(
        `${name}: 'params' has ${params.length} values but model '${model.name}' has ${model.size}`,
      );
  };
  return {
    mask,
    perturbed: moving.reduce((a, p) => a + p.size, 0),
    async metrics(params) {
      check(params, "metrics()");
      return engine.evaluate(params, data, { batchSize, ...task });
    },
    async loss(params) {
      check(params, "loss()");
      return (await engine.evaluate(params, data, { batchSize, ...task })).loss;
    },
    async lossAndGradient(params) {
      check(params, "lossAndGradient()");
      const g = new Float64Array(model.size);
      let total = 0;
      for (let start = 0, b = 0; start < n; start += batchSize, b++) {
        const count = Math.min(batchSize, n - start);
        const s = await session.step(
          params,
          readSamples(data, start, count, scratch),
          data.labels.subarray(start * positions, (start + count) * positions),
        );
        const w = weights[b]! / scored;
        total += w * s.loss;
        for (let i = 0; i < g.length; i++) if (mask[i]) g[i] = g[i]! + w * s.gradient[i]!;
      }
      return { loss: total, gradient: Float32Array.from(g) };
    },
    async dispose() {
      await session.dispose();
      await engine.dispose();
    },
  };
}

/** Settings of a sharpness report (every measure's radius, steps and samples). */
export interface SharpnessOptions extends Omit<ObjectiveOptions, "task"> {
  task?: TaskOptions;
  /** Keskar's epsilon (default 1e-3). */
  epsilon?: number;
  /** rho of the average-case measure (default 0.05: 5 % relative Gaussian noise per entry). */
  rhoAverage?: number;
  /** rho of the worst-case l2 measure (default 0.5). */
  rhoL2?: number;
  /** rho of the worst-case l-infinity measure (default 1e-3: 0.1 % of each entry). */
  rhoLinf?: number;
  /** Ascent steps of the worst-case measures and epsilon-sharpness (default 20). */
  steps?: number;
  /** Gaussian draws of the average-case measure (default 20, each used at +delta and -delta). */
  samples?: number;
  /** Seed of the random starts and draws (default 0). */
  seed?: number;
  /** Lanczos products for lambda_max (default 50) and its relative tolerance (default 1e-3). */
  lanczosIterations?: number;
  lanczosTol?: number;
  /** Hessian-vector products of the trace estimate (default 20; 0: no trace). */
  traceSamples?: number;
  /** How the trace is estimated (default "hutchinson"; "hutch++": Meyer et al. 2021). */
  traceMethod?: TraceMethod;
  /** Called when each measure starts. */
  onMeasure?: (name: string) => void;
}

/** Every sharpness measure of one model. */
export interface SharpnessRow {
  readonly label: string;
  /** Evaluation-mode loss and accuracy (fraction) over the data. */
  readonly loss: number;
  readonly accuracy: number;
  readonly epsilon: { readonly sharpness: number; readonly epsilon: number; readonly accepted: number };
  readonly average: { readonly sharpness: number; readonly stderr: number; readonly rho: number };
  readonly worstL2: { readonly sharpness: number; readonly rho: number; readonly accepted: number };
  readonly worstLinf: { readonly sharpness: number; readonly rho: number; readonly accepted: number };
  /** lambda_max of the Hessian w.r.t. the filters, its residual bound, and the trace (when asked). */
  readonly lambdaMax: number;
  readonly lambdaResidual: number;
  readonly lambdaConverged: boolean;
  readonly trace?: {
    readonly trace: number;
    readonly stderr: number;
    readonly samples: number;
    readonly method: TraceMethod;
  };
  readonly seconds: number;
}

/** The settings every row of a table shares, as they are reported. */
export interface SharpnessSettings {
  readonly perturb: PerturbedParameters;
  readonly perturbed: number;
  readonly data: string;
  readonly samplesInData: number;
  readonly epsilon: number;
  readonly rhoAverage: number;
  readonly rhoL2: number;
  readonly rhoLinf: number;
  readonly steps: number;
  readonly samples: number;
  readonly seed: number;
  readonly lanczosIterations: number;
  readonly lanczosTol: number;
  readonly traceSamples: number;
  readonly traceMethod: TraceMethod;
}

/**
 * Every sharpness measure of several parameter vectors of one model on one dataset, with the
 * settings they share: loss, accuracy, epsilon-sharpness, adaptive average- and worst-case (l2,
 * l-infinity) sharpness, lambda_max and the Hessian trace (Hutchinson) w.r.t. the filters.
 *
 * @example
 * const t = await sharpnessTable(model, [{ label: "bs128", params: a }, { label: "bs8192", params: b }], data, { threads: 2 });
 * console.log(sharpnessMarkdown(t));
 */
export async function sharpnessTable(
  model: Model,
  runs: readonly { label: string; params: Float32Array }[],
  data: Dataset,
  options: SharpnessOptions = {},
): Promise<{ settings: SharpnessSettings; rows: SharpnessRow[] }> {
  const {
    perturb = "filters",
    batchSize = 256,
    threads,
    task = {},
    epsilon = 1e-3,
    rhoAverage = 0.05,
    rhoL2 = 0.5,
    rhoLinf = 1e-3,
    steps = 20,
    samples = 20,
    seed = 0,
    lanczosIterations = 50,
    lanczosTol = 1e-3,
    traceSamples = 20,
    traceMethod = "hutchinson",
    onMeasure = () => {},
  } = options;
  if (runs.length === 0)
    throw new Error("sharpnessTable(): 'runs' is empty; give at least one parameter vector");
  const f = await modelObjective(model, data, {
    perturb,
    batchSize,
    task,
    ...(threads !== undefined ? { threads } : {}),
  });
  const rows: SharpnessRow[] = [];
  try {
    for (const run of runs) {
      const t0 = performance.now();
      const theta = run.params;
      onMeasure(`${run.label}: loss`);
      const m = await f.metrics(theta);
      onMeasure(`${run.label}: epsilon-sharpness`);
      const e = await epsilonSharpness(f, theta, { epsilon, steps, seed });
      onMeasure(`${run.label}: average-case sharpness`);
      const a = await averageCaseSharpness(f, theta, { rho: rhoAverage, samples, seed });
      onMeasure(`${run.label}: worst-case l2 sharpness`);
      const w2 = await worstCaseSharpness(f, theta, { rho: rhoL2, norm: "l2", steps, seed });
      onMeasure(`${run.label}: worst-case linf sharpness`);
      const wi = await worstCaseSharpness(f, theta, { rho: rhoLinf, norm: "linf", steps, seed });
      onMeasure(`${run.label}: Hessian`);
      const h = await hessianExtremes(model, theta, data, {
        tol: lanczosTol,
        maxIterations: lanczosIterations,
        seed,
        traceSamples,
        traceMethod,
        batchSize,
        task,
        ...(threads !== undefined ? { threads } : {}),
      });
      rows.push({
        label: run.label,
        loss: m.loss,
        accuracy: m.accuracy,
        epsilon: { sharpness: e.sharpness, epsilon, accepted: e.accepted },
        average: { sharpness: a.sharpness, stderr: a.stderr, rho: rhoAverage },
        worstL2: { sharpness: w2.sharpness, rho: rhoL2, accepted: w2.accepted },
        worstLinf: { sharpness: wi.sharpness, rho: rhoLinf, accepted: wi.accepted },
        lambdaMax: h.max,
        lambdaResidual: h.residualMax,
        lambdaConverged: h.converged,
        ...(h.trace ? { trace: h.trace } : {}),
        seconds: (performance.now() - t0) / 1000,
      });
    }
  } finally {
    await f.dispose();
  }
  return {
    settings: {
      perturb,
      perturbed: f.perturbed,
      data: data.name,
      samplesInData: datasetSize(data),
      epsilon,
      rhoAverage,
      rhoL2,
      rhoLinf,
      steps,
      samples,
      seed,
      lanczosIterations,
      lanczosTol,
      traceSamples,
      traceMethod,
    },
    rows,
  };
}

const num = (v: number): string => (Number.isFinite(v) ? v.toPrecision(4) : String(v));

/**
 * A sharpness table as Markdown: one row per model, a header naming every radius, and a note with
 * the parameters perturbed, the steps, samples and step rule.
 *
 * @example
 * writeFileAtomic("sharpness.md", sharpnessMarkdown(await sharpnessTable(model, runs, data)));
 */
export function sharpnessMarkdown(table: {
  settings: SharpnessSettings;
  rows: readonly SharpnessRow[];
}): string {
  const s = table.settings;
  const head = [
    "model",
    "loss",
    "acc %",
    `eps-sharpness % (eps ${s.epsilon})`,
    `avg-case (rho ${s.rhoAverage})`,
    `worst-case l2 (rho ${s.rhoL2})`,
    `worst-case linf (rho ${s.rhoLinf})`,
    "lambda_max",
    "trace",
  ];
  const lines = [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`];
  for (const r of table.rows) {
    const cells = [
      r.label,
      num(r.loss),
      Number.isFinite(r.accuracy) ? (100 * r.accuracy).toFixed(2) : "-",
      num(r.epsilon.sharpness),
      `${num(r.average.sharpness)} ± ${r.average.stderr.toPrecision(2)}`,
      num(r.worstL2.sharpness),
      num(r.worstLinf.sharpness),
      `${num(r.lambdaMax)}${r.lambdaConverged ? "" : " (not converged)"}`,
      r.trace ? `${num(r.trace.trace)} ± ${r.trace.stderr.toPrecision(2)}` : "-",
    ];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  const which =
    s.perturb === "filters"
      ? "the filter (rank >= 2) weights"
      : "every trainable parameter (not the BN running statistics)";
  lines.push(
    "",
    `Evaluation mode, mean loss over ${s.data} (${s.samplesInData} samples). The sharpness measures perturb ${which} (${s.perturbed} values); lambda_max and the trace are of the Hessian w.r.t. the filter weights.`,
    `eps-sharpness (Keskar et al. 2017, full space): 100 (max L(x+y) - L(x)) / (1 + L(x)) over |y_i| <= eps (|x_i| + 1). Worst-case (Andriushchenko et al. 2023, elementwise adaptive): max L(w+d) - L(w) over ||d / |w| ||_p <= rho. Both by projected (sign-)gradient ascent: a seeded random start at half the set's size, then ${s.steps} steps, the step starting at twice the set's size and halved after a step that does not raise the loss (a lower bound of the true maximum).`,
    `Average-case (Kwon et al. 2021; Andriushchenko et al. 2023): E L(w+d) - L(w), d ~ N(0, rho^2 diag(w^2)), ${s.samples} seeded draws used at +d and -d, ± one standard error. lambda_max: Lanczos, at most ${s.lanczosIterations} products, tolerance ${s.lanczosTol}; trace: ${s.traceMethod === "hutch++" ? "Hutch++ (Meyer et al. 2021)" : "Hutchinson, Rademacher probes"}, ${s.traceSamples} Hessian-vector products, ± one standard error. Seed ${s.seed}.`,
  );
  return `${lines.join("\n")}\n`;
}
