// Measurement behind two statements in the docs: the cost of swapping parameters into ResNet-20 (patch the
// initializer bytes, re-create the ONNX Runtime session) and that memory stays flat over many swaps.
// Run: npm run bench:session [-- --swaps 300 --threads 2]

import { parseArgs } from "node:util";
import { Random } from "../src/core/random.ts";
import type { Dataset } from "../src/data/dataset.ts";
import { createOrtEngine } from "../src/engine/ort.ts";
import { zooModel } from "../src/zoo/zoo.ts";
import { machineLine, median } from "./_peer.ts";

const { values } = parseArgs({
  options: { swaps: { type: "string", default: "300" }, threads: { type: "string", default: "2" } },
});
const swaps = Number(values.swaps);
const model = zooModel("resnet20", { inputShape: [3, 32, 32], seed: 0 });
const rng = new Random(0);
// One sample per call, so each call's time is dominated by the parameter swap.
const data: Dataset = {
  name: "one",
  shape: [3, 32, 32],
  inputs: Float32Array.from({ length: 3072 }, () => rng.normal()),
  labels: new Uint8Array(1),
  classes: 10,
};
const engine = await createOrtEngine(model, { threads: Number(values.threads) });
const params = model.initial.slice();
const times: number[] = [];
const rss: number[] = [];
for (let i = 0; i < swaps; i++) {
  params[0] = model.initial[0]! + (i + 1) * 1e-6; // a new vector every call: the session is rebuilt
  const t0 = performance.now();
  await engine.evaluate(params, data);
  times.push(performance.now() - t0);
  if (i % Math.max(1, Math.floor(swaps / 5)) === 0) rss.push(process.memoryUsage().rss / 1e6);
}
await engine.dispose();
console.log(
  `resnet20: parameter swap + one-sample forward, median ${median(times.slice(5)).toFixed(1)} ms over ${swaps - 5} calls`,
);
console.log(await machineLine());
console.log(`RSS during the run (MB): ${rss.map((r) => r.toFixed(0)).join(", ")}`);
