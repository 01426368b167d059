// Benchmark: training steps (forward + backward + SGD update, batch norm in
// train mode) of losscape's ONNX Runtime gradient graphs against PyTorch on the
// same cores, for ResNet-20 (3x32x32) and the MLP 784-512-256-10, batch 128.
// Run: npm run bench:train [-- --threads 2 --rounds 3 --steps 5]

import { parseArgs } from "node:util";
import { createGradientSession } from "../src/autodiff/session.ts";
import { optimizerState, optimizerStep, updateRunningStat } from "../src/core/optim.ts";
import { Random } from "../src/core/random.ts";
import { isTrainable } from "../src/model/model.ts";
import { zooModel } from "../src/zoo/zoo.ts";
import { median, PEER_SETUP, requirePeer, runPeer } from "./_peer.ts";

const { values } = parseArgs({
  options: {
    threads: { type: "string", default: "2" },
    rounds: { type: "string", default: "3" },
    steps: { type: "string", default: "5" },
    batch: { type: "string", default: "128" },
  },
});
const threads = Number(values.threads);
const rounds = Number(values.rounds);
const steps = Number(values.steps);
const batch = Number(values.batch);
const torchVersion = requirePeer();

async function ours(name: string, shape: number[], options: { hidden?: number[] } = {}): Promise<number[]> {
  const model = zooModel(name, { inputShape: shape, seed: 0, ...options });
  const session = await createGradientSession(model, { batchNorm: "training", threads });
  const rng = new Random(1);
  const per = shape.reduce((a, b) => a * b, 1);
  const inputs = Float32Array.from({ length: batch * per }, () => rng.normal());
  const labels = Int32Array.from({ length: batch }, () => rng.int(10));
  const params = model.initial.slice();
  const state = optimizerState({ kind: "sgd", momentum: 0.9, weightDecay: 5e-4 }, model.size);
  const mask = new Uint8Array(model.size);
  for (const p of model.params) if (isTrainable(p.role)) mask.fill(1, p.offset, p.offset + p.size);
  const stats = new Map(model.params.filter((p) => p.role === "bn-stat").map((p) => [p.name, p]));
  const step = async () => {
    const s = await session.step(params, inputs, labels);
    optimizerStep({ kind: "sgd", momentum: 0.9, weightDecay: 5e-4 }, state, params, s.gradient, mask, 0.01);
    for (const [n, v] of s.statistics) {
      const p = stats.get(n);
      if (p) updateRunningStat(params.subarray(p.offset, p.offset + p.size), v);
    }
  };
  for (let w = 0; w < 2; w++) await step();
  const rates: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (let s = 0; s < steps; s++) await step();
    rates.push((batch * steps) / ((performance.now() - t0) / 1000));
  }
  await session.dispose();
  return rates;
}

console.log(
  `training step (forward + backward + SGD update), batch ${batch}, ${threads} threads, median of ${rounds} rounds of ${steps} steps`,
);
console.log(
  `peer: torch ${torchVersion}; ${PEER_SETUP.replace("no_grad, eval mode", "train mode, torch.optim.SGD")}`,
);
console.log("| model | losscape (samples/s) | PyTorch (samples/s) | ratio |");
console.log("|---|---|---|---|");
const peerScript = new URL("./torch_train.py", import.meta.url).pathname;
let resnetRatio = 0;
for (const [name, shape] of [
  ["resnet20", [3, 32, 32]],
  ["mlp", [1, 28, 28]],
] as const) {
  const mine = median(await ours(name, [...shape]));
  const peer = runPeer(
    peerScript,
    [name, String(threads), String(batch), String(steps), String(rounds), shape.join(",")],
    threads,
  );
  const theirs = median(peer.rates as number[]);
  if (name === "resnet20") resnetRatio = mine / theirs;
  console.log(`| ${name} | ${mine.toFixed(0)} | ${theirs.toFixed(0)} | ${(mine / theirs).toFixed(2)} |`);
}
console.log(`ratio vs PyTorch: ${resnetRatio.toFixed(2)}`);
