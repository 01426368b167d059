// A small builder for ONNX graphs written in TypeScript: the model zoo (and,
// later, gradient graphs) are assembled node by node with it.

import {
  type Attribute,
  AttrType,
  DataType,
  floatTensor,
  type Graph,
  int64Tensor,
  type ModelProto,
  type Node,
  type Tensor,
} from "./proto.ts";

/** An attribute value with its ONNX type made explicit. */
export type AttrValue =
  | { readonly int: number }
  | { readonly float: number }
  | { readonly ints: readonly number[] }
  | { readonly floats: readonly number[] }
  | { readonly string: string }
  | { readonly tensor: Tensor };

/** Integer attribute. */
export const int = (v: number): AttrValue => ({ int: v });
/** Float attribute. */
export const float = (v: number): AttrValue => ({ float: v });
/** Integer-list attribute. */
export const ints = (v: readonly number[]): AttrValue => ({ ints: v });

function toAttribute(name: string, v: AttrValue): Attribute {
  if ("int" in v) return { name, type: AttrType.INT, i: v.int };
  if ("float" in v) return { name, type: AttrType.FLOAT, f: v.float };
  if ("ints" in v) return { name, type: AttrType.INTS, ints: [...v.ints] };
  if ("floats" in v) return { name, type: AttrType.FLOATS, floats: [...v.floats] };
  if ("string" in v) return { name, type: AttrType.STRING, s: v.string };
  return { name, type: AttrType.TENSOR, t: v.tensor };
}

/**
 * Builds an ONNX graph.
 *
 * @example
 * const b = new GraphBuilder("tiny");
 * const x = b.input("x", ["N", 4]);
 * const y = b.node("Relu", [x]);
 * b.output(y, ["N", 4]);
 * const proto = b.build();
 */
export class GraphBuilder {
  private readonly graph: Graph;
  private counter = 0;

  constructor(name: string) {
    this.graph = { name, nodes: [], initializers: [], inputs: [], outputs: [], valueInfo: [] };
  }

  /** Declares a float32 graph input; symbolic dims are strings. */
  input(name: string, shape: (number | string)[]): string {
    this.graph.inputs.push({ name, elemType: DataType.FLOAT, shape });
    return name;
  }

  /** Declares a float32 graph output. */
  output(name: string, shape: (number | string)[]): void {
    this.graph.outputs.push({ name, elemType: DataType.FLOAT, shape });
  }

  /** Adds a float32 initializer. */
  initializer(name: string, dims: number[], values: Float32Array): string {
    this.graph.initializers.push(floatTensor(name, dims, values));
    return name;
  }

  /** Adds an int64 constant initializer (shapes, axes). */
  int64(values: readonly number[], dims: number[] = [values.length]): string {
    const name = `const_${this.counter++}`;
    this.graph.initializers.push(int64Tensor(name, dims, values));
    return name;
  }

  /** Adds a node and returns its first output's name (see nodeN for several). */
  node(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, name?: string): string {
    return this.nodeN(op, inputs, 1, attrs, name)[0]!;
  }

  /** Adds a node with `outputs` outputs and returns their names. */
  nodeN(
    op: string,
    inputs: string[],
    outputs: number,
    attrs: Record<string, AttrValue> = {},
    name?: string,
  ): string[] {
    const id = name ?? `${op}_${this.counter++}`;
    const outs = Array.from({ length: outputs }, (_, k) => (k === 0 ? `${id}_out` : `${id}_out${k}`));
    const node: Node = {
      opType: op,
      inputs,
      outputs: outs,
      name: id,
      domain: "",
      attributes: Object.entries(attrs).map(([k, v]) => toAttribute(k, v)),
    };
    this.graph.nodes.push(node);
    return outs;
  }

  /** Renames a node output (e.g. the last one to "logits"); returns the new name. */
  rename(value: string, name: string): string {
    for (const n of this.graph.nodes) n.outputs = n.outputs.map((o) => (o === value ? name : o));
    for (const n of this.graph.nodes) n.inputs = n.inputs.map((i) => (i === value ? name : i));
    return name;
  }

  /** The finished model (ONNX IR 8, opset 17 by default). */
  build(opset = 17): ModelProto {
    return {
      irVersion: 8,
      opsets: [{ domain: "", version: opset }],
      producer: "losscape",
      graph: this.graph,
    };
  }
}
