// Appends nodes to a graph under construction for the gradient transformation:
// fresh names that never collide with the source graph's, cached constants in
// the graph's float type, and opset-aware forms of the ops whose signature
// changed between opsets (axes as attribute or input). Internal to src/autodiff.

import { type Attribute, AttrType, DataType, int64Tensor, type Node, type Tensor } from "../onnx/proto.ts";

/** An attribute value for `Emitter.op`: numbers are INT, `{ f }` is FLOAT, arrays are INTS. */
export type EmitAttr = number | { f: number } | readonly number[] | { s: string } | { t: Tensor };

function toAttribute(name: string, v: EmitAttr): Attribute {
  if (typeof v === "number") return { name, type: AttrType.INT, i: v };
  if (Array.isArray(v)) return { name, type: AttrType.INTS, ints: [...(v as readonly number[])] };
  if ("f" in (v as object)) return { name, type: AttrType.FLOAT, f: (v as { f: number }).f };
  if ("s" in (v as object)) return { name, type: AttrType.STRING, s: (v as { s: string }).s };
  return { name, type: AttrType.TENSOR, t: (v as { t: Tensor }).t };
}

/** ORT's domain of blocked-layout (NCHWc) CPU kernels. */
export const NCHWC_DOMAIN = "com.microsoft.nchwc";

/** Bytes of one element of a float type. */
function floatBytes(type: number): number {
  if (type === DataType.FLOAT) return 4;
  if (type === DataType.DOUBLE) return 8;
  throw new Error(`internal: float type ${type} is not float32 (1) or float64 (11)`);
}

/** A tensor of the graph's float type from values. */
export function floatTypedTensor(
  name: string,
  dims: number[],
  values: ArrayLike<number>,
  type: number,
): Tensor {
  const raw = new Uint8Array(values.length * floatBytes(type));
  const dv = new DataView(raw.buffer);
  for (let i = 0; i < values.length; i++) {
    if (type === DataType.FLOAT) dv.setFloat32(i * 4, values[i]!, true);
    else dv.setFloat64(i * 8, values[i]!, true);
  }
  return { name, dims, dataType: type, raw };
}

/** Builds the nodes and constants of the generated part of a graph. */
export class Emitter {
  readonly nodes: Node[] = [];
  readonly initializers: Tensor[] = [];
  private counter = 0;
  private readonly cache = new Map<string, string>();

  /**
   * @param opset the default-domain opset of the graph
   * @param floatType DataType of the graph's float tensors (FLOAT or DOUBLE)
   * @param taken names already used by the source graph
   */
  constructor(
    readonly opset: number,
    readonly floatType: number,
    private readonly taken: Set<string>,
  ) {}

  /** A value name that is not used anywhere yet. */
  fresh(hint: string): string {
    for (;;) {
      const name = `ad/${hint}_${this.counter++}`;
      if (!this.taken.has(name)) {
        this.taken.add(name);
        return name;
      }
    }
  }

  /** Reserves an exact name (graph outputs such as `grad:conv1.weight`); throws when taken. */
  claim(name: string): string {
    if (this.taken.has(name)) {
      throw new Error(`gradientGraph(): the source graph already uses the name '${name}'`);
    }
    this.taken.add(name);
    return name;
  }

  /** Adds a node with `outputs` outputs (names given or fresh) and returns the output names. */
  opN(
    opType: string,
    inputs: string[],
    outputs: number | string[],
    attrs: Record<string, EmitAttr | undefined> = {},
  ): string[] {
    const outs =
      typeof outputs === "number"
        ? Array.from({ length: outputs }, () => this.fresh(opType.toLowerCase()))
        : outputs;
    const attributes: Attribute[] = [];
    for (const [k, v] of Object.entries(attrs)) if (v !== undefined) attributes.push(toAttribute(k, v));
    this.nodes.push({
      opType,
      inputs,
      outputs: outs,
      name: this.fresh(`${opType}_node`),
      domain: "",
      attributes,
    });
    return outs;
  }

  /** Adds a single-output node and returns its output name. */
  op(
    opType: string,
    inputs: string[],
    attrs: Record<string, EmitAttr | undefined> = {},
    output?: string,
  ): string {
    return this.opN(opType, inputs, output === undefined ? 1 : [output], attrs)[0]!;
  }

  /**
   * NCHWc block size of ORT's blocked convolutions (com.microsoft.nchwc domain), or undefined to
   * emit plain Conv nodes. Set by the gradient session after asking ORT (see nchwc.ts).
   */
  convBlock: number | undefined = undefined;

  /**
   * A 2D convolution, as ORT's blocked NCHWc Conv when `convBlock` is set and the shapes allow
   * (group 1, input and output channels multiples of the block): the input is reordered to
   * NCHWc, the OIHW weights are reordered in the graph (a Reshape/Transpose, so they may be graph
   * inputs) and the result is reordered back to NCHW. Otherwise a plain Conv.
   */
  conv(
    inputs: string[],
    attrs: Record<string, EmitAttr | undefined>,
    shape: { readonly rank: number; readonly inChannels: number; readonly weight: readonly number[] },
    output?: string,
  ): string {
    const B = this.convBlock;
    const group = (attrs.group as number | undefined) ?? 1;
    const [O, I, ...kernel] = shape.weight as number[];
    const blocked =
      B !== undefined &&
      this.floatType === DataType.FLOAT &&
      shape.rank === 4 &&
      kernel.length === 2 &&
      group === 1 &&
      O !== undefined &&
      I !== undefined &&
      shape.inChannels === I &&
      O % B === 0 &&
      I % B === 0;
    if (!blocked) return this.op("Conv", inputs, attrs, output);
    const [x, w, b] = inputs as [string, string, string | undefined];
    // OIHW -> OIHWBiBo: [O/B, B(o), I/B, B(i), kh, kw] -> [O/B, I/B, kh, kw, B(i), B(o)].
    const split = this.op("Reshape", [w, this.i64([O / B, B, I / B, B, ...kernel])]);
    const wb = this.op("Reshape", [
      this.op("Transpose", [split], { perm: [0, 2, 4, 5, 3, 1] }),
      this.i64([O, I, ...kernel]),
    ]);
    const yb = this.nchwc("Conv", b ? [this.blocked(x), wb, b] : [this.blocked(x), wb], attrs);
    return this.nchwc("ReorderOutput", [yb], { channels: O }, output);
  }

  private readonly reordered = new Map<string, string>();

  /** `x` [N, C, H, W] (C a multiple of the block) in NCHWc layout; one ReorderInput per value. */
  blocked(x: string): string {
    let b = this.reordered.get(x);
    if (b === undefined) {
      b = this.nchwc("ReorderInput", [x], {});
      this.reordered.set(x, b);
    }
    return b;
  }

  /** An NCHWc-domain node (blocked Conv, ReorderInput, ReorderOutput). */
  nchwc(
    opType: string,
    inputs: string[],
    attrs: Record<string, EmitAttr | undefined>,
    output?: string,
  ): string {
    const out = this.op(opType, inputs, attrs, output);
    this.nodes[this.nodes.length - 1]!.domain = NCHWC_DOMAIN;
    return out;
  }

  /** An int64 constant (cached by value). */
  i64(values: readonly number[], dims: number[] = [values.length]): string {
    const key = `i64:${dims.join("x")}:${values.join(",")}`;
    let name = this.cache.get(key);
    if (name === undefined) {
      name = this.fresh("i64");
      this.initializers.push(int64Tensor(name, dims, values));
      this.cache.set(key, name);
    }
    return name;
  }

  /** A float constant of the graph's float type (cached by value). */
  constant(values: ArrayLike<number>, dims: number[]): string {
    const key = `f:${dims.join("x")}:${Array.from(values).join(",")}`;
    let name = this.cache.get(key);
    if (name === undefined) {
      name = this.fresh("const");
      this.initializers.push(floatTypedTensor(name, dims, values, this.floatType));
      this.cache.set(key, name);
    }
    return name;
  }

  /** Zeros of a float type (default the graph's) with the runtime int64 shape `shape` (ConstantOfShape). */
  zeros(shape: string, type: number = this.floatType, output?: string): string {
    const raw = new Uint8Array(floatBytes(type));
    return this.op(
      "ConstantOfShape",
      [shape],
      { value: { t: { name: "", dims: [1], dataType: type, raw } } },
      output,
    );
  }

  /** A float scalar of the graph's float type (rank 0). */
  scalar(v: number): string {
    return this.constant([v], []);
  }

  /** ReduceSum over `axes` (axes as input from opset 13). */
  reduceSum(x: string, axes: readonly number[], keepdims: boolean): string {
    if (this.opset >= 13) return this.op("ReduceSum", [x, this.i64(axes)], { keepdims: keepdims ? 1 : 0 });
    return this.op("ReduceSum", [x], { axes, keepdims: keepdims ? 1 : 0 });
  }

  /**
   * How per-channel sums over (N, spatial...) are computed: `two-stage-double` sums the last
   * (contiguous) axis in the graph's type, then the other axes in float64. ORT's float32 multi-axis ReduceSum
   * accumulates naively, and training-mode batch-norm gradients are differences of such sums:
   * `direct` gave errors up to 4e-3 relative on ResNet-20 where PyTorch (which accumulates these
   * sums in double on CPU) is within 1e-6.
   */
  channelReduction: "direct" | "two-stage" | "two-stage-double" = "two-stage-double";

  /**
   * Sum (or sum of squares) over every axis but 1 of a rank-r tensor, keeping dims: the
   * per-channel reductions of batch normalization and conv biases.
   */
  channelSum(x: string, rank: number, squares = false): string {
    const spatial = Array.from({ length: rank - 2 }, (_, i) => i + 2);
    const reduce = (t: string, axes: number[], sq: boolean): string =>
      sq ? this.reduceSumSquare(t, axes, true) : this.reduceSum(t, axes, true);
    const mode = this.channelReduction;
    if (mode === "direct") return reduce(x, [0, ...spatial], squares);
    if (mode === "two-stage" || this.floatType !== DataType.FLOAT) {
      const partial = spatial.length > 0 ? reduce(x, spatial, squares) : x;
      return reduce(partial, [0], spatial.length > 0 ? false : squares);
    }
    // The last (contiguous) axis in float32, the rest in float64.
    const last = spatial.length > 0 ? [rank - 1] : [];
    const partial = last.length > 0 ? reduce(x, last, squares) : x;
    const wide = this.op("Cast", [partial], { to: DataType.DOUBLE });
    const rest = [0, ...spatial.slice(0, -1)];
    return this.op("Cast", [reduce(wide, rest, last.length > 0 ? false : squares)], { to: DataType.FLOAT });
  }

  /** ReduceSum over axes given as a runtime int64 tensor (opset >= 13); no axes: identity. */
  reduceSumDynamic(x: string, axes: string): string {
    if (this.opset < 13) throw new Error("internal: dynamic ReduceSum axes need opset >= 13");
    return this.op("ReduceSum", [x, axes], { keepdims: 1, noop_with_empty_axes: 1 });
  }

  /** ReduceMean over `axes` (axes as input from opset 18). */
  reduceMean(x: string, axes: readonly number[], keepdims: boolean): string {
    if (this.opset >= 18) return this.op("ReduceMean", [x, this.i64(axes)], { keepdims: keepdims ? 1 : 0 });
    return this.op("ReduceMean", [x], { axes, keepdims: keepdims ? 1 : 0 });
  }

  /** ReduceSumSquare over `axes` (axes as input from opset 18). */
  reduceSumSquare(x: string, axes: readonly number[], keepdims: boolean): string {
    if (this.opset >= 18)
      return this.op("ReduceSumSquare", [x, this.i64(axes)], { keepdims: keepdims ? 1 : 0 });
    return this.op("ReduceSumSquare", [x], { axes, keepdims: keepdims ? 1 : 0 });
  }

  /** Unsqueeze (axes as input from opset 13). */
  unsqueeze(x: string, axes: readonly number[]): string {
    if (this.opset >= 13) return this.op("Unsqueeze", [x, this.i64(axes)]);
    return this.op("Unsqueeze", [x], { axes });
  }

  /** Squeeze (axes as input from opset 13). */
  squeeze(x: string, axes: readonly number[]): string {
    if (this.opset >= 13) return this.op("Squeeze", [x, this.i64(axes)]);
    return this.op("Squeeze", [x], { axes });
  }

  /** Split along `axis` into pieces of the given sizes (sizes as input from opset 13). */
  split(x: string, axis: number, sizes: readonly number[]): string[] {
    if (this.opset >= 13) return this.opN("Split", [x, this.i64(sizes)], sizes.length, { axis });
    return this.opN("Split", [x], sizes.length, { axis, split: sizes });
  }

  /** Slice with constant starts/ends/axes/steps (inputs, opset >= 10). */
  slice(
    x: string,
    starts: readonly number[],
    ends: readonly number[],
    axes: readonly number[],
    steps?: readonly number[],
  ): string {
    const inputs = [x, this.i64(starts), this.i64(ends), this.i64(axes)];
    if (steps?.some((s) => s !== 1)) inputs.push(this.i64(steps));
    return this.op("Slice", inputs);
  }

  /** Pad with zeros (pads as input from opset 11): `pads` = [begin..., end...] over all axes. */
  pad(x: string, pads: readonly number[]): string {
    if (pads.every((p) => p === 0)) return x;
    if (this.opset >= 11) return this.op("Pad", [x, this.i64(pads)]);
    return this.op("Pad", [x], { pads });
  }

  /** Reshape to a constant shape (0 copies a dim, -1 infers one). */
  reshape(x: string, shape: readonly number[]): string {
    return this.op("Reshape", [x, this.i64(shape)]);
  }

  /** Transpose (identity permutation: returns x). */
  transpose(x: string, perm: readonly number[]): string {
    if (perm.every((p, i) => p === i)) return x;
    return this.op("Transpose", [x], { perm });
  }
}
