// ConvTranspose gradients against an independent float64 reference, for every
// case of _structural-cases.ts. ORT has no double ConvTranspose, so the finite
// difference checks of these rules run in float32 with tolerances a 1 % error
// can pass; here the logits are the ConvTranspose output itself, the upstream
// gradient (softmax - one-hot) / N is computed exactly, and the weight, bias
// and input gradients follow from the op's definition written out as loops.
// The same loops give the forward pass, checked against ORT's, which pins the
// index conventions (groups, strides, pads, dilations, output_padding).

import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { gradientGraph } from "../../src/autodiff/gradient.ts";
import { Random } from "../../src/core/random.ts";
import { GraphBuilder, ints } from "../../src/onnx/builder.ts";
import { encodeModel } from "../../src/onnx/proto.ts";
import { relativeError } from "../helpers.ts";
import { CONV_TRANSPOSE_CASES } from "./_structural-cases.ts";

interface Geometry {
  n: number;
  cin: number;
  cout: number;
  group: number;
  inSpatial: number[];
  outSpatial: number[];
  kernel: number[];
  strides: number[];
  pads: number[];
  dilations: number[];
}

const product = (v: readonly number[]): number => v.reduce((p, q) => p * q, 1);

/** Row-major multi-index of a flat index. */
function unflat(k: number, dims: readonly number[]): number[] {
  const out = new Array<number>(dims.length);
  for (let d = dims.length - 1; d >= 0; d--) {
    out[d] = k % dims[d]!;
    k = Math.floor(k / dims[d]!);
  }
  return out;
}

/**
 * Every (input position, kernel offset) -> output position contribution of ConvTranspose:
 * o = i * stride - pad_begin + k * dilation, per spatial axis, inside the output.
 */
function* taps(g: Geometry): Generator<[number, number, number]> {
  const s = g.kernel.length;
  for (let i = 0; i < product(g.inSpatial); i++) {
    const ii = unflat(i, g.inSpatial);
    for (let k = 0; k < product(g.kernel); k++) {
      const kk = unflat(k, g.kernel);
      let o = 0;
      let inside = true;
      for (let d = 0; d < s; d++) {
        const od = ii[d]! * g.strides[d]! - g.pads[d]! + kk[d]! * g.dilations[d]!;
        if (od < 0 || od >= g.outSpatial[d]!) inside = false;
        o = o * g.outSpatial[d]! + od;
      }
      if (inside) yield [i, k, o];
    }
  }
}

/** y = ConvTranspose(a, w) + b, and the adjoint sums for an upstream gradient G, in float64. */
function reference(
  g: Geometry,
  a: Float64Array,
  w: Float64Array,
  b: Float64Array | undefined,
  G?: Float64Array,
) {
  const P = product(g.inSpatial);
  const Q = product(g.outSpatial);
  const K = product(g.kernel);
  const cinG = g.cin / g.group;
  const coutG = g.cout / g.group;
  const y = new Float64Array(g.n * g.cout * Q);
  const da = new Float64Array(a.length);
  const dw = new Float64Array(w.length);
  const db = new Float64Array(g.cout);
  const list = [...taps(g)];
  for (let n = 0; n < g.n; n++) {
    for (let gr = 0; gr < g.group; gr++) {
      for (let ci = 0; ci < cinG; ci++) {
        const c = gr * cinG + ci;
        for (let co = 0; co < coutG; co++) {
          const oc = gr * coutG + co;
          for (const [i, k, o] of list) {
            const wi = (c * coutG + co) * K + k;
            const ai = (n * g.cin + c) * P + i;
            const yi = (n * g.cout + oc) * Q + o;
            y[yi]! += a[ai]! * w[wi]!;
            if (G) {
              dw[wi]! += a[ai]! * G[yi]!;
              da[ai]! += w[wi]! * G[yi]!;
            }
          }
        }
      }
    }
  }
  if (b) {
    for (let n = 0; n < g.n; n++)
      for (let oc = 0; oc < g.cout; oc++)
        for (let o = 0; o < Q; o++) {
          y[(n * g.cout + oc) * Q + o]! += b[oc]!;
          if (G) db[oc]! += G[(n * g.cout + oc) * Q + o]!;
        }
  }
  return { y, da, dw, db };
}

describe("ConvTranspose gradients against a float64 reference", () => {
  it.each(CONV_TRANSPOSE_CASES)("%s", async (_, attrs, wDims, bias) => {
    const kernel = attrs.kernel_shape as number[];
    const s = kernel.length;
    const inSpatial = s === 1 ? [5] : [4, 3];
    const group = (attrs.group as number | undefined) ?? 1;
    const strides = (attrs.strides as number[] | undefined) ?? new Array<number>(s).fill(1);
    const dilations = (attrs.dilations as number[] | undefined) ?? new Array<number>(s).fill(1);
    const pads = (attrs.pads as number[] | undefined) ?? new Array<number>(2 * s).fill(0);
    const outputPadding = (attrs.output_padding as number[] | undefined) ?? new Array<number>(s).fill(0);
    const outSpatial = inSpatial.map(
      (d, i) =>
        strides[i]! * (d - 1) +
        outputPadding[i]! +
        dilations[i]! * (kernel[i]! - 1) +
        1 -
        pads[i]! -
        pads[i + s]!,
    );
    const geo: Geometry = {
      n: 3,
      cin: wDims[0]!,
      cout: wDims[1]! * group,
      group,
      inSpatial,
      outSpatial,
      kernel,
      strides,
      pads,
      dilations,
    };
    const rng = new Random(7);
    const normal = (count: number) => Float32Array.from({ length: count }, () => rng.normal());
    const x = normal(geo.n * geo.cin * product(inSpatial));
    const scale = Float32Array.from({ length: geo.cin }, () => 0.5 + rng.uniform());
    const w = normal(product(wDims));
    const b = bias ? normal(geo.cout) : undefined;
    const classes = geo.cout * product(outSpatial);
    const labels = Array.from({ length: geo.n }, () => rng.int(classes));

    // logits = Flatten(ConvTranspose(x * scale, w, b)): the loss sees the op's output directly.
    const gb = new GraphBuilder("convtranspose");
    gb.input("x", [geo.n, geo.cin, ...inSpatial]);
    gb.initializer("scale", [1, geo.cin, ...inSpatial.map(() => 1)], scale);
    gb.initializer("w", wDims, w);
    if (b) gb.initializer("b", [geo.cout], b);
    const scaled = gb.node("Mul", ["x", "scale"]);
    const attributes = Object.fromEntries(
      Object.entries(attrs).map(([k, v]) => [k, Array.isArray(v) ? ints(v) : { int: v as number }]),
    );
    const y = gb.node("ConvTranspose", b ? [scaled, "w", "b"] : [scaled, "w"], attributes);
    const logits = gb.node("Reshape", [y, gb.int64([geo.n, classes])]);
    gb.output(logits, [geo.n, classes]);
    const trainable = ["scale", "w", ...(b ? ["b"] : [])];
    const graph = gradientGraph(gb.build(13), { trainable, parameters: "initializers" });
    const session = await ort.InferenceSession.create(encodeModel(graph.proto).bytes, {
      intraOpNumThreads: 1,
    });
    let out: ort.InferenceSession.ReturnType;
    try {
      out = await session.run({
        input: new ort.Tensor("float32", x, [geo.n, geo.cin, ...inSpatial]),
        labels: new ort.Tensor("int64", BigInt64Array.from(labels.map(BigInt)), [geo.n]),
      });
    } finally {
      await session.release();
    }

    // The forward pass: ORT's logits equal the loops' (index conventions agree).
    const a = Float64Array.from(x, (v, i) => v * scale[Math.floor(i / product(inSpatial)) % geo.cin]!);
    const plain = reference(geo, a, Float64Array.from(w), b && Float64Array.from(b));
    const got = out[graph.logits!]!.data as Float32Array;
    expect(relativeError(got, plain.y)).toBeLessThan(1e-5);

    // Upstream gradient of the mean cross-entropy at the logits, exactly.
    const G = new Float64Array(got.length);
    for (let n = 0; n < geo.n; n++) {
      const row = Array.from(got.subarray(n * classes, (n + 1) * classes));
      const m = Math.max(...row);
      const z = row.reduce((acc, v) => acc + Math.exp(v - m), 0);
      row.forEach((v, c) => {
        G[n * classes + c] = (Math.exp(v - m) / z - (c === labels[n] ? 1 : 0)) / geo.n;
      });
    }
    const ref = reference(geo, a, Float64Array.from(w), b && Float64Array.from(b), G);
    const grad = (p: string) => out[`grad:${p}`]!.data as Float32Array;
    expect(relativeError(grad("w"), ref.dw)).toBeLessThan(1e-4);
    if (b) expect(relativeError(grad("b"), ref.db)).toBeLessThan(1e-4);
    // d loss / d scale[c] = sum over samples and positions of (d loss / d a) * x.
    const ds = new Float64Array(geo.cin);
    ref.da.forEach((v, i) => {
      ds[Math.floor(i / product(inSpatial)) % geo.cin]! += v * x[i]!;
    });
    expect(relativeError(grad("scale"), ds)).toBeLessThan(1e-4);
  });
});
