// Runs a model's gradient graph on ONNX Runtime: one call gives the loss, the
// logits, the gradient with respect to every trainable parameter (laid out
// like the model's flat parameter vector) and, with training-mode batch norm,
// the batch statistics for the running-statistics update.

import { availableParallelism } from "node:os";
import * as ort from "onnxruntime-node";
import { checkParams, type Model, shapeSize } from "../model/model.ts";
import { encodeModel } from "../onnx/proto.ts";
import { type GradientGraph, type GradientOptions, gradientGraph, type ParameterMode } from "./gradient.ts";
import { nchwcBlockSize } from "./nchwc.ts";

/** Options of a gradient session. */
export interface GradientSessionOptions extends GradientOptions {
  /** Intra-op threads (default: all cores). */
  threads?: number;
  /**
   * Run 2D convolutions on ORT's blocked NCHWc kernels where the channel counts allow (default
   * true when this ORT build has them; see nchwc.ts). ResNet-20 train step: ~25 % faster.
   */
  blocked?: boolean;
}

/** What one gradient evaluation returns. */
export interface GradientStep {
  /** Mean cross-entropy over the batch. */
  readonly loss: number;
  /** [count, classes] logits. */
  readonly logits: Float32Array;
  /** d loss / d params, same layout as the parameter vector; zero at batch-norm running statistics. */
  readonly gradient: Float32Array;
  /** Training-mode batch norm: batch mean / unbiased batch variance per running-statistic name. */
  readonly statistics: ReadonlyMap<string, Float32Array>;
}

/** Loss and gradients of a model on ORT. */
export interface GradientSession {
  readonly model: Model;
  readonly graph: GradientGraph;
  /** Loss, logits and gradient at `params` on one batch (`labels.length` samples from `inputs`). */
  step(params: Float32Array, inputs: Float32Array, labels: ArrayLike<number>): Promise<GradientStep>;
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
    convBlock !== undefined && graph.parameters === "inputs" && model.input.batch === undefined
      ? (batch: number) =>
          batch % convBlock === 0 ? gradientGraph(model, { ...rest, convBlock, batch }) : undefined
      : () => undefined;
  return new OrtGradientSession(model, graph, threads, specialize);
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

  constructor(
    readonly model: Model,
    readonly graph: GradientGraph,
    private readonly threads: number,
    private readonly specialize: (batch: number) => GradientGraph | undefined,
  ) {
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

  async step(params: Float32Array, inputs: Float32Array, labels: ArrayLike<number>): Promise<GradientStep> {
    checkParams(this.model, params, "step()");
    const count = labels.length;
    const per = shapeSize(this.model.input.shape);
    if (count < 1 || inputs.length !== count * per) {
      throw new Error(
        `step(): ${count} labels need ${count * per} input values (samples of shape [${this.model.input.shape.join(", ")}]), got ${inputs.length}`,
      );
    }
    const session = await this.sessionFor(params, count);
    const feeds: Record<string, ort.Tensor> = {
      input: new ort.Tensor("float32", inputs, [count, ...this.model.input.shape]),
      labels: new ort.Tensor("int64", BigInt64Array.from(Array.from(labels, (v) => BigInt(v))), [count]),
    };
    if (this.graph.parameters === "inputs") {
      const byName = new Map(this.model.params.map((p) => [p.name, p]));
      for (const name of this.graph.parameterInputs) {
        const p = byName.get(name)!;
        // A view, not a copy: ORT reads it during run(), before step() resolves.
        feeds[name] = new ort.Tensor("float32", params.subarray(p.offset, p.offset + p.size), [...p.shape]);
      }
    }
    const out = await session.run(feeds);
    const gradient = new Float32Array(this.model.size);
    const byName = new Map(this.model.params.map((p) => [p.name, p]));
    for (const g of this.graph.gradients) {
      const p = byName.get(g.param)!;
      gradient.set(out[g.output]!.data as Float32Array, p.offset);
    }
    const statistics = new Map<string, Float32Array>();
    for (const s of this.graph.statistics)
      statistics.set(s.param, (out[s.output]!.data as Float32Array).slice());
    return {
      loss: (out[this.graph.loss]!.data as Float32Array)[0]!,
      logits: (out[this.graph.logits]!.data as Float32Array).slice(),
      gradient,
      statistics,
    };
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
