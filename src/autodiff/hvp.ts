// Exact Hessian-vector products on ONNX Runtime: the gradient graph of a model
// (batch norm in inference mode) differentiated once more in forward mode along
// a tangent v of the parameters (jvp.ts), so that one run over a batch gives the
// loss, the gradient g and H v = d g / d theta . v (forward-over-reverse).

import { availableParallelism } from "node:os";
import * as ort from "onnxruntime-node";
import { batchCount, type Samples, samplesTensor, targetsTensor } from "../engine/_tensors.ts";
import { checkParams, type Model } from "../model/model.ts";
import { encodeModel } from "../onnx/proto.ts";
import { type GradientGraph, type GradientOptions, gradientGraph } from "./gradient.ts";

/** The loss of a Hessian: as in a gradient graph (loss, ignore index, class axis, target shape). */
export type GradientTask = Pick<GradientOptions, "loss" | "ignoreIndex" | "classAxis" | "targetShape">;

import { type JvpGraph, jvpGraph } from "./jvp.ts";
import { nchwcBlockSize } from "./nchwc.ts";
import { gradientSessionOptions } from "./session.ts";

/** A Hessian-vector product graph and what it computes. */
export interface HvpGraph {
  /** The gradient graph it differentiates. */
  readonly gradient: GradientGraph;
  /** The gradient graph with tangents: inputs `tangent:<param>`, outputs `hvp:<param>`. */
  readonly jvp: JvpGraph;
  /** Parameters differentiated (in model order). */
  readonly params: readonly string[];
}

/**
 * Builds the Hessian-vector product graph of a model with respect to `params` (default: the filter
 * weights, rank >= 2), batch norm in inference mode (evaluation mode, as the paper's curvature).
 *
 * @example
 * const h = hvpGraph(zooModel("mlp"));
 * h.jvp.tangentOutputs[0]; // { value: "grad:fc1.weight", output: "hvp:fc1.weight" }
 */
export function hvpGraph(
  model: Model,
  {
    params,
    convBlock,
    task = {},
  }: { params?: readonly string[]; convBlock?: number; task?: GradientTask } = {},
): HvpGraph {
  const names = params ? [...params] : model.params.filter((p) => p.role === "filter").map((p) => p.name);
  for (const name of names) {
    if (!model.params.some((p) => p.name === name))
      throw new Error(`hvpGraph(): '${name}' is not a parameter of '${model.name}'`);
  }
  if (names.length === 0)
    throw new Error(`hvpGraph(): model '${model.name}' has no parameters to differentiate`);
  const gradient = gradientGraph(model, {
    ...task,
    batchNorm: "inference",
    parameters: "inputs",
    trainable: names,
    ...(convBlock !== undefined ? { convBlock } : {}),
  });
  const jvp = jvpGraph(gradient.proto, {
    seeds: names.map((p) => ({ value: p, name: `tangent:${p}` })),
    outputs: gradient.gradients.map((g) => ({ value: g.output, name: `hvp:${g.param}` })),
  });
  return { gradient, jvp, params: names };
}

/** What one Hessian-vector product run returns (all in the model's flat parameter layout). */
export interface HvpStep {
  /** Mean loss over the batch's scored targets. */
  readonly loss: number;
  /** d loss / d params at the differentiated parameters, zero elsewhere. */
  readonly gradient: Float32Array;
  /** H v at the differentiated parameters, zero elsewhere. */
  readonly hvp: Float32Array;
}

/** Runs a model's Hessian-vector product graph on ORT. */
export interface HvpSession {
  readonly model: Model;
  readonly graph: HvpGraph;
  /** Loss, gradient and H v on one batch; `v` is read at the differentiated parameters only. */
  run(params: Float32Array, v: Float32Array, inputs: Samples, labels: ArrayLike<number>): Promise<HvpStep>;
  /** Releases the ORT session. */
  dispose(): Promise<void>;
}

/**
 * Opens an ORT session of a model's Hessian-vector product graph.
 *
 * @example
 * const s = await createHvpSession(model, { threads: 2 });
 * const { hvp } = await s.run(theta, v, batch.inputs, batch.labels);
 */
export async function createHvpSession(
  model: Model,
  options: { threads?: number; params?: readonly string[]; blocked?: boolean; task?: GradientTask } = {},
): Promise<HvpSession> {
  const { threads = availableParallelism(), params, blocked = true, task } = options;
  if (!Number.isInteger(threads) || threads < 1) {
    throw new Error(`createHvpSession(): 'threads' must be a positive integer, got ${threads}`);
  }
  // Blocked (NCHWc) convolutions as in gradient sessions; the batch stays symbolic (evaluation
  // batches vary), so weight gradients keep the patches + MatMul form.
  const convBlock = blocked ? await nchwcBlockSize() : undefined;
  const graph = hvpGraph(model, {
    ...(params ? { params } : {}),
    ...(convBlock ? { convBlock } : {}),
    ...(task ? { task } : {}),
  });
  const { bytes } = encodeModel(graph.jvp.proto);
  const session = await ort.InferenceSession.create(bytes, gradientSessionOptions(threads, "inputs"));
  return new OrtHvpSession(model, graph, session);
}

class OrtHvpSession implements HvpSession {
  private session: ort.InferenceSession | undefined;
  private readonly byName: Map<string, Model["params"][number]>;
  private readonly fetches: string[];

  constructor(
    readonly model: Model,
    readonly graph: HvpGraph,
    session: ort.InferenceSession,
  ) {
    this.session = session;
    this.byName = new Map(model.params.map((p) => [p.name, p]));
    this.fetches = [
      graph.gradient.loss,
      ...graph.gradient.gradients.map((g) => g.output),
      ...graph.jvp.tangentOutputs.map((t) => t.output),
    ];
  }

  async run(
    params: Float32Array,
    v: Float32Array,
    inputs: Samples,
    labels: ArrayLike<number>,
  ): Promise<HvpStep> {
    if (!this.session)
      throw new Error(`Hessian-vector product session for '${this.model.name}' was disposed`);
    checkParams(this.model, params, "run()");
    if (v.length !== this.model.size) {
      throw new Error(
        `run(): 'v' has ${v.length} values but model '${this.model.name}' has ${this.model.size}`,
      );
    }
    const targetShape = this.graph.gradient.targetShape;
    const count = batchCount(this.model, targetShape, inputs, labels, "run()");
    const feeds: Record<string, ort.Tensor> = {
      input: samplesTensor(this.model, inputs, count, "run()"),
      labels: targetsTensor(labels, [count, ...targetShape], this.graph.gradient.labelsType),
    };
    for (const name of this.graph.gradient.parameterInputs) {
      const p = this.byName.get(name)!;
      feeds[name] = new ort.Tensor("float32", params.subarray(p.offset, p.offset + p.size), [...p.shape]);
    }
    for (const t of this.graph.jvp.tangentInputs) {
      const p = this.byName.get(t.value)!;
      feeds[t.input] = new ort.Tensor("float32", v.subarray(p.offset, p.offset + p.size), [...p.shape]);
    }
    const out = await this.session.run(feeds, this.fetches);
    const gradient = new Float32Array(this.model.size);
    for (const g of this.graph.gradient.gradients)
      gradient.set(out[g.output]!.data as Float32Array, this.byName.get(g.param)!.offset);
    const hvp = new Float32Array(this.model.size);
    for (const t of this.graph.jvp.tangentOutputs) {
      const param = t.output.slice("hvp:".length);
      hvp.set(out[t.output]!.data as Float32Array, this.byName.get(param)!.offset);
    }
    return { loss: (out[this.graph.gradient.loss]!.data as Float32Array)[0]!, gradient, hvp };
  }

  async dispose(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    await s?.release();
  }
}
