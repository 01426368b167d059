// Checks of a gradient step against the PyTorch float64 summaries of
// fixtures/zoo-gradients.json (made by fixtures/make-gradient-fixtures.ts),
// shared by the zoo gradient tests and the blocked-convolution tests.

import { readFileSync } from "node:fs";
import { expect } from "vitest";
import {
  buildGradientFixture,
  normAndDot,
  probeSeed,
  type TensorSummary,
} from "../../fixtures/make-gradient-fixtures.ts";
import type { GradientStep } from "../../src/autodiff/session.ts";
import { isTrainable, type Model, paramView } from "../../src/model/model.ts";

/** One batch-norm mode of a fixture in zoo-gradients.json. */
export interface ModeResult {
  loss: number;
  reluMargin: number | null;
  gradients: Record<string, TensorSummary>;
  statistics?: Record<string, TensorSummary>;
}

/** fixtures/zoo-gradients.json. */
export const reference = JSON.parse(
  readFileSync(new URL("../../fixtures/zoo-gradients.json", import.meta.url), "utf8"),
) as {
  torch: string;
  models: string[];
  results: Record<string, { batchSeed: number | null } & Record<"inference" | "training", ModeResult>>;
};

/** The model, parameters and batch a fixture's reference was made on. */
export const gradientFixture = (name: string) =>
  buildGradientFixture(name, reference.results[name]!.batchSeed);

/**
 * Checks a float32 tensor against a float64 reference summary: norm, the component of the error
 * along a seeded random probe (catches an error anywhere in the tensor) and sampled entries, all
 * within `rtol` of the tensor's norm (entries: of max(|entry|, rms)). `floor` is the smallest norm
 * errors are measured against: a tensor whose exact gradient is zero (a shift removed by the next
 * batch norm) holds only float32 rounding, measured against the whole gradient's norm.
 */
export function expectMatches(
  values: Float32Array,
  ref: TensorSummary,
  key: string,
  rtol: number,
  floor = 0,
): void {
  const { norm, dot } = normAndDot(values, probeSeed(key));
  const scale = Math.max(ref.norm, floor);
  expect(Math.abs(norm - ref.norm), `${key}: norm ${norm} vs ${ref.norm}`).toBeLessThanOrEqual(rtol * scale);
  expect(Math.abs(dot - ref.dot), `${key}: probe ${dot} vs ${ref.dot}`).toBeLessThanOrEqual(rtol * scale);
  const rms = scale / Math.sqrt(values.length);
  for (const [i, v] of ref.samples) {
    expect(Math.abs(values[i]! - v), `${key}[${i}]: ${values[i]} vs ${v}`).toBeLessThanOrEqual(
      rtol * Math.max(Math.abs(v), rms),
    );
  }
}

/**
 * Checks a step's loss, every trainable gradient (zero elsewhere) and, in training mode, every
 * batch statistic against the reference of fixture `name` in batch-norm `mode`.
 */
export function expectReferenceStep(
  model: Model,
  name: string,
  mode: "inference" | "training",
  step: GradientStep,
  rtol: number,
): void {
  const ref = reference.results[name]![mode];
  expect(Math.abs(step.loss - ref.loss) / ref.loss).toBeLessThan(Math.min(1e-5, rtol));
  const trainable = model.params.filter((p) => isTrainable(p.role));
  expect(Object.keys(ref.gradients)).toEqual(trainable.map((p) => p.name));
  for (const p of trainable) {
    expectMatches(
      paramView(step.gradient, p),
      ref.gradients[p.name]!,
      `${name}/${mode}/grad:${p.name}`,
      rtol,
    );
  }
  for (const p of model.params.filter((q) => !isTrainable(q.role))) {
    expect(paramView(step.gradient, p).every((v) => v === 0)).toBe(true);
  }
  if (mode === "training") {
    const stats = ref.statistics!;
    expect([...step.statistics.keys()].sort()).toEqual(Object.keys(stats).sort());
    for (const [param, summary] of Object.entries(stats)) {
      expectMatches(step.statistics.get(param)!, summary, `${name}/${mode}/bnstat:${param}`, rtol);
    }
  } else expect(step.statistics.size).toBe(0);
}
