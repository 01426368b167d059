// Directions in parameter space (method.md, "Directions"): seeded Gaussian
// directions, filter normalization (Li et al. 2018, Sec. 4) and its
// alternatives, directions between two models, and orthogonalization.
// Pure functions on flat vectors laid out by a model's ParamSpec list.

import type { ParamSpec } from "../model/model.ts";
import { Random } from "./random.ts";
import { dot } from "./vector.ts";

/**
 * How a direction is scaled per tensor: `filter` (each filter gets its weight filter's norm, the paper's choice),
 * `layer` (each tensor gets its weight tensor's norm), `weight` (d * theta elementwise), `dfilter` / `dlayer`
 * (unit norm per filter / per tensor, for directions between two models), `none`.
 */
export type Normalization = "filter" | "layer" | "weight" | "dfilter" | "dlayer" | "none";

/** All normalizations, for validation and help texts. */
export const NORMALIZATIONS: readonly Normalization[] = [
  "filter",
  "layer",
  "weight",
  "dfilter",
  "dlayer",
  "none",
];

/** `weights`: batch-norm running statistics never move; `states`: they are part of the direction too. */
export type DirectionMode = "weights" | "states";

/** Options of a random direction. */
export interface RandomDirectionOptions {
  /** Seed of the Gaussian draws (same seed, same direction on every machine). */
  seed: number;
  /** Default "filter". */
  normalization?: Normalization;
  /** Zero the rank-1 tensors (bias, BN scale/shift/statistics), the paper's setting (default true). When false they get d = theta, as the reference code does. */
  ignoreBiasBN?: boolean;
  /** Default "weights". */
  mode?: DirectionMode;
  /** Move only the tensors whose names match (e.g. /^layer3\./): every other entry of d is 0. */
  only?: RegExp;
}

/** Values of one filter: outer x inner blocks strided around the filter axis. */
function filterLayout(spec: ParamSpec): { outer: number; filters: number; inner: number } {
  const axis = spec.filterAxis ?? 0;
  const shape = spec.shape;
  const filters = shape[axis] ?? 1;
  let outer = 1;
  for (let k = 0; k < axis; k++) outer *= shape[k] as number;
  return { outer, filters, inner: spec.size / (outer * filters) };
}

/** Calls fn(index) for every value of filter j of a tensor stored at `base`. */
function forFilter(spec: ParamSpec, j: number, fn: (index: number) => void): void {
  const { outer, filters, inner } = filterLayout(spec);
  for (let o = 0; o < outer; o++) {
    const start = spec.offset + (o * filters + j) * inner;
    for (let k = 0; k < inner; k++) fn(start + k);
  }
}

/**
 * Scales a direction in place, tensor by tensor, per `normalization` (method.md). Only tensors of rank >= 2 are touched.
 *
 * @example
 * normalizeDirection(d, theta, model.params, "filter");
 */
export function normalizeDirection(
  d: Float32Array,
  theta: Float32Array,
  params: readonly ParamSpec[],
  normalization: Normalization,
): void {
  for (const p of params) {
    if (p.shape.length < 2) continue;
    switch (normalization) {
      case "filter":
      case "dfilter": {
        const { filters } = filterLayout(p);
        for (let j = 0; j < filters; j++) {
          let dn = 0;
          let tn = 0;
          forFilter(p, j, (i) => {
            dn += (d[i] as number) ** 2;
            tn += (theta[i] as number) ** 2;
          });
          const scale =
            normalization === "filter"
              ? Math.sqrt(tn) / (Math.sqrt(dn) + 1e-10)
              : 1 / (Math.sqrt(dn) + 1e-10);
          forFilter(p, j, (i) => {
            d[i] = (d[i] as number) * scale;
          });
        }
        break;
      }
      case "layer":
      case "dlayer": {
        let dn = 0;
        let tn = 0;
        for (let i = p.offset; i < p.offset + p.size; i++) {
          dn += (d[i] as number) ** 2;
          tn += (theta[i] as number) ** 2;
        }
        const scale =
          normalization === "layer" ? Math.sqrt(tn) / (Math.sqrt(dn) + 1e-10) : 1 / (Math.sqrt(dn) + 1e-10);
        for (let i = p.offset; i < p.offset + p.size; i++) d[i] = (d[i] as number) * scale;
        break;
      }
      case "weight":
        for (let i = p.offset; i < p.offset + p.size; i++) d[i] = (d[i] as number) * (theta[i] as number);
        break;
      case "none":
        break;
      default:
        normalization satisfies never;
        throw new Error(
          `normalizeDirection(): unknown normalization '${normalization as string}'; expected one of ${NORMALIZATIONS.join(", ")}`,
        );
    }
  }
}

/** Applies the rank-1 and mode rules to a direction in place. */
function applyRules(
  d: Float32Array,
  theta: Float32Array,
  params: readonly ParamSpec[],
  ignoreBiasBN: boolean,
  mode: DirectionMode,
): void {
  for (const p of params) {
    const end = p.offset + p.size;
    if (p.role === "bn-stat" && mode === "weights") d.fill(0, p.offset, end);
    else if (p.shape.length < 2) {
      if (ignoreBiasBN) d.fill(0, p.offset, end);
      else d.set(theta.subarray(p.offset, end), p.offset);
    }
  }
}

function checkLength(v: Float32Array, params: readonly ParamSpec[], what: string, where: string): void {
  const last = params[params.length - 1];
  const size = last ? last.offset + last.size : 0;
  if (v.length !== size)
    throw new Error(`${where}: '${what}' has ${v.length} values but the parameters have ${size}`);
}

/**
 * A seeded random direction: i.i.d. N(0, 1) per entry, then normalized (filter normalization by default),
 * with bias/BN entries zeroed (paper setting) and BN statistics fixed unless mode is "states".
 *
 * @example
 * const d1 = randomDirection(model.initial, model.params, { seed: 1 });
 */
export function randomDirection(
  theta: Float32Array,
  params: readonly ParamSpec[],
  options: RandomDirectionOptions,
): Float32Array {
  const { seed, normalization = "filter", ignoreBiasBN = true, mode = "weights" } = options;
  checkLength(theta, params, "theta", "randomDirection()");
  if (!NORMALIZATIONS.includes(normalization)) {
    throw new Error(
      `randomDirection(): unknown normalization '${normalization}'; expected one of ${NORMALIZATIONS.join(", ")}`,
    );
  }
  const rng = new Random(seed);
  const d = new Float32Array(theta.length);
  for (let i = 0; i < d.length; i++) d[i] = rng.normal();
  normalizeDirection(d, theta, params, normalization);
  applyRules(d, theta, params, ignoreBiasBN, mode);
  if (options.only) restrictDirection(d, params, options.only, "randomDirection()");
  return d;
}

/**
 * Zeroes, in place, every tensor of `d` whose name does not match `only`; throws naming the
 * pattern when it matches no tensor. The draws stay those of the whole vector, so a tensor moves
 * the same way with and without the restriction.
 *
 * @example
 * restrictDirection(d, model.params, /^fc\./, "--only");
 */
export function restrictDirection(
  d: Float32Array,
  params: readonly ParamSpec[],
  only: RegExp,
  where: string,
): void {
  const kept = params.filter((p) => only.test(p.name));
  if (kept.length === 0)
    throw new Error(
      `${where}: --only /${only.source}/ matches no parameter; the model has ${params.length}: ${params
        .slice(0, 8)
        .map((p) => p.name)
        .join(", ")}${params.length > 8 ? ", ..." : ""}`,
    );
  for (const p of params) if (!only.test(p.name)) d.fill(0, p.offset, p.offset + p.size);
}

/**
 * Names of the tensors a set of directions moves (some entry non-zero in some direction).
 *
 * @example
 * movedParameters(model.params, [d1, d2]); // ["conv1.weight", ...]
 */
export function movedParameters(params: readonly ParamSpec[], directions: readonly Float32Array[]): string[] {
  return params
    .filter((p) => directions.some((d) => d.subarray(p.offset, p.offset + p.size).some((v) => v !== 0)))
    .map((p) => p.name);
}

/** Options of a direction between two models. */
export interface ModelDirectionOptions {
  /** Default "none" (the plain difference B - A); "dfilter" / "dlayer" give unit filters / tensors. */
  normalization?: Normalization;
  /** Default "states": BN running statistics move between the two models too. */
  mode?: DirectionMode;
  /** Interpolate only the tensors whose names match; the others stay model A's. */
  only?: RegExp;
}

/**
 * The direction from model A to model B: d = theta_B - theta_A, so theta_A + a*d interpolates
 * ((1-a) theta_A + a theta_B). In "states" mode (default) BN running statistics are interpolated too.
 *
 * @example
 * const d = modelDirection(initial, trained, model.params);
 */
export function modelDirection(
  thetaA: Float32Array,
  thetaB: Float32Array,
  params: readonly ParamSpec[],
  { normalization = "none", mode = "states", only }: ModelDirectionOptions = {},
): Float32Array {
  checkLength(thetaA, params, "thetaA", "modelDirection()");
  checkLength(thetaB, params, "thetaB", "modelDirection()");
  const d = new Float32Array(thetaA.length);
  for (let i = 0; i < d.length; i++) d[i] = (thetaB[i] as number) - (thetaA[i] as number);
  normalizeDirection(d, thetaA, params, normalization);
  if (mode === "weights")
    for (const p of params) if (p.role === "bn-stat") d.fill(0, p.offset, p.offset + p.size);
  if (only) restrictDirection(d, params, only, "modelDirection()");
  return d;
}

/**
 * Removes from `d` its component along `along` (one Gram-Schmidt step), in place; returns the cosine before.
 *
 * @example
 * orthogonalize(d2, d1); // now dot(d1, d2) ~ 0
 */
export function orthogonalize(d: Float32Array, along: Float32Array): number {
  const ab = dot(d, along);
  const aa = dot(along, along);
  const dd = dot(d, d);
  if (aa === 0) return 0;
  const c = ab / aa;
  for (let i = 0; i < d.length; i++) d[i] = (d[i] as number) - c * (along[i] as number);
  return dd === 0 ? 0 : ab / Math.sqrt(aa * dd);
}

/**
 * Norm of every filter of tensor `spec` in vector `v` (for checks and reports).
 *
 * @example
 * filterNorms(d, model.params[0]); // one norm per output channel
 */
export function filterNorms(v: Float32Array, spec: ParamSpec): Float64Array {
  const { filters } = filterLayout(spec);
  const out = new Float64Array(filters);
  for (let j = 0; j < filters; j++) {
    let s = 0;
    forFilter(spec, j, (i) => {
      s += (v[i] as number) ** 2;
    });
    out[j] = Math.sqrt(s);
  }
  return out;
}
