// Reverse-mode rules, one per ONNX op: given the gradients of a node's outputs,
// emit the nodes computing the gradients of its inputs. Formulations were
// chosen by timing them inside a whole ResNet-20 gradient graph on ORT (see
// gradient.ts). Internal to src/autodiff.

import { attr, DataType, type Node } from "../onnx/proto.ts";
import type { Emitter } from "./_emit.ts";
import { type Dim, dimProduct, type Info, windowGeometry } from "./_shapes.ts";
import { floatAttr, intAttr, normAxis, range, softmaxAxes } from "./_util.ts";

/** Alternative formulations of the costly rules (see `Formulations` in gradient.ts). */
export interface Formulations {
  /** Conv input gradient: a Conv with transposed, flipped weights (stride 1), or ConvTranspose. */
  readonly convInput: "conv" | "conv-transpose";
  /** Conv weight gradient: im2col + one Gemm, im2col + batched MatMul, or a Conv over transposed tensors. */
  readonly convWeight: "im2col" | "im2col-batched" | "im2col-conv" | "conv";
  /** MaxPool: scatter through the Indices output, or an equality mask (gives tied maxima the gradient each). */
  readonly maxPool: "indices" | "mask";
  /** Relu: Where(y > 0, dy, 0), dy * Sign(y), or dy * Cast(y > 0). */
  readonly relu: "where" | "sign" | "cast";
  /** Per-channel sums of batch norm and conv biases (accuracy, see Emitter.channelReduction). */
  readonly channelSums: "direct" | "two-stage" | "two-stage-double";
}

/** What a rule sees of the forward graph. */
export interface RuleArgs {
  /** The forward node as emitted (a MaxPool may have gained an Indices output). */
  readonly node: Node;
  readonly e: Emitter;
  /** Gradient of each output (undefined: zero). */
  readonly dy: readonly (string | undefined)[];
  /** Which inputs need a gradient. */
  readonly needs: readonly boolean[];
  /** Shape info of a value. */
  info(value: string): Info | undefined;
  /** Dims of a value; throws naming the node when the rank is unknown. */
  dims(value: string): Dim[];
  /** A runtime int64 shape of a value (a constant when static). */
  shapeOf(value: string): string;
  /** Data the node's forward lowering saved for its backward (training-mode BatchNormalization). */
  readonly saved: unknown;
  readonly f: Formulations;
}

/** Gradients of the inputs, in input order (undefined where not needed or zero). */
export type Rule = (a: RuleArgs) => (string | undefined)[];

/** Saved by the training-mode BatchNormalization lowering. */
export interface BatchNormSaved {
  /** x - batch mean. */
  readonly xc: string;
  /** 1 / sqrt(batch var + eps), shaped [1, C, 1, ...]. */
  readonly invstd: string;
  /** Elements per channel (N * spatial). */
  readonly count: string;
}

/** A far-negative Slice end: with step -1 it runs through index 0. */
export const BEFORE_START = -(2 ** 62);
export const TO_END = 2 ** 62;

/** Throws naming the transformation, the node and what is wrong. */
export function fail(node: Node, why: string): never {
  throw new Error(`gradientGraph(): ${node.opType} node '${node.name}': ${why}`);
}

/** The dims of `value`, which must all be static. */
export function staticDims(a: RuleArgs, value: string, what: string): number[] {
  const d = a.dims(value);
  if (!d.every((v): v is number => typeof v === "number")) {
    fail(a.node, `${what} '${value}' has shape [${d.join(", ")}]; this rule needs static sizes there`);
  }
  return d as number[];
}

/** The sizes of `value` on `axes`, which must be static. */
export function staticAt(a: RuleArgs, value: string, axes: readonly number[], what: string): number[] {
  const d = a.dims(value);
  return axes.map((i) => {
    const v = d[i];
    if (typeof v !== "number") {
      fail(
        a.node,
        `${what} '${value}' has shape [${d.join(", ")}]; this rule needs a static size on axis ${i}`,
      );
    }
    return v;
  });
}

/**
 * Sums a gradient `g` (shape `gDims`) down to the shape of `x` (numpy broadcasting in reverse):
 * leading axes and axes where x has size 1 are reduced. Decided statically when the shapes allow,
 * else with runtime axes.
 */
export function unbroadcast(a: RuleArgs, g: string, gDims: readonly Dim[], x: string): string {
  const { e } = a;
  const xDims = a.dims(x);
  const r = gDims.length;
  const lead = r - xDims.length;
  if (lead < 0) fail(a.node, `gradient of rank ${r} for input '${x}' of rank ${xDims.length}`);
  const axes: number[] = range(0, lead);
  let dynamic = false;
  for (let i = lead; i < r; i++) {
    const xd = xDims[i - lead]!;
    const gd = gDims[i]!;
    if (xd === 1) {
      if (gd !== 1) axes.push(i);
    } else if (xd === gd || typeof xd === "number") {
      // same size, or x's size is > 1 and must match
    } else dynamic = true;
  }
  if (dynamic) {
    // axes where x (left-padded with 1s to rank r) has size 1
    const shapeX = a.shapeOf(x);
    const padded =
      lead > 0 ? e.op("Concat", [e.i64(new Array<number>(lead).fill(1)), shapeX], { axis: 0 }) : shapeX;
    const where = e.op("NonZero", [e.op("Equal", [padded, e.i64([1], [])])]);
    const reduced = e.reduceSumDynamic(g, e.reshape(where, [-1]));
    return e.op("Reshape", [reduced, shapeX]);
  }
  if (axes.length === 0) return g;
  const summed = e.reduceSum(g, axes, true);
  return lead > 0 ? e.op("Reshape", [summed, a.shapeOf(x)]) : summed;
}

// ------------------------------------------------------------------ elementwise

const identity: Rule = ({ dy }) => [dy[0]];

/**
 * Dropout is the identity in the gradient graph (evaluation mode); a Dropout whose training_mode
 * input is true, or not a constant, would drop at random in the forward pass, so it is refused.
 */
const dropout: Rule = (a) => {
  const mode = a.node.inputs[2];
  if (mode) {
    const v = a.info(mode)?.value;
    if (!v || v.some((b) => b !== 0)) {
      fail(
        a.node,
        `training_mode '${mode}' is ${v ? "true" : "not a constant"}; gradients treat Dropout as the identity (evaluation mode): export the model in eval mode`,
      );
    }
  }
  return [a.dy[0]];
};

const reshapeLike: Rule = (a) => [a.e.op("Reshape", [a.dy[0]!, a.shapeOf(a.node.inputs[0]!)])];

const relu: Rule = (a) => {
  const { e, node, f } = a;
  const y = node.outputs[0]!;
  const dy = a.dy[0]!;
  switch (f.relu) {
    case "where":
      return [e.op("Where", [e.op("Greater", [y, e.scalar(0)]), dy, e.scalar(0)])];
    case "sign":
      return [e.op("Mul", [dy, e.op("Sign", [y])])];
    case "cast":
      return [e.op("Mul", [dy, e.op("Cast", [e.op("Greater", [y, e.scalar(0)])], { to: e.floatType })])];
    default:
      return f.relu satisfies never;
  }
};

const leakyRelu: Rule = ({ e, node, dy }) => {
  const alpha = floatAttr(node, "alpha", 0.01);
  const g = dy[0]!;
  return [
    e.op("Where", [e.op("Greater", [node.inputs[0]!, e.scalar(0)]), g, e.op("Mul", [g, e.scalar(alpha)])]),
  ];
};

const sigmoid: Rule = ({ e, node, dy }) => {
  const y = node.outputs[0]!;
  return [e.op("Mul", [dy[0]!, e.op("Mul", [y, e.op("Sub", [e.scalar(1), y])])])];
};

const tanh: Rule = ({ e, node, dy }) => {
  const y = node.outputs[0]!;
  return [e.op("Mul", [dy[0]!, e.op("Sub", [e.scalar(1), e.op("Mul", [y, y])])])];
};

const exp: Rule = ({ e, node, dy }) => [e.op("Mul", [dy[0]!, node.outputs[0]!])];
const log: Rule = ({ e, node, dy }) => [e.op("Div", [dy[0]!, node.inputs[0]!])];
const sqrt: Rule = ({ e, node, dy }) => [
  e.op("Div", [e.op("Mul", [dy[0]!, e.scalar(0.5)]), node.outputs[0]!]),
];
const neg: Rule = ({ e, dy }) => [e.op("Neg", [dy[0]!])];

const cast: Rule = ({ e, node, dy, info }) => {
  const from = info(node.inputs[0]!)?.type;
  if (from !== DataType.FLOAT && from !== DataType.DOUBLE && from !== DataType.FLOAT16) return [undefined];
  return [e.op("Cast", [dy[0]!], { to: from })];
};

function binary(op: "Add" | "Sub" | "Mul" | "Div"): Rule {
  return (a) => {
    const { e, node, needs } = a;
    const g = a.dy[0]!;
    const [x, y] = [node.inputs[0]!, node.inputs[1]!];
    const gDims = a.dims(node.outputs[0]!);
    let gx: string | undefined;
    let gy: string | undefined;
    if (op === "Add") {
      if (needs[0]) gx = g;
      if (needs[1]) gy = g;
    } else if (op === "Sub") {
      if (needs[0]) gx = g;
      if (needs[1]) gy = e.op("Neg", [g]);
    } else if (op === "Mul") {
      if (needs[0]) gx = e.op("Mul", [g, y]);
      if (needs[1]) gy = e.op("Mul", [g, x]);
    } else {
      if (needs[0]) gx = e.op("Div", [g, y]);
      // d(x/y)/dy = -x / y^2 = -out / y
      if (needs[1]) gy = e.op("Neg", [e.op("Div", [e.op("Mul", [g, node.outputs[0]!]), y])]);
    }
    return [
      gx === undefined ? undefined : unbroadcast(a, gx, gDims, x),
      gy === undefined ? undefined : unbroadcast(a, gy, gDims, y),
    ];
  };
}

const sum: Rule = (a) => {
  const gDims = a.dims(a.node.outputs[0]!);
  return a.node.inputs.map((x, i) => (a.needs[i] ? unbroadcast(a, a.dy[0]!, gDims, x) : undefined));
};

const expand: Rule = (a) => [unbroadcast(a, a.dy[0]!, a.dims(a.node.outputs[0]!), a.node.inputs[0]!)];

const where: Rule = (a) => {
  const { e, node, needs } = a;
  const g = a.dy[0]!;
  const gDims = a.dims(node.outputs[0]!);
  const zero = e.scalar(0);
  const cond = node.inputs[0]!;
  return [
    undefined,
    needs[1] ? unbroadcast(a, e.op("Where", [cond, g, zero]), gDims, node.inputs[1]!) : undefined,
    needs[2] ? unbroadcast(a, e.op("Where", [cond, zero, g]), gDims, node.inputs[2]!) : undefined,
  ];
};

/** Axes a Softmax-family op normalizes over (see softmaxAxes in _util.ts). */
const softmaxAxesOf = (a: RuleArgs): number[] =>
  softmaxAxes(a.node, a.dims(a.node.inputs[0]!).length, a.e.opset);

const softmax: Rule = (a) => {
  const { e, node } = a;
  const y = node.outputs[0]!;
  const g = a.dy[0]!;
  const s = e.reduceSum(e.op("Mul", [g, y]), softmaxAxesOf(a), true);
  return [e.op("Mul", [y, e.op("Sub", [g, s])])];
};

const logSoftmax: Rule = (a) => {
  const { e, node } = a;
  const g = a.dy[0]!;
  const s = e.reduceSum(g, softmaxAxesOf(a), true);
  return [e.op("Sub", [g, e.op("Mul", [e.op("Exp", [node.outputs[0]!]), s])])];
};

// ------------------------------------------------------------------ layout

const transpose: Rule = (a) => {
  const r = a.dims(a.node.inputs[0]!).length;
  const perm = attr(a.node, "perm")?.ints ?? range(0, r).reverse();
  const inverse = new Array<number>(r);
  perm.forEach((p, i) => {
    inverse[p] = i;
  });
  return [a.e.transpose(a.dy[0]!, inverse)];
};

const concat: Rule = (a) => {
  const { e, node } = a;
  const r = a.dims(node.outputs[0]!).length;
  const axis = normAxis(intAttr(node, "axis", 0), r);
  const sizes = node.inputs.map((x) => staticAt(a, x, [axis], "input")[0]!);
  const parts = e.split(a.dy[0]!, axis, sizes);
  return node.inputs.map((_, i) => (a.needs[i] ? parts[i] : undefined));
};

const split: Rule = (a) => {
  const { e, node } = a;
  const r = a.dims(node.inputs[0]!).length;
  const axis = normAxis(intAttr(node, "axis", 0), r);
  const parts = node.outputs.map((o, k) => a.dy[k] ?? e.zeros(a.shapeOf(o)));
  return [e.op("Concat", parts, { axis })];
};

// Slice and Pad (steps, reflect/edge modes, run-time pads) are in _rules-structural.ts.

function reduce(mean: boolean): Rule {
  return (a) => {
    const { e, node } = a;
    const x = node.inputs[0]!;
    const dims = a.dims(x);
    const r = dims.length;
    const keep = intAttr(node, "keepdims", 1) === 1;
    const fromInput = mean ? e.opset >= 18 : e.opset >= 13;
    let axes: number[] | undefined;
    if (fromInput) {
      const name = node.inputs[1];
      if (name) {
        const v = a.info(name)?.value;
        if (!v?.every((p): p is number => typeof p === "number")) fail(node, "axes must be constants");
        axes = v as number[];
      }
    } else axes = attr(node, "axes")?.ints;
    if (!axes || axes.length === 0) {
      if (intAttr(node, "noop_with_empty_axes", 0) === 1) return [a.dy[0]];
      axes = range(0, r);
    }
    const norm = axes.map((x0) => normAxis(x0, r)).sort((p, q) => p - q);
    let g = a.dy[0]!;
    if (!keep) g = e.unsqueeze(g, norm);
    if (mean) {
      const count = dimProduct(norm.map((i) => dims[i]!));
      // A symbolic reduced size (a loss averaged over the batch): the count is Size(x) / Size(mean).
      if (typeof count !== "number") {
        const size = (v: string) => e.op("Cast", [e.op("Size", [v])], { to: e.floatType });
        g = e.op("Div", [g, e.op("Div", [size(x), size(node.outputs[0]!)])]);
      } else g = e.op("Mul", [g, e.scalar(1 / count)]);
    }
    return [e.op("Expand", [g, a.shapeOf(x)])];
  };
}

// ------------------------------------------------------------------ dense

const gemm: Rule = (a) => {
  const { e, node, needs } = a;
  const [A, B, C] = [node.inputs[0]!, node.inputs[1]!, node.inputs[2]];
  const alpha = floatAttr(node, "alpha", 1);
  const beta = floatAttr(node, "beta", 1);
  const tA = intAttr(node, "transA", 0);
  const tB = intAttr(node, "transB", 0);
  const g = a.dy[0]!;
  const al = alpha === 1 ? {} : { alpha: { f: alpha } };
  let gA: string | undefined;
  let gB: string | undefined;
  let gC: string | undefined;
  // Y = alpha * A' B' + beta * C with A' = tA ? A^T : A, B' = tB ? B^T : B.
  if (needs[0]) {
    gA = tA
      ? e.op("Gemm", [B, g], { ...al, transA: tB, transB: 1 }) // dA = alpha * B' dY^T
      : e.op("Gemm", [g, B], { ...al, transB: 1 - tB }); // dA = alpha * dY B'^T
  }
  if (needs[1]) {
    gB = tB
      ? e.op("Gemm", [g, A], { ...al, transA: 1, transB: tA }) // dB = alpha * dY^T A'
      : e.op("Gemm", [A, g], { ...al, transA: 1 - tA }); // dB = alpha * A'^T dY
  }
  if (C && needs[2]) {
    const scaled = beta === 1 ? g : e.op("Mul", [g, e.scalar(beta)]);
    gC = unbroadcast(a, scaled, a.dims(node.outputs[0]!), C);
  }
  return [gA, gB, gC];
};

const matmul: Rule = (a) => {
  const { e, node, needs } = a;
  const [A, B] = [node.inputs[0]!, node.inputs[1]!];
  const aDims = a.dims(A);
  const bDims = a.dims(B);
  const g = a.dy[0]!;
  const ra = aDims.length;
  const rb = bDims.length;
  const swap = (r: number): number[] => [...range(0, r - 2), r - 1, r - 2];
  if (ra === 2 && rb === 2) {
    return [
      needs[0] ? e.op("Gemm", [g, B], { transB: 1 }) : undefined,
      needs[1] ? e.op("Gemm", [A, g], { transA: 1 }) : undefined,
    ];
  }
  if (ra === 1 && rb === 1) {
    return [needs[0] ? e.op("Mul", [g, B]) : undefined, needs[1] ? e.op("Mul", [g, A]) : undefined];
  }
  // Promote 1-D operands to matrices, as MatMul does; the gradients of the promoted operands
  // are reduced straight to the original ones (a 1-D A is a leading size-1 axis; a 1-D B's
  // trailing size-1 axis is dropped first).
  const a2 = ra === 1 ? e.unsqueeze(A, [0]) : A;
  const b2 = rb === 1 ? e.unsqueeze(B, [1]) : B;
  const a2Dims: Dim[] = ra === 1 ? [1, aDims[0]!] : aDims;
  const b2Dims: Dim[] = rb === 1 ? [bDims[0]!, 1] : bDims;
  let g2 = g;
  const gDims = [...a.dims(node.outputs[0]!)];
  if (ra === 1) {
    const at = gDims.length - (rb === 1 ? 0 : 1);
    g2 = e.unsqueeze(g2, [at]);
    gDims.splice(at, 0, 1);
  }
  if (rb === 1) {
    g2 = e.unsqueeze(g2, [gDims.length]);
    gDims.push(1);
  }
  const rg = gDims.length;
  let gA: string | undefined;
  let gB: string | undefined;
  if (needs[1]) {
    if (b2Dims.length === 2 && a2Dims.length > 2 && rb === 2) {
      // A dense layer applied to a batch of sequences: flatten the batch axes into one Gemm.
      const k = a2Dims[a2Dims.length - 1]!;
      const n = b2Dims[1]!;
      if (typeof k !== "number" || typeof n !== "number") fail(node, "needs static inner sizes");
      gB = e.op("Gemm", [e.reshape(a2, [-1, k]), e.reshape(g2, [-1, n])], { transA: 1 });
    } else {
      let full = e.op("MatMul", [e.transpose(a2, swap(a2Dims.length)), g2]);
      let fullDims: Dim[] = [...gDims.slice(0, rg - 2), b2Dims[b2Dims.length - 2]!, gDims[rg - 1]!];
      if (rb === 1) {
        full = e.squeeze(full, [rg - 1]);
        fullDims = fullDims.slice(0, -1);
      }
      gB = unbroadcast(a, full, fullDims, B);
    }
  }
  if (needs[0]) {
    const full = e.op("MatMul", [g2, e.transpose(b2, swap(b2Dims.length))]);
    gA = unbroadcast(a, full, [...gDims.slice(0, rg - 2), gDims[rg - 2]!, a2Dims[a2Dims.length - 1]!], A);
  }
  return [gA, gB];
};

// ------------------------------------------------------------------ convolution

/** [K, C/g, k...] weights to the weights of the transposed convolution [C, K/g, k...], flipped spatially. */
function flippedTransposedWeights(e: Emitter, w: string, wDims: number[], group: number): string {
  const s = wDims.length - 2;
  const [K, Cg] = [wDims[0]!, wDims[1]!];
  const kernel = wDims.slice(2);
  let t: string;
  if (group === 1) t = e.transpose(w, [1, 0, ...range(2, s + 2)]);
  else {
    const grouped = e.reshape(w, [group, K / group, Cg, ...kernel]);
    const swapped = e.transpose(grouped, [0, 2, 1, ...range(3, s + 3)]);
    t = e.reshape(swapped, [group * Cg, K / group, ...kernel]);
  }
  return e.slice(
    t,
    new Array<number>(s).fill(-1),
    new Array<number>(s).fill(BEFORE_START),
    range(2, s + 2),
    new Array<number>(s).fill(-1),
  );
}

/**
 * The blocked weight gradient is used up to this many output pixels: ResNet-20 at batch 128
 * (2 threads, AVX2) measured 12 vs 15 ms per layer at 16x16 and 11 vs 13 ms at 8x8 against
 * patches + MatMul, but 21 vs 19 ms at 32x32, where regrouping dY to the filter layout costs more.
 */
const BLOCKED_WEIGHT_GRADIENT_MAX_PIXELS = 256;

const conv: Rule = (a) => {
  const { e, node, needs, f } = a;
  const [x, w, b] = [node.inputs[0]!, node.inputs[1]!, node.inputs[2]];
  const g = a.dy[0]!;
  const xDims = a.dims(x);
  const r = xDims.length;
  const s = r - 2;
  const wDims = staticDims(a, w, "weight");
  const group = intAttr(node, "group", 1);
  const kernel = wDims.slice(2);
  const spatial = staticAt(a, x, range(2, r), "input");
  const geo = windowGeometry(node, spatial, kernel);
  const out = geo.out as number[];
  const C = staticAt(a, x, [1], "input")[0]!;
  const K = wDims[0]!;
  let gx: string | undefined;
  let gw: string | undefined;
  let gb: string | undefined;

  if (needs[0]) {
    const unitStride = geo.strides.every((v) => v === 1);
    const back = kernel.map((k, i) => geo.dilations[i]! * (k - 1));
    const fits = range(0, s).every((i) => geo.pads[i]! <= back[i]! && geo.pads[i + s]! <= back[i]!);
    if (f.convInput === "conv" && unitStride && fits) {
      const wf = flippedTransposedWeights(e, w, wDims, group);
      gx = e.conv(
        [g, wf],
        {
          kernel_shape: kernel,
          pads: [...back.map((v, i) => v - geo.pads[i]!), ...back.map((v, i) => v - geo.pads[i + s]!)],
          dilations: geo.dilations,
          group,
        },
        { rank: r, inChannels: K, weight: [C, K / group, ...kernel] },
      );
    } else {
      const outputPadding = range(0, s).map(
        (i) =>
          spatial[i]! -
          (geo.strides[i]! * (out[i]! - 1) +
            geo.dilations[i]! * (kernel[i]! - 1) +
            1 -
            geo.pads[i]! -
            geo.pads[i + s]!),
      );
      gx = e.op("ConvTranspose", [g, w], {
        kernel_shape: kernel,
        strides: geo.strides,
        pads: geo.pads,
        dilations: geo.dilations,
        group,
        output_padding: outputPadding.some((v) => v !== 0) ? outputPadding : undefined,
      });
    }
  }

  if (needs[1]) {
    const offsets = kernelOffsets(kernel);
    const sliceAt = (t: string, o: number[], first: number): string => {
      const trivial = o.every(
        (v, i) => v === 0 && geo.strides[i] === 1 && out[i] === spatial[i]! + geo.pads[i]! + geo.pads[i + s]!,
      );
      if (trivial) return t;
      return e.slice(
        t,
        o.map((v, i) => v * geo.dilations[i]!),
        o.map((v, i) => v * geo.dilations[i]! + (out[i]! - 1) * geo.strides[i]! + 1),
        range(first, first + s),
        geo.strides,
      );
    };
    const padSpatial = (t: string): string =>
      e.pad(t, [0, 0, ...geo.pads.slice(0, s), 0, 0, ...geo.pads.slice(s)]);
    const mode = group === 1 || f.convWeight === "im2col-conv" ? f.convWeight : "im2col-batched";
    // A Conv over transposed tensors yields dW over every offset the stride leaves room for;
    // keep the kernel's.
    const cropToKernel = (c: string): string => {
      const full = range(0, s).map(
        (i) =>
          Math.floor(
            (spatial[i]! + geo.pads[i]! + geo.pads[i + s]! - geo.strides[i]! * (out[i]! - 1) - 1) /
              geo.dilations[i]!,
          ) + 1,
      );
      return full.some((v, i) => v !== kernel[i])
        ? e.slice(c, new Array<number>(s).fill(0), kernel, range(2, r))
        : c;
    };
    const B = e.convBlock;
    const N = xDims[0];
    if (
      B !== undefined &&
      typeof N === "number" &&
      N % B === 0 &&
      K % B === 0 &&
      group === 1 &&
      r === 4 &&
      out[0]! * out[1]! <= BLOCKED_WEIGHT_GRADIENT_MAX_PIXELS &&
      f.convWeight === "im2col-conv"
    ) {
      // A blocked Conv over transposed tensors (batch C, channels N) with dY as the kernel
      // [K, N, oh, ow]; dY in NCHWc [N, K/B, oh, ow, B] is shared with the input-gradient Conv
      // and regrouped to the OIHWBiBo filter layout [K/B, N/B, oh, ow, B(n), B(k)].
      const xt = e.blocked(e.transpose(x, [1, 0, 2, 3]));
      const split = e.reshape(e.blocked(g), [N / B, B, K / B, ...out, B]);
      const filter = e.reshape(e.transpose(split, [2, 0, 3, 4, 1, 5]), [K, N, ...out]);
      const y = e.nchwc("Conv", [xt, filter], {
        kernel_shape: out,
        strides: geo.dilations,
        dilations: geo.strides,
        pads: geo.pads,
      });
      const c = cropToKernel(e.nchwc("ReorderOutput", [y], { channels: K }));
      gw = e.transpose(c, [1, 0, 2, 3]);
    } else if (mode === "im2col-conv") {
      // Patches from a Conv of each channel with one-hot kernels (ORT does the im2col in C++):
      // cols [N, g, (C/g)*k, P]; dW = sum_n dY_n [g, K/g, P] . cols_n^T
      const kk = offsets.length;
      const eye = new Array<number>(kk * kk).fill(0);
      for (let o = 0; o < kk; o++) eye[o * kk + o] = 1;
      const patches = e.op("Conv", [e.reshape(x, [-1, 1, ...spatial]), e.constant(eye, [kk, 1, ...kernel])], {
        kernel_shape: kernel,
        strides: geo.strides,
        pads: geo.pads,
        dilations: geo.dilations,
      });
      const P = out.reduce((p, q) => p * q, 1);
      const cols = e.reshape(patches, [-1, group, (C / group) * kk, P]);
      const gg = e.reshape(g, [-1, group, K / group, P]);
      // cols_n [(C/g)*k, P] . dY_n^T [P, K/g]: the long operand stays unpacked (measured ~2x
      // faster on MLAS than dY_n . cols_n^T, which packs the large transposed operand).
      const prod = e.op("MatMul", [cols, e.transpose(gg, [0, 1, 3, 2])]);
      const summed = e.reduceSum(prod, [0], false);
      gw = e.reshape(e.transpose(summed, [0, 2, 1]), wDims);
    } else if (mode === "im2col") {
      // cols [k*C, N*P] from slices of x^T [C, N, spatial...]; dW [K, k*C] = dY^T [K, N*P] . cols^T
      const xt = padSpatial(e.transpose(x, [1, 0, ...range(2, r)]));
      const slices = offsets.map((o) => sliceAt(xt, o, 2));
      const cols = e.reshape(slices.length === 1 ? slices[0]! : e.op("Concat", slices, { axis: 0 }), [
        offsets.length * C,
        -1,
      ]);
      const gt = e.reshape(e.transpose(g, [1, 0, ...range(2, r)]), [K, -1]);
      const flat = e.op("Gemm", [gt, cols], { transB: 1 });
      gw = e.transpose(e.reshape(flat, [K, ...kernel, C]), [0, s + 1, ...range(1, s + 1)]);
    } else if (mode === "im2col-batched") {
      // cols [N, g, (C/g)*k, P] from slices of x; dW = sum_n dY_n [g, K/g, P] . cols_n^T
      const xp = padSpatial(x);
      const slices = offsets.map((o) => e.unsqueeze(sliceAt(xp, o, 2), [2]));
      const stacked = slices.length === 1 ? slices[0]! : e.op("Concat", slices, { axis: 2 });
      const P = out.reduce((p, q) => p * q, 1);
      const cols = e.reshape(stacked, [0, group, (C / group) * offsets.length, P]);
      const gg = e.reshape(g, [0, group, K / group, P]);
      const prod = e.op("MatMul", [gg, e.transpose(cols, [0, 1, 3, 2])]);
      gw = e.reshape(e.reduceSum(prod, [0], false), wDims);
    } else {
      // Conv over transposed tensors: x^T [C, N, ...] with dY^T [K, N, ...] as the kernel.
      const xt = e.transpose(x, [1, 0, ...range(2, r)]);
      const gt = e.transpose(g, [1, 0, ...range(2, r)]);
      const c = e.op("Conv", [xt, gt], {
        kernel_shape: out,
        strides: geo.dilations,
        dilations: geo.strides,
        pads: geo.pads,
      });
      gw = e.transpose(cropToKernel(c), [1, 0, ...range(2, r)]);
    }
  }
  if (b && needs[2]) gb = e.reshape(e.channelSum(g, r), [-1]);
  return [gx, gw, gb];
};

/** All kernel offsets, row-major. */
function kernelOffsets(kernel: readonly number[]): number[][] {
  let acc: number[][] = [[]];
  for (const k of kernel) acc = acc.flatMap((p) => range(0, k).map((v) => [...p, v]));
  return acc;
}

// ------------------------------------------------------------------ pooling

/** [N, C, o1, o2, ...] -> [N, C, o1*k1, o2*k2, ...] by repeating each value over its k-window. */
function upsample(e: Emitter, t: string, out: readonly number[], kernel: readonly number[]): string {
  const s = out.length;
  const split: number[] = [0, 0];
  const expanded: number[] = [1, 1];
  for (let i = 0; i < s; i++) {
    split.push(out[i]!, 1);
    expanded.push(out[i]!, kernel[i]!);
  }
  const r = e.reshape(t, split);
  const x = e.op("Expand", [r, e.i64(expanded)]);
  return e.reshape(x, [0, 0, ...out.map((o, i) => o * kernel[i]!)]);
}

/** True when every input element lies in at most one window and the windows tile the input exactly. */
function tiles(
  spatial: readonly number[],
  g: { kernel: number[]; strides: number[]; dilations: number[]; pads: number[]; out: Dim[] },
): boolean {
  return spatial.every(
    (d, i) =>
      g.kernel[i] === g.strides[i] &&
      g.dilations[i] === 1 &&
      g.pads[i] === 0 &&
      g.pads[i + spatial.length] === 0 &&
      d === (g.out[i] as number) * g.kernel[i]!,
  );
}

const maxPool: Rule = (a) => {
  const { e, node, f } = a;
  const x = node.inputs[0]!;
  const r = a.dims(x).length;
  const spatial = staticAt(a, x, range(2, r), "input");
  const geo = windowGeometry(node, spatial, attr(node, "kernel_shape")?.ints ?? []);
  const g = a.dy[0]!;
  if (f.maxPool === "mask" && tiles(spatial, geo)) {
    const out = geo.out as number[];
    const mask = e.op("Equal", [x, upsample(e, node.outputs[0]!, out, geo.kernel)]);
    return [e.op("Where", [mask, upsample(e, g, out, geo.kernel), e.scalar(0)])];
  }
  const indices = node.outputs[1];
  if (!indices) fail(node, "internal: MaxPool has no Indices output");
  if (intAttr(node, "storage_order", 0) !== 0)
    fail(node, "gradient needs storage_order 0 (row-major indices)");
  const disjoint = geo.kernel.every((k, i) => (k - 1) * geo.dilations[i]! + 1 <= geo.strides[i]!);
  if (disjoint) {
    return [
      e.op("MaxUnpool", [g, indices, a.shapeOf(x)], {
        kernel_shape: geo.kernel,
        strides: geo.strides,
        pads: geo.pads,
      }),
    ];
  }
  if (e.opset < 16) fail(node, "overlapping windows need ScatterElements with reduction (opset >= 16)");
  const shape = a.shapeOf(x);
  const zeros = e.zeros(e.reshape(e.op("Size", [x]), [1]));
  const scattered = e.op("ScatterElements", [zeros, e.reshape(indices, [-1]), e.reshape(g, [-1])], {
    axis: 0,
    reduction: { s: "add" },
  });
  return [e.op("Reshape", [scattered, shape])];
};

const averagePool: Rule = (a) => {
  const { e, node } = a;
  const x = node.inputs[0]!;
  const dims = a.dims(x);
  const r = dims.length;
  const s = r - 2;
  const spatial = staticAt(a, x, range(2, r), "input");
  const geo = windowGeometry(node, spatial, attr(node, "kernel_shape")?.ints ?? []);
  if (geo.dilations.some((d) => d !== 1)) fail(node, "gradient of a dilated AveragePool is not implemented");
  const out = geo.out as number[];
  const g = a.dy[0]!;
  const window = geo.kernel.reduce((p, q) => p * q, 1);
  if (tiles(spatial, geo)) return [upsample(e, e.op("Mul", [g, e.scalar(1 / window)]), out, geo.kernel)];
  // General windows: divide by each output's divisor, then spread with a depthwise ConvTranspose of ones.
  const includePad = intAttr(node, "count_include_pad", 0) === 1;
  const perAxis = range(0, s).map((i) =>
    range(0, out[i]!).map((o) => {
      const start = o * geo.strides[i]! - geo.pads[i]!;
      const end = start + geo.kernel[i]!;
      if (includePad) return Math.min(end, spatial[i]! + geo.pads[i + s]!) - start;
      return Math.min(end, spatial[i]!) - Math.max(start, 0);
    }),
  );
  const inv: number[] = [];
  for (const idx of kernelOffsets(out)) inv.push(1 / idx.reduce((p, v, i) => p * perAxis[i]![v]!, 1));
  const scaled = e.op("Mul", [g, e.constant(inv, [1, 1, ...out])]);
  const C = staticAt(a, x, [1], "input")[0]!;
  const ones = e.constant(new Array<number>(C * window).fill(1), [C, 1, ...geo.kernel]);
  const total = range(0, s).map((i) => geo.strides[i]! * (out[i]! - 1) + geo.kernel[i]!);
  const padEnd = range(0, s).map((i) => Math.max(geo.pads[i + s]!, total[i]! - geo.pads[i]! - spatial[i]!));
  const outputPadding = range(0, s).map((i) => spatial[i]! - (total[i]! - geo.pads[i]! - padEnd[i]!));
  return [
    e.op("ConvTranspose", [scaled, ones], {
      kernel_shape: geo.kernel,
      strides: geo.strides,
      pads: [...geo.pads.slice(0, s), ...padEnd],
      group: C,
      output_padding: outputPadding.some((v) => v !== 0) ? outputPadding : undefined,
    }),
  ];
};

const globalAveragePool: Rule = (a) => {
  const { e, node } = a;
  const x = node.inputs[0]!;
  const dims = a.dims(x);
  const count = dimProduct(dims.slice(2));
  let scaled: string;
  if (typeof count === "number") scaled = e.op("Mul", [a.dy[0]!, e.scalar(1 / count)]);
  else {
    const size = e.op("ReduceProd", [e.slice(e.op("Shape", [x]), [2], [TO_END], [0])], { keepdims: 0 });
    scaled = e.op("Div", [a.dy[0]!, e.op("Cast", [size], { to: e.floatType })]);
  }
  return [e.op("Expand", [scaled, a.shapeOf(x)])];
};

// ------------------------------------------------------------------ batch normalization

/** Per-channel vector [C] -> [1, C, 1, ...] for a rank-r activation. */
function channelShaped(e: Emitter, v: string, r: number): string {
  return e.reshape(v, [1, -1, ...new Array<number>(r - 2).fill(1)]);
}

/** BatchNormalization with running statistics: an affine map per channel. */
const batchNormInference: Rule = (a) => {
  const { e, node, needs } = a;
  const [x, scale, , mean, variance] = node.inputs as [string, string, string, string, string];
  const r = a.dims(x).length;
  const eps = floatAttr(node, "epsilon", 1e-5);
  const g = a.dy[0]!;
  const _axes = [0, ...range(2, r)];
  const invstd = e.op("Reciprocal", [e.op("Sqrt", [e.op("Add", [variance, e.scalar(eps)])])]);
  const out: (string | undefined)[] = [undefined, undefined, undefined, undefined, undefined];
  const factor = e.op("Mul", [scale, invstd]);
  if (needs[0]) out[0] = e.op("Mul", [g, channelShaped(e, factor, r)]);
  const needStats = needs[1] || needs[2] || needs[3] || needs[4];
  if (!needStats) return out;
  const sumG = e.reshape(e.channelSum(g, r), [-1]);
  if (needs[2]) out[2] = sumG;
  if (needs[1] || needs[4]) {
    // sum(dy * (x - mean)) = sum(dy * x) - mean * sum(dy)
    const sumGx = e.reshape(e.channelSum(e.op("Mul", [g, x]), r), [-1]);
    const centered = e.op("Sub", [sumGx, e.op("Mul", [mean, sumG])]);
    if (needs[1]) out[1] = e.op("Mul", [centered, invstd]);
    if (needs[4]) {
      const cube = e.op("Mul", [invstd, e.op("Mul", [invstd, invstd])]);
      out[4] = e.op("Mul", [e.op("Mul", [centered, e.op("Mul", [scale, cube])]), e.scalar(-0.5)]);
    }
  }
  if (needs[3]) out[3] = e.op("Neg", [e.op("Mul", [sumG, factor])]);
  return out;
};

/** BatchNormalization with batch statistics (lowered in gradient.ts; `saved` holds x - mean and 1/std). */
const batchNormTraining: Rule = (a) => {
  const { e, node, needs } = a;
  const saved = a.saved as BatchNormSaved;
  const [x, scale] = node.inputs as [string, string];
  const r = a.dims(x).length;
  const g = a.dy[0]!;
  const _axes = [0, ...range(2, r)];
  const out: (string | undefined)[] = [undefined, undefined, undefined, undefined, undefined];
  const s1 = e.channelSum(g, r);
  const s2 = e.channelSum(e.op("Mul", [g, saved.xc]), r);
  if (needs[2]) out[2] = e.reshape(s1, [-1]);
  if (needs[1]) out[1] = e.reshape(e.op("Mul", [s2, saved.invstd]), [-1]);
  if (needs[0]) {
    // dx = k * (dy - mean(dy) - xhat * mean(dy * xhat)), k = scale / std, xhat = xc / std
    const k = e.op("Mul", [channelShaped(e, scale, r), saved.invstd]);
    const kOverM = e.op("Div", [k, saved.count]);
    const b = e.op("Neg", [
      e.op("Mul", [e.op("Mul", [kOverM, e.op("Mul", [saved.invstd, saved.invstd])]), s2]),
    ]);
    const c = e.op("Neg", [e.op("Mul", [kOverM, s1])]);
    // k * dy + (b * xc + c): the affine part by ORT's BatchNormalization kernel (mean 0, var 1,
    // epsilon 0) saves a pass over the activations against Mul + Add.
    const C = staticAt(a, x, [1], "input")[0]!;
    const affine = e.op(
      "BatchNormalization",
      [
        saved.xc,
        e.reshape(b, [-1]),
        e.reshape(c, [-1]),
        e.constant(new Array<number>(C).fill(0), [C]),
        e.constant(new Array<number>(C).fill(1), [C]),
      ],
      { epsilon: { f: 0 } },
    );
    out[0] = e.op("Add", [e.op("Mul", [g, k]), affine]);
  }
  return out;
};

// ------------------------------------------------------------------ registry

/** The rules by op type; BatchNormalization is picked by mode in gradient.ts. */
export const RULES: Readonly<Record<string, Rule>> = {
  Identity: identity,
  Dropout: dropout,
  Flatten: reshapeLike,
  Reshape: reshapeLike,
  Squeeze: reshapeLike,
  Unsqueeze: reshapeLike,
  Relu: relu,
  LeakyRelu: leakyRelu,
  Sigmoid: sigmoid,
  Tanh: tanh,
  Exp: exp,
  Log: log,
  Sqrt: sqrt,
  Neg: neg,
  Cast: cast,
  Add: binary("Add"),
  Sub: binary("Sub"),
  Mul: binary("Mul"),
  Div: binary("Div"),
  Sum: sum,
  Expand: expand,
  Where: where,
  Softmax: softmax,
  LogSoftmax: logSoftmax,
  Transpose: transpose,
  Concat: concat,
  Split: split,
  ReduceSum: reduce(false),
  ReduceMean: reduce(true),
  Gemm: gemm,
  MatMul: matmul,
  Conv: conv,
  MaxPool: maxPool,
  AveragePool: averagePool,
  GlobalAveragePool: globalAveragePool,
};

export const BATCH_NORM_RULES = { inference: batchNormInference, training: batchNormTraining } as const;

/** Ops whose outputs carry no gradient (comparisons, shapes, indices, piecewise-constant maps). */
export const NON_DIFFERENTIABLE: ReadonlySet<string> = new Set([
  "Shape",
  "Size",
  "Constant",
  "ConstantOfShape",
  "Range",
  "NonZero",
  "Equal",
  "Less",
  "Greater",
  "LessOrEqual",
  "GreaterOrEqual",
  "Not",
  "And",
  "Or",
  "Xor",
  "ArgMax",
  "ArgMin",
  "Sign",
  "Floor",
  "Ceil",
  "Round",
  "OneHot",
  "EyeLike",
  "RandomNormal",
  "RandomUniform",
  "RandomNormalLike",
  "RandomUniformLike",
  "Multinomial",
  "IsNaN",
  "IsInf",
]);
