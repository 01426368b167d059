// Cross-entropy of sequence and dense outputs scored inside the graph. A language model's
// [N, T, V] logits hold V scores per target: scoring them in JavaScript (float64 log-sum-exp)
// costs as much as the forward pass of a small transformer. Three nodes appended to the model's
// graph (LogSoftmax, GatherElements with the targets, ArgMax) let ONNX Runtime do it with its
// vectorized kernels, in float32 as PyTorch's cross_entropy does; JavaScript sums the per-target
// losses in float64 and skips ignored targets.

import type { Model } from "../model/model.ts";
import { AttrType, DataType, decodeModel, type Graph, type ModelProto, type Node } from "../onnx/proto.ts";
import { encodeWithSlots } from "./_prefix.ts";
import { targetError } from "./task.ts";

/** The model's graph with scoring outputs, and where its parameters' bytes lie. */
export interface ScoringGraph {
  readonly bytes: Uint8Array;
  /** Each parameter in the graph: its index in model.params and the offset of its raw data. */
  readonly slots: readonly { index: number; at: number }[];
  /** Input taking the gather indices: [N, ...targets, 1] (classes last) or [N, 1, ...targets]. */
  readonly targets: string;
  /** Output: log-probability of each target's class, one per target position, in target order. */
  readonly logProb: string;
  /** Output: arg-max class of each target position (int64), in target order. */
  readonly argmax: string;
}

/** The default-domain opset a model's graph is written for. */
export function defaultOpset(proto: ModelProto): number {
  return proto.opsets.find((o) => o.domain === "" || o.domain === "ai.onnx")?.version ?? 0;
}

/**
 * Whether the graph can score an output of `rank` axes (with the batch) along `axis` (positive):
 * GatherElements needs opset 11; before opset 13 LogSoftmax flattens the axes after `axis`, which
 * is per-class only when the classes are the last axis.
 *
 * @example
 * canScoreInGraph(14, 3, 2); // true: [N, T, V] language-model logits
 */
export function canScoreInGraph(opset: number, rank: number, axis: number): boolean {
  return opset >= 11 && (axis === rank - 1 || opset >= 13);
}

/**
 * The model's graph (or `proto`, a part of it ending in the model's output, such as the suffix of
 * a prefix cache) with a LogSoftmax over `axis` of its output (rank `rank` with the batch), the
 * log-probability of each target gathered from it, and the arg-max class, as extra outputs.
 *
 * @example
 * const g = scoringGraph(model, 3, 2); // [N, T, V] logits, classes last
 */
export function scoringGraph(
  model: Model,
  rank: number,
  axis: number,
  proto: ModelProto = decodeModel(model.onnx, model.name),
): ScoringGraph {
  const g: Graph = proto.graph;
  const taken = new Set<string>([
    ...g.inputs.map((v) => v.name),
    ...g.outputs.map((v) => v.name),
    ...g.initializers.map((t) => t.name),
    ...g.nodes.flatMap((n) => [...n.inputs, ...n.outputs]),
  ]);
  const fresh = (base: string): string => {
    let name = base;
    for (let k = 1; taken.has(name); k++) name = `${base}.${k}`;
    taken.add(name);
    return name;
  };
  const targets = fresh("losscape.targets");
  const logSoftmax = fresh("losscape.log_softmax");
  const logProb = fresh("losscape.log_prob");
  const argmax = fresh("losscape.argmax");
  const node = (opType: string, inputs: string[], output: string, ints: Record<string, number>): Node => ({
    opType,
    inputs,
    outputs: [output],
    name: output,
    domain: "",
    attributes: Object.entries(ints).map(([name, i]) => ({ name, type: AttrType.INT, i })),
  });
  const indexShape = Array.from({ length: rank }, (_, k): string | number =>
    k === axis ? 1 : `losscape_d${k}`,
  );
  const scored: Graph = {
    ...g,
    nodes: [
      ...g.nodes,
      node("LogSoftmax", [model.output], logSoftmax, { axis }),
      node("GatherElements", [logSoftmax, targets], logProb, { axis }),
      node("ArgMax", [model.output], argmax, { axis, keepdims: 1 }),
    ],
    inputs: [...g.inputs, { name: targets, elemType: DataType.INT64, shape: indexShape }],
    outputs: [
      ...g.outputs,
      { name: logProb, elemType: DataType.FLOAT, shape: indexShape },
      { name: argmax, elemType: DataType.INT64, shape: indexShape },
    ],
  };
  const { bytes, slots } = encodeWithSlots(model, { ...proto, graph: scored });
  return { bytes, slots, targets, logProb, argmax };
}

/**
 * The gather indices of targets [first, first + n) of `labels`: each class index, 0 in place of the
 * ignore index (its score is dropped). A target outside [0, classes) is an error naming it.
 *
 * @example
 * gatherIndices(data.labels, 0, 2048, 256, -100, data.name);
 */
export function gatherIndices(
  labels: ArrayLike<number>,
  first: number,
  n: number,
  classes: number,
  ignoreIndex: number,
  dataName: string,
): BigInt64Array {
  const out = new BigInt64Array(n);
  for (let i = 0; i < n; i++) {
    const label = labels[first + i] as number;
    if (label === ignoreIndex) continue;
    if (!(Number.isInteger(label) && label >= 0 && label < classes))
      throw targetError(dataName, first + i, label, classes, ignoreIndex);
    out[i] = BigInt(label);
  }
  return out;
}
