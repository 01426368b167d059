// Softmax regression (the zoo MLP without hidden layers) on a seeded toy batch, with its exact
// Hessian w.r.t. the weight matrix: H[(k,f),(l,g)] = mean_n x_nf x_ng (p_nk [k = l] - p_nk p_nl).
// Curvature code run through ONNX Runtime is checked against this closed form.

import { Random } from "../../src/core/random.ts";
import type { Dataset } from "../../src/data/dataset.ts";
import { zooModel } from "../../src/zoo/zoo.ts";

export function softmaxRegression() {
  const K = 3;
  const F = 4;
  const N = 10;
  const model = zooModel("mlp", { hidden: [], inputShape: [1, 2, 2], classes: K, seed: 1 });
  const rng = new Random(8);
  const theta = model.initial.map((v) => 3 * v);
  const data: Dataset = {
    name: "toy",
    shape: [1, 2, 2],
    inputs: Float32Array.from({ length: N * F }, () => rng.normal()),
    labels: Uint8Array.from({ length: N }, (_, i) => i % K),
    classes: K,
  };
  const w = model.params.find((p) => p.name === "fc1.weight")!;
  const b = model.params.find((p) => p.name === "fc1.bias")!;
  const dim = K * F;
  const H = new Float64Array(dim * dim);
  for (let n = 0; n < N; n++) {
    const x = data.inputs.subarray(n * F, (n + 1) * F);
    const z = Array.from({ length: K }, (_, k) => {
      let s = theta[b.offset + k]!;
      for (let f = 0; f < F; f++) s += theta[w.offset + k * F + f]! * x[f]!;
      return s;
    });
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const sum = e.reduce((p, q) => p + q, 0);
    const p = e.map((v) => v / sum);
    for (let k = 0; k < K; k++)
      for (let l = 0; l < K; l++)
        for (let f = 0; f < F; f++)
          for (let g = 0; g < F; g++)
            H[(k * F + f) * dim + l * F + g]! +=
              (x[f]! * x[g]! * ((k === l ? p[k]! : 0) - p[k]! * p[l]!)) / N;
  }
  /** q^T H^k q for q over the weight entries (length dim). */
  const moment = (q: ArrayLike<number>, k: number): number => {
    let v = Float64Array.from(q);
    for (let r = 0; r < k; r++) {
      const u = new Float64Array(dim);
      for (let i = 0; i < dim; i++) for (let j = 0; j < dim; j++) u[i] = u[i]! + H[i * dim + j]! * v[j]!;
      v = u;
    }
    let s = 0;
    for (let i = 0; i < dim; i++) s += (q[i] as number) * v[i]!;
    return s;
  };
  return { model, theta, data, w, b, dim, H, moment };
}
