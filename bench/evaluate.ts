// Benchmark: ResNet-20 (3x32x32) forward evaluation throughput, losscape's
// evaluate loop (including the parameter swap per call) against PyTorch's eval
// loop on the same cores. Run: npm run bench:evaluate [-- --threads 2 --rounds 5]

import { parseArgs } from "node:util";
import { Random } from "../src/core/random.ts";
import type { Dataset } from "../src/data/dataset.ts";
import { createOrtEngine } from "../src/engine/ort.ts";
import { zooModel } from "../src/zoo/zoo.ts";
import { median, PEER_SETUP, requirePeer, runPeer } from "./_peer.ts";

const { values } = parseArgs({
  options: {
    threads: { type: "string", default: "2" },
    rounds: { type: "string", default: "5" },
    samples: { type: "string", default: "2048" },
    model: { type: "string", default: "resnet20" },
  },
});
const threads = Number(values.threads);
const rounds = Number(values.rounds);
const samples = Number(values.samples);
const name = values.model;
const torchVersion = requirePeer();

const shape = [3, 32, 32];
const rng = new Random(0);
const data: Dataset = {
  name: "synthetic",
  shape,
  inputs: Float32Array.from({ length: samples * 3072 }, () => rng.normal()),
  labels: Uint8Array.from({ length: samples }, () => rng.int(10)),
  classes: 10,
};
const model = zooModel(name, { inputShape: shape, seed: 0 });
const engine = await createOrtEngine(model, { threads });

console.log(
  `${name} forward, ${samples} samples per call, ${threads} threads, median of ${rounds} rounds after a warm-up`,
);
console.log(`peer: torch ${torchVersion}; ${PEER_SETUP}`);
console.log("| batch | losscape (img/s) | PyTorch (img/s) | ratio |");
console.log("|---|---|---|---|");
const ratios: number[] = [];
for (const batchSize of [128, 256]) {
  const ours: number[] = [];
  for (let r = 0; r <= rounds; r++) {
    // New parameters every call: the session is rebuilt, as at every grid point of a surface.
    const params = model.initial.map((v) => v + 1e-4 * (r + 1));
    const t0 = performance.now();
    await engine.evaluate(params, data, { batchSize });
    const rate = samples / ((performance.now() - t0) / 1000);
    if (r > 0) ours.push(rate);
  }
  const peer = runPeer(
    new URL("./torch_evaluate.py", import.meta.url).pathname,
    [name, String(threads), String(batchSize), String(samples), String(rounds)],
    threads,
  );
  const theirs = median(peer.rates as number[]);
  const mine = median(ours);
  ratios.push(mine / theirs);
  console.log(`| ${batchSize} | ${mine.toFixed(0)} | ${theirs.toFixed(0)} | ${(mine / theirs).toFixed(2)} |`);
}
await engine.dispose();
console.log(`ratio vs PyTorch: ${Math.min(...ratios).toFixed(2)}`);
