// Forward-mode differentiation of an ONNX graph: a new graph that also outputs
// the directional derivatives (Jacobian-vector products) of chosen values along
// tangents fed for chosen inputs. Applied to a gradient graph (gradient.ts) it
// gives exact Hessian-vector products in one ONNX Runtime run: Pearlmutter's
// R-operator, i.e. forward-over-reverse (Pearlmutter 1994, "Fast exact
// multiplication by the Hessian"). Rules exist for the ops of forward graphs and
// for every op the gradient rules emit (transposed/flipped Conv weights, one-hot
// Conv patches + MatMul, MaxPool Indices + MaxUnpool, ReLU masks, float64 sums).

import { attr, DataType, type ModelProto, type Node, type Tensor, type ValueInfo } from "../onnx/proto.ts";
import { Emitter, floatTypedTensor } from "./_emit.ts";
import { ACTIVATIONS_JVP_RULES } from "./_jvp-activations.ts";
import { STRUCTURAL_JVP_RULES } from "./_jvp-structural.ts";
import { NON_DIFFERENTIABLE } from "./_rules.ts";
import { broadcastDims, type Dim, type Info, inferShapes, requireDims, shapeValue } from "./_shapes.ts";
import { floatAttr, intAttr, namesIn, softmaxAxes } from "./_util.ts";

/** A value and the graph name of its tangent (default `tangent:<value>`). */
export type TangentName = string | { readonly value: string; readonly name: string };

/** Options of jvpGraph. */
export interface JvpOptions {
  /** Graph inputs or initializers that get a tangent, fed as a new graph input of the same type and shape. */
  readonly seeds: readonly TangentName[];
  /** Values whose tangents become graph outputs. */
  readonly outputs: readonly TangentName[];
}

/** A tangent fed as a graph input. */
export interface TangentInput {
  /** The value it is the tangent of. */
  readonly value: string;
  /** Graph input name. */
  readonly input: string;
  readonly dims: readonly Dim[];
}

/** A tangent computed as a graph output. */
export interface TangentOutput {
  readonly value: string;
  readonly output: string;
}

/** A graph with tangents. */
export interface JvpGraph {
  /** The source graph's inputs and outputs, plus the tangent inputs and outputs. */
  readonly proto: ModelProto;
  readonly tangentInputs: readonly TangentInput[];
  readonly tangentOutputs: readonly TangentOutput[];
}

/** What a forward-mode rule sees. */
export interface JvpArgs {
  readonly node: Node;
  readonly e: Emitter;
  /** Tangent of each input (undefined: zero). */
  readonly dx: readonly (string | undefined)[];
  info(value: string): Info | undefined;
  /** Dims of a value; throws naming the node when the rank is unknown. */
  dims(value: string): Dim[];
  /** Element type of a value (the graph's float type when unknown). */
  type(value: string): number;
  /** A runtime int64 shape of a value (a constant when static). */
  shapeOf(value: string): string;
  /** A scalar constant of a float type. */
  scalar(v: number, type: number): string;
  /** A tensor of zeros shaped and typed like `value`. */
  zerosLike(value: string): string;
}

/** Tangents of the outputs, in output order (undefined: zero). */
export type JvpRule = (a: JvpArgs) => (string | undefined)[];

const isFloat = (t: number | undefined): boolean =>
  t === DataType.FLOAT || t === DataType.DOUBLE || t === DataType.FLOAT16;

function fail(node: Node, why: string): never {
  throw new Error(`jvpGraph(): ${node.opType} node '${node.name}': ${why}`);
}

/** A copy of `node` with new inputs and outputs (attributes shared). */
function sameOp(a: JvpArgs, inputs: string[], outputs = 1, drop: readonly string[] = []): string[] {
  const { e, node } = a;
  const outs = Array.from({ length: outputs }, () => e.fresh(`t_${node.opType.toLowerCase()}`));
  e.nodes.push({
    opType: node.opType,
    inputs,
    outputs: outs,
    name: e.fresh(`t_${node.opType}_node`),
    domain: node.domain,
    attributes: node.attributes.filter((x) => !drop.includes(x.name)),
  });
  return outs;
}

/** Sum of tangent terms (each of the output's shape); undefined when there are none. */
function total(a: JvpArgs, terms: (string | undefined)[]): string | undefined {
  const present = terms.filter((t): t is string => t !== undefined);
  if (present.length === 0) return undefined;
  if (present.length === 1) return present[0];
  if (present.length === 2) return a.e.op("Add", present);
  return a.e.op("Sum", present);
}

function sameDims(p: readonly Dim[] | null | undefined, q: readonly Dim[] | null | undefined): boolean {
  return !!p && !!q && p.length === q.length && p.every((d, i) => d !== null && d === q[i]);
}

/** A tangent `t` whose shape is `dims` (broadcastable to `out`) expanded to the shape of `out`. */
function expandTo(a: JvpArgs, t: string, dims: readonly Dim[] | null | undefined, out: string): string {
  if (sameDims(dims, a.info(out)?.dims)) return t;
  return a.e.op("Expand", [t, a.shapeOf(out)]);
}

/** [C] -> [1, C, 1, ...] for a rank-r activation. */
function channelShaped(a: JvpArgs, v: string, r: number): string {
  return a.e.reshape(v, [1, -1, ...new Array<number>(r - 2).fill(1)]);
}

// ------------------------------------------------------------------ linear ops

/** Ops linear in input 0 whose other inputs are shapes, axes or indices: the same op on the tangent. */
const linearInFirst: JvpRule = (a) => {
  const { node, dx } = a;
  for (let i = 1; i < dx.length; i++) {
    if (dx[i] !== undefined)
      fail(node, `input ${i} ('${node.inputs[i]}') carries a tangent; only input 0 may (it is linear in it)`);
  }
  const outs = node.opType === "Split" ? node.outputs.length : 1;
  return sameOp(a, [dx[0]!, ...node.inputs.slice(1)], outs);
};

const identity: JvpRule = ({ dx }) => [dx[0]];

const neg: JvpRule = ({ e, dx }) => [e.op("Neg", [dx[0]!])];

const cast: JvpRule = (a) => {
  const { node, dx } = a;
  const to = intAttr(node, "to", DataType.FLOAT);
  if (!isFloat(a.type(node.inputs[0]!)) || !isFloat(to)) return [undefined];
  return [a.e.op("Cast", [dx[0]!], { to })];
};

const pad: JvpRule = (a) => {
  // The tangent is padded with zeros whatever the constant (input 2 from opset 11, `value` before).
  const { node, dx } = a;
  if (dx.slice(1).some((t) => t !== undefined)) fail(node, "the padding value carries a tangent");
  const inputs = [dx[0]!, ...node.inputs.slice(1)];
  if (inputs.length > 2) inputs[2] = "";
  while (inputs.length > 1 && inputs[inputs.length - 1] === "") inputs.pop();
  return sameOp(a, inputs, 1, ["value"]);
};

const concat: JvpRule = (a) => {
  const { node, dx } = a;
  const parts = node.inputs.map((x, i) => dx[i] ?? a.zerosLike(x));
  return sameOp(a, parts);
};

const reduceSumSquare: JvpRule = (a) => {
  // d sum(x^2) = 2 sum(x dx) over the same axes.
  const { e, node, dx } = a;
  const x = node.inputs[0]!;
  const prod = e.op("Mul", [x, dx[0]!]);
  const keepdims = intAttr(node, "keepdims", 1);
  const noop = intAttr(node, "noop_with_empty_axes", 0);
  let summed: string;
  const axesAttr = attr(node, "axes")?.ints;
  if (e.opset >= 18)
    summed = e.op("ReduceSum", [prod, ...node.inputs.slice(1)], { keepdims, noop_with_empty_axes: noop });
  else if (e.opset >= 13) {
    summed = axesAttr
      ? e.op("ReduceSum", [prod, e.i64(axesAttr)], { keepdims })
      : e.op("ReduceSum", [prod], { keepdims, noop_with_empty_axes: noop });
  } else summed = e.op("ReduceSum", [prod], { keepdims, axes: axesAttr });
  return [e.op("Mul", [summed, a.scalar(2, a.type(x))])];
};

const scatterElements: JvpRule = (a) => {
  const { node, dx } = a;
  const reduction = attr(node, "reduction")?.s ?? "none";
  if (reduction !== "none" && reduction !== "add")
    fail(node, `forward-mode rule for reduction '${reduction}' is not implemented (only none, add)`);
  const [data, indices, updates] = node.inputs as [string, string, string];
  return sameOp(a, [dx[0] ?? a.zerosLike(data), indices, dx[2] ?? a.zerosLike(updates)]);
};

// ------------------------------------------------------------------ elementwise

const relu: JvpRule = (a) => {
  const { e, node, dx } = a;
  const y = node.outputs[0]!;
  const t = a.type(y);
  return [e.op("Mul", [dx[0]!, e.op("Cast", [e.op("Greater", [y, a.scalar(0, t)])], { to: t })])];
};

const leakyRelu: JvpRule = (a) => {
  const { e, node, dx } = a;
  const x = node.inputs[0]!;
  const t = a.type(x);
  const alpha = floatAttr(node, "alpha", 0.01);
  const g = dx[0]!;
  return [e.op("Where", [e.op("Greater", [x, a.scalar(0, t)]), g, e.op("Mul", [g, a.scalar(alpha, t)])])];
};

const sigmoid: JvpRule = (a) => {
  const { e, node, dx } = a;
  const y = node.outputs[0]!;
  const slope = e.op("Mul", [y, e.op("Sub", [a.scalar(1, a.type(y)), y])]);
  return [e.op("Mul", [dx[0]!, slope])];
};

const tanh: JvpRule = (a) => {
  const { e, node, dx } = a;
  const y = node.outputs[0]!;
  return [e.op("Mul", [dx[0]!, e.op("Sub", [a.scalar(1, a.type(y)), e.op("Mul", [y, y])])])];
};

const exp: JvpRule = ({ e, node, dx }) => [e.op("Mul", [dx[0]!, node.outputs[0]!])];
const log: JvpRule = ({ e, node, dx }) => [e.op("Div", [dx[0]!, node.inputs[0]!])];
const sqrt: JvpRule = (a) => {
  const { e, node, dx } = a;
  const y = node.outputs[0]!;
  return [e.op("Div", [e.op("Mul", [dx[0]!, a.scalar(0.5, a.type(y))]), y])];
};

/** Axes a Softmax-family op normalizes over (see softmaxAxes in _util.ts). */
const softmaxAxesOf = (a: JvpArgs): number[] =>
  softmaxAxes(a.node, a.dims(a.node.inputs[0]!).length, a.e.opset);

const softmax: JvpRule = (a) => {
  // dy = y (dx - sum(y dx))
  const { e, node, dx } = a;
  const y = node.outputs[0]!;
  const s = e.reduceSum(e.op("Mul", [y, dx[0]!]), softmaxAxesOf(a), true);
  return [e.op("Mul", [y, e.op("Sub", [dx[0]!, s])])];
};

const logSoftmax: JvpRule = (a) => {
  // dy = dx - sum(softmax dx)
  const { e, node, dx } = a;
  const p = e.op("Exp", [node.outputs[0]!]);
  const s = e.reduceSum(e.op("Mul", [p, dx[0]!]), softmaxAxesOf(a), true);
  return [e.op("Sub", [dx[0]!, s])];
};

function addSub(op: "Add" | "Sub"): JvpRule {
  return (a) => {
    const { e, node, dx } = a;
    const [x, y] = [node.inputs[0]!, node.inputs[1]!];
    const out = node.outputs[0]!;
    if (dx[0] && dx[1]) return [e.op(op, [dx[0], dx[1]])];
    if (dx[0]) return [expandTo(a, dx[0], a.info(x)?.dims, out)];
    const t = op === "Sub" ? e.op("Neg", [dx[1]!]) : dx[1]!;
    return [expandTo(a, t, a.info(y)?.dims, out)];
  };
}

const sum: JvpRule = (a) => {
  const { node, dx } = a;
  const present = node.inputs.filter((_, i) => dx[i] !== undefined);
  const t = total(
    a,
    dx.filter((t): t is string => t !== undefined),
  )!;
  let dims: Dim[] | null = [];
  for (const v of present) {
    const d = a.info(v)?.dims;
    dims = d && dims ? broadcastDims(dims, d) : null;
  }
  return [expandTo(a, t, dims, node.outputs[0]!)];
};

const mul: JvpRule = (a) => {
  // Each product term already has the broadcast (output) shape.
  const { e, node, dx } = a;
  const [x, y] = [node.inputs[0]!, node.inputs[1]!];
  return [
    total(a, [dx[0] ? e.op("Mul", [dx[0], y]) : undefined, dx[1] ? e.op("Mul", [x, dx[1]]) : undefined]),
  ];
};

const div: JvpRule = (a) => {
  // d(x / y) = (dx - out dy) / y
  const { e, node, dx } = a;
  const y = node.inputs[1]!;
  const out = node.outputs[0]!;
  const top = dx[1] ? e.op("Mul", [out, dx[1]]) : undefined;
  let num: string;
  if (dx[0] && top) num = e.op("Sub", [dx[0], top]);
  else if (dx[0]) num = dx[0];
  else num = e.op("Neg", [top!]);
  return [e.op("Div", [num, y])];
};

const where: JvpRule = (a) => {
  const { e, node, dx } = a;
  const t = a.type(node.outputs[0]!);
  return [e.op("Where", [node.inputs[0]!, dx[1] ?? a.scalar(0, t), dx[2] ?? a.scalar(0, t)])];
};

// ------------------------------------------------------------------ bilinear ops

const matmul: JvpRule = (a) => {
  const { e, node, dx } = a;
  const [x, w] = [node.inputs[0]!, node.inputs[1]!];
  return [
    total(a, [
      dx[0] ? e.op("MatMul", [dx[0], w]) : undefined,
      dx[1] ? e.op("MatMul", [x, dx[1]]) : undefined,
    ]),
  ];
};

const gemm: JvpRule = (a) => {
  // Y = alpha A'B' + beta C: dY = alpha (dA' B' + A' dB') + beta dC, dC folded into one of the Gemms.
  const { e, node, dx } = a;
  const [A, B] = [node.inputs[0]!, node.inputs[1]!];
  const dC = node.inputs[2] ? dx[2] : undefined;
  const terms: string[] = [];
  let cUsed = false;
  const withC = (): string[] => {
    if (dC && !cUsed) {
      cUsed = true;
      return [dC];
    }
    return [];
  };
  if (dx[0]) terms.push(sameOp(a, [dx[0], B, ...withC()])[0]!);
  if (dx[1]) terms.push(sameOp(a, [A, dx[1], ...withC()])[0]!);
  if (dC && !cUsed) {
    const beta = floatAttr(node, "beta", 1);
    const t = a.type(node.outputs[0]!);
    const scaled = beta === 1 ? dC : e.op("Mul", [dC, a.scalar(beta, t)]);
    terms.push(expandTo(a, scaled, a.info(node.inputs[2]!)?.dims, node.outputs[0]!));
  }
  return [total(a, terms)];
};

/** Conv and ConvTranspose: bilinear in (x, w), plus the bias tangent folded into one of the two. */
const convLike: JvpRule = (a) => {
  const { e, node, dx } = a;
  const [x, w] = [node.inputs[0]!, node.inputs[1]!];
  const db = node.inputs[2] ? dx[2] : undefined;
  const out = node.outputs[0]!;
  const terms: string[] = [];
  let biasUsed = false;
  const withBias = (): string[] => {
    if (db && !biasUsed) {
      biasUsed = true;
      return [db];
    }
    return [];
  };
  if (dx[0]) terms.push(sameOp(a, [dx[0], w, ...withBias()])[0]!);
  if (dx[1]) terms.push(sameOp(a, [x, dx[1], ...withBias()])[0]!);
  if (db && !biasUsed) {
    const r = a.dims(out).length;
    terms.push(e.op("Expand", [channelShaped(a, db, r), a.shapeOf(out)]));
  }
  return [total(a, terms)];
};

const batchNormalization: JvpRule = (a) => {
  // Inference form: y = scale (x - mean) / sqrt(var + eps) + B.
  const { e, node, dx } = a;
  if (intAttr(node, "training_mode", 0) === 1 || node.outputs.slice(1).some((o) => o !== "")) {
    fail(node, "forward-mode rule exists for inference-mode batch normalization only (running statistics)");
  }
  const [x, scale, , mean, variance] = node.inputs as [string, string, string, string, string];
  const out = node.outputs[0]!;
  const r = a.dims(x).length;
  const t = a.type(x);
  const eps = floatAttr(node, "epsilon", 1e-5);
  const terms: string[] = [];
  if (dx[0]) {
    // The linear part by ORT's own kernel: scale dx / sqrt(var + eps) (mean 0, shift 0).
    const c = a.info(scale)?.dims?.[0];
    if (typeof c === "number") {
      const zeros = a.zerosLike(scale);
      terms.push(e.op("BatchNormalization", [dx[0], scale, zeros, zeros, variance], { epsilon: { f: eps } }));
    } else {
      const k = e.op("Div", [scale, e.op("Sqrt", [e.op("Add", [variance, a.scalar(eps, t)])])]);
      terms.push(e.op("Mul", [dx[0], channelShaped(a, k, r)]));
    }
  }
  if (dx[1] || dx[3] || dx[4]) {
    const invstd = e.op("Reciprocal", [e.op("Sqrt", [e.op("Add", [variance, a.scalar(eps, t)])])]);
    const ch = (v: string): string => channelShaped(a, v, r);
    const xc = dx[1] || dx[4] ? e.op("Sub", [x, ch(mean)]) : "";
    if (dx[1]) terms.push(e.op("Mul", [xc, ch(e.op("Mul", [dx[1], invstd]))]));
    if (dx[3]) {
      const k = e.op("Neg", [e.op("Mul", [dx[3], e.op("Mul", [scale, invstd])])]);
      terms.push(e.op("Expand", [ch(k), a.shapeOf(out)]));
    }
    if (dx[4]) {
      const cube = e.op("Mul", [invstd, e.op("Mul", [invstd, invstd])]);
      const k = e.op("Mul", [e.op("Mul", [dx[4], e.op("Mul", [scale, cube])]), a.scalar(-0.5, t)]);
      terms.push(e.op("Mul", [xc, ch(k)]));
    }
  }
  if (dx[2]) terms.push(e.op("Expand", [channelShaped(a, dx[2], r), a.shapeOf(out)]));
  return [total(a, terms)];
};

// ------------------------------------------------------------------ pooling

const maxPool: JvpRule = (a) => {
  // The output is the input at the Indices (flat over the whole tensor, storage order 0).
  const { e, node, dx } = a;
  if (intAttr(node, "storage_order", 0) !== 0) fail(node, "forward-mode rule needs storage_order 0");
  const indices = node.outputs[1];
  if (!indices) fail(node, "internal: MaxPool has no Indices output");
  const flat = e.op("GatherElements", [e.reshape(dx[0]!, [-1]), e.reshape(indices, [-1])], { axis: 0 });
  return [e.op("Reshape", [flat, a.shapeOf(node.outputs[0]!)]), undefined];
};

// ------------------------------------------------------------------ registry

const RULES: Readonly<Record<string, JvpRule>> = {
  ...ACTIVATIONS_JVP_RULES,
  ...STRUCTURAL_JVP_RULES,
  // ORT's blocked convolutions (domain com.microsoft.nchwc; Conv is convLike below, which re-emits
  // the node in its own domain): the layout changes are linear.
  ReorderInput: linearInFirst,
  ReorderOutput: linearInFirst,
  Identity: identity,
  Dropout: identity,
  Flatten: linearInFirst,
  Reshape: linearInFirst,
  Squeeze: linearInFirst,
  Unsqueeze: linearInFirst,
  Transpose: linearInFirst,
  Expand: linearInFirst,
  Slice: linearInFirst,
  Split: linearInFirst,
  Gather: linearInFirst,
  GatherElements: linearInFirst,
  Tile: linearInFirst,
  ReduceSum: linearInFirst,
  ReduceMean: linearInFirst,
  AveragePool: linearInFirst,
  GlobalAveragePool: linearInFirst,
  MaxUnpool: linearInFirst,
  DepthToSpace: linearInFirst,
  SpaceToDepth: linearInFirst,
  Pad: pad,
  Concat: concat,
  ReduceSumSquare: reduceSumSquare,
  ScatterElements: scatterElements,
  Neg: neg,
  Cast: cast,
  Relu: relu,
  LeakyRelu: leakyRelu,
  Sigmoid: sigmoid,
  Tanh: tanh,
  Exp: exp,
  Log: log,
  Sqrt: sqrt,
  Softmax: softmax,
  LogSoftmax: logSoftmax,
  Add: addSub("Add"),
  Sub: addSub("Sub"),
  Sum: sum,
  Mul: mul,
  Div: div,
  Where: where,
  MatMul: matmul,
  Gemm: gemm,
  Conv: convLike,
  ConvTranspose: convLike,
  BatchNormalization: batchNormalization,
  MaxPool: maxPool,
};

/** Ops with a forward-mode rule. */
export const JVP_OPS: readonly string[] = Object.keys(RULES).sort();

const tangentName = (t: TangentName): { value: string; name: string } =>
  typeof t === "string" ? { value: t, name: `tangent:${t}` } : t;

/**
 * Adds forward-mode tangents to a graph: every seed gets a tangent input, every requested value a
 * tangent output; values not depending on a seed have zero tangents and cost nothing. Nodes that
 * no output needs are dropped.
 *
 * @example
 * const g = gradientGraph(model, { trainable: ["fc1.weight"] });
 * const h = jvpGraph(g.proto, { seeds: ["fc1.weight"], outputs: [{ value: "grad:fc1.weight", name: "hvp:fc1.weight" }] });
 * // feeding `tangent:fc1.weight` = v gives `hvp:fc1.weight` = H v
 */
export function jvpGraph(proto: ModelProto, options: JvpOptions): JvpGraph {
  const graph = proto.graph;
  const opset = proto.opsets.find((o) => o.domain === "" || o.domain === "ai.onnx")?.version ?? 0;
  const seeds = options.seeds.map(tangentName);
  const wanted = options.outputs.map(tangentName);
  const inputInfo = new Map<string, ValueInfo>(graph.inputs.map((v) => [v.name, v]));
  const inits = new Map<string, Tensor>(graph.initializers.map((t) => [t.name, t]));

  const declared = new Map<string, Info>();
  for (const v of graph.inputs) {
    if (inits.has(v.name)) continue;
    declared.set(v.name, { type: v.elemType, dims: v.shape ? v.shape.map((d) => d) : null });
  }
  const shapes = inferShapes(graph, opset, declared);

  const taken = namesIn(graph);

  const floatType = graph.inputs.find((v) => isFloat(v.elemType))?.elemType ?? DataType.FLOAT;
  const e = new Emitter(opset, floatType, taken);
  const tangent = new Map<string, string>();
  const tangentInputs: TangentInput[] = [];
  const newInputs: ValueInfo[] = [];
  for (const s of seeds) {
    const info = inputInfo.get(s.value);
    const init = inits.get(s.value);
    const type = info?.elemType ?? init?.dataType;
    const dims: Dim[] | null = info?.shape ?? init?.dims ?? null;
    if (type === undefined) {
      throw new Error(`jvpGraph(): seed '${s.value}' is neither a graph input nor an initializer`);
    }
    if (!isFloat(type)) throw new Error(`jvpGraph(): seed '${s.value}' has element type ${type}, not float`);
    if (taken.has(s.name)) throw new Error(`jvpGraph(): the graph already uses the name '${s.name}'`);
    taken.add(s.name);
    tangent.set(s.value, s.name);
    tangentInputs.push({ value: s.value, input: s.name, dims: dims ?? [] });
    newInputs.push({ name: s.name, elemType: type, shape: dims ? [...dims] : null });
  }

  const scalars = new Map<string, string>();
  const scalar = (v: number, type: number): string => {
    const key = `${type}:${v}`;
    let name = scalars.get(key);
    if (name === undefined) {
      name = e.fresh("tconst");
      e.initializers.push(floatTypedTensor(name, [], [v], type === DataType.DOUBLE ? type : DataType.FLOAT));
      scalars.set(key, name);
    }
    return name;
  };
  const shapeCache = new Map<string, string>();
  const shapeOf = (v: string): string =>
    shapeValue(
      shapes,
      shapeCache,
      v,
      (d) => e.i64(d),
      (x) => e.op("Shape", [x]),
    );
  const typeOf = (v: string): number => shapes.get(v)?.type ?? inits.get(v)?.dataType ?? floatType;
  const zerosLike = (v: string): string => e.zeros(shapeOf(v), typeOf(v));

  for (const source of graph.nodes) {
    const dx = source.inputs.map((i) => (i ? tangent.get(i) : undefined));
    const active = dx.some((t) => t !== undefined) && !NON_DIFFERENTIABLE.has(source.opType);
    let node = source;
    if (active && source.opType === "MaxPool" && !(source.outputs[1] ?? "")) {
      node = { ...source, outputs: [source.outputs[0]!, e.fresh("maxpool_indices")] };
    }
    e.nodes.push(node);
    if (!active) continue;
    const rule = RULES[source.opType];
    if (!rule) {
      throw new Error(
        `jvpGraph(): no forward-mode rule for ${source.opType} node '${source.name}' (it depends on a seed); ops with rules: ${JVP_OPS.join(", ")}`,
      );
    }
    const args: JvpArgs = {
      node,
      e,
      dx,
      info: (v) => shapes.get(v),
      dims: (v) => requireDims(shapes, v, "jvpGraph()", source),
      type: typeOf,
      shapeOf,
      scalar,
      zerosLike,
    };
    const outs = rule(args);
    node.outputs.forEach((o, k) => {
      const t = outs[k];
      if (o && t !== undefined && isFloat(typeOf(o))) tangent.set(o, t);
    });
  }

  const tangentOutputs: TangentOutput[] = [];
  const newOutputs: ValueInfo[] = [];
  for (const w of wanted) {
    if (taken.has(w.name)) throw new Error(`jvpGraph(): the graph already uses the name '${w.name}'`);
    if (!shapes.has(w.value) && !inputInfo.has(w.value))
      throw new Error(`jvpGraph(): no value named '${w.value}' in the graph`);
    taken.add(w.name);
    const t = tangent.get(w.value);
    if (t === undefined) e.op("Identity", [zerosLike(w.value)], {}, w.name);
    else e.op("Identity", [t], {}, w.name);
    const declaredOut = graph.outputs.find((v) => v.name === w.value);
    const info = shapes.get(w.value);
    newOutputs.push({
      name: w.name,
      elemType: declaredOut?.elemType ?? info?.type ?? floatType,
      shape: declaredOut?.shape ?? info?.dims ?? null,
    });
    tangentOutputs.push({ value: w.value, output: w.name });
  }

  // Keep only what the outputs need.
  const outputs = [...graph.outputs, ...newOutputs];
  const needed = new Set(outputs.map((v) => v.name));
  const kept: Node[] = [];
  for (let k = e.nodes.length - 1; k >= 0; k--) {
    const n = e.nodes[k]!;
    if (!n.outputs.some((o) => o !== "" && needed.has(o))) continue;
    kept.push(n);
    for (const i of n.inputs) if (i) needed.add(i);
  }
  kept.reverse();
  const initializers = [...graph.initializers, ...e.initializers].filter((t) => needed.has(t.name));
  return {
    proto: {
      ...proto,
      graph: {
        ...graph,
        name: `${graph.name}-jvp`,
        nodes: kept,
        initializers,
        inputs: [...graph.inputs, ...newInputs],
        outputs,
      },
    },
    tangentInputs,
    tangentOutputs,
  };
}
