// Benchmark: wall time to a figure-ready plane. A ResNet-20 trained briefly on the embedded
// Fashion-MNIST (1x28x28, cached in the temp folder), a 51x51 filter-normalized plane on 1,000
// test samples: losscape with --refine 0.01 and the default early exit, then the same file resumed
// without --refine (the rest of the grid: together, the full plane, each point computed once), so
// the refined plane is checked against the fully computed one. The peer is the reference loop in
// PyTorch computing every point on the same cores (timed on --peer-points points, extrapolated: it
// computes every point in full, at the same cost).
// --model cnn: the demo's CNN instead. bench/refine-check.ts replays --refine on a kept plane.
// Run: npm run bench:figure [-- --model resnet20 --nx 51 --samples 1000 --tol 0.01 --threads 2 --peer-points 2601 --keep plane.h5]

import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { axisValues } from "../src/core/grid.ts";
import { paperSchedule } from "../src/core/optim.ts";
import { loadDataset } from "../src/data/load.ts";
import { createOrtEngine } from "../src/engine/ort.ts";
import { POINT } from "../src/formats/surface-file.ts";
import { makeDirections } from "../src/landscape/plan.ts";
import { computeSurface } from "../src/landscape/surface.ts";
import { train } from "../src/train/train.ts";
import { zooModel } from "../src/zoo/zoo.ts";
import { machineLine, PEER_SETUP, requirePeer, runPeer } from "./_peer.ts";

const { values } = parseArgs({
  options: {
    threads: { type: "string", default: "2" },
    nx: { type: "string", default: "51" },
    samples: { type: "string", default: "1000" },
    tol: { type: "string", default: "0.01" },
    "peer-points": { type: "string" },
    epochs: { type: "string", default: "2" },
    keep: { type: "string" },
    model: { type: "string", default: "resnet20" },
  },
});
const threads = Number(values.threads);
const nx = Number(values.nx);
const samples = Number(values.samples);
const tol = values.tol;
const points = nx * nx;
const peerPoints = Math.min(points, Number(values["peer-points"] ?? points));
const epochs = Number(values.epochs);
const torchVersion = requirePeer();

const trainData = loadDataset("fashion-mnist", "train", { subset: { count: 5000 }, seed: 0 });
const test = loadDataset("fashion-mnist", "test", { subset: { count: samples }, seed: 0 });
const name = values.model;
const model = zooModel(name, { inputShape: trainData.shape, classes: 10, seed: 0 });
// The trained model is kept between runs (train() resumes a finished run at once).
const runDir = join(tmpdir(), `losscape-bench-figure-${name}-e${epochs}`);
mkdirSync(runDir, { recursive: true });
const t0 = performance.now();
const run = await train(
  model,
  model.initial,
  trainData,
  undefined,
  {
    epochs,
    batchSize: 128,
    seed: 0,
    optimizer: { kind: "sgd", momentum: 0.9, weightDecay: 5e-4 },
    schedule: paperSchedule(0.05, epochs),
    threads,
  },
  runDir,
);
const trainSeconds = (performance.now() - t0) / 1000;
const theta = run.params;
const { directions } = makeDirections(model, theta, { dims: 2, seed: 1 });
const axis = axisValues({ min: -1, max: 1, num: nx });
const dir = mkdtempSync(join(tmpdir(), "losscape-bench-"));
const path = join(dir, "plane.h5");
const engine = await createOrtEngine(model, { threads });

console.log(
  `${name} (1x28x28, trained ${epochs} epochs on 5,000 Fashion-MNIST samples${trainSeconds > 5 ? `, ${trainSeconds.toFixed(0)} s` : ", cached"}), ${nx}x${nx} filter-normalized plane on ${samples} test samples, batch 128, ${threads} threads`,
);
console.log(await machineLine());
console.log(`peer: torch ${torchVersion}, the reference loop over all ${points} points; ${PEER_SETUP}`);
const job = {
  engine,
  theta,
  directions,
  grid: { x: axis, y: axis },
  train: test,
  path,
  dirFile: "bench",
  evaluate: { batchSize: 128 },
};
const t1 = performance.now();
const refined = await computeSurface({ ...job, refine: tol });
const refineSeconds = (performance.now() - t1) / 1000;
const computed = refined.done.filter((v) => v !== POINT.INTERPOLATED && v !== POINT.NOT_COMPUTED).length;
const estimate = Float64Array.from(refined.values.train_loss!);
const kinds = refined.done.slice();
const t2 = performance.now();
const full = await computeSurface(job);
const restSeconds = (performance.now() - t2) / 1000;
await engine.dispose();
let worst = 0;
let sum = 0;
let interpolated = 0;
for (let k = 0; k < points; k++) {
  if (kinds[k] !== POINT.INTERPOLATED) continue;
  const e = Math.abs(estimate[k]! - full.values.train_loss![k]!);
  worst = Math.max(worst, e);
  sum += e;
  interpolated++;
}
// --keep FILE: the fully computed plane, for offline checks of the refinement.
if (values.keep) copyFileSync(path, values.keep);
rmSync(dir, { recursive: true, force: true });

console.log(`peer: timing ${peerPoints} of ${points} points ...`);
const peer = runPeer(
  new URL("./torch_surface.py", import.meta.url).pathname,
  [name, String(threads), String(nx), String(samples), "128", trainData.shape.join(","), String(peerPoints)],
  threads,
);
const peerSeconds = points / (peer.points_per_s as number);
const fullSeconds = refineSeconds + restSeconds;
console.log("| | points computed | seconds | vs PyTorch |");
console.log("|---|---|---|---|");
console.log(
  `| losscape --refine ${tol} | ${computed} of ${points} (${((100 * computed) / points).toFixed(1)} %) | ${refineSeconds.toFixed(1)} | ${(peerSeconds / refineSeconds).toFixed(2)} |`,
);
console.log(
  `| losscape, full grid | ${points} | ${fullSeconds.toFixed(1)} | ${(peerSeconds / fullSeconds).toFixed(2)} |`,
);
console.log(
  `| PyTorch reference loop | ${points} | ${peerSeconds.toFixed(1)}${peerPoints < points ? ` (${peerPoints} points timed)` : ""} | 1.00 |`,
);
console.log(
  `refined vs fully computed: ${interpolated} interpolated points, max error ${worst.toExponential(2)}, mean ${(interpolated ? sum / interpolated : 0).toExponential(2)} (tolerance ${tol})`,
);
if (!(worst <= Number(tol))) console.log(`WARNING: the refined plane is off by more than ${tol}`);
console.log(`full-grid ratio vs PyTorch: ${(peerSeconds / fullSeconds).toFixed(2)}`);
console.log(`ratio vs PyTorch: ${(peerSeconds / refineSeconds).toFixed(2)}`);
if (!existsSync(runDir)) console.log(`(training folder ${runDir} was removed meanwhile)`);
