// Runs a model's gradient graph on ONNX Runtime: one call gives the loss, the
// logits, the gradient with respect to every trainable parameter (laid out
// like the model's flat parameter vector) and, with training-mode batch norm,
// the batch statistics for the running-statistics update. A session made with
// an optimizer applies the update in the same run instead (update()).

import { availableParallelism } from "node:os";
import * as ort from "onnxruntime-node";
import type { OptimizerConfig, OptimizerState } from "../core/optim.ts";
import { batchCount, type Samples, samplesTensor, targetsTensor } from "../engine/_tensors.ts";
import { checkParams, type Model, type ParamSpec } from "../model/model.ts";
import { encodeModel } from "../onnx/proto.ts";
import { type GradientGraph, type GradientOptions, gradientGraph, type ParameterMode } from "./gradient.ts";
import { nchwcBlockSize } from "./nchwc.ts";

/** Options of a gradient session. */
export interface GradientSessionOptions extends GradientOptions {
  /** Intra-op threads (default: all cores). */
  threads?: number;
  /**
   * Run 2D convolutions on ORT's blocked NCHWc kernels where the channel counts allow (default
   * true when this ORT build has them; see nchwc.ts). ResNet-20 forward + backward: about 20-25 % less CPU
   * time (bench/autodiff-formulations.ts, variant "no blocked convolutions" against "default").
   */
  blocked?: boolean;
}

/** What one gradient evaluation returns. */
export interface GradientStep {
  /** Mean loss over the batch's scored targets (the model's own loss for Model.loss). */
  readonly loss: number;
  /** The model's output on the batch, as the graph lays it out (empty for a model loss without one). */
  readonly logits: Float32Array;
  /** d loss / d params, same layout as the parameter vector; zero at batch-norm running statistics. */
  readonly gradient: Float32Array;
  /** Training-mode batch norm: batch mean / unbiased batch variance per running-statistic name. */
  readonly statistics: ReadonlyMap<string, Float32Array>;
}

/** What one training update returns (the parameters and optimizer state are updated in place). */
export type UpdateStep = Omit<GradientStep, "gradient">;

/** Loss and gradients of a model on ORT. */
export interface GradientSession {
  readonly model: Model;
  readonly graph: GradientGraph;
  /** Loss, logits and gradient at `params` on one batch (`labels.length` samples from `inputs`). */
  step(params: Float32Array, inputs: Samples, labels: ArrayLike<number>): Promise<GradientStep>;
  /**
   * For a session created with `optimizer`: one training step on a batch with the optimizer update
   * done by ORT. `params` (trainable entries) and `state` (as optimizerState() makes it) are updated
   * in place; `state.step` counts the update. Batch-norm running statistics are left to the caller
   * (see `statistics`).
   */
  update(
    params: Float32Array,
    state: OptimizerState,
    inputs: Samples,
    labels: ArrayLike<number>,
    lr: number,
  ): Promise<UpdateStep>;
  /** Releases the ORT session. */
  dispose(): Promise<void>;
}

/**
 * Creates a gradient session for a float32 model.
 *
 * @example
 * const s = await createGradientSession(zooModel("cnn"), { batchNorm: "training", threads: 2 });
 * const { loss, gradient } = await s.step(model.initial, batch.inputs, batch.labels);
 */
export async function createGradientSession(
  model: Model,
  options: GradientSessionOptions = {},
): Promise<GradientSession> {
  const { threads = availableParallelism(), blocked = true, ...rest } = options;
  if (!Number.isInteger(threads) || threads < 1) {
    throw new Error(`createGradientSession(): 'threads' must be a positive integer, got ${threads}`);
  }
  for (const name of rest.trainable ?? []) {
    if (!model.params.some((p) => p.name === name)) {
      throw new Error(
        `createGradientSession(): 'trainable' names '${name}', which is not a parameter of '${model.name}'`,
      );
    }
  }
  const convBlock = rest.convBlock ?? (blocked ? await nchwcBlockSize() : undefined);
  const graph = gradientGraph(model, { ...rest, convBlock });
  // With parameters as inputs and blocked convolutions, batches whose size is a multiple of the
  // block get a graph with that static batch, which allows the blocked weight gradient.
  const specialize =
    convBlock !== undefined && graph.parameters === "inputs" && model.input.batch === null
      ? (batch: number) =>
          batch % convBlock === 0 ? gradientGraph(model, { ...rest, convBlock, batch }) : undefined
      : () => undefined;
  return new OrtGradientSession(model, graph, threads, specialize, rest.optimizer);
}

/**
 * ORT options for a gradient graph. With parameters as inputs, ORT's NCHWc layout transformer
 * cannot pre-reorder the (non-constant) weights and only adds Reorder nodes around every Conv,
 * so it is disabled (ResNet-20 train step: ~15 % faster without it).
 *
 * @example
 * const session = await ort.InferenceSession.create(bytes, gradientSessionOptions(2, "inputs"));
 */
export function gradientSessionOptions(
  threads: number,
  parameters: ParameterMode,
): ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    ...(parameters === "inputs"
      ? { extra: { optimization: { disable_specified_optimizers: "NchwcTransformer" } } }
      : {}),
  };
}

class OrtGradientSession implements GradientSession {
  private readonly bytes: Uint8Array;
  /** Byte offset of each model parameter's raw data in `bytes` (-1: not in the graph or an input). */
  private readonly offsets: number[];
  private readonly loaded: Float32Array;
  private session: ort.InferenceSession | undefined;
  /** Parameters-as-inputs sessions by batch size ("any": the graph with a symbolic batch). */
  private readonly sessions = new Map<
    number | "any",
    { graph: GradientGraph; bytes: Uint8Array; session?: ort.InferenceSession }
  >();
  private fresh = true;
  private disposed = false;

  private readonly byName: Map<string, ParamSpec>;

  constructor(
    readonly model: Model,
    readonly graph: GradientGraph,
    private readonly threads: number,
    private readonly specialize: (batch: number) => GradientGraph | undefined,
    private readonly optimizer: OptimizerConfig | undefined,
  ) {
    this.byName = new Map(model.params.map((p) => [p.name, p]));
    const { bytes, offsets } = encodeModel(graph.proto);
    this.bytes = bytes;
    this.offsets = model.params.map((p) => offsets.get(p.name) ?? -1);
    this.loaded = new Float32Array(model.size);
  }

  /** The session for a batch of `count` samples with parameters as inputs (at most two kept). */
  private async inputsSession(count: number): Promise<ort.InferenceSession> {
    let key: number | "any" = count;
    let entry = this.sessions.get(key);
    if (!entry) {
      const graph = this.specialize(count);
      if (graph) entry = { graph, bytes: encodeModel(graph.proto).bytes };
      else {
        key = "any";
        entry = this.sessions.get(key) ?? { graph: this.graph, bytes: this.bytes };
      }
    }
    if (!entry.session) {
      if (this.sessions.size >= 2) {
        const [oldest, old] = this.sessions.entries().next().value!;
        this.sessions.delete(oldest);
        await old.session?.release();
      }
      entry.session = await ort.InferenceSession.create(
        entry.bytes,
        gradientSessionOptions(this.threads, this.graph.parameters),
      );
    }
    this.sessions.delete(key);
    this.sessions.set(key, entry);
    return entry.session;
  }

  private async sessionFor(params: Float32Array, count: number): Promise<ort.InferenceSession> {
    if (this.disposed) throw new Error(`gradient session for '${this.model.name}' was disposed`);
    if (this.graph.parameters === "inputs") return this.inputsSession(count);
    const same =
      !this.fresh &&
      Buffer.compare(
        Buffer.from(params.buffer, params.byteOffset, params.byteLength),
        Buffer.from(this.loaded.buffer, this.loaded.byteOffset, this.loaded.byteLength),
      ) === 0;
    if (same && this.session) return this.session;
    this.model.params.forEach((p, i) => {
      const at = this.offsets[i]!;
      if (at >= 0)
        this.bytes.set(new Uint8Array(params.buffer, params.byteOffset + p.offset * 4, p.size * 4), at);
    });
    const previous = this.session;
    this.session = undefined;
    await previous?.release();
    this.session = await ort.InferenceSession.create(
      this.bytes,
      gradientSessionOptions(this.threads, this.graph.parameters),
    );
    this.loaded.set(params);
    this.fresh = false;
    return this.session;
  }

  /** Runs the graph on one batch with extra feeds; checks the arguments in the name of `where`. */
  private async run(
    where: string,
    params: Float32Array,
    inputs: Samples,
    labels: ArrayLike<number>,
    extra: (feeds: Record<string, ort.Tensor>) => void = () => {},
  ): Promise<ort.InferenceSession.ReturnType> {
    checkParams(this.model, params, `${where}()`);
    const count = batchCount(this.model, this.graph.targetShape, inputs, labels, `${where}()`);
    const session = await this.sessionFor(params, count);
    const feeds: Record<string, ort.Tensor> = {
      input: samplesTensor(this.model, inputs, count, `${where}()`),
      labels: targetsTensor(labels, [count, ...this.graph.targetShape], this.graph.labelsType),
    };
    if (this.graph.parameters === "inputs") {
      for (const name of this.graph.parameterInputs) {
        const p = this.byName.get(name)!;
        // A view, not a copy: ORT reads it during run(), before the call resolves.
        feeds[name] = new ort.Tensor("float32", params.subarray(p.offset, p.offset + p.size), [...p.shape]);
      }
    }
    extra(feeds);
    return session.run(feeds);
  }

  private common(out: ort.InferenceSession.ReturnType): UpdateStep {
    const statistics = new Map<string, Float32Array>();
    for (const s of this.graph.statistics)
      statistics.set(s.param, (out[s.output]!.data as Float32Array).slice());
    return {
      loss: (out[this.graph.loss]!.data as Float32Array)[0]!,
      logits: this.graph.logits
        ? (out[this.graph.logits]!.data as Float32Array).slice()
        : new Float32Array(0),
      statistics,
    };
  }

  async step(params: Float32Array, inputs: Samples, labels: ArrayLike<number>): Promise<GradientStep> {
    if (this.graph.updates.length > 0) {
      throw new Error(
        `step(): this session of '${this.model.name}' applies optimizer updates; call update()`,
      );
    }
    const out = await this.run("step", params, inputs, labels);
    const gradient = new Float32Array(this.model.size);
    for (const g of this.graph.gradients) {
      gradient.set(out[g.output]!.data as Float32Array, this.byName.get(g.param)!.offset);
    }
    return { ...this.common(out), gradient };
  }

  async update(
    params: Float32Array,
    state: OptimizerState,
    inputs: Samples,
    labels: ArrayLike<number>,
    lr: number,
  ): Promise<UpdateStep> {
    const config = this.optimizer;
    if (!config) {
      throw new Error(
        `update(): this session of '${this.model.name}' has no optimizer; create it with 'optimizer' or call step()`,
      );
    }
    if (!Number.isFinite(lr) || lr < 0)
      throw new Error(`update(): 'lr' must be a finite number >= 0, got ${lr}`);
    if (
      state.m.length !== this.model.size ||
      (config.kind === "adam" && state.v.length !== this.model.size)
    ) {
      throw new Error(
        `update(): 'state' holds ${state.m.length} values but model '${this.model.name}' has ${this.model.size} parameters (make it with optimizerState())`,
      );
    }
    const step = state.step + 1;
    const scalars: Record<string, number> = {
      lr,
      keep: step === 1 ? 0 : config.kind === "sgd" ? (config.momentum ?? 0) : 0,
      c1: config.kind === "adam" ? 1 - (config.beta1 ?? 0.9) ** step : 1,
      c2: config.kind === "adam" ? 1 - (config.beta2 ?? 0.999) ** step : 1,
    };
    const out = await this.run("update", params, inputs, labels, (feeds) => {
      for (const name of this.graph.updateScalars) {
        feeds[`opt:${name}`] = new ort.Tensor("float32", new Float32Array([scalars[name]!]), []);
      }
      for (const u of this.graph.updates) {
        const p = this.byName.get(u.param)!;
        for (const t of u.state) {
          const values = (t.kind === "m" ? state.m : state.v).subarray(p.offset, p.offset + p.size);
          feeds[t.input] = new ort.Tensor("float32", values, [...p.shape]);
        }
      }
    });
    for (const u of this.graph.updates) {
      const at = this.byName.get(u.param)!.offset;
      params.set(out[u.output]!.data as Float32Array, at);
      for (const t of u.state)
        (t.kind === "m" ? state.m : state.v).set(out[t.output]!.data as Float32Array, at);
    }
    state.step = step;
    return this.common(out);
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    const s = this.session;
    this.session = undefined;
    await s?.release();
    for (const entry of this.sessions.values()) await entry.session?.release();
    this.sessions.clear();
  }
}
