// Forward-mode (JVP) rules for activations and elementwise ops, merged into the registry by jvp.ts.
// Each is the transpose of its reverse rule in _rules-activations.ts and follows the same
// conventions at kinks and ties (see there). Internal to src/autodiff. Imports from jvp.ts must
// stay type-only (jvp.ts imports this file).

import { attr, type Node } from "../onnx/proto.ts";
import {
  clipBounds,
  clipMasks,
  erfSlope,
  hardSwishSlope,
  reducedAxes,
  SELU_ALPHA,
  SELU_GAMMA,
  tieWeights,
} from "./_rules-activations.ts";
import type { JvpArgs, JvpRule } from "./jvp.ts";

const floatAttr = (n: Node, name: string, fallback: number): number => attr(n, name)?.f ?? fallback;

function fail(node: Node, why: string): never {
  throw new Error(`jvpGraph(): ${node.opType} node '${node.name}': ${why}`);
}

/** A scalar of the type of `like`. */
const scalarLike = (a: JvpArgs, v: number, like: string): string => a.scalar(v, a.type(like));

/** Sum of tangent terms (each of the output's shape); undefined when there are none. */
function total(a: JvpArgs, terms: (string | undefined)[]): string | undefined {
  const t = terms.filter((v): v is string => v !== undefined);
  if (t.length <= 1) return t[0];
  return a.e.op(t.length === 2 ? "Add" : "Sum", t);
}

/** dy = f'(x) dx, with f' built from the node's input and output. */
function chain(slope: (a: JvpArgs, x: string, y: string) => string): JvpRule {
  return (a) => {
    const { node } = a;
    return [a.e.op("Mul", [a.dx[0]!, slope(a, node.inputs[0]!, node.outputs[0]!)])];
  };
}

const erf = chain((a, x) => erfSlope(a.e, (v) => scalarLike(a, v, x), x));
const softplus = chain((a, x) => a.e.op("Sigmoid", [x]));
const hardSwish = chain((a, x) => hardSwishSlope(a.e, (v) => scalarLike(a, v, x), x));

const elu: JvpRule = (a) => {
  const { e, node } = a;
  const [x, y, t] = [node.inputs[0]!, node.outputs[0]!, a.dx[0]!];
  const alpha = floatAttr(node, "alpha", 1);
  const neg = e.op("Mul", [t, e.op("Add", [y, scalarLike(a, alpha, y)])]);
  return [e.op("Where", [e.op("Greater", [x, scalarLike(a, 0, x)]), t, neg])];
};

const selu: JvpRule = (a) => {
  const { e, node } = a;
  const [x, y, t] = [node.inputs[0]!, node.outputs[0]!, a.dx[0]!];
  const alpha = floatAttr(node, "alpha", SELU_ALPHA);
  const gamma = floatAttr(node, "gamma", SELU_GAMMA);
  const pos = e.op("Mul", [t, scalarLike(a, gamma, y)]);
  const neg = e.op("Mul", [t, e.op("Add", [y, scalarLike(a, alpha * gamma, y)])]);
  return [e.op("Where", [e.op("Greater", [x, scalarLike(a, 0, x)]), pos, neg])];
};

const hardSigmoid: JvpRule = (a) => {
  const { e, node } = a;
  const [y, t] = [node.outputs[0]!, a.dx[0]!];
  const alpha = floatAttr(node, "alpha", 0.2);
  const inside = e.op("And", [
    e.op("Greater", [y, scalarLike(a, 0, y)]),
    e.op("Less", [y, scalarLike(a, 1, y)]),
  ]);
  return [e.op("Where", [inside, e.op("Mul", [t, scalarLike(a, alpha, y)]), scalarLike(a, 0, y)])];
};

const prelu: JvpRule = (a) => {
  // dy = x > 0 ? dx : slope dx + x dslope (each term broadcast to the output's shape by Where)
  const { e, node, dx } = a;
  const [x, slope, y] = [node.inputs[0]!, node.inputs[1]!, node.outputs[0]!];
  const zero = scalarLike(a, 0, y);
  const neg = total(a, [
    dx[0] ? e.op("Mul", [dx[0], slope]) : undefined,
    dx[1] ? e.op("Mul", [x, dx[1]]) : undefined,
  ]);
  return [e.op("Where", [e.op("Greater", [x, scalarLike(a, 0, x)]), dx[0] ?? zero, neg!])];
};

const clip: JvpRule = (a) => {
  const { e, node, dx } = a;
  const [x, y] = [node.inputs[0]!, node.outputs[0]!];
  const { lo, hi, fromInputs } = clipBounds(node, e.opset, (v) => scalarLike(a, v, x));
  const masks = clipMasks(e, x, lo, hi);
  const zero = scalarLike(a, 0, y);
  const terms: (string | undefined)[] = [];
  if (dx[0]) {
    const m = masks.x();
    terms.push(m === undefined ? dx[0] : e.op("Where", [m, dx[0], zero]));
  }
  // Bound tangents are scalars: Where broadcasts them to the output's shape.
  if (fromInputs && lo && dx[1]) terms.push(e.op("Where", [masks.lo(), dx[1], zero]));
  if (fromInputs && hi && dx[2]) terms.push(e.op("Where", [masks.hi(), dx[2], zero]));
  return [total(a, terms)];
};

const pow: JvpRule = (a) => {
  // dy = p x^(p-1) dx + y ln(x) dp (the last term 0 where x <= 0)
  const { e, node, dx } = a;
  const [x, p, y] = [node.inputs[0]!, node.inputs[1]!, node.outputs[0]!];
  const xType = a.type(x);
  const pf = a.type(p) === xType ? p : e.op("Cast", [p], { to: xType });
  const terms: (string | undefined)[] = [];
  if (dx[0]) {
    const power = e.op("Pow", [x, e.op("Sub", [pf, scalarLike(a, 1, x)])]);
    terms.push(e.op("Mul", [dx[0], e.op("Mul", [pf, power])]));
  }
  if (dx[1]) {
    const dp = a.type(p) === xType ? dx[1] : e.op("Cast", [dx[1]], { to: xType });
    const positive = e.op("Greater", [x, scalarLike(a, 0, x)]);
    const log = e.op("Where", [positive, e.op("Mul", [y, e.op("Log", [x])]), scalarLike(a, 0, y)]);
    terms.push(e.op("Mul", [dp, log]));
  }
  return [total(a, terms)];
};

const extremum: JvpRule = (a) => {
  // dy = sum_i w_i dx_i with the tie weights of the reverse rule (each term of the output's shape).
  const { e, node, dx } = a;
  const y = node.outputs[0]!;
  if (node.inputs.length === 1) return [dx[0]];
  const w = tieWeights(
    e,
    node.inputs,
    y,
    a.type(y),
    dx.map((t) => t !== undefined),
  );
  return [
    total(
      a,
      dx.map((t, i) => (t ? e.op("Mul", [t, w[i]!]) : undefined)),
    ),
  ];
};

const reduceExtremum: JvpRule = (a) => {
  // dy = sum over the reduced axes of w dx, w = [x == y] / #ties per slice.
  const { e, node } = a;
  const x = node.inputs[0]!;
  const { axes, keep } = reducedAxes(
    node,
    a.dims(x).length,
    e.opset,
    (v) => a.info(v)?.value,
    (why) => fail(node, why),
  );
  if (axes === undefined) return [a.dx[0]];
  const y = node.outputs[0]!;
  const yk = keep ? y : e.unsqueeze(y, axes);
  const eq = e.op("Cast", [e.op("Equal", [x, yk])], { to: a.type(x) });
  const weighted = e.op("Mul", [a.dx[0]!, eq]);
  return [e.op("Div", [e.reduceSum(weighted, axes, keep), e.reduceSum(eq, axes, keep)])];
};

/** Forward-mode rules of this file, by op type (Abs and Reciprocal are in jvp.ts). */
export const ACTIVATIONS_JVP_RULES: Readonly<Record<string, JvpRule>> = {
  Clip: clip,
  Max: extremum,
  Min: extremum,
  Pow: pow,
  Erf: erf,
  Softplus: softplus,
  Elu: elu,
  Selu: selu,
  HardSigmoid: hardSigmoid,
  HardSwish: hardSwish,
  PRelu: prelu,
  GlobalMaxPool: reduceExtremum,
  ReduceMax: reduceExtremum,
  ReduceMin: reduceExtremum,
};
