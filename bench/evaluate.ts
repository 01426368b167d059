// Benchmark: ResNet-20 (3x32x32) forward evaluation throughput, losscape's
// evaluate loop (including the parameter swap per call) against PyTorch's eval
// loop on the same cores. Rounds alternate between the two sides (ABBA order)
// and the ratio is the median of per-round ratios: on a shared machine the
// speed drifts by tens of percent over minutes, which separate runs would read
// as a ratio. Run: npm run bench:evaluate [-- --threads 2 --rounds 7 --batches 128,256]

import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { Random } from "../src/core/random.ts";
import type { Dataset } from "../src/data/dataset.ts";
import { createOrtEngine } from "../src/engine/ort.ts";
import { zooModel } from "../src/zoo/zoo.ts";
import { machineLine, median, PEER_SETUP, requirePeer, startPeer } from "./_peer.ts";

const { values } = parseArgs({
  options: {
    threads: { type: "string", default: "2" },
    rounds: { type: "string", default: "7" },
    samples: { type: "string", default: "2048" },
    model: { type: "string", default: "resnet20" },
    batches: { type: "string", default: "128,256" },
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
  `${name} forward, ${samples} samples per round, ${threads} threads, ${rounds} rounds per side alternating after a warm-up; medians`,
);
console.log(await machineLine());
console.log(`peer: torch ${torchVersion}; ${PEER_SETUP}`);
console.log("| batch | losscape (img/s) | PyTorch (img/s) | ratio (median of per-round ratios) |");
console.log("|---|---|---|---|");
const ratios: number[] = [];
let call = 0;
let params = model.initial;
const first: Dataset = {
  ...data,
  inputs: data.inputs.subarray(0, 256 * 3072),
  labels: data.labels.subarray(0, 256),
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
    return samples / ((performance.now() - t0) / 1000);
  };
  const peer = await startPeer(
    new URL("./torch_evaluate.py", import.meta.url).pathname,
    [name, String(threads), String(batchSize), String(samples)],
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
