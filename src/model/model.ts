// A model as losscape sees it: an ONNX graph plus an ordered list of named
// parameters, each with the role that decides how directions treat it
// (method.md, "Parameters and their roles"). Parameters live in one flat
// float32 vector so that theta + a*d1 + b*d2 is a single loop.

import type { InitializerReport } from "./_discover.ts";

export type { InitializerReport } from "./_discover.ts";

/** What a parameter tensor is, in the paper's terms. */
export type ParamRole = "filter" | "bias" | "bn-scale" | "bn-shift" | "bn-stat";

/**
 * One parameter tensor of a model.
 *
 * @example
 * const conv: ParamSpec = { name: "conv1.weight", shape: [16, 3, 3, 3], role: "filter", filterAxis: 0, offset: 0, size: 432 };
 */
export interface ParamSpec {
  /** Initializer name in the ONNX graph (PyTorch `state_dict` name for exports that keep them). */
  readonly name: string;
  readonly shape: readonly number[];
  readonly role: ParamRole;
  /** For filters: the output-channel axis along which filters are sliced (0 for ONNX Conv [out,in,kh,kw] and Gemm transB=1 [out,in]; 1 for MatMul/Gemm [in,out]). */
  readonly filterAxis?: number;
  /** What the tensor is ("Conv weight", "embedding", "LSTM W (input weights)", ...), when known. */
  readonly kind?: string;
  /** Index of the first value in the flat parameter vector. */
  readonly offset: number;
  /** Number of values. */
  readonly size: number;
}

/** A runnable classification model. */
export interface Model {
  /** Identity for messages and files (zoo name or file name). */
  readonly name: string;
  /** The ONNX model bytes; parameter initializers are stored as raw float32 at `rawOffsets`. */
  readonly onnx: Uint8Array;
  /** Byte offset in `onnx` of each parameter's raw data, in `params` order. */
  readonly rawOffsets: readonly number[];
  /**
   * Graph input name, the shape of one sample (without the batch axis), a fixed batch size if the
   * graph has one, and the element type: float32 samples, or int64/int32 token ids (embeddings).
   */
  readonly input: {
    readonly name: string;
    readonly shape: readonly number[];
    readonly batch: number | null;
    readonly type?: InputType;
  };
  /** Name of the graph output holding the logits (a model loss without logits: the loss output). */
  readonly output: string;
  /**
   * The graph's own loss (--loss-output): a scalar output computed from the samples and a targets
   * input, evaluated and differentiated as it is (taken as the mean over the batch).
   */
  readonly loss?: ModelLoss;
  /** Number of classes (size of the logits' last axis), when known from the graph. */
  readonly classes: number | null;
  /** Parameters in graph order. */
  readonly params: readonly ParamSpec[];
  /** Total number of parameter values (length of a parameter vector). */
  readonly size: number;
  /** The parameter values stored in the model file. */
  readonly initial: Float32Array;
  /** Things a user should know about how the graph was read (constants left fixed, ...). */
  readonly warnings: readonly string[];
  /** What each float initializer of an imported graph became, and why (`losscape describe`). */
  readonly initializers?: readonly InitializerReport[];
}

/**
 * A loss computed inside the model's graph.
 *
 * @example
 * const l: ModelLoss = { output: "loss", targets: "targets", targetsType: "int64", logits: true };
 */
export interface ModelLoss {
  /** Graph output holding the scalar loss. */
  readonly output: string;
  /** Graph input taking the targets. */
  readonly targets: string;
  /** Element type of the targets input. */
  readonly targetsType: InputType;
  /** Whether `Model.output` holds logits (for the accuracy) rather than the loss itself. */
  readonly logits: boolean;
}

/** Element type of a model's samples input: float32 (images, features) or integer token ids. */
export type InputType = "float32" | "int64" | "int32";

/** Whether a role is trained by gradient descent (everything but BN running statistics). */
export function isTrainable(role: ParamRole): boolean {
  return role !== "bn-stat";
}

/** Number of values in a shape. */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * The sub-array of a flat parameter vector holding one tensor.
 *
 * @example
 * const w = paramView(model.initial, model.params[0]);
 */
export function paramView(values: Float32Array, spec: ParamSpec): Float32Array {
  return values.subarray(spec.offset, spec.offset + spec.size);
}

/** Looks a parameter up by name, with an error listing a few valid names. */
export function findParam(model: Model, name: string): ParamSpec {
  const p = model.params.find((q) => q.name === name);
  if (!p) {
    const names = model.params.map((q) => q.name);
    throw new Error(
      `model '${model.name}' has no parameter '${name}'; it has ${names.length}: ${names.slice(0, 8).join(", ")}${names.length > 8 ? ", ..." : ""}`,
    );
  }
  return p;
}

/** Checks that a parameter vector fits a model. */
export function checkParams(model: Model, params: Float32Array, where: string): void {
  if (!(params instanceof Float32Array)) {
    throw new Error(
      `${where}: 'params' must be a Float32Array, got ${Object.prototype.toString.call(params)}`,
    );
  }
  if (params.length !== model.size) {
    throw new Error(
      `${where}: 'params' has ${params.length} values but model '${model.name}' has ${model.size} parameters`,
    );
  }
}
