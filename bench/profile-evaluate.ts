// Where a forward evaluation's time goes, by ONNX Runtime's profiler: kernel
// time per op type and per convolution, with each convolution's arithmetic
// rate (GFLOP/s from the shapes ORT records), on the session options the
// engine uses; then the throughput of other session options, in alternating
// rounds. Backs the explanation of the AVX2 / AVX-512 ratios in the README.
//
//   node --import tsx bench/profile-evaluate.ts [--model resnet20] [--batch 128] [--threads 2] [--rounds 3]

import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-node";
import { Random } from "../src/core/random.ts";
import { zooModel } from "../src/zoo/zoo.ts";
import { machineLine, median } from "./_peer.ts";

const { values } = parseArgs({
  options: {
    model: { type: "string", default: "resnet20" },
    batch: { type: "string", default: "128" },
    threads: { type: "string", default: "2" },
    rounds: { type: "string", default: "3" },
  },
});
const batch = Number(values.batch);
const threads = Number(values.threads);
const rounds = Number(values.rounds);
const shape = [3, 32, 32];
const model = zooModel(values.model, { inputShape: shape, seed: 0 });
const rng = new Random(0);
const x = Float32Array.from({ length: batch * 3072 }, () => rng.normal());
const feeds = { [model.input.name]: new ort.Tensor("float32", x, [batch, ...shape]) };
const runs = Math.max(1, Math.round(2048 / batch));

/** The engine's options (src/engine/ort.ts) and the alternatives measured against them. */
const base: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  executionMode: "sequential",
  graphOptimizationLevel: "all",
};
const VARIANTS: Record<string, ort.InferenceSession.SessionOptions> = {
  engine: base,
  "no NCHWc (optimization level extended)": { ...base, graphOptimizationLevel: "extended" },
  "no spinning": { ...base, extra: { session: { "intra_op.allow_spinning": "0" } } },
  "dynamic block base 4": { ...base, extra: { session: { dynamic_block_base: "4" } } },
  "denormals as zero": { ...base, extra: { session: { set_denormal_as_zero: "1" } } },
  "no memory arena": { ...base, enableCpuMemArena: false },
};

interface ProfileEvent {
  cat: string;
  name: string;
  dur: number;
  args?: {
    op_name?: string;
    input_type_shape?: Record<string, number[]>[];
    output_type_shape?: Record<string, number[]>[];
  };
}

/** 2 x multiply-adds of a (blocked or plain) Conv from the shapes ORT recorded: weight [K, C/g, k...]. */
function convFlops(e: ProfileEvent): number {
  const w = Object.values(e.args?.input_type_shape?.[1] ?? {})[0];
  const y = Object.values(e.args?.output_type_shape?.[0] ?? {})[0];
  if (!w || !y) return 0;
  const [K, Cg, ...kernel] = w as [number, number, ...number[]];
  // Plain output [N, K, OH, OW]; blocked [N, K/B, OH, OW, B].
  const spatial = y.length === 5 ? y.slice(2, 4) : y.slice(2);
  const prod = (v: number[]) => v.reduce((a, b) => a * b, 1);
  return 2 * y[0]! * K * Cg * prod(kernel) * prod(spatial);
}

console.log(`${values.model} forward, batch ${batch}, ${threads} threads`);
console.log(await machineLine());

// 1. The profile of the engine's session.
const dir = mkdtempSync(join(tmpdir(), "losscape-profile-"));
try {
  const session = await ort.InferenceSession.create(model.onnx, {
    ...base,
    enableProfiling: true,
    profileFilePrefix: join(dir, "ort"),
  });
  for (let r = 0; r <= runs; r++) await session.run(feeds);
  session.endProfiling();
  await session.release();
  const file = readdirSync(dir).find((f) => f.endsWith(".json"))!;
  const events = (JSON.parse(readFileSync(join(dir, file), "utf8")) as ProfileEvent[]).filter(
    (e) => e.cat === "Node" && e.name.endsWith("_kernel_time"),
  );
  const byOp = new Map<string, number>();
  const byNode = new Map<string, { us: number; flops: number; count: number }>();
  let total = 0;
  for (const e of events.slice(events.length * (1 / (runs + 1)))) {
    // The first run (warm-up) is left out.
    const op = e.args?.op_name ?? "?";
    byOp.set(op, (byOp.get(op) ?? 0) + e.dur);
    total += e.dur;
    if (op === "Conv") {
      const node = e.name.replace(/_kernel_time$/, "");
      const v = byNode.get(node) ?? { us: 0, flops: 0, count: 0 };
      v.us += e.dur;
      v.flops += convFlops(e);
      v.count++;
      byNode.set(node, v);
    }
  }
  console.log(`\nkernel time by op type (${runs} runs after one warm-up):`);
  console.log("| op | ms per batch | share |");
  console.log("|---|---|---|");
  for (const [op, us] of [...byOp].sort((a, b) => b[1] - a[1]))
    console.log(`| ${op} | ${(us / 1000 / runs).toFixed(2)} | ${((100 * us) / total).toFixed(1)} % |`);
  console.log("\nconvolutions in execution order (fused BN/ReLU/Add are named after the last fused node):");
  console.log("| node | ms per batch | GFLOP/s |");
  console.log("|---|---|---|");
  let flops = 0;
  let convUs = 0;
  for (const [node, v] of byNode) {
    console.log(`| ${node} | ${(v.us / 1000 / runs).toFixed(2)} | ${(v.flops / (v.us * 1e3)).toFixed(0)} |`);
    flops += v.flops;
    convUs += v.us;
  }
  console.log(`all convolutions: ${(flops / (convUs * 1e3)).toFixed(0)} GFLOP/s`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// 2. Session options, alternating: img/s of `runs` batches per round.
const rates = new Map<string, number[]>(Object.keys(VARIANTS).map((k) => [k, []]));
for (let r = 0; r < rounds; r++) {
  for (const [name, options] of Object.entries(VARIANTS)) {
    const session = await ort.InferenceSession.create(model.onnx, options);
    await session.run(feeds);
    const t0 = performance.now();
    for (let k = 0; k < runs; k++) await session.run(feeds);
    rates.get(name)!.push((runs * batch) / ((performance.now() - t0) / 1000));
    await session.release();
  }
}
console.log(`\nsession options (median img/s of ${rounds} alternating rounds):`);
console.log("| options | img/s |");
console.log("|---|---|");
for (const [name, v] of rates) console.log(`| ${name} | ${median(v).toFixed(0)} |`);
