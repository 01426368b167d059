// Reverse-mode rules for structural ops: ConvTranspose, LayerNormalization,
// InstanceNormalization, Gather (embedding lookups), Slice (any steps) and Pad
// (constant, reflect, edge; constant or run-time pads). Merged into the registry
// by gradient.ts. Every op emitted here has a forward-mode rule (jvp.ts,
// _jvp-structural.ts), so Hessian-vector products work through them. Internal to src/autodiff.

import { attr, DataType } from "../onnx/proto.ts";
import type { Emitter } from "./_emit.ts";
import {
  BEFORE_START,
  fail,
  type Rule,
  type RuleArgs,
  staticAt,
  staticDims,
  TO_END,
  unbroadcast,
} from "./_rules.ts";
import { type Dim, sliceSpec } from "./_shapes.ts";
import { floatAttr, intAttr, normAxis, range } from "./_util.ts";

/** Pads of a rank-r tensor that are zero except `before`/`after` on `axis`. */
function padsOn(r: number, axis: number, before: number, after: number): number[] {
  const pads = new Array<number>(2 * r).fill(0);
  pads[axis] = before;
  pads[axis + r] = after;
  return pads;
}

// ------------------------------------------------------------------ ConvTranspose

/**
 * ConvTranspose is the adjoint of the Conv with the same weights, strides, pads, dilations and
 * groups (mapping its output back to its input): the input gradient is that Conv of dY, and the
 * weight gradient is the Conv weight gradient with the roles of x and dY swapped, computed as a
 * grouped Conv over transposed tensors (dY regrouped to [C_out/g, g*N, ...] as the input, x^T
 * [C_in, N, ...] as the kernel; strides and dilations trade places).
 */
const convTranspose: Rule = (a) => {
  const { e, node, needs } = a;
  const [x, w, b] = [node.inputs[0]!, node.inputs[1]!, node.inputs[2]];
  const g = a.dy[0]!;
  const r = a.dims(x).length;
  const s = r - 2;
  const wDims = staticDims(a, w, "weight");
  const kernel = wDims.slice(2);
  const group = intAttr(node, "group", 1);
  if (attr(node, "output_shape")) fail(node, "gradient with an output_shape attribute is not implemented");
  const autoPad = attr(node, "auto_pad")?.s ?? "NOTSET";
  if (autoPad !== "NOTSET" && autoPad !== "VALID") {
    fail(node, `gradient with auto_pad '${autoPad}' is not implemented (NOTSET, VALID)`);
  }
  const strides = attr(node, "strides")?.ints ?? new Array<number>(s).fill(1);
  const dilations = attr(node, "dilations")?.ints ?? new Array<number>(s).fill(1);
  const pads =
    autoPad === "VALID"
      ? new Array<number>(2 * s).fill(0)
      : (attr(node, "pads")?.ints ?? new Array<number>(2 * s).fill(0));
  const spatial = staticAt(a, x, range(2, r), "input");
  const out = staticAt(a, node.outputs[0]!, range(2, r), "output");
  /** Crops the spatial axes of a Conv result to `sizes` where the Conv gave more (output_padding). */
  const cropTo = (t: string, full: number[], sizes: number[]): string =>
    full.some((v, i) => v !== sizes[i]) ? e.slice(t, new Array<number>(s).fill(0), sizes, range(2, r)) : t;
  let gx: string | undefined;
  let gw: string | undefined;
  let gb: string | undefined;
  if (needs[0]) {
    const c = e.op("Conv", [g, w], { kernel_shape: kernel, strides, dilations, pads, group });
    const full = range(0, s).map(
      (i) =>
        Math.floor((out[i]! + pads[i]! + pads[i + s]! - dilations[i]! * (kernel[i]! - 1) - 1) / strides[i]!) +
        1,
    );
    gx = cropTo(c, full, spatial);
  }
  if (needs[1]) {
    // dW[c, o, j] = sum_{n, i} x[n, c, i] dY[n, o, i*stride + j*dilation - pad]
    const outPerGroup = wDims[1]!;
    const grouped = e.reshape(g, [0, group, outPerGroup, ...out]);
    const dyr = e.reshape(e.transpose(grouped, [2, 1, 0, ...range(3, s + 3)]), [outPerGroup, -1, ...out]);
    const xt = e.transpose(x, [1, 0, ...range(2, r)]);
    const c = e.op("Conv", [dyr, xt], {
      kernel_shape: spatial,
      strides: dilations,
      dilations: strides,
      pads,
      group,
    });
    const full = range(0, s).map(
      (i) =>
        Math.floor(
          (out[i]! + pads[i]! + pads[i + s]! - strides[i]! * (spatial[i]! - 1) - 1) / dilations[i]!,
        ) + 1,
    );
    gw = e.transpose(cropTo(c, full, kernel), [1, 0, ...range(2, r)]);
  }
  if (b && needs[2]) gb = e.reshape(e.channelSum(g, r), [-1]);
  return [gx, gw, gb];
};

// ------------------------------------------------------------------ normalization

/** x standardized over `axes`: (x - mean) / sqrt(var + eps) and 1 / sqrt(var + eps), var biased. */
function standardize(e: Emitter, x: string, axes: number[], eps: number): { xhat: string; invstd: string } {
  const xc = e.op("Sub", [x, e.reduceMean(x, axes, true)]);
  const variance = e.reduceMean(e.op("Mul", [xc, xc]), axes, true);
  const invstd = e.op("Reciprocal", [e.op("Sqrt", [e.op("Add", [variance, e.scalar(eps)])])]);
  return { xhat: e.op("Mul", [xc, invstd]), invstd };
}

/**
 * The input gradient of a standardization over `axes` given the gradient `gs` of xhat:
 * invstd * (gs - mean(gs) - xhat * mean(gs * xhat)).
 */
function standardizeBackward(e: Emitter, gs: string, xhat: string, invstd: string, axes: number[]): string {
  const m1 = e.reduceMean(gs, axes, true);
  const m2 = e.reduceMean(e.op("Mul", [gs, xhat]), axes, true);
  const inner = e.op("Sub", [e.op("Sub", [gs, m1]), e.op("Mul", [xhat, m2])]);
  return e.op("Mul", [inner, invstd]);
}

/**
 * LayerNormalization (opset 17): Y = xhat * Scale + B with xhat standardized over the axes from
 * `axis` on. Mean and InvStdDev are recomputed from X (ORT's kernel computes them the same way),
 * and gradients through those two optional outputs are refused.
 */
const layerNormalization: Rule = (a) => {
  const { e, node, needs } = a;
  if (a.dy[1] !== undefined || a.dy[2] !== undefined) {
    fail(node, "gradients through the Mean and InvStdDev outputs are not implemented");
  }
  const [x, scale, bias] = [node.inputs[0]!, node.inputs[1]!, node.inputs[2]];
  const r = a.dims(x).length;
  const axis = normAxis(intAttr(node, "axis", -1), r);
  const axes = range(axis, r);
  const { xhat, invstd } = standardize(e, x, axes, floatAttr(node, "epsilon", 1e-5));
  const g = a.dy[0]!;
  const gDims = a.dims(node.outputs[0]!);
  return [
    needs[0] ? standardizeBackward(e, e.op("Mul", [g, scale]), xhat, invstd, axes) : undefined,
    needs[1] ? unbroadcast(a, e.op("Mul", [g, xhat]), gDims, scale) : undefined,
    bias && needs[2] ? unbroadcast(a, g, gDims, bias) : undefined,
  ];
};

/** InstanceNormalization: Y = xhat * scale[c] + B[c] with xhat standardized per sample and channel. */
const instanceNormalization: Rule = (a) => {
  const { e, node, needs } = a;
  const [x, scale] = [node.inputs[0]!, node.inputs[1]!];
  const r = a.dims(x).length;
  const axes = range(2, r);
  const { xhat, invstd } = standardize(e, x, axes, floatAttr(node, "epsilon", 1e-5));
  const g = a.dy[0]!;
  const perChannel = (v: string): string => e.reshape(v, [1, -1, ...new Array<number>(r - 2).fill(1)]);
  return [
    needs[0] ? standardizeBackward(e, e.op("Mul", [g, perChannel(scale)]), xhat, invstd, axes) : undefined,
    needs[1] ? e.reshape(e.channelSum(e.op("Mul", [g, xhat]), r), [-1]) : undefined,
    needs[2] ? e.reshape(e.channelSum(g, r), [-1]) : undefined,
  ];
};

// ------------------------------------------------------------------ Gather

/**
 * Gather: dY scattered back with accumulation (repeated indices add up). The gathered axis is
 * moved to the front, where ScatterND with reduction "add" (opset >= 16; memory linear in dY)
 * writes dY rows at their indices; below opset 16, where ORT has no accumulating scatter, a
 * one-hot matrix [indices, axis size] times dY does the same sum (memory indices x axis size).
 * Negative indices are wrapped first.
 */
/**
 * GatherElements (a loss picking each target's log-probability): the gradient scatters dY back to
 * the picked positions, adding where an index repeats (ScatterElements with reduction, opset 16).
 */
const gatherElements: Rule = (a) => {
  const { e, node } = a;
  if (!a.needs[0]) return [undefined, undefined];
  if (e.opset < 16) fail(node, "the gradient of GatherElements needs opset >= 13 (re-export the model)");
  const [data, indices] = [node.inputs[0]!, node.inputs[1]!];
  const r = a.dims(data).length;
  const axis = normAxis(intAttr(node, "axis", 0), r);
  let idx = indices;
  if (a.info(indices)?.type !== DataType.INT64) idx = e.op("Cast", [idx], { to: DataType.INT64 });
  const zeros = e.zeros(a.shapeOf(data));
  return [e.op("ScatterElements", [zeros, idx, a.dy[0]!], { axis, reduction: { s: "add" } }), undefined];
};

const gather: Rule = (a) => {
  const { e, node } = a;
  if (!a.needs[0]) return [undefined, undefined];
  const [data, indices] = [node.inputs[0]!, node.inputs[1]!];
  const dims = a.dims(data);
  const r = dims.length;
  const axis = normAxis(intAttr(node, "axis", 0), r);
  const size = staticAt(a, data, [axis], "data")[0]!;
  const k = a.dims(indices).length;
  let idx = indices;
  if (a.info(indices)?.type !== DataType.INT64) idx = e.op("Cast", [idx], { to: DataType.INT64 });
  idx = e.op("Where", [e.op("Less", [idx, e.i64([0], [])]), e.op("Add", [idx, e.i64([size], [])]), idx]);
  // dY [pre, I..., post] -> [I..., pre, post]; the result [size, pre, post] -> data's layout.
  const updates = e.transpose(a.dy[0]!, [
    ...range(axis, axis + k),
    ...range(0, axis),
    ...range(axis + k, r + k - 1),
  ]);
  const front = [axis, ...range(0, axis), ...range(axis + 1, r)];
  const frontDims = front.map((i) => dims[i]!);
  const frontShape = frontDims.every((d): d is number => typeof d === "number")
    ? e.i64(frontDims)
    : e.op("Gather", [a.shapeOf(data), e.i64(front)], { axis: 0 });
  let summed: string;
  if (e.opset >= 16) {
    const zeros = e.zeros(frontShape);
    summed = e.op("ScatterND", [zeros, e.unsqueeze(idx, [k]), updates], { reduction: { s: "add" } });
  } else {
    const hits = e.op("Equal", [e.unsqueeze(idx, [k]), e.i64(range(0, size))]);
    const onehot = e.reshape(e.op("Cast", [hits], { to: e.floatType }), [-1, size]);
    const rows = e.op("Flatten", [updates], { axis: k });
    summed = e.op("Reshape", [e.op("Gemm", [onehot, rows], { transA: 1 }), frontShape]);
  }
  return [e.transpose(summed, [...range(1, axis + 1), 0, ...range(axis + 1, r)]), undefined];
};

// ------------------------------------------------------------------ Slice

/**
 * [.., L, ..] -> [.., (L-1)*step + 1, ..] along `axis`, with step - 1 zeros between entries: where
 * a strided slice's entries came from. `dims` are the current dims of `t`.
 */
function dilate(a: RuleArgs, t: string, dims: readonly Dim[], axis: number, step: number): string {
  const { e } = a;
  const length = dims[axis] as number;
  const r = dims.length;
  const spread = e.pad(e.unsqueeze(t, [axis + 1]), padsOn(r + 1, axis + 1, 0, step - 1));
  const after = dims.slice(axis + 1);
  const unknown = after.filter((d) => typeof d !== "number").length;
  if (unknown > 1)
    fail(a.node, `axes after the strided axis ${axis} need static sizes (shape [${dims.join(", ")}])`);
  const target = [
    ...new Array<number>(axis).fill(0),
    length * step,
    ...after.map((d) => (typeof d === "number" ? d : -1)),
  ];
  return e.slice(e.reshape(spread, target), [0], [(length - 1) * step + 1], [axis]);
}

/** Slice with constant starts/ends/axes/steps (any sign): dY placed back at the sliced entries, zeros elsewhere. */
const slice: Rule = (a) => {
  const { e, node } = a;
  const x = node.inputs[0]!;
  const dims = a.dims(x);
  const r = dims.length;
  const spec = sliceSpec(node, dims, e.opset, (i) => {
    const name = node.inputs[i];
    return name ? a.info(name)?.value : undefined;
  });
  if (!spec) fail(node, "starts/ends/axes/steps must be constants for its gradient");
  const pads = new Array<number>(2 * r).fill(0);
  let g = a.dy[0]!;
  const current: Dim[] = [...a.dims(node.outputs[0]!)];
  for (const s of spec) {
    const d = dims[s.axis];
    if (s.start === null || typeof s.length !== "number" || typeof d !== "number") {
      if (s.step === 1 && s.start === 0 && s.length === d) continue; // whole symbolic axis
      fail(node, `sliced axis ${s.axis} of '${x}' needs a static size (shape [${dims.join(", ")}])`);
    }
    let first = s.start;
    let span = s.length;
    if (s.step !== 1 && s.length > 0) {
      const step = Math.abs(s.step);
      if (s.step < 0) {
        // Entries start, start - step, ...: reversed, they run up from the last one taken.
        g = e.slice(g, [-1], [BEFORE_START], [s.axis], [-1]);
        first = s.start - (s.length - 1) * step;
      }
      if (step > 1) g = dilate(a, g, current, s.axis, step);
      span = (s.length - 1) * step + 1;
      current[s.axis] = span;
    }
    pads[s.axis] = first;
    pads[s.axis + r] = d - first - span;
  }
  return [e.pad(g, pads)];
};

// ------------------------------------------------------------------ Pad

/** Pad modes with a gradient. */
const PAD_MODES = ["constant", "reflect", "edge"] as const;
type PadMode = (typeof PAD_MODES)[number];

/**
 * Pad. With pads known when the graph is built: constant mode crops dY; reflect adds the mirrored
 * borders of dY back onto the entries they copied (x[1..pb] and x[d-1-pe..d-2]); edge adds the
 * sums of the borders onto the first and last entries, one axis at a time (the modes are separable).
 * With pads computed at run time (torch.onnx.export without constant folding), see padAtRunTime.
 */
const pad: Rule = (a) => {
  const { e, node } = a;
  const mode = attr(node, "mode")?.s ?? "constant";
  if (!(PAD_MODES as readonly string[]).includes(mode)) {
    fail(node, `gradient of Pad mode '${mode}' is not implemented (${PAD_MODES.join(", ")})`);
  }
  const x = node.inputs[0]!;
  const r = a.dims(x).length;
  const raw = e.opset >= 11 ? a.info(node.inputs[1] ?? "")?.value : attr(node, "pads")?.ints;
  if (!raw?.every((p): p is number => typeof p === "number")) return [padAtRunTime(a, mode as PadMode)];
  let pads = raw as number[];
  const axesInput = node.inputs[3];
  if (axesInput) {
    const axes = a.info(axesInput)?.value;
    if (!axes?.every((p): p is number => typeof p === "number")) fail(node, "axes must be constants");
    const full = new Array<number>(2 * r).fill(0);
    axes.forEach((ax, i) => {
      const k = normAxis(ax as number, r);
      full[k] = pads[i]!;
      full[k + r] = pads[i + axes.length]!;
    });
    pads = full;
  }
  if (pads.some((p) => p < 0)) fail(node, "gradient of a Pad with negative pads is not implemented");
  const axes = range(0, r).filter((i) => pads[i]! > 0 || pads[i + r]! > 0);
  if (axes.length === 0) return [a.dy[0]];
  if (mode === "constant") {
    const starts = axes.map((i) => pads[i]!);
    const ends = axes.map((i) => (pads[i + r]! > 0 ? -pads[i + r]! : TO_END));
    return [e.slice(a.dy[0]!, starts, ends, axes)];
  }
  let g = a.dy[0]!;
  for (const axis of axes) {
    const d = staticAt(a, x, [axis], "input")[0]!;
    const [before, after] = [pads[axis]!, pads[axis + r]!];
    const terms = [e.slice(g, [before], [before + d], [axis])];
    if (mode === "reflect") {
      if (before >= d || after >= d) {
        fail(node, `reflect pads (${before}, ${after}) on axis ${axis} must be smaller than its size ${d}`);
      }
      // y[before - i] = x[i] for 1 <= i <= before; y[before + d + k] = x[d - 2 - k] for k < after.
      if (before > 0) {
        const left = e.slice(g, [before - 1], [BEFORE_START], [axis], [-1]);
        terms.push(e.pad(left, padsOn(r, axis, 1, d - 1 - before)));
      }
      if (after > 0) {
        const right = e.slice(g, [before + d + after - 1], [before + d - 1], [axis], [-1]);
        terms.push(e.pad(right, padsOn(r, axis, d - 1 - after, 1)));
      }
    } else {
      if (before > 0) {
        const left = e.reduceSum(e.slice(g, [0], [before], [axis]), [axis], true);
        terms.push(e.pad(left, padsOn(r, axis, 0, d - 1)));
      }
      if (after > 0) {
        const right = e.reduceSum(e.slice(g, [before + d], [TO_END], [axis]), [axis], true);
        terms.push(e.pad(right, padsOn(r, axis, d - 1, 0)));
      }
    }
    g = terms.length === 1 ? terms[0]! : e.op("Sum", terms);
  }
  return [g];
};

/**
 * Pad with pads computed at run time: each entry of dY is added onto the flat index of the entry
 * of x it copies (constant mode: entries of the padding go to one extra slot that is dropped), by
 * one ScatterElements with reduction "add" over the flattened tensors (opset >= 16). The index of
 * output position j on an axis of size d with begin pad p is t = j - p, mapped by reflect to
 * (d-1) - |(d-1) - |t|| and by edge to clip(t, 0, d-1).
 */
function padAtRunTime(a: RuleArgs, mode: PadMode): string {
  const { e, node } = a;
  if (e.opset < 16) {
    fail(
      node,
      `pads computed at run time need ScatterElements with reduction "add" (opset >= 16, this graph has ${e.opset}); re-export with constant folding or a newer opset`,
    );
  }
  if (node.inputs[3]) fail(node, "pads computed at run time together with an axes input are not supported");
  const x = node.inputs[0]!;
  const g = a.dy[0]!;
  const dims = a.dims(x);
  const r = dims.length;
  const inner = staticAt(a, x, range(1, r), "input");
  const strides = range(0, r).map((k) => inner.slice(k).reduce((p, q) => p * q, 1));
  const pads = node.inputs[1]!;
  const shapeY = e.op("Shape", [g]);
  const scalar = (v: number): string => e.i64([v], []);
  let flat: string | undefined;
  let inside: string | undefined;
  for (let k = 0; k < r; k++) {
    const d = k > 0 ? scalar(inner[k - 1]!) : e.op("Gather", [a.shapeOf(x), scalar(0)], { axis: 0 });
    const last = e.op("Sub", [d, scalar(1)]);
    const j = e.op("Range", [scalar(0), e.op("Gather", [shapeY, scalar(k)], { axis: 0 }), scalar(1)]);
    let t = e.op("Sub", [j, e.op("Gather", [pads, scalar(k)], { axis: 0 })]);
    const along = (v: string): string =>
      e.reshape(
        v,
        range(0, r).map((i) => (i === k ? -1 : 1)),
      );
    if (mode === "reflect") t = e.op("Sub", [last, e.op("Abs", [e.op("Sub", [last, e.op("Abs", [t])])])]);
    else if (mode === "edge") t = e.op("Min", [e.op("Max", [t, scalar(0)]), last]);
    else {
      const ok = along(e.op("And", [e.op("GreaterOrEqual", [t, scalar(0)]), e.op("Less", [t, d])]));
      inside = inside === undefined ? ok : e.op("And", [inside, ok]);
    }
    const term = along(e.op("Mul", [t, scalar(strides[k]!)]));
    flat = flat === undefined ? term : e.op("Add", [flat, term]);
  }
  const size = e.op("Size", [x]);
  let slots = size;
  if (inside !== undefined) {
    flat = e.op("Where", [inside, flat!, size]);
    slots = e.op("Add", [size, scalar(1)]);
  }
  const zeros = e.zeros(e.reshape(slots, [1]));
  let summed = e.op("ScatterElements", [zeros, e.reshape(flat!, [-1]), e.reshape(g, [-1])], {
    axis: 0,
    reduction: { s: "add" },
  });
  if (inside !== undefined) summed = e.op("Slice", [summed, e.i64([0]), e.reshape(size, [1]), e.i64([0])]);
  return e.op("Reshape", [summed, a.shapeOf(x)]);
}

/** Reverse-mode rules of this file, by op type. */
export const STRUCTURAL_RULES: Readonly<Record<string, Rule>> = {
  ConvTranspose: convTranspose,
  LayerNormalization: layerNormalization,
  InstanceNormalization: instanceNormalization,
  Gather: gather,
  GatherElements: gatherElements,
  Slice: slice,
  Pad: pad,
};
