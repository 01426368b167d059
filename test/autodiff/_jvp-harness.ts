// Test helpers for the forward-mode rules: run a graph with tangents on ORT and
// compare its tangent outputs with central finite differences of the outputs
// themselves (float64: step 1e-6, tight tolerance; float32: step 1e-2 with a
// tolerance from the step and the rounding of the outputs).

import * as ort from "onnxruntime-node";
import { gradientGraph } from "../../src/autodiff/gradient.ts";
import { jvpGraph } from "../../src/autodiff/jvp.ts";
import { gradientSessionOptions } from "../../src/autodiff/session.ts";
import { Random } from "../../src/core/random.ts";
import { encodeModel, type ModelProto } from "../../src/onnx/proto.ts";
import { type Precision, type TinyGraph, values } from "./_harness.ts";

/** Outcome of a check: the worst excess over the tolerance (0: all within), where, and how many values. */
export interface JvpCheck {
  excess: number;
  at: string;
  checked: number;
}

/**
 * Checks the tangents of `outputs` of `proto` (a graph over the samples input `x`, or a gradient
 * graph over `input`/`labels`) along a seeded random tangent of every parameter of `g` against
 * central differences of the outputs.
 */
export async function checkTangents(
  proto: ModelProto,
  g: TinyGraph,
  outputs: readonly string[],
  {
    batch = 4,
    seed = 5,
    classes = 3,
    step,
  }: { batch?: number; seed?: number; classes?: number; step?: number } = {},
): Promise<JvpCheck> {
  // Parameters become graph inputs, so that they can be moved for the finite differences.
  const inits = proto.graph.initializers;
  const moved: ModelProto = {
    ...proto,
    graph: {
      ...proto.graph,
      initializers: inits.filter((t) => !g.trainable.includes(t.name)),
      inputs: [
        ...proto.graph.inputs,
        ...inits
          .filter((t) => g.trainable.includes(t.name) && !proto.graph.inputs.some((v) => v.name === t.name))
          .map((t) => ({ name: t.name, elemType: t.dataType, shape: [...t.dims] })),
      ],
    },
  };
  const jvp = jvpGraph(moved, { seeds: g.trainable, outputs });
  const { bytes } = encodeModel(jvp.proto);
  const session = await ort.InferenceSession.create(bytes, gradientSessionOptions(1, "inputs"));
  try {
    const precision: Precision = g.precision;
    const kind = precision === "float64" ? "float64" : "float32";
    const typed = (v: number[]): Float32Array | Float64Array =>
      kind === "float64" ? Float64Array.from(v) : Float32Array.from(v);
    const per = g.inputShape.reduce((p, q) => p * q, 1);
    const rng = new Random(99);
    const x = Array.from({ length: batch * per }, () => rng.normal());
    const inputNames = new Set(jvp.proto.graph.inputs.map((v) => v.name));
    const fixed: Record<string, ort.Tensor> = {};
    if (inputNames.has("x")) fixed["x"] = new ort.Tensor(kind, typed(x), [batch, ...g.inputShape]);
    if (inputNames.has("input")) fixed["input"] = new ort.Tensor(kind, typed(x), [batch, ...g.inputShape]);
    if (inputNames.has("labels")) {
      fixed["labels"] = new ort.Tensor(
        "int64",
        BigInt64Array.from({ length: batch }, (_, i) => BigInt(i % classes)),
        [batch],
      );
    }
    const params = new Map<string, { dims: number[]; values: number[] }>();
    for (const t of g.initializers) {
      if (g.trainable.includes(t.name)) params.set(t.name, { dims: t.dims, values: values(t) });
    }
    const trng = new Random(seed);
    const tangents = new Map<string, number[]>();
    for (const [name, p] of params) {
      // Unit norm per tensor, so that a float32 step stays small per entry (fewer kinks crossed).
      const t = p.values.map(() => trng.normal());
      const norm = Math.sqrt(t.reduce((s, v) => s + v * v, 0));
      tangents.set(
        name,
        t.map((v) => v / norm),
      );
    }
    const tangentNames = new Map(jvp.tangentInputs.map((t) => [t.value, t.input]));
    const outNames = jvp.tangentOutputs.map((t) => t.output);
    const run = async (h: number): Promise<Record<string, number[]>> => {
      const feeds: Record<string, ort.Tensor> = { ...fixed };
      for (const [name, p] of params) {
        const t = tangents.get(name)!;
        feeds[name] = new ort.Tensor(kind, typed(p.values.map((v, i) => v + h * t[i]!)), p.dims);
        feeds[tangentNames.get(name)!] = new ort.Tensor(kind, typed(t), p.dims);
      }
      const out = await session.run(feeds);
      const res: Record<string, number[]> = {};
      for (const [k, t] of Object.entries(out)) res[k] = Array.from(t.data as Float32Array | Float64Array);
      return res;
    };
    const f64 = precision === "float64";
    const h = step ?? (f64 ? 1e-6 : 1e-2);
    const base = await run(0);
    const plus = await run(h);
    const minus = await run(-h);
    const acc: JvpCheck = { excess: 0, at: "", checked: 0 };
    const eps = 2 ** -23;
    outputs.forEach((value, k) => {
      const analytic = base[outNames[k]!]!;
      const p = plus[value]!;
      const m = minus[value]!;
      const scale = Math.max(...base[value]!.map(Math.abs), 1e-30);
      const tScale = Math.max(...analytic.map(Math.abs), 1e-30);
      for (let i = 0; i < analytic.length; i++) {
        const fd = (p[i]! - m[i]!) / (2 * h);
        const tol = f64 ? 1e-6 * (1 + Math.abs(fd)) : (8 * eps * scale) / h + 2e-3 * tScale;
        const excess = Math.abs(analytic[i]! - fd) - tol;
        if (excess > acc.excess) {
          acc.excess = excess;
          acc.at = `${value}[${i}]: tangent ${analytic[i]} vs finite difference ${fd}`;
        }
        acc.checked++;
      }
    });
    return acc;
  } finally {
    await session.release();
  }
}

/** Tangents of the logits of a tiny forward graph (built by `TinyGraph.build`). */
export function logitsOf(proto: ModelProto): string {
  return proto.graph.outputs[0]!.name;
}

/**
 * Hessian-vector products of a tiny graph's loss, checked as the tangents of its gradient
 * graph's gradient outputs against central differences of the gradients.
 */
export async function checkHvp(
  proto: ModelProto,
  g: TinyGraph,
  options: { batch?: number; seed?: number; batchNorm?: "inference" | "training"; step?: number } = {},
): Promise<JvpCheck> {
  const grad = gradientGraph(proto, {
    trainable: g.trainable,
    parameters: "inputs",
    batchNorm: options.batchNorm ?? "inference",
  });
  // float32: a smaller step than for the forward rules, as a gradient jumps where a max or ReLU switches.
  const step = options.step ?? (g.precision === "float64" ? 1e-6 : 1e-3);
  return checkTangents(
    grad.proto,
    g,
    grad.gradients.map((o) => o.output),
    { ...options, step },
  );
}
