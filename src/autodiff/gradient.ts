// Reverse-mode differentiation of an ONNX classification graph: a new ONNX
// graph that computes the logits, the mean softmax cross-entropy over the
// batch and its gradient with respect to every trainable parameter, so that
// training and curvature run on ONNX Runtime like evaluation does.
//
// How it is run was measured inside whole gradient graphs with
// bench/autodiff-formulations.ts (ResNet-20 train step = forward + backward,
// batch norm in training mode, batch 128, 2 threads, onnxruntime-node 1.30 CPU,
// 2-core AMD EPYC (AVX2) shared with other jobs, variants alternating in one
// process; the steadier process CPU time per step is quoted; lower is better):
//   plain Conv nodes everywhere (im2col + MLAS GEMM)        1393 CPU-ms
//   + forward and stride-1 input-gradient convolutions on ORT's blocked NCHWc
//     kernels (Emitter.conv; weights reordered in the graph)  1174 (their kernels 279 -> 181 ms,
//                                                               plus 45 ms of layout reorders)
//   + weight gradients of maps up to 16x16 as a blocked Conv   1126 (default; needs a static batch,
//     over transposed tensors (dY as the kernel)                    so sessions specialize per size)
//   weight gradients: patches . dY^T instead of dY . patches^T  MatMul kernels 165 -> 125 ms (one ORT
//                                                               profile; the old order is not kept)
// Earlier measurements (before blocked convolutions; CPU-ms, two runs, noise about +-6 %):
//   default of the time                              1519 / 1805
//   Conv input gradient as ConvTranspose             1702 / 1957  (vs Conv with flipped weights)
//   weight gradient: im2col by Slices + one Gemm     1898 / 2123  (vs patches from a one-hot Conv
//   weight gradient: im2col by Slices + MatMul       1795 / 1970   + batched MatMul)
//   weight gradient: Conv over transposed tensors    2129 / 2354
//   Relu gradient Where(y > 0, dy, 0) / dy * Sign(y) 1599 / 1655, 1743  (vs dy * Cast(y > 0))
//   per-channel sums direct / two-stage float32      1578 / 1701, 1584 / 1747  (float64 second stage: free)
//   parameters as initializers, new session per step 2488 / 2901  (creating a session of this graph
//                                                    takes ~250-450 ms)
//   PyTorch 1.13 (tuned, train mode)                 1028 / 1081
// Tried and dropped: ORT's training-mode BatchNormalization kernel for the batch statistics (no
// faster than the reductions), shifted-copy patches by Pad/Slice/Concat (ORT's Pad and strided
// Slice are slow), 3 + 3 one-hot shifts of x and dY instead of 9 patches (~10 % on the weight
// gradient of 32x32 maps, none at 8x8), a width-interleaved dilated blocked Conv for weight
// gradients (no faster), batch-norm sums of dy * xc as batched MatMul dot products (no faster),
// and ORT's parallel execution mode (about 2x slower).
// Small CNN (1x28x28, MaxPool) at batch 128: MaxPool through Indices + MaxUnpool 177 CPU-ms, an
// equality mask 276; PyTorch 161. MLP 784-512-256-10 at batch 128: 4.3 ms vs PyTorch 4.9 ms.

import type { OptimizerConfig } from "../core/optim.ts";
import { DEFAULT_IGNORE_INDEX } from "../engine/task.ts";
import { fromProto } from "../model/import.ts";
import { isTrainable, type Model } from "../model/model.ts";
import {
  AttrType,
  DataType,
  decodeModel,
  type ModelProto,
  type Node,
  type Tensor,
  type ValueInfo,
} from "../onnx/proto.ts";
import { type EmitAttr, Emitter, NCHWC_DOMAIN } from "./_emit.ts";
import { lowerRecurrent, RECURRENT } from "./_lower-recurrent.ts";
import {
  RULES as BASE_RULES,
  BATCH_NORM_RULES,
  type BatchNormSaved,
  type Formulations,
  NON_DIFFERENTIABLE,
  type RuleArgs,
} from "./_rules.ts";
import { ACTIVATIONS_RULES } from "./_rules-activations.ts";
import { STRUCTURAL_RULES } from "./_rules-structural.ts";
import { type Dim, type Info, inferShapes, requireDims, shapeValue } from "./_shapes.ts";
import { namesIn } from "./_util.ts";

export type { Formulations } from "./_rules.ts";

/** Every reverse-mode rule by op type (BatchNormalization is picked by mode). */
const RULES = { ...ACTIVATIONS_RULES, ...STRUCTURAL_RULES, ...BASE_RULES };

/** How batch normalization behaves in the gradient graph. */
export type BatchNormMode = "inference" | "training";

/** Where the parameters live in the gradient graph. */
export type ParameterMode = "initializers" | "inputs";

/** The default formulations (the fastest measured on ORT CPU). */
export const DEFAULT_FORMULATIONS: Formulations = {
  convInput: "conv",
  convWeight: "im2col-conv",
  maxPool: "indices",
  relu: "cast",
  channelSums: "two-stage-double",
};

/** Options of gradientGraph. */
export interface GradientOptions {
  /**
   * The loss: mean softmax cross-entropy over the scored targets (default), or `mse`, the mean
   * squared error between the output and float targets of its shape (regression). A model with its
   * own loss output (Model.loss, --loss-output) is differentiated as it is and ignores this.
   */
  loss?: "cross-entropy" | "mse";
  /** Class-index targets equal to this count for nothing (default -100, PyTorch's ignore_index). */
  ignoreIndex?: number;
  /**
   * Axis of the logits holding the classes when they have more than two axes: -1 or 1. Default:
   * the one whose other axes equal `targetShape` (the last when both or neither do).
   */
  classAxis?: 1 | -1;
  /** Shape of one sample's class targets, to pick the class axis (Dataset.targetShape). */
  targetShape?: readonly number[];
  /**
   * `inference`: BatchNormalization uses its running statistics (evaluation mode, for curvature).
   * `training`: batch statistics, as PyTorch's train mode; the graph then also outputs each layer's
   * batch mean and unbiased batch variance for the running-statistics update.
   */
  batchNorm?: BatchNormMode;
  /**
   * `inputs` (default): every parameter (running statistics too) becomes a graph input, fed on
   * each run, so one session serves every parameter vector.
   * `initializers`: parameters stay initializers, patched into the model bytes with a new session
   * per parameter vector. Measured slower for gradients even when the parameters stay fixed
   * (ORT's NCHWc convolutions then need layout conversions around every backward op), and a
   * session of a ResNet-20 gradient graph takes ~250-450 ms to create.
   */
  parameters?: ParameterMode;
  /** Parameters to differentiate (default: the model's trainable ones, i.e. all but BN running statistics). */
  trainable?: readonly string[];
  /** Alternative formulations of costly rules, for measurements. */
  formulations?: Partial<Formulations>;
  /**
   * Emit convolutions (forward and input-gradient) as ORT's blocked NCHWc kernels with this block
   * size (see nchwcBlockSize() in nchwc.ts). Off by default: the JVP transformation of the HVP
   * does not know those ops.
   */
  convBlock?: number;
  /**
   * A fixed batch size for the graph (default: the model's, usually symbolic). The blocked weight
   * gradient needs a static batch that is a multiple of the block.
   */
  batch?: number;
  /**
   * Also apply one optimizer update in the graph (parameters must be inputs): for every trainable
   * parameter the graph takes its optimizer state and outputs the updated parameter and state
   * (see `updates`) instead of its gradient. Same rules as optimizerStep() in src/core/optim.ts,
   * computed in float32 as torch.optim does.
   */
  optimizer?: OptimizerConfig;
  /** For a ModelProto: the graph input holding the samples, when there are several. */
  input?: string;
  /** For a ModelProto: the graph output holding the logits, when there are several. */
  output?: string;
}

/** One gradient output of the graph. */
export interface GradientOutput {
  /** Parameter (initializer) name. */
  readonly param: string;
  /** Graph output name: `grad:<param>`. */
  readonly output: string;
  readonly shape: readonly number[];
}

/** One batch statistic output (training-mode batch normalization). */
export interface StatisticOutput {
  /** The running statistic it updates (BatchNormalization input 3 or 4). */
  readonly param: string;
  /** Graph output name: `bnstat:<param>`. */
  readonly output: string;
  /** `mean`: batch mean; `var`: unbiased batch variance (what PyTorch folds into running_var). */
  readonly kind: "mean" | "var";
}

/** A gradient graph and the names of what it computes. */
export interface GradientGraph {
  readonly proto: ModelProto;
  /** Samples input, [N, ...sample shape]. */
  readonly input: "input";
  /** Targets input, [N, ...targetShape]: int64 class indices, or floats for regression and some model losses. */
  readonly labels: "labels";
  /** Element type of the targets input. */
  readonly labelsType: "int64" | "int32" | "float32";
  /** Scalar output: the mean loss over the batch's scored targets (or the model's own loss). */
  readonly loss: "loss";
  /** The model's output as it computes it ([N, classes], [N, T, V], [N, C, H, W], ...); null for a model loss without one. */
  readonly logits: "logits" | null;
  /**
   * Shape of one sample's targets: [] for classifiers ([N, classes] logits), the axes other than
   * batch and classes otherwise ([T] for a language model's [N, T, vocab] logits), the output's
   * shape for regression.
   */
  readonly targetShape: readonly number[];
  readonly gradients: readonly GradientOutput[];
  readonly statistics: readonly StatisticOutput[];
  readonly batchNorm: BatchNormMode;
  readonly parameters: ParameterMode;
  /** Parameters that are graph inputs (parameters: "inputs"), in graph order. */
  readonly parameterInputs: readonly string[];
  /** With `optimizer`: the in-graph update of every trainable parameter (then `gradients` is empty). */
  readonly updates: readonly UpdateOutput[];
  /** With `optimizer`: scalar float inputs of the update, by role (`lr`, `keep`, `c1`, `c2`). */
  readonly updateScalars: readonly string[];
}

/** The in-graph optimizer update of one parameter. */
export interface UpdateOutput {
  readonly param: string;
  /** Graph output with the updated parameter: `next:<param>`. */
  readonly output: string;
  /** Optimizer state tensors: input `state:<kind>:<param>` and output `next:<kind>:<param>`. */
  readonly state: readonly { readonly kind: "m" | "v"; readonly input: string; readonly output: string }[];
}

interface Source {
  proto: ModelProto;
  input: string;
  inputDims: Dim[];
  output: string;
  /** The model's own loss output and its targets input (Model.loss), when it has one. */
  modelLoss?: { output: string; targets: string; logits: boolean };
  trainable: string[];
  /** Every parameter (trainable + running statistics): graph inputs in `inputs` mode. */
  all: string[];
}

function isModel(x: Model | ModelProto): x is Model {
  return (x as Model).onnx instanceof Uint8Array;
}

function resolve(source: Model | ModelProto, options: GradientOptions): Source {
  if (isModel(source)) {
    const proto = decodeModel(source.onnx, source.name);
    const trainable = options.trainable
      ? [...options.trainable]
      : source.params.filter((p) => isTrainable(p.role)).map((p) => p.name);
    return {
      proto,
      input: source.input.name,
      inputDims: [source.input.batch ?? "N", ...source.input.shape],
      output: source.output,
      ...(source.loss
        ? {
            modelLoss: {
              output: source.loss.output,
              targets: source.loss.targets,
              logits: source.loss.logits,
            },
          }
        : {}),
      trainable,
      all: source.params.map((p) => p.name),
    };
  }
  const proto = source;
  const graph = proto.graph;
  const inits = new Set(graph.initializers.map((t) => t.name));
  const data = graph.inputs.filter((v) => !inits.has(v.name));
  const pick = (names: string[], wanted: string | undefined, what: string): string => {
    if (wanted !== undefined) {
      if (!names.includes(wanted))
        throw new Error(
          `gradientGraph(): no graph ${what} named '${wanted}'; the graph has: ${names.join(", ")}`,
        );
      return wanted;
    }
    if (names.length !== 1) {
      throw new Error(
        `gradientGraph(): the graph has ${names.length} ${what}s (${names.join(", ")}); name one with '${what}'`,
      );
    }
    return names[0]!;
  };
  const input = pick(
    data.map((v) => v.name),
    options.input,
    "input",
  );
  const output = pick(
    graph.outputs.map((v) => v.name),
    options.output,
    "output",
  );
  const shape = data.find((v) => v.name === input)!.shape;
  if (!shape) throw new Error(`gradientGraph(): input '${input}' has no declared shape`);
  const inputDims: Dim[] = shape.map((d, i) => (d === null ? (i === 0 ? "N" : null) : d));
  let trainable: string[];
  if (options.trainable) trainable = [...options.trainable];
  else {
    const model = fromProto(proto, { input, output });
    trainable = model.params.filter((p) => isTrainable(p.role)).map((p) => p.name);
  }
  const stats = new Set<string>();
  for (const n of graph.nodes) {
    if (n.opType !== "BatchNormalization") continue;
    for (const k of [3, 4]) if (n.inputs[k] && inits.has(n.inputs[k]!)) stats.add(n.inputs[k]!);
  }
  const all = [...trainable, ...[...stats].filter((s) => !trainable.includes(s))];
  return { proto, input, inputDims, output, trainable, all };
}

const isFloatType = (t: number | undefined): boolean =>
  t === DataType.FLOAT || t === DataType.DOUBLE || t === DataType.FLOAT16;

/**
 * Builds the gradient graph of a classification model: inputs `input` and `labels` (int64 [N]),
 * outputs `loss`, `logits`, `grad:<param>` for every trainable parameter and, with batch norm in
 * training mode, `bnstat:<running stat>` for every BatchNormalization.
 *
 * @example
 * const g = gradientGraph(zooModel("resnet20", { inputShape: [3, 32, 32] }), { batchNorm: "training" });
 * g.gradients[0]; // { param: "conv1.weight", output: "grad:conv1.weight", shape: [16, 3, 3, 3] }
 */
export function gradientGraph(source: Model | ModelProto, options: GradientOptions = {}): GradientGraph {
  const {
    loss = "cross-entropy",
    batchNorm = "inference",
    parameters = "inputs",
    ignoreIndex = DEFAULT_IGNORE_INDEX,
    classAxis,
  } = options;
  if (loss !== "cross-entropy" && loss !== "mse") {
    throw new Error(
      `gradientGraph(): 'loss' must be "cross-entropy" or "mse", got ${JSON.stringify(loss)} (mse-onehot is evaluated, not differentiated)`,
    );
  }
  if (classAxis !== undefined && classAxis !== 1 && classAxis !== -1)
    throw new Error(`gradientGraph(): 'classAxis' must be 1 or -1, got ${JSON.stringify(classAxis)}`);
  if (!Number.isInteger(ignoreIndex))
    throw new Error(`gradientGraph(): 'ignoreIndex' must be an integer, got ${ignoreIndex}`);
  if (batchNorm !== "inference" && batchNorm !== "training") {
    throw new Error(
      `gradientGraph(): 'batchNorm' must be "inference" or "training", got ${JSON.stringify(batchNorm)}`,
    );
  }
  if (parameters !== "initializers" && parameters !== "inputs") {
    throw new Error(
      `gradientGraph(): 'parameters' must be "initializers" or "inputs", got ${JSON.stringify(parameters)}`,
    );
  }
  const f: Formulations = { ...DEFAULT_FORMULATIONS, ...options.formulations };
  const src = resolve(source, options);
  if (options.batch !== undefined) {
    if (!Number.isInteger(options.batch) || options.batch < 1) {
      throw new Error(`gradientGraph(): 'batch' must be a positive integer, got ${options.batch}`);
    }
    const fixed = src.inputDims[0];
    if (typeof fixed === "number" && fixed !== options.batch) {
      throw new Error(
        `gradientGraph(): 'batch' is ${options.batch} but the model's batch size is fixed at ${fixed}`,
      );
    }
    src.inputDims[0] = options.batch;
  }
  const graph = src.proto.graph;
  const declared = src.proto.opsets.find((o) => o.domain === "" || o.domain === "ai.onnx")?.version ?? 0;
  if (declared < 11) {
    throw new Error(
      `gradientGraph(): the model uses ONNX opset ${declared}; gradients need opset >= 11 (re-export it)`,
    );
  }
  // Graphs of opset 13-15 are raised to 16, which adds ScatterElements/ScatterND with reduction
  // (the gradient of overlapping max pools, embeddings); no op of the default domain changed its
  // meaning between 13 and 16 (only types and new attributes with the old defaults), unlike 11-12
  // (axes as attributes), which stay as they are.
  const opset = declared >= 13 && declared < 16 ? 16 : declared;
  const inits = new Map<string, Tensor>(graph.initializers.map((t) => [t.name, t]));
  for (const p of src.trainable) {
    const t = inits.get(p);
    if (!t) throw new Error(`gradientGraph(): trainable parameter '${p}' is not an initializer of the graph`);
    if (!isFloatType(t.dataType))
      throw new Error(
        `gradientGraph(): trainable parameter '${p}' has element type ${t.dataType}, not float`,
      );
  }
  const inputInfo = graph.inputs.find((v) => v.name === src.input)!;
  const inputType = inputInfo.elemType;
  const tokens = inputType === DataType.INT64 || inputType === DataType.INT32;
  // Token-id inputs (embeddings): the float type is the parameters'.
  const floatType = tokens ? (inits.get(src.trainable[0] ?? "")?.dataType ?? DataType.FLOAT) : inputType;
  if (floatType !== DataType.FLOAT && floatType !== DataType.DOUBLE) {
    throw new Error(
      `gradientGraph(): input '${src.input}' has element type ${inputType}; expected float32 (1) or float64 (11) samples, or int64 (7) / int32 (6) token ids`,
    );
  }

  // Names in use, then rename the samples input to `input`.
  const taken = namesIn(graph);
  // A model's own loss output keeps its name unless it is `loss`, the gradient graph's output.
  let ownLossName = src.modelLoss?.output;
  if (ownLossName === "loss") for (let k = 0; taken.has(ownLossName); k++) ownLossName = `model_loss_${k}`;
  const modelLoss = src.modelLoss && { ...src.modelLoss, output: ownLossName! };
  const rename = (v: string): string =>
    v === src.input
      ? "input"
      : v === src.modelLoss?.targets
        ? "labels"
        : v === src.modelLoss?.output
          ? ownLossName!
          : v;
  if (src.input !== "input" && taken.has("input")) {
    throw new Error(
      "gradientGraph(): the graph already has a value named 'input' that is not its samples input",
    );
  }
  for (const reserved of ["labels", "loss"]) {
    if (
      taken.has(reserved) &&
      !(reserved === "labels" && modelLoss?.targets === "labels") &&
      !(reserved === "loss" && src.modelLoss?.output === "loss")
    )
      throw new Error(`gradientGraph(): the graph already uses the name '${reserved}'`);
  }
  const logitsValue = rename(src.output);
  if (logitsValue !== "logits" && taken.has("logits")) {
    throw new Error("gradientGraph(): the graph has a value named 'logits' that is not its logits output");
  }
  taken.add("input");
  taken.add("labels");
  if (ownLossName) taken.add(ownLossName);
  taken.add("loss");
  taken.add("logits");

  // The nodes the logits depend on, with the samples input renamed.
  const producer = new Map<string, Node>();
  for (const n of graph.nodes) for (const o of n.outputs) producer.set(o, n);
  const needed = new Set<Node>();
  const stack = src.modelLoss
    ? [src.modelLoss.output, ...(src.modelLoss.logits ? [src.output] : [])]
    : [src.output];
  const seen = new Set<string>();
  while (stack.length) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    const n = producer.get(v);
    if (!n || needed.has(n)) continue;
    needed.add(n);
    for (const i of n.inputs) if (i) stack.push(i);
  }
  let nodes: Node[] = graph.nodes
    .filter((n) => needed.has(n))
    .map((n) => ({ ...n, inputs: n.inputs.map(rename), outputs: n.outputs.map(rename) }));
  const inputShapes = new Map<string, Info>([["input", { type: inputType, dims: src.inputDims }]]);
  const targetsInfo = modelLoss ? graph.inputs.find((v) => v.name === modelLoss.targets) : undefined;
  if (modelLoss) {
    if (!targetsInfo) throw new Error(`gradientGraph(): no graph input '${modelLoss.targets}' (the targets)`);
    inputShapes.set("labels", {
      type: targetsInfo.elemType,
      dims: (targetsInfo.shape ?? []).map((d, i) =>
        typeof d === "number" ? d : i === 0 ? src.inputDims[0]! : null,
      ),
    });
  }

  // Recurrent ops become their primitives over the time steps (_lower-recurrent.ts).
  const lowering = new Emitter(opset, floatType, taken);
  // One at a time, in graph order: a stacked layer's input shape is known once the layer below
  // it is written out in primitives.
  for (
    let k = nodes.findIndex((n) => RECURRENT.has(n.opType));
    k >= 0;
    k = nodes.findIndex((n) => RECURRENT.has(n.opType))
  ) {
    const pre = inferShapes(
      { ...graph, nodes: nodes.slice(0, k), initializers: [...graph.initializers, ...lowering.initializers] },
      opset,
      inputShapes,
    );
    const start = lowering.nodes.length;
    lowerRecurrent(lowering, nodes[k]!, pre.get(nodes[k]!.inputs[0]!)?.dims ?? null);
    nodes = [...nodes.slice(0, k), ...lowering.nodes.slice(start), ...nodes.slice(k + 1)];
  }

  const renamedGraph = { ...graph, nodes, initializers: [...graph.initializers, ...lowering.initializers] };
  const shapes = inferShapes(renamedGraph, opset, inputShapes);
  const logitsDims = shapes.get(logitsValue)?.dims;
  const hasLogits = !modelLoss || modelLoss.logits;
  if (
    hasLogits &&
    (!logitsDims ||
      logitsDims.length < 2 ||
      !logitsDims.slice(1).every((d): d is number => typeof d === "number"))
  ) {
    throw new Error(
      `gradientGraph(): output '${src.output}' has shape ${JSON.stringify(logitsDims)}; expected [batch, classes], [batch, positions..., classes] or [batch, classes, positions...] with static sizes after the batch`,
    );
  }
  // Class-index targets: the classes on the last axis, or on axis 1 ([N, C, H, W] segmentation).
  const outDims = (logitsDims ?? []).slice(1) as number[];
  const fits = (a: readonly number[]) =>
    a.length === options.targetShape?.length && a.every((d, i) => d === options.targetShape![i]);
  const axis: 1 | -1 = classAxis ?? (!fits(outDims.slice(0, -1)) && fits(outDims.slice(1)) ? 1 : -1);
  const targetDims = modelLoss ? (inputShapes.get("labels")!.dims ?? []).slice(1) : [];
  if (!targetDims.every((d): d is number => typeof d === "number"))
    throw new Error(
      `gradientGraph(): targets input '${modelLoss!.targets}' has shape [batch, ${targetDims.join(", ")}]; expected static sizes after the batch`,
    );
  const targetShape: number[] = modelLoss
    ? targetDims
    : loss === "mse"
      ? outDims
      : axis === -1
        ? outDims.slice(0, -1)
        : outDims.slice(1);
  // Which values depend on a trainable parameter.
  const requires = new Set<string>(src.trainable);
  for (const n of nodes) {
    if (NON_DIFFERENTIABLE.has(n.opType)) continue;
    if (!n.inputs.some((i) => requires.has(i))) continue;
    for (const o of n.outputs) if (o && isFloatType(shapes.get(o)?.type)) requires.add(o);
  }

  const e = new Emitter(opset, floatType, taken);
  e.initializers.push(...lowering.initializers);
  e.channelReduction = f.channelSums;
  e.convBlock = options.convBlock;
  const statistics: StatisticOutput[] = [];
  const outputs: ValueInfo[] = [];
  const saved = new Map<Node, unknown>();
  const emitted = new Map<Node, Node>();

  // ---- forward
  for (const n of nodes) {
    if (n.opType === "BatchNormalization" && batchNorm === "training") {
      saved.set(n, lowerTrainingBatchNorm(e, n, shapes, statistics, outputs));
      emitted.set(n, n);
      continue;
    }
    if (n.opType === "Conv" && e.convBlock !== undefined) {
      const xDims = shapes.get(n.inputs[0]!)?.dims;
      const wDims = shapes.get(n.inputs[1]!)?.dims;
      if (xDims && wDims?.every((d): d is number => typeof d === "number") && typeof xDims[1] === "number") {
        const attrs: Record<string, EmitAttr> = {};
        for (const a of n.attributes) {
          if (a.type === AttrType.INTS) attrs[a.name] = a.ints ?? [];
          else if (a.type === AttrType.INT) attrs[a.name] = a.i ?? 0;
          else if (a.type === AttrType.STRING) attrs[a.name] = { s: a.s ?? "" };
        }
        e.conv(n.inputs, attrs, { rank: xDims.length, inChannels: xDims[1], weight: wDims }, n.outputs[0]);
        emitted.set(n, n);
        continue;
      }
    }
    let copy = n;
    if (n.opType === "MaxPool" && requires.has(n.outputs[0]!) && !(n.outputs[1] ?? "")) {
      copy = { ...n, outputs: [n.outputs[0]!, e.fresh("maxpool_indices")] };
    }
    e.nodes.push(copy);
    emitted.set(n, copy);
  }

  // ---- loss and the gradient of the loss with respect to the value it is computed from
  if (hasLogits && logitsValue !== "logits") e.op("Identity", [logitsValue], {}, "logits");
  const lossSeed = modelLoss
    ? ownLoss(e, modelLoss.output)
    : loss === "mse"
      ? meanSquaredError(e, logitsValue, floatType)
      : crossEntropy(e, logitsValue, logitsDims!, axis, ignoreIndex, floatType);
  const labelsType = modelLoss
    ? (targetsInfo!.elemType as number)
    : loss === "mse"
      ? floatType
      : DataType.INT64;

  // ---- backward
  const parts = new Map<string, string[]>();
  const total = new Map<string, string>();
  const add = (v: string, g: string): void => {
    const list = parts.get(v);
    if (list) list.push(g);
    else parts.set(v, [g]);
  };
  const gradOf = (v: string): string | undefined => {
    const done = total.get(v);
    if (done) return done;
    const list = parts.get(v);
    if (!list || list.length === 0) return undefined;
    const g = list.length === 1 ? list[0]! : e.op("Sum", list);
    total.set(v, g);
    return g;
  };
  add(lossSeed.value, lossSeed.seed);
  const shapeCache = new Map<string, string>();
  for (let k = nodes.length - 1; k >= 0; k--) {
    const source = nodes[k]!;
    const node = emitted.get(source)!;
    const dy = source.outputs.map((o) => (o && requires.has(o) ? gradOf(o) : undefined));
    if (dy.every((g) => g === undefined)) continue;
    const needs = source.inputs.map((i) => i !== "" && requires.has(i));
    if (!needs.some(Boolean)) continue;
    const rule = source.opType === "BatchNormalization" ? BATCH_NORM_RULES[batchNorm] : RULES[source.opType];
    if (!rule) {
      throw new Error(
        `gradientGraph(): no gradient rule for ${source.opType} node '${source.name}' (opset ${declared}; it lies between a parameter and the loss); ops with rules: ${[...Object.keys(RULES), "BatchNormalization"].sort().join(", ")}`,
      );
    }
    const args: RuleArgs = {
      node,
      e,
      dy,
      needs,
      f,
      saved: saved.get(source),
      info: (v) => shapes.get(v),
      dims: (v) => requireDims(shapes, v, "gradientGraph()", source),
      shapeOf: (v) =>
        shapeValue(
          shapes,
          shapeCache,
          v,
          (d) => e.i64(d),
          (x) => e.op("Shape", [x]),
        ),
    };
    const grads = rule(args);
    source.inputs.forEach((i, j) => {
      const g = grads[j];
      if (needs[j] && g !== undefined) add(i, g);
    });
  }

  const gradients: GradientOutput[] = [];
  const updates: UpdateOutput[] = [];
  const updateScalars: string[] = [];
  const stateInputs: ValueInfo[] = [];
  if (options.optimizer) {
    if (parameters !== "inputs") {
      throw new Error(
        `gradientGraph(): 'optimizer' needs parameters: "inputs", got ${JSON.stringify(parameters)}`,
      );
    }
    if (floatType !== DataType.FLOAT) throw new Error("gradientGraph(): 'optimizer' needs a float32 model");
    const o = options.optimizer;
    if (o.kind !== "sgd" && o.kind !== "adam") {
      throw new Error(
        `gradientGraph(): 'optimizer.kind' must be "sgd" or "adam", got ${JSON.stringify((o as { kind: unknown }).kind)}`,
      );
    }
    if (o.kind === "sgd" && o.nesterov && !((o.momentum ?? 0) > 0)) {
      throw new Error("gradientGraph(): Nesterov momentum needs optimizer.momentum > 0");
    }
    const scalar = (name: string): string => {
      const v = e.claim(`opt:${name}`);
      updateScalars.push(name);
      stateInputs.push({ name: v, elemType: floatType, shape: [] });
      return v;
    };
    const grads = new Map<string, string>();
    for (const p of src.trainable) {
      const g = gradOf(p);
      grads.set(p, g ?? e.zeros(e.i64(inits.get(p)!.dims)));
    }
    emitUpdates(e, options.optimizer, src.trainable, inits, grads, scalar, stateInputs, updates);
  }
  for (const p of options.optimizer ? [] : src.trainable) {
    const t = inits.get(p)!;
    const output = e.claim(`grad:${p}`);
    const g = gradOf(p);
    if (g === undefined) {
      // A parameter the loss does not depend on: its gradient is zero.
      e.zeros(e.i64(t.dims), floatType, output);
    } else e.op("Identity", [g], {}, output);
    gradients.push({ param: p, output, shape: [...t.dims] });
  }

  // ---- assemble
  const all = new Set(src.all);
  const used = new Set<string>();
  for (const n of e.nodes) for (const i of n.inputs) used.add(i);
  const keptInits = graph.initializers.filter((t) => used.has(t.name));
  const parameterInputs: string[] = [];
  const initializers: Tensor[] = [];
  const paramInputs: ValueInfo[] = [];
  for (const t of keptInits) {
    if (parameters === "inputs" && all.has(t.name)) {
      parameterInputs.push(t.name);
      paramInputs.push({ name: t.name, elemType: t.dataType, shape: [...t.dims] });
    } else initializers.push(t);
  }
  initializers.push(...e.initializers);
  const batchDim = src.inputDims[0] ?? "N";
  const inputs: ValueInfo[] = [
    { name: "input", elemType: inputType, shape: src.inputDims.map((d) => d ?? "?") },
    { name: "labels", elemType: labelsType, shape: [batchDim ?? "N", ...targetShape] },
    ...paramInputs,
    ...stateInputs,
  ];
  const graphOutputs: ValueInfo[] = [
    { name: "loss", elemType: floatType, shape: [] },
    ...(hasLogits ? [{ name: "logits", elemType: floatType, shape: [batchDim ?? "N", ...outDims] }] : []),
    ...gradients.map((g) => ({ name: g.output, elemType: floatType, shape: [...g.shape] })),
    ...updates.flatMap((u) => {
      const shape = [...inits.get(u.param)!.dims];
      return [u.output, ...u.state.map((t) => t.output)].map((name) => ({
        name,
        elemType: floatType,
        shape,
      }));
    }),
    ...outputs,
  ];
  const proto: ModelProto = {
    irVersion: Math.max(src.proto.irVersion, 7),
    opsets: [
      ...src.proto.opsets
        .filter((o) => o.domain !== NCHWC_DOMAIN)
        .map((o) => (o.domain === "" || o.domain === "ai.onnx" ? { ...o, version: opset } : o)),
      ...(e.nodes.some((n) => n.domain === NCHWC_DOMAIN) ? [{ domain: NCHWC_DOMAIN, version: 1 }] : []),
    ],
    producer: "losscape-autodiff",
    graph: {
      name: `${graph.name || "model"}-gradient`,
      nodes: e.nodes,
      initializers,
      inputs,
      outputs: graphOutputs,
      valueInfo: [],
    },
  };
  return {
    proto,
    input: "input",
    labels: "labels",
    labelsType: labelsType === DataType.INT64 ? "int64" : labelsType === DataType.INT32 ? "int32" : "float32",
    loss: "loss",
    targetShape,
    logits: hasLogits ? "logits" : null,
    gradients,
    statistics,
    batchNorm,
    parameters,
    parameterInputs,
    updates,
    updateScalars,
  };
}

/** The loss output of the gradient graph, and the gradient it seeds the backward pass with. */
interface LossSeed {
  /** The forward value the seed is the gradient of. */
  readonly value: string;
  readonly seed: string;
}

/**
 * Mean softmax cross-entropy over the targets that are not `ignore` (as PyTorch's
 * CrossEntropyLoss with ignore_index, reduction mean), class axis last or 1; the seed is
 * (softmax - onehot) / scored targets on the scored positions, 0 on the ignored ones.
 */
function crossEntropy(
  e: Emitter,
  logits: string,
  dims: readonly Dim[],
  classAxis: 1 | -1,
  ignore: number,
  floatType: number,
): LossSeed {
  // Classes on axis 1 are moved last and the seed moved back.
  const rank = dims.length;
  const classes = dims[classAxis === 1 ? 1 : rank - 1] as number;
  const perm = classAxis === 1 && rank > 2 ? [0, ...range(rank).slice(2), 1] : undefined;
  const z = perm ? e.op("Transpose", [logits], { perm }) : logits;
  const last = rank - 1;
  const logp = e.op("LogSoftmax", [z], { axis: last });
  const labels = e.unsqueeze("labels", [last]);
  const scored = e.op("Not", [e.op("Equal", [labels, e.i64([ignore], [])])]);
  const safe = e.op("Where", [scored, labels, e.i64([0], [])]);
  const weight = e.op("Cast", [scored], { to: floatType });
  const picked = e.op("Mul", [e.op("GatherElements", [logp, safe], { axis: last }), weight]);
  // No scored target in the batch: loss 0 / 1 (PyTorch gives NaN); the seed is 0.
  const count = e.op("Max", [e.reduceSum(weight, range(rank), false), e.scalar(1)]);
  e.op("Neg", [e.op("Div", [e.reduceSum(picked, range(rank), false), count])], {}, "loss");
  const classRow = [...new Array<number>(last).fill(1), classes];
  const onehot = e.op("Cast", [e.op("Equal", [labels, e.i64(range(classes), classRow)])], { to: floatType });
  const seedLast = e.op("Div", [e.op("Mul", [e.op("Sub", [e.op("Exp", [logp]), onehot]), weight]), count]);
  const inverse = perm ? perm.map((_, i) => perm.indexOf(i)) : undefined;
  return { value: logits, seed: inverse ? e.op("Transpose", [seedLast], { perm: inverse }) : seedLast };
}

/** Mean squared error over every value of the output against float targets of its shape (PyTorch's MSELoss). */
function meanSquaredError(e: Emitter, output: string, floatType: number): LossSeed {
  const labels = e.op("Reshape", ["labels", e.op("Shape", [output])]);
  const d = e.op("Sub", [output, labels]);
  const n = e.op("Cast", [e.op("Size", [d])], { to: floatType });
  e.op("Div", [e.op("ReduceSumSquare", [d], { keepdims: 0 }), n], {}, "loss");
  return { value: output, seed: e.op("Div", [e.op("Mul", [d, e.scalar(2)]), n]) };
}

/** A loss the graph computes itself: its gradient with respect to itself is 1. */
function ownLoss(e: Emitter, value: string): LossSeed {
  e.op("Identity", [value], {}, "loss");
  return { value, seed: e.op("Expand", [e.scalar(1), e.op("Shape", [value])]) };
}

/**
 * The optimizer update of every trainable parameter from its gradient, with optimizerStep()'s
 * rules: SGD (`keep` is the momentum applied to the buffer: 0 on the first step, as torch starts
 * the buffer at the gradient) with optional Nesterov, or Adam with bias corrections `c1`, `c2`.
 */
function emitUpdates(
  e: Emitter,
  config: OptimizerConfig,
  trainable: readonly string[],
  inits: Map<string, Tensor>,
  grads: Map<string, string>,
  scalar: (name: string) => string,
  stateInputs: ValueInfo[],
  updates: UpdateOutput[],
): void {
  const lr = scalar("lr");
  const wd = config.weightDecay ?? 0;
  const sgd = config.kind === "sgd" ? config : undefined;
  const adam = config.kind === "adam" ? config : undefined;
  const momentum = sgd?.momentum ?? 0;
  const keep = sgd && momentum !== 0 ? scalar("keep") : undefined;
  const [c1, c2] = adam ? [scalar("c1"), scalar("c2")] : [undefined, undefined];
  for (const p of trainable) {
    const dims = [...inits.get(p)!.dims];
    const state = (kind: "m" | "v") => {
      const input = e.claim(`state:${kind}:${p}`);
      stateInputs.push({ name: input, elemType: DataType.FLOAT, shape: dims });
      return { kind, input, output: e.claim(`next:${kind}:${p}`) };
    };
    const g = grads.get(p)!;
    const d = wd !== 0 ? e.op("Add", [g, e.op("Mul", [p, e.scalar(wd)])]) : g;
    const output = e.claim(`next:${p}`);
    const tensors: UpdateOutput["state"][number][] = [];
    if (adam) {
      const { beta1 = 0.9, beta2 = 0.999, eps = 1e-8 } = adam;
      const [m, v] = [state("m"), state("v")];
      tensors.push(m, v);
      e.op(
        "Add",
        [e.op("Mul", [m.input, e.scalar(beta1)]), e.op("Mul", [d, e.scalar(1 - beta1)])],
        {},
        m.output,
      );
      const d2 = e.op("Mul", [d, d]);
      e.op(
        "Add",
        [e.op("Mul", [v.input, e.scalar(beta2)]), e.op("Mul", [d2, e.scalar(1 - beta2)])],
        {},
        v.output,
      );
      const denom = e.op("Add", [e.op("Sqrt", [e.op("Div", [v.output, c2!])]), e.scalar(eps)]);
      const stepSize = e.op("Div", [e.op("Mul", [lr, e.op("Div", [m.output, c1!])]), denom]);
      e.op("Sub", [p, stepSize], {}, output);
    } else if (momentum === 0) {
      e.op("Sub", [p, e.op("Mul", [d, lr])], {}, output);
    } else {
      const m = state("m");
      tensors.push(m);
      e.op("Add", [e.op("Mul", [m.input, keep!]), d], {}, m.output);
      const direction = sgd?.nesterov
        ? e.op("Add", [d, e.op("Mul", [m.output, e.scalar(momentum)])])
        : m.output;
      e.op("Sub", [p, e.op("Mul", [direction, lr])], {}, output);
    }
    updates.push({ param: p, output, state: tensors });
  }
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/**
 * BatchNormalization with batch statistics: mean and biased variance over (N, spatial), the
 * normalization itself by ORT's BatchNormalization kernel fed those statistics, and the outputs
 * the trainer folds into the running statistics (mean, unbiased variance).
 */
function lowerTrainingBatchNorm(
  e: Emitter,
  n: Node,
  shapes: Map<string, Info>,
  statistics: StatisticOutput[],
  outputs: ValueInfo[],
): BatchNormSaved {
  const [x, scale, bias, runMean, runVar] = n.inputs as [string, string, string, string, string];
  const dims = shapes.get(x)?.dims;
  if (!dims || dims.length < 2) {
    throw new Error(
      `gradientGraph(): BatchNormalization node '${n.name}': input '${x}' needs a known rank >= 2 for batch statistics`,
    );
  }
  const r = dims.length;
  const axes = [0, ...Array.from({ length: r - 2 }, (_, i) => i + 2)];
  const eps = n.attributes.find((a) => a.name === "epsilon")?.f ?? 1e-5;
  const perChannel = axes.map((i) => dims[i]!);
  let count: string;
  let unbias: string;
  if (perChannel.every((d): d is number => typeof d === "number")) {
    const m = perChannel.reduce((p, q) => p * q, 1);
    count = e.scalar(m);
    unbias = e.scalar(m / Math.max(m - 1, 1));
  } else {
    const c = dims[1];
    if (typeof c !== "number") {
      throw new Error(
        `gradientGraph(): BatchNormalization node '${n.name}': the channel count of '${x}' is unknown`,
      );
    }
    count = e.op("Cast", [e.op("Div", [e.op("Size", [x]), e.i64([c], [])])], { to: e.floatType });
    unbias = e.op("Div", [count, e.op("Sub", [count, e.scalar(1)])]);
  }
  const mean = e.op("Div", [e.channelSum(x, r), count]);
  const xc = e.op("Sub", [x, mean]);
  const variance = e.op("Div", [e.channelSum(xc, r, true), count]);
  const invstd = e.op("Reciprocal", [e.op("Sqrt", [e.op("Add", [variance, e.scalar(eps)])])]);
  const meanFlat = e.reshape(mean, [-1]);
  const varFlat = e.reshape(variance, [-1]);
  const c = dims[1]!;
  // y = (x - mean) * (scale / std) + bias from the centred values, by the kernel with mean 0, var 1:
  // fed x and the statistics, ORT folds them into x * a + (bias - mean * a), which cancels in
  // float32 where |mean| >> std (MobileNet-V2's first-conv gradient was 2e-4 off PyTorch float64
  // in test/model/pytorch-models.test.ts).
  if (typeof c !== "number")
    throw new Error(
      `gradientGraph(): BatchNormalization node '${n.name}': the channel count of '${x}' is unknown`,
    );
  e.op(
    "BatchNormalization",
    [
      xc,
      e.op("Mul", [scale, e.reshape(invstd, [-1])]),
      bias,
      e.constant(new Array<number>(c).fill(0), [c]),
      e.constant(new Array<number>(c).fill(1), [c]),
    ],
    { epsilon: { f: 0 } },
    n.outputs[0]!,
  );
  for (const [param, kind] of [
    [runMean, "mean"],
    [runVar, "var"],
  ] as const) {
    const output = e.claim(`bnstat:${param}`);
    if (kind === "mean") e.op("Identity", [meanFlat], {}, output);
    else e.op("Mul", [varFlat, unbias], {}, output);
    statistics.push({ param, output, kind });
    outputs.push({ name: output, elemType: e.floatType, shape: [c ?? "C"] });
  }
  return { xc, invstd, count };
}
