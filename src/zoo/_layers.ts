// Layer helpers for the zoo: each adds ONNX nodes and PyTorch-default
// initialized parameters under PyTorch `state_dict` names.

import type { Random } from "../core/random.ts";
import { float, type GraphBuilder, int, ints } from "../onnx/builder.ts";

/** The nonlinearity of a zoo model: PyTorch's ReLU, or Softplus (log(1 + e^x)), which has no kink. */
export type Activation = "relu" | "softplus";

/** The builder, a seeded stream for initial values, and the model's nonlinearity. */
export interface Ctx {
  readonly b: GraphBuilder;
  readonly rng: Random;
  readonly activation: Activation;
}

/** U(-bound, bound) values; PyTorch's default for Conv/Linear (kaiming_uniform with a = sqrt(5)) is bound = 1/sqrt(fan_in). */
function uniform(rng: Random, n: number, bound: number): Float32Array {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = rng.range(-bound, bound);
  return v;
}

/** 2D convolution, weights [out, in, k, k], PyTorch default init. */
export function conv(
  { b, rng }: Ctx,
  name: string,
  x: string,
  cin: number,
  cout: number,
  {
    k = 3,
    stride = 1,
    pad = 1,
    bias = false,
  }: { k?: number; stride?: number; pad?: number; bias?: boolean } = {},
): string {
  const fanIn = cin * k * k;
  const bound = 1 / Math.sqrt(fanIn);
  const w = b.initializer(`${name}.weight`, [cout, cin, k, k], uniform(rng, cout * fanIn, bound));
  const inputs = [x, w];
  if (bias) inputs.push(b.initializer(`${name}.bias`, [cout], uniform(rng, cout, bound)));
  return b.node("Conv", inputs, {
    kernel_shape: ints([k, k]),
    strides: ints([stride, stride]),
    pads: ints([pad, pad, pad, pad]),
  });
}

/** Batch normalization in inference form (running statistics), PyTorch init: scale 1, shift 0, mean 0, var 1. */
export function batchNorm({ b }: Ctx, name: string, x: string, c: number): string {
  const scale = b.initializer(`${name}.weight`, [c], new Float32Array(c).fill(1));
  const shift = b.initializer(`${name}.bias`, [c], new Float32Array(c));
  const mean = b.initializer(`${name}.running_mean`, [c], new Float32Array(c));
  const variance = b.initializer(`${name}.running_var`, [c], new Float32Array(c).fill(1));
  return b.node("BatchNormalization", [x, scale, shift, mean, variance], {
    epsilon: float(1e-5),
    momentum: float(0.9),
  });
}

/** Dense layer y = x W^T + b with W [out, in] (Gemm transB = 1), PyTorch default init. */
export function linear({ b, rng }: Ctx, name: string, x: string, fin: number, fout: number): string {
  const bound = 1 / Math.sqrt(fin);
  const w = b.initializer(`${name}.weight`, [fout, fin], uniform(rng, fout * fin, bound));
  const bias = b.initializer(`${name}.bias`, [fout], uniform(rng, fout, bound));
  return b.node("Gemm", [x, w, bias], { transB: int(1) });
}

/** The model's nonlinearity (ReLU unless the model was built with another `activation`). */
export function activate({ b, activation }: Ctx, x: string): string {
  switch (activation) {
    case "relu":
      return b.node("Relu", [x]);
    case "softplus":
      return b.node("Softplus", [x]);
    default:
      return activation satisfies never;
  }
}

export const maxPool = ({ b }: Ctx, x: string, k = 2): string =>
  b.node("MaxPool", [x], { kernel_shape: ints([k, k]), strides: ints([k, k]) });

export const globalAvgPool = ({ b }: Ctx, x: string): string => b.node("GlobalAveragePool", [x]);

export const flatten = ({ b }: Ctx, x: string): string => b.node("Flatten", [x], { axis: int(1) });
