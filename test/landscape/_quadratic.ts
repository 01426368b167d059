// A model whose loss is an exact quadratic of its parameters, L(p) = 0.5 * sum_i h_i p_i^2,
// behind the Engine interface: surfaces and curvature code are checked against closed forms with it.

import type { Dataset } from "../../src/data/dataset.ts";
import type { Engine, Metrics } from "../../src/engine/engine.ts";
import type { Model, ParamSpec } from "../../src/model/model.ts";

export function quadraticModel(h: readonly number[]): { model: Model; engine: Engine } {
  const spec: ParamSpec = {
    name: "w",
    shape: [h.length, 1],
    role: "filter",
    filterAxis: 0,
    offset: 0,
    size: h.length,
  };
  const model: Model = {
    name: "quadratic",
    onnx: new Uint8Array([1, 2, 3]),
    rawOffsets: [0],
    input: { name: "x", shape: [1], batch: null },
    output: "y",
    classes: 2,
    params: [spec],
    size: h.length,
    initial: new Float32Array(h.length),
    warnings: [],
  };
  const loss = (p: Float32Array) => p.reduce((s, v, i) => s + 0.5 * (h[i] as number) * v * v, 0);
  const engine: Engine = {
    model,
    async evaluate(params: Float32Array, data: Dataset): Promise<Metrics> {
      return {
        loss: loss(params),
        accuracy: 1 / (1 + loss(params)),
        count: data.labels.length,
        lossSe: Number.NaN,
      };
    },
    async logits() {
      return new Float32Array(0);
    },
    async dispose() {},
  };
  return { model, engine };
}
