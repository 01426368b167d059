// The graph cut in two where the directions stop reaching: a prefix that depends on the samples
// and on parameters that never move (its outputs can be computed once per batch and reused at every
// grid point), and a suffix that holds every node reached by a moving parameter. Running the prefix
// and then the suffix computes the same nodes with the same kernels as the whole graph; the cut
// tensors are copied out and back in between.

import type { Model } from "../model/model.ts";
import { Writer } from "../onnx/_wire.ts";
import {
  DataType,
  decodeModel,
  encodeModel,
  type Graph,
  type ModelProto,
  type Node,
  type ValueInfo,
} from "../onnx/proto.ts";

/** The two graphs of a split model. */
export interface GraphSplit {
  /** Input: the samples; outputs: the cut tensors. Holds only fixed parameters. */
  readonly prefix: ModelProto;
  /** Indices (into model.params) of the parameters the prefix reads. */
  readonly prefixParams: readonly number[];
  /** Tensors computed by the prefix and read by the suffix, in graph order. */
  readonly cuts: readonly string[];
  /** Nodes in the prefix and in the suffix. */
  readonly prefixNodes: number;
  readonly suffixNodes: number;
  /** The suffix graph, its cut inputs declared with the given element types and ranks. */
  suffix(types: ReadonlyMap<string, CutType>): ModelProto;
}

/** Element type (ONNX DataType code) and shape of a cut tensor, batch-sized axes symbolic. */
export interface CutType {
  readonly elemType: number;
  readonly shape: readonly (number | string)[];
}

/** ONNX Runtime tensor type names as ONNX DataType codes. */
export const ORT_TYPES: Readonly<Record<string, number>> = {
  float32: DataType.FLOAT,
  uint8: 2,
  int8: 3,
  uint16: 4,
  int16: 5,
  int32: 6,
  int64: DataType.INT64,
  bool: 9,
  float16: 10,
  float64: 11,
  uint32: 12,
  uint64: 13,
};

/** Names a node reads: its inputs and the outer-scope names its subgraphs (If, Loop, Scan) use. */
function reads(node: Node): string[] {
  const out = node.inputs.filter((n) => n !== "");
  for (const a of node.attributes) if (a.g) out.push(...outerNames(a.g));
  return out;
}

function outerNames(g: Graph): string[] {
  const local = new Set<string>([...g.inputs.map((v) => v.name), ...g.initializers.map((t) => t.name)]);
  const out: string[] = [];
  for (const n of g.nodes) {
    for (const name of reads(n)) if (!local.has(name)) out.push(name);
    for (const o of n.outputs) local.add(o);
  }
  return out;
}

/**
 * Splits `model`'s graph for parameters `moving` (names) changing between evaluations, or returns
 * null with the reason when there is nothing worth caching (no node depends on the samples alone,
 * or the output does not depend on any moving parameter).
 *
 * @example
 * const split = splitGraph(model, new Set(["fc.weight", "fc.bias"]));
 */
export function splitGraph(model: Model, moving: ReadonlySet<string>): GraphSplit | string {
  const proto = decodeModel(model.onnx, model.name);
  const g = proto.graph;
  for (const name of moving)
    if (!model.params.some((p) => p.name === name))
      throw new Error(`prefix cache: '${name}' is not a parameter of model '${model.name}'`);
  const byName = new Map(g.initializers.map((t) => [t.name, t]));
  // Dynamic: changes between evaluations (moving parameters, and inputs other than the samples
  // that are not initializers, such as the targets of a model's own loss).
  const dynamic = new Set<string>(moving);
  for (const v of g.inputs) if (v.name !== model.input.name && !byName.has(v.name)) dynamic.add(v.name);
  const fromSamples = new Set<string>([model.input.name]);
  const kind: ("prefix" | "suffix" | "constant")[] = [];
  for (const n of g.nodes) {
    const r = reads(n);
    const k = r.some((x) => dynamic.has(x))
      ? "suffix"
      : r.some((x) => fromSamples.has(x))
        ? "prefix"
        : "constant";
    kind.push(k);
    for (const o of n.outputs) {
      if (k === "suffix") dynamic.add(o);
      else if (k === "prefix") fromSamples.add(o);
    }
  }
  const fetched = [model.output, ...(model.loss ? [model.loss.output] : [])];
  if (fetched.some((o) => !dynamic.has(o)))
    return `the output '${fetched.find((o) => !dynamic.has(o))}' does not depend on the moving parameters`;
  // Cut: tensors from the samples alone that a suffix node reads.
  const cutSet = new Set<string>();
  g.nodes.forEach((n, i) => {
    if (kind[i] === "suffix") for (const x of reads(n)) if (fromSamples.has(x)) cutSet.add(x);
  });
  // Cut tensors in the order they are produced (the samples input first, when the suffix reads it).
  const producer = new Map<string, number>();
  g.nodes.forEach((n, i) => {
    for (const o of n.outputs) producer.set(o, i);
  });
  const order = (t: string) => (t === model.input.name ? -1 : producer.get(t)!);
  const cuts = [...cutSet].sort((a, b) => order(a) - order(b));

  /** The nodes (indices, in order) needed to produce `targets`, stopping at `stop`. */
  const closure = (targets: Iterable<string>, stop: ReadonlySet<string>): number[] => {
    const need = new Set<number>();
    const stack = [...targets];
    while (stack.length) {
      const t = stack.pop()!;
      if (stop.has(t)) continue;
      const i = producer.get(t);
      if (i === undefined || need.has(i)) continue;
      need.add(i);
      stack.push(...reads(g.nodes[i]!));
    }
    return [...need].sort((a, b) => a - b);
  };
  const infos = new Map<string, ValueInfo>(
    [...g.valueInfo, ...g.inputs, ...g.outputs].map((v) => [v.name, v]),
  );
  const subgraph = (nodes: number[], inputs: ValueInfo[], outputs: ValueInfo[]): Graph => {
    const used = new Set(nodes.flatMap((i) => reads(g.nodes[i]!)));
    const produced = new Set(nodes.flatMap((i) => g.nodes[i]!.outputs));
    return {
      name: g.name,
      nodes: nodes.map((i) => g.nodes[i]!),
      initializers: g.initializers.filter((t) => used.has(t.name)),
      inputs,
      outputs,
      valueInfo: g.valueInfo.filter((v) => produced.has(v.name) && !outputs.some((o) => o.name === v.name)),
      ...(g.extra ? { extra: g.extra } : {}),
    };
  };
  const prefixIdx = closure(
    cuts.filter((c) => c !== model.input.name),
    new Set([model.input.name]),
  );
  const sampleInput = g.inputs.find((v) => v.name === model.input.name)!;
  // Prefix outputs keep their declared type when the graph has one; ONNX Runtime infers the rest.
  const prefix: ModelProto = {
    ...proto,
    graph: subgraph(
      prefixIdx,
      [sampleInput],
      cuts.map((c) => infos.get(c) ?? { name: c, elemType: 0, shape: null, raw: nameOnly(c) }),
    ),
  };
  const prefixInits = new Set(prefix.graph.initializers.map((t) => t.name));
  const prefixParams = model.params.flatMap((p, i) => (prefixInits.has(p.name) ? [i] : []));
  // Without a parameter the prefix is preprocessing (reshapes, casts): not worth a copy per batch.
  if (prefixParams.length === 0)
    return "the first parameters the samples meet are moving ones: a prefix would only reshape the samples";
  const cutStop = new Set(cuts);
  const suffixIdx = closure(fetched, cutStop);
  const suffixOutputs = fetched.map(
    (o) => infos.get(o) ?? { name: o, elemType: 0, shape: null, raw: nameOnly(o) },
  );
  return {
    prefix,
    prefixParams,
    cuts,
    prefixNodes: prefixIdx.length,
    suffixNodes: suffixIdx.length,
    suffix(types) {
      const inputs: ValueInfo[] = cuts.map((c) => {
        if (c === model.input.name) return sampleInput;
        const t = types.get(c);
        if (!t) throw new Error(`internal: no type for cut tensor '${c}'`);
        return { name: c, elemType: t.elemType, shape: [...t.shape] };
      });
      // Graph inputs the suffix reads besides the cut (targets of a model's own loss).
      const reading = new Set(suffixIdx.flatMap((i) => reads(g.nodes[i]!)));
      for (const v of g.inputs)
        if (v.name !== model.input.name && reading.has(v.name) && !byName.has(v.name)) inputs.push(v);
      return { ...proto, graph: subgraph(suffixIdx, inputs, suffixOutputs) };
    },
  };
}

/** A ValueInfoProto holding only a name (type left to ONNX Runtime's inference). */
function nameOnly(name: string): Uint8Array {
  const w = new Writer();
  w.string(1, name);
  return w.finish();
}

/** Encodes `proto` and maps each of `model`'s parameters in it to its raw-data offset. */
export function encodeWithSlots(
  model: Model,
  proto: ModelProto,
): { bytes: Uint8Array; slots: { index: number; at: number }[] } {
  const { bytes, offsets } = encodeModel(proto);
  const slots = model.params.flatMap((p, index) => {
    const at = offsets.get(p.name);
    return at === undefined ? [] : [{ index, at }];
  });
  return { bytes, slots };
}
