// Static shape inference for the ops the gradient rules know, with the batch
// axis kept symbolic ("N"): the rules need ranks, channel counts and spatial
// sizes, and the shape plumbing of torch.onnx.export graphs (Shape -> Gather ->
// Unsqueeze -> Concat -> Reshape) is followed by tracking the values of small
// int64 tensors. Unknown dims are null. Internal to src/autodiff.

import { attr, DataType, type Graph, type Node, type Tensor, tensorInts } from "../onnx/proto.ts";

/** A dimension: a size, a symbol (shared by equal unknown sizes, e.g. the batch), or unknown. */
export type Dim = number | string | null;

/** What is known about a value: element type, shape (null when even the rank is unknown), int contents. */
export interface Info {
  readonly type: number;
  readonly dims: Dim[] | null;
  /** Contents of a small int64/int32 tensor, flattened (symbols for sizes taken from a Shape). */
  readonly value?: Dim[];
}

/** Sizes of a window op's geometry, with auto_pad resolved to explicit pads. */
export interface Window {
  readonly kernel: number[];
  readonly strides: number[];
  readonly dilations: number[];
  /** [begin..., end...] over the spatial axes. */
  readonly pads: number[];
  readonly out: Dim[];
}

const intAttr = (n: Node, name: string, fallback: number): number => attr(n, name)?.i ?? fallback;
const intsAttr = (n: Node, name: string): number[] | undefined => attr(n, name)?.ints;

/**
 * The known dims of value `v`, or an error naming the transformation, the node and the value when shape
 * inference could not follow the graph there.
 */
export function requireDims(shapes: ReadonlyMap<string, Info>, v: string, where: string, node: Node): Dim[] {
  const d = shapes.get(v)?.dims;
  if (!d) {
    throw new Error(
      `${where}: ${node.opType} node '${node.name}': the rank of '${v}' is unknown (shape inference could not follow the graph here)`,
    );
  }
  return d;
}

/**
 * A Shape-like value for `v`: an int64 constant when its dims are all known, else a Shape node. Cached per value.
 */
export function shapeValue(
  shapes: ReadonlyMap<string, Info>,
  cache: Map<string, string>,
  v: string,
  constant: (dims: number[]) => string,
  shapeNode: (v: string) => string,
): string {
  let s = cache.get(v);
  if (s) return s;
  const d = shapes.get(v)?.dims;
  s = d?.every((x): x is number => typeof x === "number") ? constant(d) : shapeNode(v);
  cache.set(v, s);
  return s;
}

/** Product of dims: a number when all are numbers, a symbol when exactly one symbol times 1, else null. */
export function dimProduct(dims: readonly Dim[]): Dim {
  let p = 1;
  let symbol: string | null = null;
  for (const d of dims) {
    if (d === null) return null;
    if (typeof d === "string") {
      if (symbol !== null) return null;
      symbol = d;
    } else p *= d;
  }
  if (symbol === null) return p;
  return p === 1 ? symbol : null;
}

/** Numpy broadcasting of two shapes. */
export function broadcastDims(a: readonly Dim[], b: readonly Dim[]): Dim[] {
  const r = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < r; i++) {
    const da = i - (r - a.length) >= 0 ? a[i - (r - a.length)]! : 1;
    const db = i - (r - b.length) >= 0 ? b[i - (r - b.length)]! : 1;
    if (da === 1) out.push(db);
    else if (db === 1) out.push(da);
    else if (da === db) out.push(da);
    else if (typeof da === "number" && typeof db === "number")
      throw new Error(`cannot broadcast shapes [${a.join(", ")}] and [${b.join(", ")}]`);
    else if (typeof da === "number") out.push(da);
    else if (typeof db === "number") out.push(db);
    else out.push(null);
  }
  return out;
}

/** The geometry of a Conv/pool node over the given input spatial dims. */
export function windowGeometry(node: Node, spatial: readonly Dim[], kernel: readonly number[]): Window {
  const s = spatial.length;
  const strides = intsAttr(node, "strides") ?? new Array<number>(s).fill(1);
  const dilations = intsAttr(node, "dilations") ?? new Array<number>(s).fill(1);
  const autoPad = attr(node, "auto_pad")?.s ?? "NOTSET";
  const ceil = intAttr(node, "ceil_mode", 0) === 1;
  let pads = intsAttr(node, "pads") ?? new Array<number>(2 * s).fill(0);
  if (autoPad === "VALID") pads = new Array<number>(2 * s).fill(0);
  else if (autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER") {
    pads = new Array<number>(2 * s).fill(0);
    for (let i = 0; i < s; i++) {
      const d = spatial[i];
      if (typeof d !== "number") {
        throw new Error(`${node.opType} '${node.name}': auto_pad ${autoPad} needs static spatial sizes`);
      }
      const out = Math.ceil(d / strides[i]!);
      const total = Math.max(0, (out - 1) * strides[i]! + (kernel[i]! - 1) * dilations[i]! + 1 - d);
      const small = Math.floor(total / 2);
      pads[i] = autoPad === "SAME_UPPER" ? small : total - small;
      pads[i + s] = total - pads[i]!;
    }
  }
  const out: Dim[] = spatial.map((d, i) => {
    if (typeof d !== "number") return null;
    const span = d + pads[i]! + pads[i + s]! - ((kernel[i]! - 1) * dilations[i]! + 1);
    return (ceil ? Math.ceil(span / strides[i]!) : Math.floor(span / strides[i]!)) + 1;
  });
  return { kernel: [...kernel], strides, dilations, pads, out };
}

function constantTensor(n: Node): Tensor | undefined {
  return attr(n, "value")?.t;
}

/** A value known from a tensor: int contents when small. */
function tensorInfo(t: Tensor): Info {
  const count = t.dims.reduce((a, b) => a * b, 1);
  if ((t.dataType === DataType.INT64 || t.dataType === DataType.INT32) && count <= 64) {
    return { type: t.dataType, dims: [...t.dims], value: tensorInts(t) };
  }
  if (t.dataType === DataType.BOOL && count <= 64 && t.raw.length === count) {
    // Flags such as Dropout's training_mode, as 0/1.
    return { type: t.dataType, dims: [...t.dims], value: Array.from(t.raw) };
  }
  return { type: t.dataType, dims: [...t.dims] };
}

const normAxis = (a: number, rank: number): number => (a < 0 ? a + rank : a);

function numbers(v: Dim[] | undefined): number[] | undefined {
  if (!v?.every((d): d is number => typeof d === "number")) return undefined;
  return v as number[];
}

/**
 * Infers the shape of every value of a graph.
 *
 * @example
 * const shapes = inferShapes(model.graph, 17, new Map([["input", { type: 1, dims: ["N", 3, 32, 32] }]]));
 */
export function inferShapes(graph: Graph, opset: number, inputs: Map<string, Info>): Map<string, Info> {
  const known = new Map<string, Info>();
  const declared = new Map<string, Info>();
  for (const v of [...graph.valueInfo, ...graph.outputs]) {
    if (v.elemType) declared.set(v.name, { type: v.elemType, dims: v.shape ? [...v.shape] : null });
  }
  for (const t of graph.initializers) known.set(t.name, tensorInfo(t));
  for (const [k, v] of inputs) known.set(k, v);
  for (const node of graph.nodes) {
    let outs: (Info | undefined)[];
    try {
      outs = inferNode(node, known, opset);
    } catch (e) {
      throw new Error(`shape inference failed at ${node.opType} '${node.name}': ${(e as Error).message}`);
    }
    node.outputs.forEach((o, k) => {
      if (o === "") return;
      let info = outs[k];
      const decl = declared.get(o);
      if (!info || info.dims === null) info = decl ?? info ?? { type: DataType.FLOAT, dims: null };
      else if (decl?.dims && decl.dims.length === info.dims.length) {
        // Fill unknown dims from the exporter's value_info.
        const dims = info.dims.map((d, i) => (d === null ? decl.dims![i]! : d));
        info = { ...info, dims };
      }
      known.set(o, info);
    });
  }
  return known;
}

function inferNode(n: Node, known: Map<string, Info>, opset: number): (Info | undefined)[] {
  const get = (i: number): Info | undefined => {
    const name = n.inputs[i];
    return name === undefined || name === "" ? undefined : known.get(name);
  };
  const x = get(0);
  const same = (): Info[] => (x ? [{ type: x.type, dims: x.dims }] : []);
  const dimsOf = (i: number): Dim[] | null => get(i)?.dims ?? null;
  const valueAt = (i: number): Dim[] | undefined => get(i)?.value;
  /** axes from attribute (old opsets) or input `at` (new opsets). */
  const axesOf = (at: number): number[] | undefined => intsAttr(n, "axes") ?? numbers(valueAt(at));

  switch (n.opType) {
    case "Identity":
      return x ? [x] : [];
    case "Relu":
    case "LeakyRelu":
    case "Sigmoid":
    case "Tanh":
    case "Exp":
    case "Log":
    case "Sqrt":
    case "Neg":
    case "Abs":
    case "Reciprocal":
    case "Softmax":
    case "LogSoftmax":
    case "Erf":
    case "Sign":
    case "Floor":
    case "Ceil":
    case "Round":
    case "Clip":
    case "Elu":
    case "Selu":
    case "HardSigmoid":
    case "HardSwish":
    case "Softplus":
    case "Not":
    case "LRN":
    case "InstanceNormalization":
    case "ScatterElements":
    case "ScatterND":
      return same();
    case "LayerNormalization": {
      // Mean and InvStdDev keep the normalized axes with size 1, in the stash type (float32 by default).
      if (!x?.dims) return same();
      const axis = normAxis(intAttr(n, "axis", -1), x.dims.length);
      const stash = intAttr(n, "stash_type", DataType.FLOAT);
      const stat: Info = { type: stash, dims: x.dims.map((d, i) => (i < axis ? d : 1)) };
      return [...same(), stat, stat];
    }
    case "Dropout":
      return x
        ? [
            { type: x.type, dims: x.dims },
            { type: DataType.BOOL, dims: x.dims },
          ]
        : [];
    case "BatchNormalization": {
      const c = x?.dims?.[1] ?? null;
      const stat: Info = { type: x?.type ?? DataType.FLOAT, dims: [c] };
      return [...same(), stat, stat, stat, stat];
    }
    case "Cast": {
      const to = intAttr(n, "to", DataType.FLOAT);
      return x ? [{ type: to, dims: x.dims, ...(x.value ? { value: x.value } : {}) }] : [];
    }
    case "Add":
    case "Sub":
    case "Mul":
    case "Div":
    case "Pow":
    case "PRelu":
    case "Max":
    case "Min":
    case "Sum":
    case "Mean":
    case "Equal":
    case "Less":
    case "Greater":
    case "LessOrEqual":
    case "GreaterOrEqual":
    case "And":
    case "Or":
    case "Xor":
    case "Where": {
      const all = n.inputs.map((_, i) => dimsOf(i));
      const logical = ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor"];
      const type = logical.includes(n.opType) ? DataType.BOOL : (n.opType === "Where" ? get(1) : x)?.type;
      if (type === undefined) return [];
      if (all.some((d) => d === null)) return [{ type, dims: null }];
      const dims = (all as Dim[][]).reduce((a, b) => broadcastDims(a, b));
      const info: Info = { type, dims };
      // Arithmetic on shape values (rare in exports, but cheap to follow).
      const a = numbers(valueAt(0));
      const b = numbers(valueAt(1));
      if (a && b && n.inputs.length === 2 && ["Add", "Sub", "Mul", "Div"].includes(n.opType)) {
        const len = Math.max(a.length, b.length);
        if ((a.length === len || a.length === 1) && (b.length === len || b.length === 1)) {
          const v: number[] = [];
          for (let i = 0; i < len; i++) {
            const p = a[a.length === 1 ? 0 : i]!;
            const q = b[b.length === 1 ? 0 : i]!;
            v.push(
              n.opType === "Add"
                ? p + q
                : n.opType === "Sub"
                  ? p - q
                  : n.opType === "Mul"
                    ? p * q
                    : Math.trunc(p / q),
            );
          }
          return [{ ...info, value: v }];
        }
      }
      // Equal and Where on shape values: torch.onnx writes x.expand(n, -1, -1) as
      // Expand(x, Where(Equal(shape, -1), ones, shape)).
      const va = valueAt(0);
      const vb = valueAt(1);
      if (n.opType === "Equal" && va && vb) {
        const len = Math.max(va.length, vb.length);
        const at = (v: Dim[], i: number) => v[v.length === 1 ? 0 : i] ?? null;
        const value: Dim[] = [];
        for (let i = 0; i < len; i++) value.push(sameDim(at(va, i), at(vb, i)));
        return [{ ...info, value }];
      }
      const vc = valueAt(2);
      if (n.opType === "Where" && va && vb && vc && va.every((c) => c === 0 || c === 1)) {
        const len = Math.max(va.length, vb.length, vc.length);
        const at = (v: Dim[], i: number) => v[v.length === 1 ? 0 : i] ?? null;
        const value: Dim[] = [];
        for (let i = 0; i < len; i++) value.push(at(va, i) === 1 ? at(vb, i) : at(vc, i));
        return [{ ...info, value }];
      }
      return [info];
    }
    case "ReorderInput":
    case "ReorderOutput": {
      // ORT's NCHWc layout changes (blocked convolutions): the logical shape is kept when the
      // channels are a multiple of the block, which is when losscape emits them.
      if (!x?.dims) return [{ type: x?.type ?? DataType.FLOAT, dims: null }];
      const channels = n.opType === "ReorderOutput" ? intAttr(n, "channels", 0) : 0;
      return [{ type: x.type, dims: channels > 0 ? [x.dims[0]!, channels, ...x.dims.slice(2)] : x.dims }];
    }
    case "Conv": {
      const w = dimsOf(1);
      if (!x?.dims || !w) return [{ type: x?.type ?? DataType.FLOAT, dims: null }];
      const kernel = intsAttr(n, "kernel_shape") ?? (w.slice(2) as number[]);
      const g = windowGeometry(n, x.dims.slice(2), kernel);
      return [{ type: x.type, dims: [x.dims[0]!, w[0]!, ...g.out] }];
    }
    case "ConvTranspose": {
      const w = dimsOf(1);
      if (!x?.dims || !w) return [{ type: x?.type ?? DataType.FLOAT, dims: null }];
      const group = intAttr(n, "group", 1);
      const channels = typeof w[1] === "number" ? w[1] * group : null;
      const outputShape = intsAttr(n, "output_shape");
      const spatial = x.dims.slice(2);
      const s = spatial.length;
      if (outputShape) return [{ type: x.type, dims: [x.dims[0]!, channels, ...outputShape.slice(-s)] }];
      const kernel = intsAttr(n, "kernel_shape") ?? (w.slice(2) as number[]);
      const strides = intsAttr(n, "strides") ?? new Array<number>(s).fill(1);
      const dil = intsAttr(n, "dilations") ?? new Array<number>(s).fill(1);
      const pads = intsAttr(n, "pads") ?? new Array<number>(2 * s).fill(0);
      const op = intsAttr(n, "output_padding") ?? new Array<number>(s).fill(0);
      const out = spatial.map((d, i) =>
        typeof d === "number"
          ? strides[i]! * (d - 1) + op[i]! + (kernel[i]! - 1) * dil[i]! + 1 - pads[i]! - pads[i + s]!
          : null,
      );
      return [{ type: x.type, dims: [x.dims[0]!, channels, ...out] }];
    }
    case "MaxPool":
    case "AveragePool":
    case "LpPool": {
      if (!x?.dims) return [{ type: x?.type ?? DataType.FLOAT, dims: null }];
      const g = windowGeometry(n, x.dims.slice(2), intsAttr(n, "kernel_shape") ?? []);
      const dims = [x.dims[0]!, x.dims[1]!, ...g.out];
      return [
        { type: x.type, dims },
        { type: DataType.INT64, dims },
      ];
    }
    case "GlobalAveragePool":
    case "GlobalMaxPool":
      if (!x?.dims) return [{ type: x?.type ?? DataType.FLOAT, dims: null }];
      return [{ type: x.type, dims: [x.dims[0]!, x.dims[1]!, ...x.dims.slice(2).map(() => 1)] }];
    case "Gemm": {
      const a = dimsOf(0);
      const b = dimsOf(1);
      if (!x || !a || !b) return [{ type: x?.type ?? DataType.FLOAT, dims: null }];
      const m = intAttr(n, "transA", 0) ? a[1]! : a[0]!;
      const k = intAttr(n, "transB", 0) ? b[0]! : b[1]!;
      return [{ type: x.type, dims: [m, k] }];
    }
    case "MatMul": {
      const a = dimsOf(0);
      const b = dimsOf(1);
      if (!x || !a || !b) return [{ type: x?.type ?? DataType.FLOAT, dims: null }];
      const a2 = a.length === 1 ? [1, a[0]!] : a;
      const b2 = b.length === 1 ? [b[0]!, 1] : b;
      const batch = broadcastDims(a2.slice(0, -2), b2.slice(0, -2));
      const dims = [...batch, a2[a2.length - 2]!, b2[b2.length - 1]!];
      if (b.length === 1) dims.pop();
      if (a.length === 1) dims.splice(dims.length - (b.length === 1 ? 1 : 2), 1);
      return [{ type: x.type, dims }];
    }
    case "Flatten": {
      if (!x?.dims) return [{ type: x?.type ?? DataType.FLOAT, dims: null }];
      const axis = normAxis(intAttr(n, "axis", 1), x.dims.length);
      return [{ type: x.type, dims: [dimProduct(x.dims.slice(0, axis)), dimProduct(x.dims.slice(axis))] }];
    }
    case "Reshape": {
      const target = valueAt(1) ?? intsAttr(n, "shape");
      const len = dimsOf(1)?.[0];
      if (!x) return [];
      if (!target) {
        return [{ type: x.type, dims: typeof len === "number" ? new Array<Dim>(len).fill(null) : null }];
      }
      const allowZero = intAttr(n, "allowzero", 0) === 1;
      const dims: Dim[] = target.map((t, i) => (t === 0 && !allowZero ? (x.dims?.[i] ?? null) : t));
      const minus = dims.indexOf(-1);
      if (minus >= 0) dims[minus] = x.dims ? inferMinusOne(x.dims, dims, minus) : null;
      return [{ type: x.type, dims, ...(x.value && dims.length <= 1 ? { value: x.value } : {}) }];
    }
    case "Squeeze": {
      if (!x?.dims) return [{ type: x?.type ?? DataType.FLOAT, dims: null }];
      const r = x.dims.length;
      const axes = (opset >= 13 ? numbers(valueAt(1)) : intsAttr(n, "axes"))?.map((a) => normAxis(a, r));
      const hasAxes =
        opset >= 13 ? n.inputs.length > 1 && n.inputs[1] !== "" : intsAttr(n, "axes") !== undefined;
      if (hasAxes && !axes) return [{ type: x.type, dims: null }];
      const dims = x.dims.filter((d, i) => (axes ? !axes.includes(i) : d !== 1));
      return [{ type: x.type, dims, ...(x.value ? { value: x.value } : {}) }];
    }
    case "Unsqueeze": {
      if (!x?.dims) return [{ type: x?.type ?? DataType.FLOAT, dims: null }];
      const raw = opset >= 13 ? numbers(valueAt(1)) : intsAttr(n, "axes");
      if (!raw) return [{ type: x.type, dims: null }];
      const r = x.dims.length + raw.length;
      const axes = raw.map((a) => normAxis(a, r)).sort((a, b) => a - b);
      const dims = [...x.dims];
      for (const a of axes) dims.splice(a, 0, 1);
      return [{ type: x.type, dims, ...(x.value ? { value: x.value } : {}) }];
    }
    case "Transpose": {
      if (!x?.dims) return [{ type: x?.type ?? DataType.FLOAT, dims: null }];
      const perm = intsAttr(n, "perm") ?? x.dims.map((_, i) => x.dims!.length - 1 - i);
      return [{ type: x.type, dims: perm.map((p) => x.dims![p]!) }];
    }
    case "Concat": {
      const all = n.inputs.map((_, i) => get(i));
      const first = all.find((i) => i !== undefined);
      if (!first) return [];
      if (all.some((i) => !i?.dims)) return [{ type: first.type, dims: null }];
      const r = first.dims!.length;
      const axis = normAxis(intAttr(n, "axis", 0), r);
      const dims = [...first.dims!];
      dims[axis] = dimSum(all.map((i) => i!.dims![axis]!));
      const values = all.map((i) => i!.value);
      const value = values.every((v) => v !== undefined) ? (values as Dim[][]).flat() : undefined;
      return [{ type: first.type, dims, ...(value ? { value } : {}) }];
    }
    case "Split": {
      if (!x?.dims) return n.outputs.map(() => ({ type: x?.type ?? DataType.FLOAT, dims: null }));
      const axis = normAxis(intAttr(n, "axis", 0), x.dims.length);
      const sizes = splitSizes(n, x.dims[axis]!, opset, valueAt(1));
      return n.outputs.map((_, k) => {
        const dims = [...x.dims!];
        dims[axis] = sizes?.[k] ?? null;
        return { type: x.type, dims };
      });
    }
    case "Slice": {
      if (!x?.dims) return [{ type: x?.type ?? DataType.FLOAT, dims: null }];
      const spec = sliceSpec(n, x.dims, opset, valueAt);
      if (!spec) return [{ type: x.type, dims: x.dims.map(() => null) }];
      const dims = [...x.dims];
      for (const s of spec) dims[s.axis] = s.length;
      let value: Dim[] | undefined;
      if (x.value && x.dims.length === 1 && spec.length === 1 && spec[0]!.length !== null) {
        const s = spec[0]!;
        value = [];
        for (let i = 0; i < (s.length as number); i++) value.push(x.value[s.start! + i * s.step] ?? null);
      }
      return [{ type: x.type, dims, ...(value ? { value } : {}) }];
    }
    case "Gather": {
      const idx = get(1);
      if (!x?.dims || !idx?.dims) return [{ type: x?.type ?? DataType.FLOAT, dims: null }];
      const axis = normAxis(intAttr(n, "axis", 0), x.dims.length);
      const dims = [...x.dims.slice(0, axis), ...idx.dims, ...x.dims.slice(axis + 1)];
      let value: Dim[] | undefined;
      const at = numbers(idx.value);
      if (x.value && x.dims.length === 1 && at) {
        value = at.map((i) => x.value![normAxis(i, x.value!.length)] ?? null);
      }
      return [{ type: x.type, dims, ...(value ? { value } : {}) }];
    }
    case "Shape": {
      if (!x?.dims) return [{ type: DataType.INT64, dims: [null] }];
      const r = x.dims.length;
      const start = normAxis(intAttr(n, "start", 0), r);
      const end = attr(n, "end") ? normAxis(intAttr(n, "end", r), r) : r;
      const value = x.dims.slice(Math.max(0, start), Math.min(r, end));
      return [{ type: DataType.INT64, dims: [value.length], value }];
    }
    case "Size":
      return [{ type: DataType.INT64, dims: [], ...(x?.dims ? { value: [dimProduct(x.dims)] } : {}) }];
    case "Constant": {
      const t = constantTensor(n);
      if (t) return [tensorInfo(t)];
      const a = n.attributes[0];
      if (a?.name === "value_float") return [{ type: DataType.FLOAT, dims: [] }];
      if (a?.name === "value_floats") return [{ type: DataType.FLOAT, dims: [a.floats?.length ?? 0] }];
      if (a?.name === "value_int") return [{ type: DataType.INT64, dims: [], value: [a.i ?? 0] }];
      if (a?.name === "value_ints")
        return [{ type: DataType.INT64, dims: [a.ints?.length ?? 0], value: a.ints ?? [] }];
      return [{ type: DataType.FLOAT, dims: null }];
    }
    case "ConstantOfShape": {
      const t = constantTensor(n);
      const dims = valueAt(0) ?? null;
      // A small 1-D fill (torch.onnx builds -1 sentinels this way) keeps its values.
      const fill = t ? (tensorInfo(t).value?.[0] ?? null) : 0;
      if (dims?.length === 1 && typeof dims[0] === "number" && dims[0] <= 64 && fill !== null)
        return [{ type: t?.dataType ?? DataType.FLOAT, dims, value: new Array<Dim>(dims[0]).fill(fill) }];
      return [{ type: t?.dataType ?? DataType.FLOAT, dims }];
    }
    case "Expand": {
      const shape = valueAt(1);
      if (!x?.dims || !shape) return [{ type: x?.type ?? DataType.FLOAT, dims: null }];
      return [{ type: x.type, dims: broadcastDims(x.dims, shape) }];
    }
    case "Pad": {
      const pads = numbers(opset >= 11 ? valueAt(1) : intsAttr(n, "pads"));
      if (!x?.dims) return [{ type: x?.type ?? DataType.FLOAT, dims: null }];
      const r = x.dims.length;
      if (!pads || pads.length !== 2 * r) return [{ type: x.type, dims: x.dims.map(() => null) }];
      return [
        {
          type: x.type,
          dims: x.dims.map((d, i) => (typeof d === "number" ? d + pads[i]! + pads[i + r]! : null)),
        },
      ];
    }
    case "ReduceSum":
    case "ReduceMean":
    case "ReduceMax":
    case "ReduceMin":
    case "ReduceProd":
    case "ReduceSumSquare":
    case "ArgMax":
    case "ArgMin": {
      if (!x?.dims) return [{ type: x?.type ?? DataType.FLOAT, dims: null }];
      const r = x.dims.length;
      const arg = n.opType.startsWith("Arg");
      const keep = intAttr(n, "keepdims", 1) === 1;
      const type = arg ? DataType.INT64 : x.type;
      let axes = arg ? [intAttr(n, "axis", 0)] : axesOf(1);
      const hasInput = n.inputs.length > 1 && n.inputs[1] !== "";
      if (!axes && hasInput) return [{ type, dims: keep ? x.dims.map(() => null) : null }];
      if (!axes || axes.length === 0) {
        if (intAttr(n, "noop_with_empty_axes", 0) === 1) return [{ type, dims: x.dims }];
        axes = x.dims.map((_, i) => i);
      }
      const norm = axes.map((a) => normAxis(a, r));
      const dims = keep
        ? x.dims.map((d, i) => (norm.includes(i) ? 1 : d))
        : x.dims.filter((_, i) => !norm.includes(i));
      return [{ type, dims }];
    }
    case "NonZero":
      return [{ type: DataType.INT64, dims: [x?.dims?.length ?? null, null] }];
    case "Range":
      return [{ type: x?.type ?? DataType.INT64, dims: [null] }];
    case "GatherElements":
      return [{ type: x?.type ?? DataType.FLOAT, dims: dimsOf(1) }];
    case "OneHot":
      return [{ type: get(2)?.type ?? DataType.FLOAT, dims: null }];
    default:
      return n.outputs.map(() => ({ type: x?.type ?? DataType.FLOAT, dims: null }));
  }
}

/**
 * Equality of two shape entries as 1 / 0, or null when unknown: a symbolic dim (a size >= 1)
 * differs from -1 and 0, the sentinels exports compare shapes with.
 */
function sameDim(a: Dim, b: Dim): Dim {
  if (typeof a === "number" && typeof b === "number") return a === b ? 1 : 0;
  const sym = typeof a === "number" ? b : a;
  const num = typeof a === "number" ? a : b;
  if (typeof sym === "string" && (num === -1 || num === 0)) return 0;
  if (typeof a === "string" && a === b) return 1;
  return null;
}

function dimSum(dims: readonly Dim[]): Dim {
  let s = 0;
  for (const d of dims) {
    if (typeof d !== "number") return null;
    s += d;
  }
  return s;
}

/** The -1 entry of a Reshape target, from the input's dims (symbols cancel by name). */
function inferMinusOne(input: readonly Dim[], target: readonly Dim[], minus: number): Dim {
  let p = 1;
  const symbols: string[] = [];
  for (const d of input) {
    if (d === null) return null;
    if (typeof d === "string") symbols.push(d);
    else p *= d;
  }
  let q = 1;
  for (let i = 0; i < target.length; i++) {
    if (i === minus) continue;
    const d = target[i]!;
    if (d === null) return null;
    if (typeof d === "string") {
      const k = symbols.indexOf(d);
      if (k < 0) return null;
      symbols.splice(k, 1);
    } else q *= d;
  }
  if (symbols.length === 0) return p % q === 0 ? p / q : null;
  if (symbols.length === 1 && p === q) return symbols[0]!;
  return null;
}

function splitSizes(n: Node, total: Dim, opset: number, input: Dim[] | undefined): number[] | undefined {
  const explicit = opset >= 13 ? numbers(input) : intsAttr(n, "split");
  if (explicit) return explicit;
  if (typeof total !== "number") return undefined;
  const parts = n.outputs.length;
  const each = Math.ceil(total / parts);
  return Array.from({ length: parts }, (_, k) => Math.max(0, Math.min(each, total - k * each)));
}

/** One sliced axis with normalized start, step and resulting length (null when not static). */
export interface SliceAxis {
  readonly axis: number;
  readonly start: number | null;
  readonly step: number;
  readonly length: Dim;
}

/** Normalized Slice parameters, when starts/ends/axes/steps are constants. */
export function sliceSpec(
  n: Node,
  dims: readonly Dim[],
  opset: number,
  valueAt: (i: number) => Dim[] | undefined,
): SliceAxis[] | undefined {
  const r = dims.length;
  let starts: number[] | undefined;
  let ends: number[] | undefined;
  let axes: number[] | undefined;
  let steps: number[] | undefined;
  if (opset >= 10) {
    starts = numbers(valueAt(1));
    ends = numbers(valueAt(2));
    const hasAxes = n.inputs.length > 3 && n.inputs[3] !== "";
    const hasSteps = n.inputs.length > 4 && n.inputs[4] !== "";
    axes = hasAxes ? numbers(valueAt(3)) : starts?.map((_, i) => i);
    steps = hasSteps ? numbers(valueAt(4)) : starts?.map(() => 1);
  } else {
    starts = intsAttr(n, "starts");
    ends = intsAttr(n, "ends");
    axes = intsAttr(n, "axes") ?? starts?.map((_, i) => i);
    steps = starts?.map(() => 1);
  }
  if (!starts || !ends || !axes || !steps) return undefined;
  return axes.map((a, i) => {
    const axis = normAxis(a, r);
    const step = steps![i]!;
    const d = dims[axis];
    const s0 = starts![i]!;
    const e0 = ends![i]!;
    if (typeof d !== "number") {
      // A symbolic axis sliced whole (0 .. INT_MAX, step 1) keeps its symbol.
      const whole = step === 1 && s0 === 0 && e0 >= 2 ** 31 - 1;
      return { axis, start: whole ? 0 : null, step, length: whole ? (d ?? null) : null };
    }
    const clampStart = (v: number): number =>
      step > 0
        ? Math.min(Math.max(v < 0 ? v + d : v, 0), d)
        : Math.min(Math.max(v < 0 ? v + d : v, -1), d - 1);
    const start = clampStart(s0);
    const end = clampStart(e0);
    const length =
      step > 0 ? Math.max(0, Math.ceil((end - start) / step)) : Math.max(0, Math.ceil((start - end) / -step));
    return { axis, start, step, length };
  });
}
