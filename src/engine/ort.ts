// ONNX Runtime (onnxruntime-node, CPU) behind the Engine interface. New
// parameters are patched into the model's initializer bytes and a fresh
// session is created (a few ms): ORT then keeps all its graph optimizations
// (BN folding, prepacked weights), which feeding weights as inputs loses.

import { availableParallelism } from "node:os";
import * as ort from "onnxruntime-node";
import { type Dataset, datasetSize, readSamples, sampleSize, targetSize } from "../data/dataset.ts";
import { checkParams, type Model, shapeSize } from "../model/model.ts";
import { samplesTensor } from "./_tensors.ts";
import { accumulateLoss, type Engine, type EvaluateOptions, type Metrics } from "./engine.ts";

/** Options of the ONNX Runtime engine. */
export interface OrtOptions {
  /** Intra-op threads (default: all cores). */
  threads?: number;
}

/**
 * An Engine running `model` on ONNX Runtime's CPU provider.
 *
 * @example
 * const engine = await createOrtEngine(zooModel("cnn"), { threads: 2 });
 */
export async function createOrtEngine(
  model: Model,
  { threads = availableParallelism() }: OrtOptions = {},
): Promise<Engine> {
  if (!Number.isInteger(threads) || threads < 1) {
    throw new Error(`createOrtEngine(): 'threads' must be a positive integer, got ${threads}`);
  }
  return new OrtEngine(model, threads);
}

class OrtEngine implements Engine {
  private readonly bytes: Uint8Array;
  private session: ort.InferenceSession | undefined;
  /** Parameters the current session was built with. */
  private readonly loaded: Float32Array;
  private disposed = false;
  /** Batch buffer for streamed datasets. */
  private scratch: Float32Array | undefined;

  constructor(
    readonly model: Model,
    private readonly threads: number,
  ) {
    this.bytes = model.onnx.slice();
    this.loaded = new Float32Array(model.size);
  }

  private async sessionFor(params: Float32Array): Promise<ort.InferenceSession> {
    if (this.disposed) throw new Error(`engine for '${this.model.name}' was disposed`);
    const same =
      this.session !== undefined &&
      Buffer.compare(
        Buffer.from(params.buffer, params.byteOffset, params.byteLength),
        Buffer.from(this.loaded.buffer, this.loaded.byteOffset, this.loaded.byteLength),
      ) === 0;
    if (same) return this.session!;
    const { params: specs, rawOffsets } = this.model;
    for (let i = 0; i < specs.length; i++) {
      const p = specs[i]!;
      this.bytes.set(
        new Uint8Array(params.buffer, params.byteOffset + p.offset * 4, p.size * 4),
        rawOffsets[i]!,
      );
    }
    const previous = this.session;
    this.session = undefined;
    await previous?.release();
    this.session = await ort.InferenceSession.create(this.bytes, {
      intraOpNumThreads: this.threads,
      interOpNumThreads: 1,
      executionMode: "sequential",
      graphOptimizationLevel: "all",
    });
    this.loaded.set(params);
    return this.session;
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

  private async run(
    session: ort.InferenceSession,
    data: Dataset,
    start: number,
    count: number,
  ): Promise<Float32Array> {
    const per = shapeSize(this.model.input.shape);
    const fixed = this.model.input.batch;
    if (data.read && (this.scratch?.length ?? 0) < count * per) this.scratch = new Float32Array(count * per);
    let x = readSamples(data, start, count, this.scratch);
    let rows = count;
    if (fixed !== null && fixed !== count) {
      if (count > fixed)
        throw new Error(`internal: batch of ${count} exceeds the graph's fixed batch ${fixed}`);
      const padded = x instanceof Float32Array ? new Float32Array(fixed * per) : new Int32Array(fixed * per);
      padded.set(x);
      x = padded;
      rows = fixed;
    }
    const feeds = { [this.model.input.name]: samplesTensor(this.model, x, rows, "evaluate()") };
    const out = await session.run(feeds, [this.model.output]);
    const t = out[this.model.output];
    if (t?.type !== "float32") {
      throw new Error(
        `model '${this.model.name}': output '${this.model.output}' is ${t?.type ?? "missing"}, expected float32 logits`,
      );
    }
    const data32 = t.data as Float32Array;
    // [batch, classes], or [batch, positions..., classes] against targets of shape [positions...].
    const positions = targetSize(data);
    const inner = shapeSize(t.dims.slice(1, -1));
    if (t.dims.length < 2 || t.dims[0] !== rows || inner !== positions) {
      throw new Error(
        `model '${this.model.name}': output '${this.model.output}' has shape [${t.dims.join(", ")}]; dataset '${data.name}' needs [batch, ${positions === 1 && (data.targetShape ?? []).length === 0 ? "" : `${(data.targetShape ?? []).join(", ")}, `}classes] logits (targets of shape [${(data.targetShape ?? []).join(", ")}] per sample)`,
      );
    }
    return rows === count ? data32 : data32.subarray(0, (data32.length / rows) * count);
  }

  async evaluate(params: Float32Array, data: Dataset, options: EvaluateOptions = {}): Promise<Metrics> {
    checkParams(this.model, params, "evaluate()");
    this.checkData(data, "evaluate()");
    const { loss = "cross-entropy", onProgress } = options;
    let batchSize = options.batchSize ?? 256;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new Error(`evaluate(): 'batchSize' must be a positive integer, got ${batchSize}`);
    }
    if (this.model.input.batch !== null) batchSize = this.model.input.batch;
    const n = datasetSize(data);
    if (n === 0) throw new Error(`evaluate(): dataset '${data.name}' is empty`);
    const session = await this.sessionFor(params);
    const sums = { loss: 0, correct: 0 };
    const positions = targetSize(data);
    for (let start = 0; start < n; start += batchSize) {
      const count = Math.min(batchSize, n - start);
      const logits = await this.run(session, data, start, count);
      const classes = logits.length / (count * positions);
      if (classes < data.classes) {
        throw new Error(
          `evaluate(): model '${this.model.name}' outputs ${classes} logits per ${positions > 1 ? "position" : "sample"} but dataset '${data.name}' has ${data.classes} classes`,
        );
      }
      accumulateLoss(logits, data.labels, start * positions, count * positions, classes, loss, sums);
      onProgress?.(start + count, n);
    }
    // Means over every target position (per token, per pixel) for sequence and dense targets.
    return { loss: sums.loss / (n * positions), accuracy: sums.correct / (n * positions), count: n };
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
    if (fixed === null) return (await this.run(session, data, start, count)).slice();
    const parts: Float32Array[] = [];
    for (let s = start; s < start + count; s += fixed)
      parts.push((await this.run(session, data, s, Math.min(fixed, start + count - s))).slice());
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
  }
}
