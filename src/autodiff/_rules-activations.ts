// Reverse-mode rules for activations and elementwise ops as torch.onnx exports them (opset 11-18):
// clipping, Min/Max, Pow, Erf (exact GELU), smooth and piecewise activations, and max/min
// reductions. Merged into the registry by gradient.ts. Internal to src/autodiff.
//
// Conventions where the derivative is undefined (every JVP rule in _jvp-activations.ts is the
// transpose of the rule here, so forward and reverse mode agree exactly):
// - Clip: x gets the gradient only strictly inside (min < x < max), as PyTorch's hardtanh/ReLU6.
//   At a bound the gradient goes to the bound (x <= min: to min; x >= max: to max; min >= max:
//   everything to max, which ORT outputs then), so the gradients of x, min and max sum to dy.
// - Min/Max (variadic) and ReduceMax/ReduceMin/GlobalMaxPool: the gradient is split evenly among
//   the inputs (elements) equal to the result, as PyTorch's maximum/minimum (half each on a tie of
//   two) and amax/amin. Max(x, x) thus gives x the whole gradient.
// - Abs: 0 at 0 (Sign). PRelu, Elu, Selu: the negative branch at 0 (as PyTorch).
// - HardSigmoid: slope only strictly inside (0 < alpha x + beta < 1), as PyTorch's hardsigmoid.
//   HardSwish: x/3 + 1/2 on the closed interval [-3, 3], as PyTorch's hardswish_backward.
// - Pow: the exponent's gradient y ln(x) where x > 0, and 0 where x <= 0 (PyTorch gives 0 at
//   x = 0 and NaN below; 0 keeps a Hessian finite when a negative base meets a trainable exponent).

import { attr, type Node } from "../onnx/proto.ts";
import { type Emitter, floatTypedTensor } from "./_emit.ts";
import { type Rule, type RuleArgs, unbroadcast } from "./_rules.ts";
import { floatAttr, intAttr, normAxis, range } from "./_util.ts";

const present = (name: string | undefined): name is string => name !== undefined && name !== "";

/** Largest float32, the default bounds of an attribute-form (opset < 11) Clip. */
const FLOAT_MAX = 3.4028234663852886e38;
/** SELU's default alpha (ONNX spec, the float32 that ORT reads). */
export const SELU_ALPHA = Math.fround(1.6732632423543772);
/** SELU's default gamma (ONNX spec, the float32 that ORT reads). */
export const SELU_GAMMA = Math.fround(1.0507009873554805);

function fail(node: Node, why: string): never {
  throw new Error(`gradientGraph(): ${node.opType} node '${node.name}': ${why}`);
}

/** A scalar constant of the element type of `like` (the graph's float type when unknown). */
function scalarLike(a: RuleArgs, v: number, like: string): string {
  const { e } = a;
  const type = a.info(like)?.type ?? e.floatType;
  if (type === e.floatType) return e.scalar(v);
  const name = e.fresh("const");
  e.initializers.push(floatTypedTensor(name, [], [v], type));
  return name;
}

/** `mask ? g : 0`. */
function pass(a: RuleArgs, mask: string, g: string, like: string): string {
  return a.e.op("Where", [mask, g, scalarLike(a, 0, like)]);
}

// ------------------------------------------------------------------ unary elementwise

/**
 * A unary elementwise op's derivative applied to `g`: f'(x) g. The same map serves a gradient
 * (reverse mode) and a tangent (forward mode, _jvp-activations.ts), so the two modes share the
 * conventions at kinks. `scalar(v, like)` is a constant of the element type of `like`.
 */
export type SlopeTimes = (
  e: Emitter,
  node: Node,
  g: string,
  scalar: (v: number, like: string) => string,
) => string;

/** erf'(x) = 2 / sqrt(pi) exp(-x^2). */
export function erfSlope(e: Emitter, scalar: (v: number) => string, x: string): string {
  const gauss = e.op("Exp", [e.op("Neg", [e.op("Mul", [x, x])])]);
  return e.op("Mul", [gauss, scalar(2 / Math.sqrt(Math.PI))]);
}

/** HardSwish y = x clamp(x/6 + 1/2, 0, 1): 0 below -3, 1 above 3, x/3 + 1/2 on [-3, 3]. */
export function hardSwishSlope(e: Emitter, scalar: (v: number) => string, x: string): string {
  const middle = e.op("Add", [e.op("Mul", [x, scalar(1 / 3)]), scalar(0.5)]);
  const upper = e.op("Where", [e.op("Greater", [x, scalar(3)]), scalar(1), middle]);
  return e.op("Where", [e.op("Less", [x, scalar(-3)]), scalar(0), upper]);
}

/** f'(x) g of the unary elementwise ops of this file, by op type. */
export const SLOPE_TIMES: Readonly<Record<string, SlopeTimes>> = {
  Erf: (e, n, g, s) => e.op("Mul", [g, erfSlope(e, (v) => s(v, n.inputs[0]!), n.inputs[0]!)]),
  // softplus'(x) = sigmoid(x)
  Softplus: (e, n, g) => e.op("Mul", [g, e.op("Sigmoid", [n.inputs[0]!])]),
  HardSwish: (e, n, g, s) => e.op("Mul", [g, hardSwishSlope(e, (v) => s(v, n.inputs[0]!), n.inputs[0]!)]),
  Abs: (e, n, g) => e.op("Mul", [g, e.op("Sign", [n.inputs[0]!])]),
  // d(1/x) = -1/x^2 = -y^2
  Reciprocal: (e, n, g) => {
    const y = n.outputs[0]!;
    return e.op("Mul", [g, e.op("Neg", [e.op("Mul", [y, y])])]);
  },
  // Elu: 1 for x > 0, alpha exp(x) = y + alpha otherwise.
  Elu: (e, n, g, s) => {
    const [x, y] = [n.inputs[0]!, n.outputs[0]!];
    const neg = e.op("Mul", [g, e.op("Add", [y, s(floatAttr(n, "alpha", 1), y)])]);
    return e.op("Where", [e.op("Greater", [x, s(0, x)]), g, neg]);
  },
  // Selu: gamma for x > 0, gamma alpha exp(x) = y + gamma alpha otherwise.
  Selu: (e, n, g, s) => {
    const [x, y] = [n.inputs[0]!, n.outputs[0]!];
    const alpha = floatAttr(n, "alpha", SELU_ALPHA);
    const gamma = floatAttr(n, "gamma", SELU_GAMMA);
    const pos = e.op("Mul", [g, s(gamma, y)]);
    const neg = e.op("Mul", [g, e.op("Add", [y, s(alpha * gamma, y)])]);
    return e.op("Where", [e.op("Greater", [x, s(0, x)]), pos, neg]);
  },
  // HardSigmoid y = clamp(alpha x + beta, 0, 1): alpha strictly inside, read off the output.
  HardSigmoid: (e, n, g, s) => {
    const y = n.outputs[0]!;
    const inside = e.op("And", [e.op("Greater", [y, s(0, y)]), e.op("Less", [y, s(1, y)])]);
    return e.op("Where", [inside, e.op("Mul", [g, s(floatAttr(n, "alpha", 0.2), y)]), s(0, y)]);
  },
};

/** The reverse rule of a unary elementwise op: dx = f'(x) dy. */
const unary =
  (f: SlopeTimes): Rule =>
  (a) => [f(a.e, a.node, a.dy[0]!, (v, like) => scalarLike(a, v, like))];

/** PRelu y = x > 0 ? x : slope x, slope broadcast to x (e.g. [C, 1, 1]). */
const prelu: Rule = (a) => {
  const { e, node, needs } = a;
  const [x, slope, y, g] = [node.inputs[0]!, node.inputs[1]!, node.outputs[0]!, a.dy[0]!];
  const gDims = a.dims(y);
  const pos = e.op("Greater", [x, scalarLike(a, 0, x)]);
  return [
    needs[0] ? unbroadcast(a, e.op("Where", [pos, g, e.op("Mul", [g, slope])]), gDims, x) : undefined,
    needs[1]
      ? unbroadcast(a, e.op("Where", [pos, scalarLike(a, 0, y), e.op("Mul", [g, x])]), gDims, slope)
      : undefined,
  ];
};

/** The bounds of a Clip: inputs 1 and 2 from opset 11, attributes before (then constants here). */
export function clipBounds(
  node: Node,
  opset: number,
  scalar: (v: number) => string,
): { lo: string | undefined; hi: string | undefined; fromInputs: boolean } {
  if (opset >= 11) {
    const [lo, hi] = [node.inputs[1], node.inputs[2]];
    return { lo: present(lo) ? lo : undefined, hi: present(hi) ? hi : undefined, fromInputs: true };
  }
  return {
    lo: scalar(floatAttr(node, "min", -FLOAT_MAX)),
    hi: scalar(floatAttr(node, "max", FLOAT_MAX)),
    fromInputs: false,
  };
}

/** Where each of x, min, max receives the gradient (see the conventions at the top); undefined: everywhere. */
export function clipMasks(
  e: Emitter,
  x: string,
  lo: string | undefined,
  hi: string | undefined,
): { x: () => string | undefined; lo: () => string; hi: () => string } {
  const and = (p: string | undefined, q: string | undefined): string | undefined =>
    p === undefined ? q : q === undefined ? p : e.op("And", [p, q]);
  return {
    x: () => and(lo ? e.op("Greater", [x, lo]) : undefined, hi ? e.op("Less", [x, hi]) : undefined),
    // Not(Greater) for LessOrEqual, which needs opset 12.
    lo: () => and(e.op("Not", [e.op("Greater", [x, lo!])]), hi ? e.op("Less", [lo!, hi]) : undefined)!,
    hi: () => {
      const above = e.op("Not", [e.op("Less", [x, hi!])]);
      return lo ? e.op("Or", [above, e.op("Not", [e.op("Less", [lo, hi!])])]) : above;
    },
  };
}

const clip: Rule = (a) => {
  const { e, node, needs } = a;
  const [x, y, g] = [node.inputs[0]!, node.outputs[0]!, a.dy[0]!];
  const { lo, hi, fromInputs } = clipBounds(node, e.opset, (v) => scalarLike(a, v, x));
  const masks = clipMasks(e, x, lo, hi);
  const out: (string | undefined)[] = [undefined, undefined, undefined];
  if (needs[0]) {
    const m = masks.x();
    out[0] = m === undefined ? g : pass(a, m, g, y);
  }
  if (fromInputs && lo && needs[1]) out[1] = unbroadcast(a, pass(a, masks.lo(), g, y), a.dims(y), lo);
  if (fromInputs && hi && needs[2]) out[2] = unbroadcast(a, pass(a, masks.hi(), g, y), a.dims(y), hi);
  return out;
};

// ------------------------------------------------------------------ Pow

/** y = x^p: dx = p x^(p-1) dy; dp = y ln(x) dy where x > 0 (0 elsewhere). */
const pow: Rule = (a) => {
  const { e, node, needs } = a;
  const [x, p, y, g] = [node.inputs[0]!, node.inputs[1]!, node.outputs[0]!, a.dy[0]!];
  const gDims = a.dims(y);
  const xType = a.info(x)?.type ?? e.floatType;
  const pType = a.info(p)?.type ?? xType;
  // The exponent may be of another type (an int64 constant); the slope is computed in x's.
  const pf = pType === xType ? p : e.op("Cast", [p], { to: xType });
  const out: (string | undefined)[] = [undefined, undefined];
  if (needs[0]) {
    const power = e.op("Pow", [x, e.op("Sub", [pf, scalarLike(a, 1, x)])]);
    out[0] = unbroadcast(a, e.op("Mul", [g, e.op("Mul", [pf, power])]), gDims, x);
  }
  if (needs[1]) {
    const positive = e.op("Greater", [x, scalarLike(a, 0, x)]);
    const log = pass(a, positive, e.op("Mul", [y, e.op("Log", [x])]), x);
    const gp = unbroadcast(a, e.op("Mul", [g, log]), gDims, p);
    out[1] = pType === xType ? gp : e.op("Cast", [gp], { to: pType });
  }
  return out;
};

// ------------------------------------------------------------------ Min, Max and max/min reductions

/**
 * Weights that split a Min/Max result's gradient evenly among the inputs equal to it: for each
 * wanted input, [x_i == y] / #{j : x_j == y}, shaped like y.
 */
export function tieWeights(
  e: Emitter,
  inputs: readonly string[],
  y: string,
  floatType: number,
  wanted: readonly boolean[],
): (string | undefined)[] {
  const eq = inputs.map((x) => e.op("Cast", [e.op("Equal", [x, y])], { to: floatType }));
  const count = eq.length === 2 ? e.op("Add", eq) : e.op("Sum", eq);
  return eq.map((m, i) => (wanted[i] ? e.op("Div", [m, count]) : undefined));
}

const extremum: Rule = (a) => {
  const { e, node, needs } = a;
  const [y, g] = [node.outputs[0]!, a.dy[0]!];
  if (node.inputs.length === 1) return [g];
  const gDims = a.dims(y);
  const type = a.info(y)?.type ?? e.floatType;
  const w = tieWeights(e, node.inputs, y, type, needs);
  return node.inputs.map((x, i) =>
    needs[i] ? unbroadcast(a, e.op("Mul", [g, w[i]!]), gDims, x) : undefined,
  );
};

/**
 * The normalized axes a ReduceMax/ReduceMin/GlobalMaxPool reduces (sorted), and whether it keeps
 * them; `axes` undefined: the op is the identity (opset 18's noop_with_empty_axes).
 */
export function reducedAxes(
  node: Node,
  rank: number,
  opset: number,
  constantAt: (input: string) => readonly (number | string | null)[] | undefined,
  onError: (why: string) => never,
): { axes: number[] | undefined; keep: boolean } {
  if (node.opType === "GlobalMaxPool") return { axes: range(2, rank), keep: true };
  const keep = intAttr(node, "keepdims", 1) === 1;
  let axes: number[] | undefined;
  if (opset >= 18) {
    const name = node.inputs[1];
    if (present(name)) {
      const v = constantAt(name);
      if (!v?.every((p): p is number => typeof p === "number")) onError("axes must be constants");
      axes = v as number[];
    }
  } else axes = attr(node, "axes")?.ints;
  if (!axes || axes.length === 0) {
    if (intAttr(node, "noop_with_empty_axes", 0) === 1) return { axes: undefined, keep };
    axes = range(0, rank);
  }
  return { axes: axes.map((v) => normAxis(v, rank)).sort((p, q) => p - q), keep };
}

/** ReduceMax, ReduceMin, GlobalMaxPool: the gradient split evenly among each slice's extreme elements. */
const reduceExtremum: Rule = (a) => {
  const { e, node } = a;
  const x = node.inputs[0]!;
  const r = a.dims(x).length;
  const { axes, keep } = reducedAxes(
    node,
    r,
    e.opset,
    (v) => a.info(v)?.value,
    (why) => fail(node, why),
  );
  if (axes === undefined) return [a.dy[0]];
  let [y, g] = [node.outputs[0]!, a.dy[0]!];
  if (!keep) [y, g] = [e.unsqueeze(y, axes), e.unsqueeze(g, axes)];
  const type = a.info(x)?.type ?? e.floatType;
  const eq = e.op("Cast", [e.op("Equal", [x, y])], { to: type });
  const count = e.reduceSum(eq, axes, true);
  return [e.op("Mul", [g, e.op("Div", [eq, count])])];
};

// ------------------------------------------------------------------ registry

/** Reverse-mode rules of this file, by op type. */
export const ACTIVATIONS_RULES: Readonly<Record<string, Rule>> = {
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
