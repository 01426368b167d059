// Forward-mode (JVP) rules for structural ops: LayerNormalization and
// InstanceNormalization (forward graphs) and ScatterND (what the Gather gradient
// emits). ConvTranspose, Gather, Slice and Pad are linear in their data input and
// use the rules of jvp.ts. Merged into the registry by jvp.ts. Internal to
// src/autodiff. Imports from jvp.ts must stay type-only (jvp.ts imports this file).

import { attr, DataType, type Node } from "../onnx/proto.ts";
import { floatAttr, intAttr, normAxis, range } from "./_util.ts";
import type { JvpArgs, JvpRule } from "./jvp.ts";

function fail(node: Node, why: string): never {
  throw new Error(`jvpGraph(): ${node.opType} node '${node.name}': ${why}`);
}

/** Sum of tangent terms; undefined when there are none. */
function total(a: JvpArgs, terms: (string | undefined)[]): string | undefined {
  const present = terms.filter((t): t is string => t !== undefined);
  if (present.length <= 1) return present[0];
  return a.e.op(present.length === 2 ? "Add" : "Sum", present);
}

/** A standardization's tangents: dxhat, d mean and d invstd for input tangent `dx`. */
interface Standardized {
  readonly xhat: string;
  readonly invstd: string;
  tangent(dx: string): { dxhat: string; dmean: string; dinvstd: string };
}

/**
 * x standardized over `axes` (biased variance), with the tangent map
 * dxhat = invstd (dx - mean(dx) - xhat mean(xhat dx)), d invstd = -invstd^2 mean(xhat dx).
 */
function standardize(a: JvpArgs, x: string, axes: number[], eps: number): Standardized {
  const { e } = a;
  const t = a.type(x);
  const xc = e.op("Sub", [x, e.reduceMean(x, axes, true)]);
  const variance = e.reduceMean(e.op("Mul", [xc, xc]), axes, true);
  const invstd = e.op("Reciprocal", [e.op("Sqrt", [e.op("Add", [variance, a.scalar(eps, t)])])]);
  const xhat = e.op("Mul", [xc, invstd]);
  return {
    xhat,
    invstd,
    tangent(dx) {
      const dmean = e.reduceMean(dx, axes, true);
      const m2 = e.reduceMean(e.op("Mul", [dx, xhat]), axes, true);
      const inner = e.op("Sub", [e.op("Sub", [dx, dmean]), e.op("Mul", [xhat, m2])]);
      const dinvstd = e.op("Neg", [e.op("Mul", [e.op("Mul", [invstd, invstd]), m2])]);
      return { dxhat: e.op("Mul", [inner, invstd]), dmean, dinvstd };
    },
  };
}

/** LayerNormalization: dY = dxhat Scale + xhat dScale + dB; Mean and InvStdDev get their tangents too. */
const layerNormalization: JvpRule = (a) => {
  const { e, node, dx } = a;
  const [x, scale] = [node.inputs[0]!, node.inputs[1]!];
  const out = node.outputs[0]!;
  const r = a.dims(x).length;
  const axes = range(normAxis(intAttr(node, "axis", -1), r), r);
  const std = standardize(a, x, axes, floatAttr(node, "epsilon", 1e-5));
  const moved = dx[0] ? std.tangent(dx[0]) : undefined;
  const dy = total(a, [
    moved ? e.op("Mul", [moved.dxhat, scale]) : undefined,
    dx[1] ? e.op("Mul", [std.xhat, dx[1]]) : undefined,
    node.inputs[2] && dx[2] ? e.op("Expand", [dx[2], a.shapeOf(out)]) : undefined,
  ]);
  // Mean and InvStdDev are of the stash type (float32 unless stash_type says otherwise).
  const stash = intAttr(node, "stash_type", DataType.FLOAT);
  const stashed = (t: string | undefined): string | undefined =>
    t === undefined || stash === a.type(x) ? t : e.op("Cast", [t], { to: stash });
  return [dy, stashed(moved?.dmean), stashed(moved?.dinvstd)];
};

/** InstanceNormalization: dY = dxhat scale[c] + xhat dscale[c] + dB[c]. */
const instanceNormalization: JvpRule = (a) => {
  const { e, node, dx } = a;
  const [x, scale] = [node.inputs[0]!, node.inputs[1]!];
  const out = node.outputs[0]!;
  const r = a.dims(x).length;
  const perChannel = (v: string): string => e.reshape(v, [1, -1, ...new Array<number>(r - 2).fill(1)]);
  const std = standardize(a, x, range(2, r), floatAttr(node, "epsilon", 1e-5));
  return [
    total(a, [
      dx[0] ? e.op("Mul", [std.tangent(dx[0]).dxhat, perChannel(scale)]) : undefined,
      dx[1] ? e.op("Mul", [std.xhat, perChannel(dx[1])]) : undefined,
      dx[2] ? e.op("Expand", [perChannel(dx[2]), a.shapeOf(out)]) : undefined,
    ]),
  ];
};

/** ScatterND without reduction or with "add": linear in (data, updates), the same scatter of the tangents. */
const scatterND: JvpRule = (a) => {
  const { e, node, dx } = a;
  const reduction = attr(node, "reduction")?.s ?? "none";
  if (reduction !== "none" && reduction !== "add") {
    fail(node, `forward-mode rule for reduction '${reduction}' is not implemented (only none, add)`);
  }
  const [data, indices, updates] = node.inputs as [string, string, string];
  const out = e.fresh("t_scatternd");
  e.nodes.push({
    opType: node.opType,
    inputs: [dx[0] ?? a.zerosLike(data), indices, dx[2] ?? a.zerosLike(updates)],
    outputs: [out],
    name: e.fresh("t_ScatterND_node"),
    domain: node.domain,
    attributes: node.attributes,
  });
  return [out];
};

/** Forward-mode rules of this file, by op type. */
export const STRUCTURAL_JVP_RULES: Readonly<Record<string, JvpRule>> = {
  LayerNormalization: layerNormalization,
  InstanceNormalization: instanceNormalization,
  ScatterND: scatterND,
};
