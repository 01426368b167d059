// Small helpers shared by the reverse-mode and forward-mode rules. Imports nothing from
// src/autodiff, so every rule file may import it. Internal to src/autodiff.

import { attr, type Graph, type Node } from "../onnx/proto.ts";

/** An INT attribute of a node, or `fallback`. */
export const intAttr = (n: Node, name: string, fallback: number): number => attr(n, name)?.i ?? fallback;

/** A FLOAT attribute of a node, or `fallback`. */
export const floatAttr = (n: Node, name: string, fallback: number): number => attr(n, name)?.f ?? fallback;

/** [from, from + 1, ..., to - 1]. */
export const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from }, (_, i) => from + i);

/** A possibly negative axis as an index in [0, rank). */
export const normAxis = (a: number, rank: number): number => (a < 0 ? a + rank : a);

/** Axes a Softmax-family node normalizes over: one axis from opset 13, the trailing block before. */
export function softmaxAxes(node: Node, rank: number, opset: number): number[] {
  const axis = normAxis(intAttr(node, "axis", opset >= 13 ? -1 : 1), rank);
  return opset >= 13 ? [axis] : range(axis, rank);
}

/** Every name a graph uses (values, initializers, nodes): what new names must avoid. */
export function namesIn(graph: Graph): Set<string> {
  const taken = new Set<string>();
  for (const v of [...graph.inputs, ...graph.outputs, ...graph.valueInfo]) taken.add(v.name);
  for (const t of graph.initializers) taken.add(t.name);
  for (const n of graph.nodes) {
    for (const v of [...n.inputs, ...n.outputs]) taken.add(v);
    taken.add(n.name);
  }
  return taken;
}
