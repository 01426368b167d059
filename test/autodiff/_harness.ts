// Test helpers for the gradient rules: tiny float32/float64 ONNX graphs with
// seeded parameters, run as gradient graphs on ORT (parameters fed as inputs),
// and central finite differences of their loss.

import * as ort from "onnxruntime-node";
import { type GradientOptions, gradientGraph } from "../../src/autodiff/gradient.ts";
import { gradientSessionOptions } from "../../src/autodiff/session.ts";
import { Random } from "../../src/core/random.ts";
import {
  type Attribute,
  AttrType,
  DataType,
  encodeModel,
  type ModelProto,
  type Node,
  type Tensor,
} from "../../src/onnx/proto.ts";

export type Precision = "float32" | "float64";

/** An attribute value: numbers are INT, arrays INTS, `{ f }` FLOAT, `{ s }` STRING. */
export type TestAttr = number | readonly number[] | { f: number } | { s: string };

function attribute(name: string, v: TestAttr): Attribute {
  if (typeof v === "number") return { name, type: AttrType.INT, i: v };
  if (Array.isArray(v)) return { name, type: AttrType.INTS, ints: [...(v as number[])] };
  if ("f" in (v as object)) return { name, type: AttrType.FLOAT, f: (v as { f: number }).f };
  return { name, type: AttrType.STRING, s: (v as { s: string }).s };
}

function floatTensor(name: string, dims: number[], values: ArrayLike<number>, type: number): Tensor {
  const data = type === DataType.DOUBLE ? Float64Array.from(values) : Float32Array.from(values);
  return { name, dims, dataType: type, raw: new Uint8Array(data.buffer) };
}

/** Builds a small graph: samples input `x` [N, ...shape], ops, and a fixed dense head to `classes` logits. */
export class TinyGraph {
  readonly nodes: Node[] = [];
  readonly initializers: Tensor[] = [];
  readonly trainable: string[] = [];
  private counter = 0;
  readonly type: number;
  readonly rng: Random;

  constructor(
    readonly precision: Precision,
    readonly inputShape: number[],
    seed: number,
    readonly opset = 17,
  ) {
    this.type = precision === "float64" ? DataType.DOUBLE : DataType.FLOAT;
    this.rng = new Random(seed);
  }

  /** A trainable parameter with N(0, scale^2) values (or the given ones). */
  param(dims: number[], scale = 0.5, values?: number[], offset = 0): string {
    const name = `p${this.trainable.length}`;
    const n = dims.reduce((a, b) => a * b, 1);
    const v = values ?? Array.from({ length: n }, () => offset + scale * this.rng.normal());
    this.initializers.push(floatTensor(name, dims, v, this.type));
    this.trainable.push(name);
    return name;
  }

  /** A non-trainable float constant. */
  constant(dims: number[], values: number[]): string {
    const name = `c${this.counter++}`;
    this.initializers.push(floatTensor(name, dims, values, this.type));
    return name;
  }

  /** An int64 constant. */
  i64(values: number[], dims: number[] = [values.length]): string {
    const name = `i${this.counter++}`;
    this.initializers.push({
      name,
      dims,
      dataType: DataType.INT64,
      raw: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer),
    });
    return name;
  }

  /** Adds a node; returns its outputs. */
  nodeN(op: string, inputs: string[], outputs: number, attrs: Record<string, TestAttr> = {}): string[] {
    const id = `${op.toLowerCase()}${this.counter++}`;
    const outs = Array.from({ length: outputs }, (_, k) => `${id}_${k}`);
    this.nodes.push({
      opType: op,
      inputs,
      outputs: outs,
      name: id,
      domain: "",
      attributes: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outs;
  }

  node(op: string, inputs: string[], attrs: Record<string, TestAttr> = {}): string {
    return this.nodeN(op, inputs, 1, attrs)[0]!;
  }

  /** Flatten `value` ([N, ...] with `features` values per sample) and map it to logits with a fixed matrix. */
  build(value: string, features: number, classes = 3): ModelProto {
    const flat = this.node("Flatten", [value], { axis: 1 });
    const w = this.constant(
      [features, classes],
      Array.from({ length: features * classes }, () => this.rng.normal() / Math.sqrt(features)),
    );
    const logits = this.node("MatMul", [flat, w]);
    return {
      irVersion: 8,
      opsets: [{ domain: "", version: this.opset }],
      producer: "test",
      graph: {
        name: "tiny",
        nodes: this.nodes,
        initializers: this.initializers,
        inputs: [{ name: "x", elemType: this.type, shape: ["N", ...this.inputShape] }],
        outputs: [{ name: logits, elemType: this.type, shape: ["N", classes] }],
        valueInfo: [],
      },
    };
  }
}

/** Values of a float tensor. */
export function values(t: Tensor): number[] {
  const n = t.dims.reduce((a, b) => a * b, 1);
  const dv = new DataView(t.raw.buffer, t.raw.byteOffset, t.raw.byteLength);
  return Array.from({ length: n }, (_, i) =>
    t.dataType === DataType.DOUBLE ? dv.getFloat64(i * 8, true) : dv.getFloat32(i * 4, true),
  );
}

/** A gradient graph of a tiny model, runnable at any parameter values. */
export interface Runner {
  readonly precision: Precision;
  readonly params: Map<string, { dims: number[]; values: number[] }>;
  /** Loss, gradients and other outputs at the given parameter values (default: the initial ones). */
  run(values?: Map<string, number[]>): Promise<{ loss: number; outputs: Record<string, number[]> }>;
  release(): Promise<void>;
}

/**
 * Builds and opens the gradient graph of `proto` on a seeded batch of `batch` samples.
 *
 * @example
 * const r = await openRunner(g.build(y, 12), g, { batch: 4 });
 */
export async function openRunner(
  proto: ModelProto,
  g: TinyGraph,
  {
    batch = 4,
    classes = 3,
    options = {},
  }: { batch?: number; classes?: number; options?: GradientOptions } = {},
): Promise<Runner> {
  const grad = gradientGraph(proto, { trainable: g.trainable, parameters: "inputs", ...options });
  const { bytes } = encodeModel(grad.proto);
  const session = await ort.InferenceSession.create(bytes, gradientSessionOptions(1, "inputs"));
  const per = g.inputShape.reduce((a, b) => a * b, 1);
  const rng = new Random(99);
  const x = Array.from({ length: batch * per }, () => rng.normal());
  const labels = BigInt64Array.from({ length: batch }, (_, i) => BigInt(i % classes));
  const kind = g.precision === "float64" ? "float64" : "float32";
  const params = new Map<string, { dims: number[]; values: number[] }>();
  for (const t of proto.graph.initializers) {
    if (grad.parameterInputs.includes(t.name)) params.set(t.name, { dims: t.dims, values: values(t) });
  }
  const typed = (v: number[]): Float32Array | Float64Array =>
    kind === "float64" ? Float64Array.from(v) : Float32Array.from(v);
  return {
    precision: g.precision,
    params,
    async run(overrides) {
      const feeds: Record<string, ort.Tensor> = {
        input: new ort.Tensor(kind, typed(x), [batch, ...g.inputShape]),
        labels: new ort.Tensor("int64", labels, [batch]),
      };
      for (const [name, p] of params) {
        feeds[name] = new ort.Tensor(kind, typed(overrides?.get(name) ?? p.values), p.dims);
      }
      const out = await session.run(feeds);
      const outputs: Record<string, number[]> = {};
      for (const [k, t] of Object.entries(out))
        outputs[k] = Array.from(t.data as Float32Array | Float64Array);
      return { loss: outputs["loss"]![0]!, outputs };
    },
    release: () => session.release(),
  };
}

/** Worst violation of |a - b| <= atol + rtol |b| (0 when all pass), with where it happened. */
export function worst(
  what: string,
  a: number,
  b: number,
  atol: number,
  rtol: number,
  acc: { excess: number; at: string },
): void {
  const excess = Math.abs(a - b) - (atol + rtol * Math.abs(b));
  if (excess > acc.excess) {
    acc.excess = excess;
    acc.at = `${what}: analytic ${a} vs finite difference ${b}`;
  }
}

/**
 * Checks every trainable parameter's gradient against central finite differences.
 * float64: every coordinate (up to `maxPerParam`, seeded), step 1e-6, |error| <= 1e-6 (1 + |g|).
 * float32: `directions` seeded unit directions per parameter with step h = 1e-2; the error bound
 * is the rounding of the loss divided by the step, 8 eps |L| / h, plus the truncation term h^2 |L'''| / 6
 * bounded by 1e-3 for these O(1)-scaled graphs, plus 2e-3 |g . d|.
 */
export async function checkGradients(
  runner: Runner,
  {
    maxPerParam = 12,
    directions = 3,
    seed = 1,
  }: { maxPerParam?: number; directions?: number; seed?: number } = {},
): Promise<{ excess: number; at: string; checked: number }> {
  const base = await runner.run();
  const rng = new Random(seed);
  const acc = { excess: 0, at: "", checked: 0 };
  const f64 = runner.precision === "float64";
  for (const [name, p] of runner.params) {
    const g = base.outputs[`grad:${name}`];
    if (!g) continue;
    const n = p.values.length;
    if (f64) {
      const h = 1e-6;
      const coords = n <= maxPerParam ? Array.from({ length: n }, (_, i) => i) : pick(rng, n, maxPerParam);
      for (const i of coords) {
        const plus = p.values.slice();
        const minus = p.values.slice();
        plus[i]! += h;
        minus[i]! -= h;
        const lp = (await runner.run(new Map([[name, plus]]))).loss;
        const lm = (await runner.run(new Map([[name, minus]]))).loss;
        worst(`${name}[${i}]`, g[i]!, (lp - lm) / (2 * h), 1e-6, 1e-6, acc);
        acc.checked++;
      }
    } else {
      const h = 1e-2;
      const eps = 2 ** -23;
      for (let k = 0; k < directions; k++) {
        const d = Array.from({ length: n }, () => rng.normal());
        const norm = Math.sqrt(d.reduce((s, v) => s + v * v, 0));
        const plus = p.values.map((v, i) => v + (h * d[i]!) / norm);
        const minus = p.values.map((v, i) => v - (h * d[i]!) / norm);
        const lp = (await runner.run(new Map([[name, plus]]))).loss;
        const lm = (await runner.run(new Map([[name, minus]]))).loss;
        const analytic = g.reduce((s, v, i) => s + (v * d[i]!) / norm, 0);
        const atol = (8 * eps * Math.abs(base.loss)) / h + 1e-3;
        worst(`${name} along direction ${k}`, analytic, (lp - lm) / (2 * h), atol, 2e-3, acc);
        acc.checked++;
      }
    }
  }
  return acc;
}

function pick(rng: Random, n: number, k: number): number[] {
  const s = new Set<number>();
  while (s.size < k) s.add(rng.int(n));
  return [...s].sort((a, b) => a - b);
}
