// The plan of a queued surface: everything a worker needs to reproduce the
// submitter's evaluation (where the model, parameters, data and directions
// are, the grid, loss and batch size) and the identity hashes it must match.
// Also the wire format of jobs and results. Pure: no Redis, no files.

import type { Dataset } from "../data/dataset.ts";
import type { LoadOptions } from "../data/load.ts";
import type { SubsetSpec } from "../data/transform.ts";
import { LOSS_NAMES, type LossName, type TaskOptions, taskIdentity } from "../engine/task.ts";
import type { SurfaceQuantity } from "../formats/surface-file.ts";
import { dataHash, directionsHash, hashOf, modelHash } from "../landscape/identity.ts";
import { type IDENTITY_KEYS, lossQuantities } from "../landscape/surface.ts";
import type { Model } from "../model/model.ts";

/** Version of the plan record; workers refuse plans of another version. */
export const PLAN_VERSION = 1;

/**
 * The identity fields of a surface (as `jobIdentity` computes them and surface files store them).
 *
 * @example
 * const id: SurfaceIdentity = { model_hash: "…", directions_hash: "…", train_hash: "…", test_hash: "none", loss: "cross-entropy", shard: "all" };
 */
export type SurfaceIdentity = Record<(typeof IDENTITY_KEYS)[number], string>;

/**
 * How a worker opens the model, as `openModel` takes it: a zoo name or an .onnx path, and options.
 *
 * @example
 * const m: ModelSource = { spec: "/shared/resnet56.onnx", params: "/shared/epoch-300.safetensors" };
 */
export interface ModelSource {
  /** Zoo name or path of an .onnx file. */
  spec: string;
  /** safetensors file replacing the parameters. */
  params?: string;
  input?: string;
  output?: string;
  /** Shape of one sample; zoo models default to the training data's. */
  inputShape?: number[];
  allowFoldedBatchNorm?: boolean;
  /** Seed of a zoo model's initial parameters. */
  seed?: number;
  /** --trainable / --constant patterns (regular-expression sources). */
  trainable?: string;
  constant?: string;
  /** The graph's own loss output and its targets input (--loss-output, --targets-input). */
  lossOutput?: string;
  targetsInput?: string;
}

/**
 * How a worker loads the evaluation data, as `loadDataset` takes it.
 *
 * @example
 * const d: DataSource = { spec: "cifar10:/shared/cifar-10-batches-bin", subset: { count: 5000 }, seed: 0, test: false };
 */
export interface DataSource {
  /** Dataset spec: `fashion-mnist`, `mnist:DIR`, `cifar10:DIR`, ... */
  spec: string;
  /** Seeded subset, applied to both splits. */
  subset?: SubsetSpec;
  /** Seed of the subset. */
  seed: number;
  /** Whether test loss and accuracy are computed too. */
  test: boolean;
  /** How the data is read (normalization, layout, test split, token windows, image size, ...). */
  read?: Omit<LoadOptions, "subset" | "seed">;
}

/**
 * A queued surface as workers see it. Serialized as JSON in Redis and in the surface file (without the grid,
 * which the file holds).
 *
 * @example
 * const id = planId(plan); // "5be0c3d2a1f04e77"
 */
export interface SurfacePlan {
  version: typeof PLAN_VERSION;
  model: ModelSource;
  data: DataSource;
  /** Direction file (losscape's or the reference code's). */
  directions: string;
  /** Grid coordinates; point k is (x[k / ny], y[k % ny]) as in `pointCoords`. */
  grid: { x: number[]; y: number[] | null };
  /** Batch size and task (loss, ignore index, class axis) of every evaluation. */
  evaluate: { batchSize: number; loss: LossName; lossCap?: number } & TaskOptions;
  /** What workers must reproduce from the sources before computing anything. */
  identity: SurfaceIdentity;
}

/**
 * The identity of a surface from its inputs; equals `jobIdentity` of the same job, without needing an engine.
 *
 * @example
 * const identity = planIdentity({ model, theta, directions, train, loss: "cross-entropy" });
 */
export function planIdentity(input: {
  model: Model;
  theta: Float32Array;
  directions: readonly Float32Array[];
  train: Dataset;
  test?: Dataset;
  loss: LossName;
  /** Ignore index and class axis, when not the defaults. */
  task?: TaskOptions;
  shard?: { index: number; count: number };
}): SurfaceIdentity {
  return {
    model_hash: modelHash(input.model, input.theta),
    directions_hash: directionsHash(input.directions),
    train_hash: dataHash(input.train),
    test_hash: input.test ? dataHash(input.test) : "none",
    loss: taskIdentity({ ...input.task, loss: input.loss }, input.model),
    shard: input.shard ? `${input.shard.index}/${input.shard.count}` : "all",
  };
}

/**
 * Identity fields that differ between what a plan expects and what a worker holds, as readable phrases.
 *
 * @example
 * identityDifferences(plan.identity, mine); // ["model_hash is 3f2a… in the plan but 9c01… here"]
 */
export function identityDifferences(expected: SurfaceIdentity, actual: SurfaceIdentity): string[] {
  const out: string[] = [];
  for (const key of Object.keys(expected) as (keyof SurfaceIdentity)[]) {
    // The shard restricts which points are queued; workers compute any point they are given.
    if (key === "shard") continue;
    if (expected[key] !== actual[key])
      out.push(`${key} is ${expected[key]} in the plan but ${actual[key]} here`);
  }
  return out;
}

/**
 * A short stable id of a plan (16 hex digits of SHA-256 of its JSON): equal plans share jobs and results.
 *
 * @example
 * planId(plan); // "5be0c3d2a1f04e77"
 */
export function planId(plan: SurfacePlan): string {
  return hashOf(new TextEncoder().encode(JSON.stringify(plan)));
}

/**
 * The quantities a plan computes, in file order.
 *
 * @example
 * planQuantities({ data: { spec: "fashion-mnist", seed: 0, test: true } }); // ["train_loss", "train_acc", "train_loss_se", "test_loss", "test_acc", "test_loss_se"]
 */
export function planQuantities(plan: Pick<SurfacePlan, "data">): SurfaceQuantity[] {
  return lossQuantities(plan.data.test);
}

function fail(where: string, what: string): never {
  throw new Error(`${where}: ${what}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function numbers(v: unknown, where: string, name: string): number[] {
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === "number" && Number.isFinite(x)))
    fail(where, `'${name}' must be a non-empty array of finite numbers`);
  return v as number[];
}

/**
 * Parses and checks a plan record (JSON). `where` names its origin in errors.
 *
 * @example
 * const plan = parsePlan(await redis.get(key), `plan ${id}`);
 */
export function parsePlan(text: string, where: string): SurfacePlan {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    fail(where, `not JSON (${(e as Error).message})`);
  }
  if (!isObject(v)) fail(where, "expected a JSON object");
  if (v.version !== PLAN_VERSION)
    fail(
      where,
      `version is ${String(v.version)}, this losscape reads version ${PLAN_VERSION} (upgrade workers and submitter together)`,
    );
  const { model, data, grid, evaluate, identity } = v;
  if (!isObject(model) || typeof model.spec !== "string") fail(where, "'model.spec' must be a string");
  if (
    !isObject(data) ||
    typeof data.spec !== "string" ||
    typeof data.seed !== "number" ||
    typeof data.test !== "boolean"
  )
    fail(where, "'data' must have spec (string), seed (number) and test (boolean)");
  if (typeof v.directions !== "string") fail(where, "'directions' must be a path");
  if (!isObject(grid)) fail(where, "'grid' must be an object with x and y");
  numbers(grid.x, where, "grid.x");
  if (grid.y !== null) numbers(grid.y, where, "grid.y");
  if (
    !isObject(evaluate) ||
    !Number.isInteger(evaluate.batchSize) ||
    !(LOSS_NAMES as readonly unknown[]).includes(evaluate.loss) ||
    (evaluate.ignoreIndex !== undefined && !Number.isInteger(evaluate.ignoreIndex)) ||
    (evaluate.classAxis !== undefined && evaluate.classAxis !== 1 && evaluate.classAxis !== -1) ||
    (evaluate.lossCap !== undefined && !(typeof evaluate.lossCap === "number" && evaluate.lossCap >= 0))
  )
    fail(
      where,
      `'evaluate' must have an integer batchSize, loss ${LOSS_NAMES.join(", ")}, an integer ignoreIndex, classAxis 1 or -1 and a non-negative lossCap when given`,
    );
  if (data.read !== undefined && !isObject(data.read)) fail(where, "'data.read' must be an object");
  if (!isObject(identity) || !Object.values(identity).every((x) => typeof x === "string"))
    fail(where, "'identity' must be an object of strings");
  return v as unknown as SurfacePlan;
}

/**
 * The grid's points in chunks of `size` consecutive indices: chunk c holds points [c*size, (c+1)*size).
 * Only `todo` points are listed; chunks with nothing to do are left out.
 *
 * @example
 * chunkPoints([0, 1, 2, 5, 9], 4); // [{ chunk: 0, points: [0, 1, 2] }, { chunk: 1, points: [5] }, { chunk: 2, points: [9] }]
 */
export function chunkPoints(todo: readonly number[], size: number): { chunk: number; points: number[] }[] {
  if (!Number.isInteger(size) || size < 1)
    throw new Error(`chunkPoints(): 'size' must be a positive integer, got ${size}`);
  const out: { chunk: number; points: number[] }[] = [];
  for (const k of todo) {
    const chunk = Math.floor(k / size);
    const last = out[out.length - 1];
    if (last?.chunk === chunk) last.points.push(k);
    else out.push({ chunk, points: [k] });
  }
  return out;
}

/**
 * The BullMQ job id of a chunk: stable, so a resubmitted chunk that is still queued is not queued twice.
 *
 * @example
 * chunkJobId("5be0c3d2a1f04e77", 4, 12); // "5be0c3d2a1f04e77.4.12"
 */
export function chunkJobId(plan: string, size: number, chunk: number): string {
  return `${plan}.${size}.${chunk}`;
}

/** What a job asks a worker to do. */
export interface ChunkJob {
  /** Plan id (the plan record is in Redis). */
  plan: string;
  /** Flat point indices to evaluate. */
  points: number[];
}

/**
 * Values of some points, one array per quantity, encoded exactly (little-endian float64, base64) so NaN and
 * every bit survive the trip.
 *
 * @example
 * const wire = encodeValues({ train_loss: [0.5, NaN] }); // { train_loss: "AAAAAAAA4D8AAAAAAAD4fw==" }
 */
export function encodeValues(
  values: Partial<Record<SurfaceQuantity, readonly number[]>>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [q, a] of Object.entries(values)) {
    const view = new DataView(new ArrayBuffer(8 * a.length));
    for (const [i, x] of a.entries()) view.setFloat64(8 * i, x, true);
    out[q] = Buffer.from(view.buffer).toString("base64");
  }
  return out;
}

/**
 * Decodes `encodeValues`' output, checking every array has `count` values.
 *
 * @example
 * decodeValues({ train_loss: "AAAAAAAA4D8AAAAAAAD4fw==" }, 2, "result"); // { train_loss: Float64Array [0.5, NaN] }
 */
export function decodeValues(
  wire: Record<string, string>,
  count: number,
  where: string,
): Partial<Record<SurfaceQuantity, Float64Array>> {
  const out: Partial<Record<SurfaceQuantity, Float64Array>> = {};
  for (const [q, text] of Object.entries(wire)) {
    const bytes = Buffer.from(text, "base64");
    if (bytes.length !== 8 * count)
      fail(where, `'${q}' holds ${bytes.length} bytes, expected ${8 * count} (${count} float64 values)`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    out[q as SurfaceQuantity] = Float64Array.from({ length: count }, (_, i) => view.getFloat64(8 * i, true));
  }
  return out;
}
