// Finds a model's parameters among its float initializers: each one is followed
// through view and plumbing ops (Identity, Cast, Reshape, Flatten, Transpose,
// Squeeze/Unsqueeze, Slice, Split, Concat, Expand, Tile, Gather with constant
// indices) to the ops that compute with it, which give it its role and, for
// tensors of rank >= 2, the axis its filters run along. What a tensor became,
// and why, is reported for every float initializer (docs/models.md).

import { attr, DataType, type Graph, type Node, type Tensor, tensorFloats } from "../onnx/proto.ts";
import { type ParamRole, shapeSize } from "./model.ts";

/** What the importer decided for one float initializer. */
export interface InitializerReport {
  /** Initializer name. */
  readonly name: string;
  readonly shape: readonly number[];
  /** "parameter" (a landscape parameter, trainable), "bn-stat" (batch-norm running statistic) or "constant". */
  readonly status: "parameter" | "bn-stat" | "constant";
  /** The role of a parameter or statistic. */
  readonly role?: ParamRole;
  /** The filter axis of a rank >= 2 parameter. */
  readonly filterAxis?: number;
  /** What it is ("Conv weight", "embedding", "LSTM W", "layer-norm scale", ...) or, for a constant, why. */
  readonly kind: string;
  /** The ops that compute with it, as "OpType 'node name'". */
  readonly users: readonly string[];
  /** True when several compute ops read it (tied weights, or a tensor the exporter merged). */
  readonly shared: boolean;
  /** Set when the exporter had merged this tensor into another one and the importer restored it. */
  readonly restoredFrom?: string;
}

/** One way a tensor is used: as a parameter of some role, or as a constant (with the reason). */
type Use =
  | { kind: string; role: ParamRole; filterAxis?: number; node: Node }
  | { kind: string; constant: true; node: Node };

/** Which trainable/constant decisions the caller forces (export metadata, user regexes). */
export interface DiscoverOptions {
  /** Names of trainable tensors from the exporter's metadata (losscape.parameters). */
  readonly trainable?: ReadonlySet<string>;
  /** Names of buffers from the exporter's metadata (losscape.buffers): never trainable. */
  readonly buffers?: ReadonlySet<string>;
  /** Tensors matching this are parameters whatever their use. */
  readonly forceTrainable?: RegExp;
  /** Tensors matching this stay constant. */
  readonly forceConstant?: RegExp;
}

/** Ops whose inputs only route or reshape values; a parameter read through them is followed. */
const PLUMBING = new Set([
  "Identity",
  "Cast",
  "Reshape",
  "Flatten",
  "Transpose",
  "Squeeze",
  "Unsqueeze",
  "Slice",
  "Split",
  "Concat",
  "Expand",
  "Tile",
  "Gather",
]);

/** Ops that take a float only as a mask or a control value. */
const MASK_OPS = new Set([
  "Equal",
  "Less",
  "LessOrEqual",
  "Greater",
  "GreaterOrEqual",
  "Not",
  "And",
  "Or",
  "Xor",
]);

/** Float initializers that the exporter's deduplication replaced by Identity(other) are given back their own tensor. */
export function restoreMerged(graph: Graph): Map<string, string> {
  const inits = new Map(graph.initializers.map((t) => [t.name, t]));
  const outputs = new Set(graph.outputs.map((o) => o.name));
  const restored = new Map<string, string>();
  const kept: Node[] = [];
  // How many nodes read each initializer: an Identity that is its source's only reader is plumbing, not a merge.
  const readers = new Map<string, number>();
  for (const n of graph.nodes) for (const i of new Set(n.inputs)) readers.set(i, (readers.get(i) ?? 0) + 1);
  for (const n of graph.nodes) {
    const src = n.opType === "Identity" ? inits.get(n.inputs[0] ?? "") : undefined;
    const out = n.outputs[0];
    if (
      src &&
      (readers.get(src.name) ?? 0) > 1 &&
      isFloatTensor(src) &&
      out !== undefined &&
      !inits.has(out) &&
      !outputs.has(out) &&
      n.outputs.length === 1
    ) {
      const copy: Tensor = { name: out, dims: [...src.dims], dataType: src.dataType, raw: src.raw.slice() };
      graph.initializers.push(copy);
      inits.set(out, copy);
      restored.set(out, src.name);
    } else kept.push(n);
  }
  graph.nodes = kept;
  return restored;
}

function isFloatTensor(t: Tensor): boolean {
  return t.dataType === DataType.FLOAT || t.dataType === DataType.DOUBLE || t.dataType === DataType.FLOAT16;
}

/** A value's axes in terms of the initializer's: source axis per axis (-1: a new axis), null when unknown. */
interface Trace {
  readonly value: string;
  readonly axes: readonly number[] | null;
  readonly shape: readonly number[] | null;
}

/**
 * Decides role and filter axis of every float initializer of `graph` from the ops that compute
 * with it (see the module comment), and reports each decision.
 *
 * @example
 * const { found, report } = discoverParameters(proto.graph);
 */
export function discoverParameters(
  graph: Graph,
  options: DiscoverOptions = {},
  restored: ReadonlyMap<string, string> = new Map(),
): { found: Map<string, InitializerReport>; report: InitializerReport[] } {
  const inits = new Map(graph.initializers.map((t) => [t.name, t]));
  const users = new Map<string, { node: Node; index: number }[]>();
  const producers = new Map<string, Node>();
  for (const n of graph.nodes) {
    n.inputs.forEach((v, index) => {
      if (v === "") return;
      const list = users.get(v) ?? [];
      list.push({ node: n, index });
      users.set(v, list);
    });
    for (const o of n.outputs) producers.set(o, n);
  }
  const constants = constantValues(graph, inits);
  const floatInits = new Set(graph.initializers.filter(isFloatTensor).map((t) => t.name));

  // A value computed from initializers and constants only (no data): its plumbing stays a parameter's.
  const pure = new Map<string, boolean>();
  const isPure = (v: string): boolean => {
    if (v === "") return true;
    const known = pure.get(v);
    if (known !== undefined) return known;
    if (inits.has(v) || constants.has(v)) return true;
    const p = producers.get(v);
    pure.set(v, false); // guards cycles
    const result = p !== undefined && (p.opType === "Constant" || p.inputs.every(isPure));
    pure.set(v, result);
    return result;
  };

  const floats = graph.initializers.filter(isFloatTensor).map((t) => t.name);
  for (const [flag, re] of [
    ["--trainable", options.forceTrainable],
    ["--constant", options.forceConstant],
  ] as const) {
    if (re && !floats.some((n) => re.test(n)))
      throw new Error(
        `${flag} /${re.source}/ matches no float initializer; the graph has ${floats.length}: ${floats.slice(0, 8).join(", ")}${floats.length > 8 ? ", ..." : ""}`,
      );
  }

  const found = new Map<string, InitializerReport>();
  const report: InitializerReport[] = [];
  for (const t of graph.initializers) {
    if (!isFloatTensor(t)) continue;
    const uses = tensorUses(t, users, producers, constants, isPure, floatInits);
    const computeUsers = [...new Set(uses.map((u) => `${u.node.opType} '${u.node.name}'`))];
    const size = shapeSize(t.dims);
    let decision: Omit<InitializerReport, "name" | "shape" | "users" | "shared" | "restoredFrom">;
    const paramUse = uses.find((u): u is Extract<Use, { role: ParamRole }> => "role" in u);
    const statUse = paramUse?.role === "bn-stat" ? paramUse : undefined;
    if (options.forceConstant?.test(t.name)) decision = { status: "constant", kind: "constant (--constant)" };
    else if (options.forceTrainable?.test(t.name))
      decision = paramDecision(
        paramUse && paramUse.role !== "bn-stat" ? paramUse : undefined,
        t,
        "--trainable",
      );
    else if (options.buffers?.has(t.name))
      decision = statUse
        ? { status: "bn-stat", role: "bn-stat", kind: statUse.kind }
        : { status: "constant", kind: "buffer of the exported module (not a parameter)" };
    else if (options.trainable !== undefined)
      decision = options.trainable.has(t.name)
        ? paramDecision(paramUse && paramUse.role !== "bn-stat" ? paramUse : undefined, t, "export metadata")
        : { status: "constant", kind: "not a parameter or buffer of the exported module" };
    else if (statUse) decision = { status: "bn-stat", role: "bn-stat", kind: statUse.kind };
    else if (paramUse && size > 1) decision = paramDecision(paramUse, t, "");
    else
      decision = {
        status: "constant",
        kind:
          size <= 1
            ? "a scalar"
            : uses.length > 0
              ? uses.map((u) => u.kind).join("; ")
              : (users.get(t.name)?.length ?? 0) === 0
                ? "read by no node"
                : "read only to compute shapes or indices",
      };
    const entry: InitializerReport = {
      name: t.name,
      shape: [...t.dims],
      ...decision,
      users: computeUsers,
      shared: computeUsers.length > 1,
      ...(restored.has(t.name) ? { restoredFrom: restored.get(t.name)! } : {}),
    };
    report.push(entry);
    if (entry.status !== "constant") found.set(t.name, entry);
  }
  return { found, report };
}

function paramDecision(
  use: Extract<Use, { role: ParamRole }> | undefined,
  t: Tensor,
  why: string,
): Omit<InitializerReport, "name" | "shape" | "users" | "shared" | "restoredFrom"> {
  if (use) {
    // Directions treat every tensor of rank >= 2 as filters (method.md) and rank-1 ones as the
    // bias/BN group, so the role follows the rank; the kind keeps what the tensor is.
    if (t.dims.length >= 2)
      return {
        status: "parameter",
        role: "filter",
        kind: use.kind,
        filterAxis: use.filterAxis ?? spreadAxis(t.dims),
      };
    return { status: "parameter", role: use.role === "filter" ? "bias" : use.role, kind: use.kind };
  }
  // Trainable by metadata or by the user, with no recognised use: rank >= 2 tensors are
  // filtered along axis 0 (PyTorch's output axis), rank-1 ones join the bias group.
  return t.dims.length >= 2
    ? { status: "parameter", role: "filter", filterAxis: 0, kind: `parameter (${why})` }
    : { status: "parameter", role: "bias", kind: `parameter (${why})` };
}

/** Every compute use of an initializer, following plumbing ops, with the axis map at the use. */
function tensorUses(
  t: Tensor,
  users: Map<string, { node: Node; index: number }[]>,
  producers: Map<string, Node>,
  constants: Map<string, ConstantValue>,
  isPure: (v: string) => boolean,
  floatInits: ReadonlySet<string>,
): Use[] {
  const out: Use[] = [];
  const seen = new Set<string>();
  const stack: Trace[] = [{ value: t.name, axes: t.dims.map((_, i) => i), shape: [...t.dims] }];
  while (stack.length > 0) {
    const tr = stack.pop()!;
    if (seen.has(tr.value)) continue;
    seen.add(tr.value);
    for (const { node, index } of users.get(tr.value) ?? []) {
      const next = follow(node, index, tr, constants, isPure);
      if (next !== undefined) {
        for (const n of next) stack.push(n);
        continue;
      }
      const use = classify(node, index, tr, t.dims, producers, floatInits);
      if (use) out.push(use);
    }
  }
  return out;
}

/** The traces past a plumbing op, or undefined when `node` computes with the value. */
function follow(
  node: Node,
  index: number,
  tr: Trace,
  constants: Map<string, ConstantValue>,
  isPure: (v: string) => boolean,
): Trace[] | undefined {
  if (!PLUMBING.has(node.opType)) return undefined;
  const op = node.opType;
  const rank = tr.shape?.length ?? tr.axes?.length;
  const c = (k: number): number[] | undefined => constants.get(node.inputs[k] ?? "")?.values;
  const to = (axes: readonly number[] | null, shape: readonly number[] | null): Trace[] =>
    node.outputs.map((value) => ({ value, axes, shape }));
  // Only the data operand of these routes the value; shapes, indices, starts... are control inputs.
  if (index !== 0 && op !== "Concat") return [];
  switch (op) {
    case "Identity":
    case "Cast":
      return to(tr.axes, tr.shape);
    case "Transpose": {
      const perm = attr(node, "perm")?.ints ?? (rank !== undefined ? range(rank).reverse() : undefined);
      if (!perm) return to(null, null);
      return to(
        tr.axes ? perm.map((p) => tr.axes![p] ?? -1) : null,
        tr.shape ? perm.map((p) => tr.shape![p]!) : null,
      );
    }
    case "Unsqueeze": {
      const axes = attr(node, "axes")?.ints ?? c(1);
      if (!axes || !tr.axes) return to(null, null);
      const r = tr.axes.length + axes.length;
      const norm = new Set(axes.map((a) => (a < 0 ? a + r : a)));
      const newAxes: number[] = [];
      const newShape: number[] = [];
      let k = 0;
      for (let i = 0; i < r; i++) {
        if (norm.has(i)) {
          newAxes.push(-1);
          newShape.push(1);
        } else {
          newAxes.push(tr.axes[k]!);
          newShape.push(tr.shape?.[k] ?? 1);
          k++;
        }
      }
      return to(newAxes, tr.shape ? newShape : null);
    }
    case "Squeeze": {
      const given = attr(node, "axes")?.ints ?? c(1);
      if (!tr.axes || !tr.shape) return to(null, null);
      const r = tr.axes.length;
      const drop = new Set(
        given ? given.map((a) => (a < 0 ? a + r : a)) : tr.shape.flatMap((d, i) => (d === 1 ? [i] : [])),
      );
      return to(
        tr.axes.filter((_, i) => !drop.has(i)),
        tr.shape.filter((_, i) => !drop.has(i)),
      );
    }
    case "Slice":
    case "Split":
    case "Expand":
    case "Tile":
      // Axes keep their meaning (Expand may prepend broadcast axes).
      if (op === "Expand" && tr.axes) {
        const target = c(1);
        if (target && target.length > tr.axes.length) {
          const extra = target.length - tr.axes.length;
          return to([...new Array<number>(extra).fill(-1), ...tr.axes], null);
        }
      }
      return to(tr.axes, null);
    case "Concat":
      // Concatenating with data makes an activation: the parameter is computed with there.
      if (!node.inputs.every(isPure)) return undefined;
      return to(tr.axes, null);
    case "Gather": {
      const indices = c(1);
      if (indices === undefined) return undefined; // an embedding lookup
      const axis = attr(node, "axis")?.i ?? 0;
      if (!tr.axes) return to(null, null);
      const a = axis < 0 ? axis + tr.axes.length : axis;
      const scalar = constants.get(node.inputs[1]!)?.rank === 0;
      return to(scalar ? tr.axes.filter((_, i) => i !== a) : tr.axes, null);
    }
    case "Reshape":
    case "Flatten": {
      const target =
        op === "Reshape" ? c(1) : tr.shape ? flattenShape(tr.shape, attr(node, "axis")?.i ?? 1) : undefined;
      if (!target || !tr.shape || !tr.axes) return to(null, null);
      const resolved = resolveReshape(tr.shape, target);
      return resolved ? to(mapReshape(tr.shape, tr.axes, resolved), resolved) : to(null, null);
    }
    default:
      return to(null, null);
  }
}

/** The use of a (traced) parameter value by a compute op. */
function classify(
  node: Node,
  index: number,
  tr: Trace,
  dims: readonly number[],
  producers: Map<string, Node>,
  floatInits: ReadonlySet<string>,
): Use | undefined {
  const op = node.opType;
  const rank = tr.shape?.length ?? tr.axes?.length;
  const back = (axis: number | undefined): number | undefined => {
    if (axis === undefined) return undefined;
    const a = tr.axes?.[axis];
    return a === undefined || a < 0 ? undefined : a;
  };
  const param = (kind: string, role: ParamRole, axis?: number): Use => ({
    kind,
    role,
    node,
    ...(axis !== undefined ? { filterAxis: back(axis) ?? 0 } : {}),
  });
  const constant = (kind: string): Use => ({ kind, constant: true, node });
  /** The initializer's own number of axes longer than 1, and its first such axis but the last. */
  const effectiveRank = dims.filter((d) => d > 1).length;
  const spread: Use = { kind: "", role: "filter", node, filterAxis: spreadAxis(dims) };
  const learned = (kind: string): Use => ({ ...spread, kind });
  const producedBy = (v: string | undefined): Node | undefined => (v ? producers.get(v) : undefined);
  switch (op) {
    case "Conv":
      if (index === 1) return param("Conv weight", "filter", 0);
      if (index === 2) return param("Conv bias", "bias");
      return constant("data input of a Conv");
    case "ConvTranspose":
      if (index === 1) return param("ConvTranspose weight", "filter", 1);
      if (index === 2) return param("ConvTranspose bias", "bias");
      return constant("data input of a ConvTranspose");
    case "Gemm": {
      if (index === 2) return param("dense bias", "bias");
      const trans = attr(node, index === 1 ? "transB" : "transA")?.i ?? 0;
      // B [in, out] (transB 0) has its outputs on axis 1; A as the weight: its rows are outputs.
      if (index === 1) return param("dense weight", "filter", trans ? 0 : 1);
      return param("dense weight (left operand)", "filter", trans ? 1 : 0);
    }
    case "MatMul":
      if (rank === undefined || rank < 2) return param("MatMul vector", "bias");
      return index === 1
        ? param("dense weight", "filter", rank - 1)
        : param("dense weight (left operand)", "filter", rank - 2);
    case "Einsum": {
      const eq = attr(node, "equation")?.s?.replace(/\s/g, "");
      const [lhs, rhs] = eq?.split("->") ?? [];
      const terms = lhs?.split(",") ?? [];
      const mine = terms[index];
      if (mine === undefined || rhs === undefined) return param("Einsum operand", "filter", 0);
      const others = terms.filter((_, k) => k !== index).join("");
      let axis = [...mine].findIndex((ch) => rhs.includes(ch) && !others.includes(ch));
      if (axis < 0) axis = 0;
      return param("Einsum weight", rank !== undefined && rank >= 2 ? "filter" : "bias", axis);
    }
    case "Gather": {
      if (index !== 0) return constant("Gather indices");
      const axis = attr(node, "axis")?.i ?? 0;
      return param("embedding", "filter", axis < 0 && rank !== undefined ? axis + rank : axis);
    }
    case "BatchNormalization":
      if (index === 1) return param("batch-norm scale", "bn-scale");
      if (index === 2) return param("batch-norm shift", "bn-shift");
      if (index === 3) return param("batch-norm running mean", "bn-stat");
      if (index === 4) return param("batch-norm running variance", "bn-stat");
      return constant("batch-norm input");
    case "LayerNormalization":
    case "InstanceNormalization":
    case "GroupNormalization": {
      const name = {
        LayerNormalization: "layer",
        InstanceNormalization: "instance",
        GroupNormalization: "group",
      }[op];
      if (index === 1) return param(`${name}-norm scale`, "bn-scale");
      if (index === 2) return param(`${name}-norm shift`, "bn-shift");
      return constant(`${name}-norm input`);
    }
    case "LSTM":
    case "GRU":
    case "RNN":
      // W, R: [directions, gates x hidden, in]: a filter is one gate of one unit (a row of PyTorch's weight_ih_l0).
      if (index === 1) return param(`${op} W (input weights)`, "filter", 1);
      if (index === 2) return param(`${op} R (recurrent weights)`, "filter", 1);
      if (index === 3)
        return effectiveRank <= 1 ? param(`${op} B (biases)`, "bias") : learned(`${op} B (biases)`);
      return constant(`${op} ${index === 4 ? "sequence lengths" : "initial state"}`);
    case "Add":
    case "Sub":
    case "Concat": {
      if (op === "Concat") return learned("learned token (class token)");
      if (effectiveRank >= 2 && op === "Add") return learned("positional embedding");
      const other = producedBy(node.inputs[1 - index]);
      if (other && ["MatMul", "Conv", "Gemm", "Einsum", "ConvTranspose"].includes(other.opType))
        return param(`${other.opType} bias`, "bias");
      if (other?.opType === "Mul" && other.inputs.some((v) => floatInits.has(v)))
        return param("normalization shift (decomposed layer norm)", "bn-shift");
      return param("learned shift", "bias");
    }
    case "Mul": {
      const other = producedBy(node.inputs[1 - index]);
      if (dims.length >= 2 && effectiveRank >= 2) return learned("elementwise weight");
      if (other?.opType === "Div") return param("normalization scale (decomposed layer norm)", "bn-scale");
      return param("learned scale", "bn-scale");
    }
    case "PRelu":
      return index === 1 ? param("PReLU slope", "bias") : constant("PReLU input");
    case "Where":
      return index === 0 ? constant("mask (Where condition)") : constant("fill value of a Where");
    case "Pow":
      return index === 1 ? constant("exponent") : constant("base of a Pow");
    case "Div":
      return index === 1 ? constant("divisor") : constant("dividend");
    case "Clip":
      return constant("clip bound");
    default:
      if (MASK_OPS.has(op)) return constant(`mask (${op})`);
      return constant(`read by ${op} '${node.name}'`);
  }
}

/** A constant input's values (ints, or small floats) and rank. */
interface ConstantValue {
  readonly values: number[];
  readonly rank: number;
}

/** Values of constant inputs: int initializers, small float ones, and Constant nodes. */
function constantValues(graph: Graph, inits: Map<string, Tensor>): Map<string, ConstantValue> {
  const out = new Map<string, ConstantValue>();
  const ints = (t: Tensor): number[] | undefined => {
    const v = new DataView(t.raw.buffer, t.raw.byteOffset, t.raw.byteLength);
    if (t.dataType === DataType.INT64)
      return Array.from({ length: t.raw.length / 8 }, (_, i) => Number(v.getBigInt64(8 * i, true)));
    if (t.dataType === DataType.INT32)
      return Array.from({ length: t.raw.length / 4 }, (_, i) => v.getInt32(4 * i, true));
    if (t.dataType === DataType.FLOAT && t.raw.length <= 64) return Array.from(tensorFloats(t));
    return undefined;
  };
  for (const t of inits.values()) {
    const v = ints(t);
    if (v) out.set(t.name, { values: v, rank: t.dims.length });
  }
  for (const n of graph.nodes) {
    if (n.opType !== "Constant" || !n.outputs[0]) continue;
    const a = n.attributes[0];
    const v = a?.t
      ? { values: ints(a.t), rank: a.t.dims.length }
      : a?.ints
        ? { values: a.ints, rank: 1 }
        : a?.i !== undefined
          ? { values: [a.i], rank: 0 }
          : undefined;
    if (v?.values) out.set(n.outputs[0], { values: v.values, rank: v.rank });
  }
  return out;
}

/**
 * The filter axis of a learned tensor added to or concatenated with activations (positional
 * embeddings [1, T, D], class tokens [1, 1, D]): its first axis longer than 1 but the last (one
 * slice per position), or 0 (the whole tensor is one filter).
 */
function spreadAxis(dims: readonly number[]): number {
  return Math.max(
    0,
    dims.findIndex((d, i) => d > 1 && i < dims.length - 1),
  );
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function flattenShape(shape: readonly number[], axis: number): number[] {
  const a = axis < 0 ? axis + shape.length : axis;
  return [shapeSize(shape.slice(0, a)), shapeSize(shape.slice(a))];
}

/** Reshape's target with 0 (copy) and -1 (infer) resolved, or undefined. */
function resolveReshape(shape: readonly number[], target: readonly number[]): number[] | undefined {
  const out = target.map((d, i) => (d === 0 ? shape[i] : d));
  if (out.some((d) => d === undefined)) return undefined;
  const total = shapeSize(shape);
  const known = (out as number[]).filter((d) => d !== -1).reduce((p, q) => p * q, 1);
  return (out as number[]).map((d) => (d === -1 ? total / known : d));
}

/** Maps axes through a reshape: a new axis gets the old axis it starts, when old and new axes group evenly. */
function mapReshape(from: readonly number[], axes: readonly number[], to: readonly number[]): number[] {
  const out = new Array<number>(to.length).fill(-1);
  let i = 0;
  let j = 0;
  while (i < from.length && j < to.length) {
    if (from[i] === 1 && to[j] !== 1) {
      i++;
      continue;
    }
    if (to[j] === 1 && from[i] !== 1) {
      j++;
      continue;
    }
    // Group axes until the products agree.
    let pi = from[i]!;
    let pj = to[j]!;
    const gi = [i];
    const gj = [j];
    while (pi !== pj) {
      if (pi < pj && i + 1 < from.length) {
        i++;
        pi *= from[i]!;
        gi.push(i);
      } else if (j + 1 < to.length) {
        j++;
        pj *= to[j]!;
        gj.push(j);
      } else break;
    }
    // The first new axis of a group stands for the group's first old axis with size > 1.
    const lead = gi.find((k) => from[k]! > 1) ?? gi[0]!;
    out[gj[0]!] = axes[lead] ?? -1;
    i++;
    j++;
  }
  return out;
}
