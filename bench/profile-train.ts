// Where a training step's time goes on ONNX Runtime: runs a zoo model's
// gradient graph as `losscape train` builds it (batch norm in train mode,
// blocked convolutions, static batch, SGD update in the graph) with ORT's
// profiler on, and sums the kernel times of the last runs by kind of work.
// Backs the breakdown quoted in docs/training.md and the README.
//
//   node --import tsx bench/profile-train.ts [--model resnet20] [--batch 128] [--threads 2] [--runs 3]

import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-node";
import { gradientGraph } from "../src/autodiff/gradient.ts";
import { nchwcBlockSize } from "../src/autodiff/nchwc.ts";
import { gradientSessionOptions } from "../src/autodiff/session.ts";
import { Random } from "../src/core/random.ts";
import { encodeModel } from "../src/onnx/proto.ts";
import { zooModel } from "../src/zoo/zoo.ts";

const { values } = parseArgs({
  options: {
    model: { type: "string", default: "resnet20" },
    batch: { type: "string", default: "128" },
    threads: { type: "string", default: "2" },
    runs: { type: "string", default: "3" },
  },
});
const batch = Number(values.batch);
const runs = Number(values.runs);
const shape = values.model === "mlp" || values.model === "cnn" ? [1, 28, 28] : [3, 32, 32];
const model = zooModel(values.model, { inputShape: shape, seed: 0 });
const block = await nchwcBlockSize();
const optimizer = { kind: "sgd", momentum: 0.9, weightDecay: 5e-4 } as const;
const graph = gradientGraph(model, {
  batchNorm: "training",
  optimizer,
  ...(block ? { convBlock: block, batch } : {}),
});

const rng = new Random(1);
const feeds: Record<string, ort.Tensor> = {
  input: new ort.Tensor(
    "float32",
    Float32Array.from({ length: batch * shape.reduce((a, b) => a * b, 1) }, () => rng.normal()),
    [batch, ...shape],
  ),
  labels: new ort.Tensor(
    "int64",
    BigInt64Array.from({ length: batch }, () => BigInt(rng.int(10))),
    [batch],
  ),
};
for (const p of model.params) {
  if (graph.parameterInputs.includes(p.name))
    feeds[p.name] = new ort.Tensor("float32", model.initial.slice(p.offset, p.offset + p.size), [...p.shape]);
}
for (const name of graph.updateScalars)
  feeds[`opt:${name}`] = new ort.Tensor("float32", [name === "lr" ? 0.01 : 0.9], []);
for (const u of graph.updates) {
  const p = model.params.find((q) => q.name === u.param)!;
  for (const t of u.state) feeds[t.input] = new ort.Tensor("float32", new Float32Array(p.size), [...p.shape]);
}

const dir = mkdtempSync(join(tmpdir(), "losscape-profile-"));
try {
  const session = await ort.InferenceSession.create(encodeModel(graph.proto).bytes, {
    ...gradientSessionOptions(Number(values.threads), "inputs"),
    enableProfiling: true,
    profileFilePrefix: join(dir, "run"),
  });
  for (let r = 0; r < runs + 2; r++) await session.run(feeds);
  await session.release(); // writes the profile
  const file = readdirSync(dir).find((f) => f.endsWith(".json"))!;
  interface Event {
    name: string;
    cat?: string;
    ts: number;
    dur: number;
    args?: { op_name?: string; input_type_shape?: Record<string, number[]>[] };
  }
  const events = JSON.parse(readFileSync(join(dir, file), "utf8")) as Event[];
  const steps = events.filter((e) => e.name === "model_run");
  const from = steps[steps.length - runs]!.ts;
  const total = new Map<string, number>();
  for (const e of events) {
    if (e.cat !== "Node" || !e.name.endsWith("_kernel_time") || e.ts < from) continue;
    const kind = kindOf(e.args?.op_name ?? "?", e.args?.input_type_shape ?? []);
    total.set(kind, (total.get(kind) ?? 0) + e.dur / 1000 / runs);
  }
  const sum = [...total.values()].reduce((a, b) => a + b, 0);
  console.log(
    `${values.model}, batch ${batch}, ${values.threads} threads, blocked convolutions: ${block ?? "none"}; kernel time per step, mean of ${runs} runs`,
  );
  console.log("| work | ms | share |");
  console.log("|---|---|---|");
  for (const [k, v] of [...total].sort((a, b) => b[1] - a[1])) {
    console.log(`| ${k} | ${v.toFixed(1)} | ${((100 * v) / sum).toFixed(1)} % |`);
  }
  console.log(`| total | ${sum.toFixed(1)} | |`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/** The kind of work a kernel does, from its op and input shapes. */
function kindOf(op: string, shapes: Record<string, number[]>[]): string {
  const dims = shapes.map((s) => Object.values(s)[0] ?? []);
  if (op === "Conv") {
    const [x = [], w = []] = dims;
    if (w[1] === 1 && x[1] === 1) return "weight gradients: patches (one-hot Conv)";
    // A weight-gradient Conv has the batch as its channels and the inputs' channels as its batch.
    if (x[1] === batch && x[0] !== batch) return "weight gradients: blocked Conv";
    return "convolutions (forward, input gradients)";
  }
  if (op === "MatMul" || op === "FusedMatMul" || op === "Gemm")
    return dims[0]?.length === 4 ? "weight gradients: batched MatMul" : "dense layers";
  if (op === "ReorderInput" || op === "ReorderOutput") return "NCHWc layout reorders";
  if (op === "Transpose") return "transposes";
  if (op === "ConvTranspose") return "stride-2 input gradients (ConvTranspose)";
  return "batch norm, ReLU, residual and other elementwise ops";
}
