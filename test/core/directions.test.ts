import { describe, expect, it } from "vitest";
import {
  filterNorms,
  modelDirection,
  normalizeDirection,
  orthogonalize,
  randomDirection,
} from "../../src/core/directions.ts";
import { Random } from "../../src/core/random.ts";
import { dot, norm } from "../../src/core/vector.ts";
import type { ParamSpec } from "../../src/model/model.ts";
import { zooModel } from "../../src/zoo/zoo.ts";
import { expectAllClose } from "../helpers.ts";

// A conv [4,3,3,3], its BN (scale, shift, mean, var), a MatMul weight [5,6] with filters along axis 1, a bias [6].
function layout(): { params: ParamSpec[]; theta: Float32Array } {
  const shapes: [string, number[], ParamSpec["role"], number?][] = [
    ["conv.weight", [4, 3, 3, 3], "filter", 0],
    ["bn.weight", [4], "bn-scale"],
    ["bn.bias", [4], "bn-shift"],
    ["bn.running_mean", [4], "bn-stat"],
    ["bn.running_var", [4], "bn-stat"],
    ["mm.weight", [5, 6], "filter", 1],
    ["mm.bias", [6], "bias"],
  ];
  let offset = 0;
  const params = shapes.map(([name, shape, role, filterAxis]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const p: ParamSpec = {
      name,
      shape,
      role,
      offset,
      size,
      ...(filterAxis !== undefined ? { filterAxis } : {}),
    };
    offset += size;
    return p;
  });
  const rng = new Random(3);
  const theta = Float32Array.from({ length: offset }, () => rng.normal() * 2);
  return { params, theta };
}

describe("randomDirection", () => {
  it("gives each filter of a filter-normalized direction the norm of the matching weight filter", () => {
    const { params, theta } = layout();
    const d = randomDirection(theta, params, { seed: 1 });
    for (const p of params.filter((q) => q.shape.length >= 2)) {
      expectAllClose(filterNorms(d, p), filterNorms(theta, p), { rtol: 1e-5 });
    }
  });

  it("slices MatMul [in, out] weights along axis 1 (columns are filters)", () => {
    const { params, theta } = layout();
    const mm = params[5]!;
    const d = randomDirection(theta, params, { seed: 2 });
    const col = (v: Float32Array, j: number) =>
      Math.hypot(...Array.from({ length: 5 }, (_, i) => v[mm.offset + i * 6 + j] as number));
    for (let j = 0; j < 6; j++) expect(col(d, j)).toBeCloseTo(col(theta, j), 4);
  });

  it("zeroes bias and BN entries by default and copies theta into them when they are kept", () => {
    const { params, theta } = layout();
    const d = randomDirection(theta, params, { seed: 1 });
    for (const p of params.filter((q) => q.shape.length < 2)) {
      expect(Array.from(d.subarray(p.offset, p.offset + p.size)).every((v) => v === 0)).toBe(true);
    }
    const kept = randomDirection(theta, params, { seed: 1, ignoreBiasBN: false });
    const bias = params[6]!;
    expectAllClose(
      kept.subarray(bias.offset, bias.offset + bias.size),
      theta.subarray(bias.offset, bias.offset + bias.size),
    );
    // weights mode: BN running statistics never move, even when rank-1 tensors are kept.
    const stat = params[3]!;
    expect(Array.from(kept.subarray(stat.offset, stat.offset + stat.size)).every((v) => v === 0)).toBe(true);
    const states = randomDirection(theta, params, { seed: 1, ignoreBiasBN: false, mode: "states" });
    expectAllClose(
      states.subarray(stat.offset, stat.offset + stat.size),
      theta.subarray(stat.offset, stat.offset + stat.size),
    );
  });

  it("is reproducible from its seed and differs between seeds", () => {
    const { params, theta } = layout();
    expect(randomDirection(theta, params, { seed: 5 })).toEqual(randomDirection(theta, params, { seed: 5 }));
    expect(randomDirection(theta, params, { seed: 5 })).not.toEqual(
      randomDirection(theta, params, { seed: 6 }),
    );
  });

  it("implements layer, weight, dfilter, dlayer and none normalizations", () => {
    const { params, theta } = layout();
    const raw = randomDirection(theta, params, { seed: 4, normalization: "none" });
    const conv = params[0]!;
    const slice = (v: Float32Array) => v.subarray(conv.offset, conv.offset + conv.size);
    const layer = randomDirection(theta, params, { seed: 4, normalization: "layer" });
    expect(norm(slice(layer))).toBeCloseTo(norm(slice(theta)), 4);
    const weight = randomDirection(theta, params, { seed: 4, normalization: "weight" });
    expectAllClose(
      slice(weight),
      slice(raw).map((v, i) => v * (slice(theta)[i] as number)),
      { rtol: 1e-6 },
    );
    const dfilter = randomDirection(theta, params, { seed: 4, normalization: "dfilter" });
    expectAllClose(filterNorms(dfilter, conv), new Float64Array(4).fill(1), { rtol: 1e-5 });
    const dlayer = randomDirection(theta, params, { seed: 4, normalization: "dlayer" });
    expect(norm(slice(dlayer))).toBeCloseTo(1, 5);
  });

  it("names a wrong parameter vector and an unknown normalization", () => {
    const { params, theta } = layout();
    expect(() => randomDirection(theta.subarray(1), params, { seed: 0 })).toThrow(
      /'theta' has 159 values but the parameters have 160/,
    );
    expect(() => randomDirection(theta, params, { seed: 0, normalization: "bogus" as "filter" })).toThrow(
      /unknown normalization 'bogus'; expected one of filter, layer, weight, dfilter, dlayer, none/,
    );
  });
});

describe("filter normalization and rescaling (the paper's motivating argument)", () => {
  it("gives the same direction, relative to the weights, after scaling one layer by 10 and the next by 1/10", () => {
    const model = zooModel("mlp", { inputShape: [8], hidden: [6], classes: 3, seed: 2 });
    const theta = model.initial;
    const scaled = theta.slice();
    const [w1, b1, w2] = model.params as [ParamSpec, ParamSpec, ParamSpec];
    for (let i = w1.offset; i < w1.offset + w1.size; i++) scaled[i] = (scaled[i] as number) * 10;
    for (let i = b1.offset; i < b1.offset + b1.size; i++) scaled[i] = (scaled[i] as number) * 10;
    for (let i = w2.offset; i < w2.offset + w2.size; i++) scaled[i] = (scaled[i] as number) / 10;
    const d = randomDirection(theta, model.params, { seed: 9 });
    const ds = randomDirection(scaled, model.params, { seed: 9 });
    // Filter-normalized directions scale with their layer, so theta + a*d maps onto scaled + a*ds by the same rescaling.
    for (let i = w1.offset; i < w1.offset + w1.size; i++) expect(ds[i]).toBeCloseTo((d[i] as number) * 10, 3);
    for (let i = w2.offset; i < w2.offset + w2.size; i++) expect(ds[i]).toBeCloseTo((d[i] as number) / 10, 5);
  });
});

describe("modelDirection", () => {
  it("is theta_B - theta_A including BN statistics in states mode, without them in weights mode", () => {
    const { params, theta } = layout();
    const other = theta.map((v, i) => v + i * 0.01);
    const d = modelDirection(theta, other, params);
    expectAllClose(
      d,
      other.map((v, i) => v - (theta[i] as number)),
      { rtol: 1e-5, atol: 1e-6 },
    );
    const w = modelDirection(theta, other, params, { mode: "weights" });
    const stat = params[4]!;
    expect(Array.from(w.subarray(stat.offset, stat.offset + stat.size)).every((v) => v === 0)).toBe(true);
  });
});

describe("orthogonalize", () => {
  it("removes the component along the first direction and returns the cosine before", () => {
    const { params, theta } = layout();
    const d1 = randomDirection(theta, params, { seed: 1, normalization: "none" });
    const d2 = d1.map((v, i) => v + 0.1 * Math.sin(i));
    const cos = orthogonalize(d2, d1);
    expect(cos).toBeGreaterThan(0.9);
    expect(Math.abs(dot(d1, d2)) / (norm(d1) * norm(d2))).toBeLessThan(1e-6);
  });
});

describe("normalizeDirection", () => {
  it("leaves rank-1 tensors untouched", () => {
    const { params, theta } = layout();
    const d = new Float32Array(theta.length).fill(3);
    normalizeDirection(d, theta, params, "filter");
    const bias = params[6]!;
    expect(Array.from(d.subarray(bias.offset, bias.offset + bias.size))).toEqual(new Array(6).fill(3));
  });
});
