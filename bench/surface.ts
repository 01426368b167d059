// Benchmark: a 2D filter-normalized surface of ResNet-20 (3x32x32, synthetic
// inputs), losscape's computeSurface (HDF5 file, flushes, per-point parameter
// swap) against the reference code's loop in PyTorch on the same cores.
// Run: npm run bench:surface [-- --nx 11 --samples 1000 --threads 2 --rounds 3]

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { axisValues } from "../src/core/grid.ts";
import { Random } from "../src/core/random.ts";
import type { Dataset } from "../src/data/dataset.ts";
import { createOrtEngine } from "../src/engine/ort.ts";
import { makeDirections } from "../src/landscape/plan.ts";
import { computeSurface } from "../src/landscape/surface.ts";
import { zooModel } from "../src/zoo/zoo.ts";
import { machineLine, median, PEER_SETUP, requirePeer, runPeer } from "./_peer.ts";

const { values } = parseArgs({
  options: {
    threads: { type: "string", default: "2" },
    nx: { type: "string", default: "11" },
    samples: { type: "string", default: "1000" },
    rounds: { type: "string", default: "3" },
    model: { type: "string", default: "resnet20" },
  },
});
const threads = Number(values.threads);
const nx = Number(values.nx);
const samples = Number(values.samples);
const rounds = Number(values.rounds);
const torchVersion = requirePeer();

const shape = [3, 32, 32];
const rng = new Random(0);
const train: Dataset = {
  name: "synthetic",
  shape,
  inputs: Float32Array.from({ length: samples * 3072 }, () => rng.normal()),
  labels: Uint8Array.from({ length: samples }, () => rng.int(10)),
  classes: 10,
};
const model = zooModel(values.model, { inputShape: shape, seed: 0 });
const engine = await createOrtEngine(model, { threads });
const { directions } = makeDirections(model, model.initial, { dims: 2, seed: 1 });
const axis = axisValues({ min: -1, max: 1, num: nx });
const dir = mkdtempSync(join(tmpdir(), "losscape-bench-"));

console.log(
  `${values.model} 2D surface ${nx}x${nx} on ${samples} samples, batch 128, ${threads} threads, ${rounds} rounds alternating; medians`,
);
console.log(await machineLine());
console.log(`peer: torch ${torchVersion}, the reference loop (set weights, eval, no_grad); ${PEER_SETUP}`);
const ours: number[] = [];
const theirs: number[] = [];
const mine = async (r: number): Promise<number> => {
  const t0 = performance.now();
  await computeSurface({
    engine,
    theta: model.initial,
    directions,
    grid: { x: axis, y: axis },
    train,
    path: join(dir, `s${r}.h5`),
    dirFile: "bench",
    evaluate: { batchSize: 128 },
  });
  return (nx * nx) / ((performance.now() - t0) / 1000);
};
const peer = (): number =>
  runPeer(
    new URL("./torch_surface.py", import.meta.url).pathname,
    [values.model, String(threads), String(nx), String(samples), "128"],
    threads,
  ).points_per_s as number;
for (let r = 0; r < rounds; r++) {
  // ABBA order: neither side always runs first after the other.
  if (r % 2 === 0) {
    ours.push(await mine(r));
    theirs.push(peer());
  } else {
    theirs.push(peer());
    ours.push(await mine(r));
  }
  console.log(
    `round ${r + 1}: losscape ${ours[r]!.toFixed(3)} points/s, PyTorch ${theirs[r]!.toFixed(3)} points/s`,
  );
}
await engine.dispose();
rmSync(dir, { recursive: true, force: true });
const a = median(ours);
const b = median(theirs);
const ratio = median(ours.map((v, i) => v / theirs[i]!));
console.log("| | points/s | img/s |");
console.log("|---|---|---|");
console.log(`| losscape | ${a.toFixed(3)} | ${(a * samples).toFixed(0)} |`);
console.log(`| PyTorch | ${b.toFixed(3)} | ${(b * samples).toFixed(0)} |`);
console.log(`ratio vs PyTorch: ${ratio.toFixed(2)} (median of per-round ratios)`);
