// Benchmark: training steps (forward + backward + SGD update, batch norm in
// train mode) of losscape's ONNX Runtime gradient graphs against PyTorch on the
// same cores, for ResNet-20 (3x32x32) and the MLP 784-512-256-10, batch 128.
// Rounds alternate between the two sides (ours, theirs, theirs, ours, ...) so
// that both see the same machine: on a shared machine the speed drifts by tens
// of percent over minutes, which separate runs would read as a ratio.
// Each round starts with one unmeasured step on either side (thread pools wake up) and is long
// enough (~1 s or more) for spinning threads of the other side to have gone quiet.
// --more takes zoo names (3x32x32) and the PyTorch model fixtures of fixtures/torch_models.py
// (resnet18, mobilenet_v2, densenet121 at 3x64x64, vit at 3x16x16, gpt on 16 tokens, lstm, gru), the
// same modules exported by python/losscape_export.py on our side.
// Run: npm run bench:train [-- --threads 2 --rounds 7 --steps 5 --mlp-steps 100 --more resnet56,vgg9,resnet18,vit]

import { parseArgs } from "node:util";
import { modelFixture, references } from "../fixtures/_models.ts";
import { createGradientSession } from "../src/autodiff/session.ts";
import { optimizerState, updateRunningStat } from "../src/core/optim.ts";
import { Random } from "../src/core/random.ts";
import type { Model } from "../src/model/model.ts";
import { zooModel } from "../src/zoo/zoo.ts";
import { machineLine, median, PEER_SETUP, requirePeer, startPeer } from "./_peer.ts";

const { values } = parseArgs({
  options: {
    threads: { type: "string", default: "2" },
    rounds: { type: "string", default: "7" },
    steps: { type: "string", default: "5" },
    "mlp-steps": { type: "string", default: "100" },
    batch: { type: "string", default: "128" },
    /** More zoo models to measure after the two of the issue (e.g. resnet56,vgg9,wrn16-4), 3x32x32 inputs. */
    more: { type: "string", default: "" },
  },
});
const threads = Number(values.threads);
const rounds = Number(values.rounds);
const more = values.more ? values.more.split(",").filter(Boolean) : [];
const batch = Number(values.batch);
const torchVersion = requirePeer();

/** losscape's side: a gradient session with the SGD update in the graph, as `losscape train` runs it. */
async function ours(name: string, shape: number[], steps: number) {
  const fixture = references.models[name];
  const model: Model = fixture ? modelFixture(name).model : zooModel(name, { inputShape: shape, seed: 0 });
  const tokens = fixture?.inputKind === "tokens";
  const sgd = { kind: "sgd", momentum: 0.9, weightDecay: 5e-4 } as const;
  const session = await createGradientSession(model, { batchNorm: "training", threads, optimizer: sgd });
  const rng = new Random(1);
  const per = shape.reduce((a, b) => a * b, 1);
  const classes = fixture?.classes ?? 10;
  const inputs = tokens
    ? Int32Array.from({ length: batch * per }, () => rng.int(classes))
    : Float32Array.from({ length: batch * per }, () => rng.normal());
  const labels = Int32Array.from({ length: tokens ? batch * per : batch }, () => rng.int(classes));
  const params = model.initial.slice();
  const state = optimizerState(sgd, model.size);
  const stats = new Map(model.params.filter((p) => p.role === "bn-stat").map((p) => [p.name, p]));
  const step = async () => {
    const s = await session.update(params, state, inputs, labels, 0.01);
    for (const [n, v] of s.statistics) {
      const p = stats.get(n);
      if (p) updateRunningStat(params.subarray(p.offset, p.offset + p.size), v);
    }
  };
  for (let w = 0; w < 2; w++) await step();
  return {
    async round(): Promise<number> {
      await step(); // wakes the thread pool after the peer's round
      const t0 = performance.now();
      for (let s = 0; s < steps; s++) await step();
      return (batch * steps) / ((performance.now() - t0) / 1000);
    },
    dispose: () => session.dispose(),
  };
}

console.log(
  `training step (forward + backward + SGD update), batch ${batch}, ${threads} threads, ${rounds} rounds per side (MLP: ${values["mlp-steps"]} steps, others: ${values.steps}), alternating; medians`,
);
console.log(await machineLine());
console.log(
  `peer: torch ${torchVersion}; ${PEER_SETUP.replace("no_grad, eval mode", "train mode, torch.optim.SGD")}`,
);
console.log("| model | losscape (samples/s) | PyTorch (samples/s) | ratio (median of per-round ratios) |");
console.log("|---|---|---|---|");
const peerScript = new URL("./torch_train.py", import.meta.url).pathname;
let resnetRatio = 0;
const models: [string, number[]][] = [
  ["resnet20", [3, 32, 32]],
  ["mlp", [1, 28, 28]],
  ...more.map((m): [string, number[]] => [m, [...(references.models[m]?.shape ?? [3, 32, 32])]]),
];
for (const [name, shape] of models) {
  const steps = Number(name === "mlp" ? values["mlp-steps"] : values.steps);
  const mine = await ours(name, [...shape], steps);
  const peer = await startPeer(
    peerScript,
    [
      name,
      String(threads),
      String(batch),
      String(steps),
      shape.join(","),
      references.models[name]?.inputKind ?? "image",
    ],
    threads,
  );
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // ABBA order: neither side always runs first after the other.
    if (r % 2 === 0) {
      a.push(await mine.round());
      b.push((await peer.round()).rate as number);
    } else {
      b.push((await peer.round()).rate as number);
      a.push(await mine.round());
    }
  }
  await peer.close();
  await mine.dispose();
  const ratio = median(a.map((v, i) => v / b[i]!));
  if (name === "resnet20") resnetRatio = ratio;
  const label = references.models[name] ? `${name} (${shape.join("x")})` : name;
  console.log(`| ${label} | ${median(a).toFixed(0)} | ${median(b).toFixed(0)} | ${ratio.toFixed(2)} |`);
}
console.log(`ratio vs PyTorch: ${resnetRatio.toFixed(2)}`);
