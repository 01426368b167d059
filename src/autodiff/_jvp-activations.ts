// Forward-mode (JVP) rules for activations and elementwise ops, merged into the registry by jvp.ts.
// Each is the transpose of its reverse rule in _rules-activations.ts and follows the same
// conventions at kinks and ties (see there). Internal to src/autodiff. Imports from jvp.ts must
// stay type-only (jvp.ts imports this file).

import type { Node } from "../onnx/proto.ts";
import {
  clipBounds,
  clipMasks,
  reducedAxes,
  SLOPE_TIMES,
  type SlopeTimes,
  tieWeights,
} from "./_rules-activations.ts";
import type { JvpArgs, JvpRule } from "./jvp.ts";

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

/** The forward rule of a unary elementwise op: dy = f'(x) dx (the same map as the reverse rule's). */
const unary =
  (f: SlopeTimes): JvpRule =>
  (a) => [f(a.e, a.node, a.dx[0]!, (v, like) => scalarLike(a, v, like))];

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

/** Forward-mode rules of this file, by op type. */
export const ACTIVATIONS_JVP_RULES: Readonly<Record<string, JvpRule>> = {
  Clip: clip,
  Max: extremum,
  Min: extremum,
  Pow: pow,
  ...Object.fromEntries(Object.entries(SLOPE_TIMES).map(([op, f]) => [op, unary(f)])),
  PRelu: prelu,
  GlobalMaxPool: reduceExtremum,
  ReduceMax: reduceExtremum,
  ReduceMin: reduceExtremum,
};
