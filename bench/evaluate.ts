// Benchmark: ResNet-20 (3x32x32) forward evaluation throughput, losscape's
// evaluate loop (including the parameter swap per call) against PyTorch's eval
// loop on the same cores. Rounds alternate between the two sides (ABBA order)
// and the ratio is the median of per-round ratios: on a shared machine the
// speed drifts by tens of percent over minutes, which separate runs would read
// as a ratio. Run: npm run bench:evaluate [-- --threads 2 --rounds 7 --batches 128,256]
// --task lm: a small GPT-style decoder (vocabulary 256, context 64, width 64, 2 blocks) on the
// embedded byte-level text, per-token cross-entropy, in tokens/s (the peer exports the model).

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { Random } from "../src/core/random.ts";
import { type Dataset, sampleSize } from "../src/data/dataset.ts";
import { loadDataset } from "../src/data/load.ts";
import { createOrtEngine } from "../src/engine/ort.ts";
import { readOnnx } from "../src/model/import.ts";
import type { Model } from "../src/model/model.ts";
import { zooModel } from "../src/zoo/zoo.ts";
import { machineLine, median, PEER_SETUP, requirePeer, startPeer } from "./_peer.ts";

const { values } = parseArgs({
  options: {
    threads: { type: "string", default: "2" },
    rounds: { type: "string", default: "7" },
    samples: { type: "string", default: "2048" },
    model: { type: "string", default: "resnet20" },
    batches: { type: "string", default: "128,256" },
    task: { type: "string", default: "classify" },
  },
});
const lm = values.task === "lm";
if (!lm && values.task !== "classify") throw new Error(`--task must be classify or lm, got '${values.task}'`);
const threads = Number(values.threads);
const rounds = Number(values.rounds);
const samples = Number(values.samples);
const name = values.model;
const torchVersion = requirePeer();

const shape = [3, 32, 32];
const rng = new Random(0);
const onnxPath = join(mkdtempSync(join(tmpdir(), "losscape-bench-")), "gpt-lm.onnx");
let data: Dataset;
let model: Model;
if (lm) {
  // The first windows of the embedded text, as the peer cuts them; the peer writes the model.
  const windows = loadDataset("tokens", "train", { context: 64 });
  data = {
    ...windows,
    inputs: windows.inputs.subarray(0, samples * 64),
    labels: windows.labels.subarray(0, samples * 64),
  };
  const exporter = await startPeer(
    new URL("./torch_evaluate.py", import.meta.url).pathname,
    ["gpt-lm", String(threads), "1", "1", onnxPath],
    threads,
  );
  await exporter.close();
  model = await readOnnx(onnxPath);
} else {
  data = {
    name: "synthetic",
    shape,
    inputs: Float32Array.from({ length: samples * 3072 }, () => rng.normal()),
    labels: Uint8Array.from({ length: samples }, () => rng.int(10)),
    classes: 10,
  };
  model = zooModel(name, { inputShape: shape, seed: 0 });
}
const engine = await createOrtEngine(model, { threads });
const per = sampleSize(data);
const unit = lm ? "tokens/s" : "img/s";
const scale = lm ? 64 : 1;

console.log(
  `${lm ? "gpt-lm (per-token loss)" : name} forward, ${samples} samples per round, ${threads} threads, ${rounds} rounds per side alternating after a warm-up; medians`,
);
console.log(await machineLine());
console.log(`peer: torch ${torchVersion}; ${PEER_SETUP}`);
console.log(`| batch | losscape (${unit}) | PyTorch (${unit}) | ratio (median of per-round ratios) |`);
console.log("|---|---|---|---|");
const ratios: number[] = [];
let call = 0;
let params = model.initial;
const first: Dataset = {
  ...data,
  inputs: data.inputs.subarray(0, 256 * per),
  labels: data.labels.subarray(0, 256 * scale),
};
for (const batchSize of values.batches.split(",").map(Number)) {
  // New parameters every round: the session is rebuilt, as at every grid point of a surface.
  const ours = async (): Promise<number> => {
    await sleep(100); // the other side's spinning threads go quiet
    // Unmeasured: one batch on the current session wakes the thread pool, as the peer does.
    await engine.evaluate(params, first, { batchSize });
    call++;
    params = model.initial.map((v) => v + 1e-4 * call);
    const t0 = performance.now();
    await engine.evaluate(params, data, { batchSize });
    return (samples * scale) / ((performance.now() - t0) / 1000);
  };
  const peer = await startPeer(
    new URL("./torch_evaluate.py", import.meta.url).pathname,
    lm
      ? ["gpt-lm", String(threads), String(batchSize), String(samples), onnxPath]
      : [name, String(threads), String(batchSize), String(samples)],
    threads,
  );
  const theirs = async (): Promise<number> => {
    await sleep(100);
    return (await peer.round()).rate as number;
  };
  await ours(); // warm-up
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) {
      a.push(await ours());
      b.push(await theirs());
    } else {
      b.push(await theirs());
      a.push(await ours());
    }
  }
  await peer.close();
  const ratio = median(a.map((v, i) => v / b[i]!));
  ratios.push(ratio);
  console.log(`| ${batchSize} | ${median(a).toFixed(0)} | ${median(b).toFixed(0)} | ${ratio.toFixed(2)} |`);
}
await engine.dispose();
console.log(`ratio vs PyTorch: ${Math.min(...ratios).toFixed(2)}`);
