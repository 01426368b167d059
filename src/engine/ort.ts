// ONNX Runtime (onnxruntime-node, CPU) behind the Engine interface. New
// parameters are patched into the model's initializer bytes and a fresh
// session is created (a few ms): ORT then keeps all its graph optimizations
// (BN folding, prepacked weights), which feeding weights as inputs loses.

import { availableParallelism } from "node:os";
import * as ort from "onnxruntime-node";
import { movedParameters } from "../core/directions.ts";
import { type Dataset, datasetSize, readSamples, sampleSize, targetSize } from "../data/dataset.ts";
import { checkParams, type Model, shapeSize } from "../model/model.ts";
import { decodeModel, type ModelProto } from "../onnx/proto.ts";
import { type CutType, encodeWithSlots, type GraphSplit, ORT_TYPES, splitGraph } from "./_prefix.ts";
import { type CacheLimits, type CutTensor, PrefixCache } from "./_prefix-cache.ts";
import { canScoreInGraph, defaultOpset, gatherIndices, type ScoringGraph, scoringGraph } from "./_scoring.ts";
import { samplesTensor, targetsTensor } from "./_tensors.ts";
import type { Engine, EvaluateOptions, Metrics, PrefixReport, TaskOptions } from "./engine.ts";
import {
  accumulateTask,
  addLogProbs,
  DEFAULT_IGNORE_INDEX,
  emptySums,
  type OutputLayout,
  outputLayout,
  scoredTargets,
  standardError,
} from "./task.ts";

/** Options of the ONNX Runtime engine. */
export interface OrtOptions {
  /** Intra-op threads (default: all cores). */
  threads?: number;
  /**
   * Cache the part of the graph that the moving parameters cannot reach: `moving` names the
   * parameters that change between evaluations (for a surface, those its directions move). The
   * prefix's outputs are computed once per batch and reused at every evaluation whose other
   * parameters are unchanged; only the suffix runs per point. Results are bit-identical.
   */
  prefixCache?: { moving: readonly string[] } & CacheLimits;
}

/**
 * An Engine running `model` on ONNX Runtime's CPU provider.
 *
 * @example
 * const engine = await createOrtEngine(zooModel("cnn"), { threads: 2 });
 */
export async function createOrtEngine(
  model: Model,
  { threads = availableParallelism(), prefixCache }: OrtOptions = {},
): Promise<Engine> {
  if (!Number.isInteger(threads) || threads < 1) {
    throw new Error(`createOrtEngine(): 'threads' must be a positive integer, got ${threads}`);
  }
  return new OrtEngine(model, threads, prefixCache);
}

/**
 * The prefix-cache option of an engine for evaluations along `directions` (a surface's): the
 * parameters they move are the moving ones. None when `limits` is false or every parameter moves.
 *
 * @example
 * await createOrtEngine(model, { threads: 2, ...surfaceEngineOptions(model, [d1, d2], {}) });
 */
export function surfaceEngineOptions(
  model: Model,
  directions: readonly Float32Array[],
  limits: CacheLimits | false,
): Pick<OrtOptions, "prefixCache"> {
  if (limits === false) return {};
  const moving = movedParameters(model.params, directions);
  return moving.length < model.params.length ? { prefixCache: { moving, ...limits } } : {};
}

/** The parameters of a model written into a graph's bytes: index in model.params, raw-data offset. */
type Slots = readonly { index: number; at: number }[];

/** A graph the engine runs: the model's own, or the model's with scoring outputs, or a suffix. */
interface Variant {
  readonly bytes: Uint8Array;
  readonly slots: Slots;
  readonly scoring?: ScoringGraph;
}

/** The prefix cache of an engine: the split graph, the prefix session and the cut tensors kept. */
interface Prefix {
  readonly split: GraphSplit;
  readonly graph: Variant;
  readonly cache: PrefixCache;
  session?: ort.InferenceSession;
  /** The suffix (built once the cut tensors' types are known) and its scoring variants. */
  suffix?: Variant;
  suffixProto?: ModelProto;
  readonly scored: Map<number, Variant>;
}

class OrtEngine implements Engine {
  private readonly proto: ModelProto;
  private readonly plain: Variant;
  /** The scoring graph of each class axis (positive), built when first needed. */
  private readonly scored = new Map<number, Variant>();
  private session: ort.InferenceSession | undefined;
  /** Graph and parameters the current session was built with. */
  private current: Variant | undefined;
  private readonly loaded: Float32Array;
  /** Output shape of one sample (without the batch axis), once known. */
  private outputDims: readonly number[] | undefined;
  private disposed = false;
  /** Batch buffer for streamed datasets. */
  private scratch: Float32Array | undefined;
  private prefixState: Prefix | undefined;
  private readonly scoredCounts = new WeakMap<Dataset, Map<string, number>>();
  /** Why there is no prefix cache although one was asked for. */
  private noPrefix: string | undefined;

  constructor(
    readonly model: Model,
    private readonly threads: number,
    prefixCache?: OrtOptions["prefixCache"],
  ) {
    this.plain = {
      bytes: model.onnx.slice(),
      slots: model.rawOffsets.map((at, index) => ({ index, at })),
    };
    this.loaded = new Float32Array(model.size);
    this.proto = decodeModel(model.onnx, model.name);
    // Output shapes declared in full spare a probe run (outputShape()).
    const declared = this.proto.graph.outputs.find((v) => v.name === model.output);
    const dims = declared?.shape?.slice(1);
    if (dims?.every((d): d is number => typeof d === "number" && d > 0)) this.outputDims = dims;
    if (prefixCache) {
      const { moving, ...limits } = prefixCache;
      const split = splitGraph(model, new Set(moving));
      if (typeof split === "string") this.noPrefix = split;
      else
        this.prefixState = {
          split,
          graph: encodeWithSlots(model, split.prefix),
          cache: new PrefixCache(limits),
          scored: new Map(),
        };
    }
  }

  /** What the prefix cache splits and holds; a string saying why there is none; undefined when none was asked for. */
  prefix(): PrefixReport | string | undefined {
    const p = this.prefixState;
    if (!p) return this.noPrefix;
    return {
      prefixNodes: p.split.prefixNodes,
      suffixNodes: p.split.suffixNodes,
      cuts: p.split.cuts,
      ...p.cache.stats(),
    };
  }

  private createSession(bytes: Uint8Array): Promise<ort.InferenceSession> {
    return ort.InferenceSession.create(bytes, {
      intraOpNumThreads: this.threads,
      interOpNumThreads: 1,
      executionMode: "sequential",
      graphOptimizationLevel: "all",
    });
  }

  private static patch(variant: Variant, params: Float32Array, specs: Model["params"]): void {
    for (const { index, at } of variant.slots) {
      const p = specs[index]!;
      variant.bytes.set(new Uint8Array(params.buffer, params.byteOffset + p.offset * 4, p.size * 4), at);
    }
  }

  private async sessionFor(
    params: Float32Array,
    variant: Variant = this.plain,
  ): Promise<ort.InferenceSession> {
    if (this.disposed) throw new Error(`engine for '${this.model.name}' was disposed`);
    const same =
      this.session !== undefined &&
      this.current === variant &&
      Buffer.compare(
        Buffer.from(params.buffer, params.byteOffset, params.byteLength),
        Buffer.from(this.loaded.buffer, this.loaded.byteOffset, this.loaded.byteLength),
      ) === 0;
    if (same) return this.session!;
    OrtEngine.patch(variant, params, this.model.params);
    const previous = this.session;
    this.session = undefined;
    this.current = undefined;
    await previous?.release();
    this.session = await this.createSession(variant.bytes);
    this.loaded.set(params);
    this.current = variant;
    return this.session;
  }

  /** The prefix session for `params`; a change of the prefix's parameters drops the cache. */
  private async prefixSessionFor(p: Prefix, params: Float32Array): Promise<ort.InferenceSession> {
    // The prefix graph's bytes hold the values its session was built from: compare in place.
    const specs = this.model.params;
    const same =
      p.session !== undefined &&
      p.graph.slots.every(({ index, at }) => {
        const { offset, size } = specs[index]!;
        return (
          Buffer.compare(
            Buffer.from(params.buffer, params.byteOffset + offset * 4, size * 4),
            Buffer.from(p.graph.bytes.buffer, p.graph.bytes.byteOffset + at, size * 4),
          ) === 0
        );
      });
    if (same) return p.session!;
    p.cache.clear();
    const previous = p.session;
    p.session = undefined;
    await previous?.release();
    OrtEngine.patch(p.graph, params, specs);
    p.session = await this.createSession(p.graph.bytes);
    return p.session;
  }

  /** The suffix of a prefix cache, built once the cut tensors' types are known. */
  private suffixVariant(p: Prefix, cuts: readonly CutTensor[], rows: number): Variant {
    if (!p.suffix) {
      const types = new Map<string, CutType>(
        cuts.map((c) => [
          c.name,
          {
            elemType: ORT_TYPES[c.type] ?? 0,
            // Axes as long as the batch are left symbolic (the last batch is shorter).
            shape: c.dims.map((d, k) => (d === rows ? `losscape_cut_${k}` : d)),
          },
        ]),
      );
      p.suffixProto = p.split.suffix(types);
      p.suffix = encodeWithSlots(this.model, p.suffixProto);
    }
    return p.suffix;
  }

  /** The output shape of one sample: declared by the graph, or read off one sample's run (once). */
  private async outputShape(params: Float32Array, data: Dataset): Promise<readonly number[]> {
    if (this.outputDims === undefined) {
      const session = await this.sessionFor(params);
      this.outputDims = (await this.run(session, data, 0, 1)).dims;
    }
    return this.outputDims;
  }

  /**
   * The scoring graph for `layout`, when the loss is cross-entropy over several targets per sample
   * (sequence and dense outputs) and the model's opset allows it; null where JavaScript scores.
   */
  private scoringFor(layout: OutputLayout, task: EvaluateOptions, prefix?: Prefix): Variant | null {
    if (this.model.loss || (task.loss ?? "cross-entropy") !== "cross-entropy") return null;
    if (layout.kind !== "classes" || layout.positions === 1) return null;
    const rank = 1 + (this.outputDims?.length ?? 0);
    const axis = layout.classStride === 1 ? rank - 1 : 1;
    if (!canScoreInGraph(defaultOpset(this.proto), rank, axis)) return null;
    const variants = prefix ? prefix.scored : this.scored;
    let v = variants.get(axis);
    if (!v) {
      const scoring = scoringGraph(this.model, rank, axis, prefix ? prefix.suffixProto! : this.proto);
      v = { bytes: scoring.bytes, slots: scoring.slots, scoring };
      variants.set(axis, v);
    }
    return v;
  }

  private checkData(data: Dataset, where: string): number {
    const per = sampleSize(data);
    const want = shapeSize(this.model.input.shape);
    if (per !== want) {
      throw new Error(
        `${where}: model '${this.model.name}' takes samples of shape [${this.model.input.shape.join(", ")}] (${want} values) but dataset '${data.name}' has samples of shape [${data.shape.join(", ")}] (${per} values)`,
      );
    }
    return per;
  }

  /** The samples feed of `count` samples from `start`, padded to the graph's fixed batch if it has one. */
  private samplesFeed(data: Dataset, start: number, count: number): { tensor: ort.Tensor; rows: number } {
    const per = shapeSize(this.model.input.shape);
    const fixed = this.model.input.batch;
    if (data.read && (this.scratch?.length ?? 0) < count * per) this.scratch = new Float32Array(count * per);
    let x = readSamples(data, start, count, this.scratch);
    let rows = count;
    if (fixed !== null && fixed !== count) {
      if (count > fixed)
        throw new Error(`internal: batch of ${count} exceeds the graph's fixed batch ${fixed}`);
      if (this.model.loss)
        throw new Error(
          `model '${this.model.name}': a graph with its own loss and a fixed batch of ${fixed} needs a dataset of whole batches (batch ${count} at sample ${start})`,
        );
      const padded = x instanceof Float32Array ? new Float32Array(fixed * per) : new Int32Array(fixed * per);
      padded.set(x);
      x = padded;
      rows = fixed;
    }
    return { tensor: samplesTensor(this.model, x, rows, "evaluate()"), rows };
  }

  /**
   * The cut tensors of the batch at `start` (of `batchSize`): from the cache, or computed by the
   * prefix session and kept when they fit.
   */
  private async cutsFor(
    p: Prefix,
    session: ort.InferenceSession,
    data: Dataset,
    batchSize: number,
    start: number,
    count: number,
  ): Promise<{ cuts: CutTensor[]; rows: number }> {
    const fixed = this.model.input.batch;
    const rows = fixed !== null ? fixed : count;
    const held = p.cache.get(data, batchSize, start);
    if (held) return { cuts: held, rows };
    const { tensor } = this.samplesFeed(data, start, count);
    const names = p.split.cuts.filter((c) => c !== this.model.input.name);
    const result = names.length ? await session.run({ [this.model.input.name]: tensor }, names) : {};
    const cuts: CutTensor[] = p.split.cuts.map((name) => {
      const t = name === this.model.input.name ? tensor : result[name]!;
      return { name, type: t.type, dims: t.dims, data: t.data as ArrayBufferView };
    });
    p.cache.put(data, batchSize, start, cuts);
    return { cuts, rows };
  }

  /**
   * The outputs of `count` samples from `start`: the model's output and, for a model loss, the
   * loss. With `cut`, the session is a prefix cache's suffix and reads those tensors instead of the samples.
   */
  private async run(
    session: ort.InferenceSession,
    data: Dataset,
    start: number,
    count: number,
    score?: { graph: ScoringGraph; layout: OutputLayout & { kind: "classes" }; ignoreIndex: number },
    cut?: { cuts: readonly CutTensor[]; rows: number },
  ): Promise<{
    out: Float32Array;
    dims: readonly number[];
    loss?: number;
    scored?: { logProb: Float32Array; argmax: BigInt64Array };
  }> {
    const feeds: Record<string, ort.Tensor> = {};
    let rows: number;
    if (cut) {
      rows = cut.rows;
      for (const c of cut.cuts)
        feeds[c.name] = new ort.Tensor(c.type as "float32", c.data as Float32Array, c.dims as number[]);
    } else {
      const f = this.samplesFeed(data, start, count);
      rows = f.rows;
      feeds[this.model.input.name] = f.tensor;
    }
    const own = this.model.loss;
    if (own) {
      const t = targetSize(data);
      feeds[own.targets] = targetsTensor(
        data.labels.subarray(start * t, (start + count) * t),
        [count, ...(data.targetShape ?? [])],
        own.targetsType,
      );
    }
    if (score) {
      // Gather indices for every row the graph runs (padding rows gather class 0 and are dropped).
      const { positions, classes, classStride } = score.layout;
      const indices = new BigInt64Array(rows * positions);
      indices.set(
        gatherIndices(
          data.labels,
          start * positions,
          count * positions,
          classes,
          score.ignoreIndex,
          data.name,
        ),
      );
      const targetDims = data.targetShape ?? [];
      feeds[score.graph.targets] = new ort.Tensor(
        "int64",
        indices,
        classStride === 1 ? [rows, ...targetDims, 1] : [rows, 1, ...targetDims],
      );
      const result = await session.run(feeds, [score.graph.logProb, score.graph.argmax]);
      const logProb = result[score.graph.logProb]!.data as Float32Array;
      const argmax = result[score.graph.argmax]!.data as BigInt64Array;
      return { out: logProb, dims: this.outputDims!, scored: { logProb, argmax } };
    }
    const fetch = own ? [...new Set([own.output, this.model.output])] : [this.model.output];
    const result = await session.run(feeds, fetch);
    const t = result[this.model.output];
    if (t?.type !== "float32") {
      throw new Error(
        `model '${this.model.name}': output '${this.model.output}' is ${t?.type ?? "missing"}, expected float32`,
      );
    }
    if (t.dims.length < 1 || (t.dims[0] !== rows && !(own && !own.logits))) {
      throw new Error(
        `model '${this.model.name}': output '${this.model.output}' has shape [${t.dims.join(", ")}]; expected [batch (${rows}), ...]`,
      );
    }
    const data32 = t.data as Float32Array;
    const out = rows === count ? data32 : data32.subarray(0, (data32.length / rows) * count);
    if (!own) return { out, dims: t.dims.slice(1) };
    const l = result[own.output];
    if (l?.type !== "float32" || l.data.length !== 1)
      throw new Error(
        `model '${this.model.name}': loss output '${own.output}' is ${l ? `${l.type} [${l.dims.join(", ")}]` : "missing"}; expected a float32 scalar`,
      );
    return { out, dims: t.dims.slice(1), loss: (l.data as Float32Array)[0]! };
  }

  async evaluate(params: Float32Array, data: Dataset, options: EvaluateOptions = {}): Promise<Metrics> {
    if (options.lossCap !== undefined) {
      if (!(typeof options.lossCap === "number" && options.lossCap >= 0))
        throw new Error(`evaluate(): 'lossCap' must be a non-negative number, got ${options.lossCap}`);
      if (this.model.loss)
        throw new Error(
          `evaluate(): 'lossCap' needs a loss that is never negative, and model '${this.model.name}' computes its own loss ('${this.model.loss.output}'), which may be`,
        );
    }
    checkParams(this.model, params, "evaluate()");
    this.checkData(data, "evaluate()");
    const { onProgress, batchSize: _b, lossCap: _c, ...task } = options;
    let batchSize = options.batchSize ?? 256;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new Error(`evaluate(): 'batchSize' must be a positive integer, got ${batchSize}`);
    }
    if (this.model.input.batch !== null) batchSize = this.model.input.batch;
    const n = datasetSize(data);
    if (n === 0) throw new Error(`evaluate(): dataset '${data.name}' is empty`);
    const { classes } = this.model;
    if (
      this.model.input.type !== undefined &&
      this.model.input.type !== "float32" &&
      classes !== null &&
      data.classes > classes
    )
      throw new Error(
        `evaluate(): dataset '${data.name}' has a vocabulary of ${data.classes} tokens but model '${this.model.name}' outputs ${classes} classes (its embedding would be read out of range); give a model of that vocabulary, or data of its vocabulary (--vocab)`,
      );
    const own = this.model.loss;
    const where = `evaluate(): model '${this.model.name}' output '${this.model.output}'`;
    let layout: OutputLayout | undefined;
    let variant: Variant | null = null;
    if (!own) layout = outputLayout(await this.outputShape(params, data), data, task, where);
    let p = this.prefixState;
    let prefixSession: ort.InferenceSession | undefined;
    if (p) {
      prefixSession = await this.prefixSessionFor(p, params);
      if (!p.suffix) {
        const count = Math.min(batchSize, n);
        const first = await this.cutsFor(p, prefixSession, data, batchSize, 0, count);
        const suffix = this.suffixVariant(p, first.cuts, first.rows);
        // ONNX Runtime may fuse nodes across the cut in the whole graph (an Add folded into a
        // convolution, a layout kept between them) and round differently from the split graph.
        // The first batch is run both ways; unless every output bit agrees, the whole graph runs.
        const whole = (await this.run(await this.sessionFor(params), data, 0, count)).out.slice();
        const split = (
          await this.run(await this.sessionFor(params, suffix), data, 0, count, undefined, first)
        ).out;
        if (
          Buffer.compare(
            Buffer.from(whole.buffer),
            Buffer.from(split.buffer, split.byteOffset, split.byteLength),
          ) !== 0
        ) {
          this.noPrefix =
            "the split graph does not reproduce the whole graph's outputs bit for bit here (ONNX Runtime fuses nodes across the cut), so the whole graph runs at every point";
          const ps = p.session;
          p.session = undefined;
          await ps?.release();
          p.cache.dispose();
          this.prefixState = undefined;
          p = undefined;
          prefixSession = undefined;
        }
      }
    }
    if (layout) variant = this.scoringFor(layout, task, p);
    const session = await this.sessionFor(params, variant ?? p?.suffix ?? this.plain);
    const score =
      variant?.scoring && layout?.kind === "classes"
        ? { graph: variant.scoring, layout, ignoreIndex: task.ignoreIndex ?? DEFAULT_IGNORE_INDEX }
        : undefined;
    const sums = emptySums();
    let ownLoss = 0;
    // --loss-cap: losses are non-negative, so the running sum over the whole set's scored targets
    // is a lower bound of the mean; a point stops once that bound passes the cap.
    const { lossCap } = options;
    const scored = lossCap === undefined ? 0 : own ? n : this.scoredTargetsOf(data, task);
    const cap = lossCap === undefined ? undefined : lossCap * scored;
    for (let start = 0; start < n; start += batchSize) {
      const count = Math.min(batchSize, n - start);
      const cut = p ? await this.cutsFor(p, prefixSession!, data, batchSize, start, count) : undefined;
      const r = await this.run(session, data, start, count, score, cut);
      if (r.scored && score) {
        const per = score.layout.positions;
        addLogProbs(
          r.scored.logProb,
          r.scored.argmax,
          data.labels,
          start * per,
          count,
          per,
          score.ignoreIndex,
          sums,
        );
      } else if (!own || own.logits) {
        layout ??= outputLayout(r.dims, data, task, where);
        accumulateTask(r.out, layout, data.labels, start, count, task, sums, data.name);
      }
      // The graph's loss is a mean over its batch: weighted by the batch's samples.
      if (r.loss !== undefined) ownLoss += r.loss * count;
      onProgress?.(start + count, n);
      const running = own ? ownLoss : sums.loss;
      // A non-finite running sum fixes the mean (NaN stays NaN; +Inf stays +Inf or turns NaN).
      if (!Number.isFinite(running) && start + count < n)
        return { loss: running, accuracy: Number.NaN, count: n, lossSe: Number.NaN, stopped: "diverged" };
      if (cap !== undefined && running > cap && start + count < n)
        return {
          loss: running / scored,
          accuracy: Number.NaN,
          count: n,
          lossSe: Number.NaN,
          stopped: "capped",
        };
    }
    if (own)
      return {
        loss: ownLoss / n,
        accuracy: own.logits && sums.targets > 0 ? sums.correct / sums.targets : Number.NaN,
        count: n,
        // The graph gives one mean per batch, not per sample.
        lossSe: Number.NaN,
      };
    // Means over every scored target (per token, per pixel, per value) for dense and regression targets.
    const loss = sums.loss / sums.targets;
    const metrics: Metrics = {
      loss,
      accuracy: sums.correct / sums.targets,
      count: n,
      lossSe: standardError(sums),
    };
    if (!Number.isFinite(loss)) metrics.stopped = "diverged";
    else if (lossCap !== undefined && loss > lossCap) metrics.stopped = "capped";
    return metrics;
  }

  /** The scored targets of the whole of `data` under `task` (counted once per dataset and task). */
  private scoredTargetsOf(data: Dataset, task: TaskOptions): number {
    const key = `${task.loss ?? ""}|${task.ignoreIndex ?? ""}|${task.classAxis ?? ""}`;
    let counts = this.scoredCounts.get(data);
    if (!counts) {
      counts = new Map();
      this.scoredCounts.set(data, counts);
    }
    let c = counts.get(key);
    if (c === undefined) {
      c = scoredTargets(data, 0, datasetSize(data), task);
      counts.set(key, c);
    }
    return c;
  }

  async logits(params: Float32Array, data: Dataset, start: number, count: number): Promise<Float32Array> {
    checkParams(this.model, params, "logits()");
    this.checkData(data, "logits()");
    const n = datasetSize(data);
    if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 1 || start + count > n) {
      throw new Error(
        `logits(): samples ${start}..${start + count - 1} are outside dataset '${data.name}' (${n} samples)`,
      );
    }
    const session = await this.sessionFor(params);
    const fixed = this.model.input.batch;
    if (fixed === null) return (await this.run(session, data, start, count)).out.slice();
    const parts: Float32Array[] = [];
    for (let s = start; s < start + count; s += fixed)
      parts.push((await this.run(session, data, s, Math.min(fixed, start + count - s))).out.slice());
    const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    const s = this.session;
    this.session = undefined;
    await s?.release();
    const p = this.prefixState;
    if (p) {
      const ps = p.session;
      p.session = undefined;
      await ps?.release();
      p.cache.dispose();
    }
  }
}
