// Benchmark: the prefix cache. Directions that move only the last stage of ResNet-20 (3x32x32) or
// the last block of a small GPT-style decoder (vocabulary 256, context 64, width 64, 2 blocks, the
// one bench:evaluate --task lm uses) leave the rest of the graph fixed: with the cache a grid point
// runs only the suffix. Each round evaluates the whole set at new parameters (as at a new grid
// point) three ways, in rotating order: losscape whole graph, losscape with the prefix cache (filled
// in the warm-up, as after the first point of a surface), and PyTorch's eval loop (whole model, as
// the reference computes every point). Medians of per-round ratios.
// Run: npm run bench:prefix [-- --threads 2 --rounds 5 --samples 2048 --batch 128]

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { Random } from "../src/core/random.ts";
import type { Dataset } from "../src/data/dataset.ts";
import { loadDataset } from "../src/data/load.ts";
import { createOrtEngine } from "../src/engine/ort.ts";
import { readOnnx } from "../src/model/import.ts";
import type { Model } from "../src/model/model.ts";
import { zooModel } from "../src/zoo/zoo.ts";
import { machineLine, median, PEER_SETUP, requirePeer, startPeer } from "./_peer.ts";

const { values } = parseArgs({
  options: {
    threads: { type: "string", default: "2" },
    rounds: { type: "string", default: "5" },
    samples: { type: "string", default: "2048" },
    batch: { type: "string", default: "128" },
  },
});
const threads = Number(values.threads);
const rounds = Number(values.rounds);
const samples = Number(values.samples);
const batchSize = Number(values.batch);
const torchVersion = requirePeer();
const PEER = new URL("./torch_evaluate.py", import.meta.url).pathname;

interface Case {
  label: string;
  model: Model;
  data: Dataset;
  /** Parameters the directions move. */
  moving: string[];
  peerArgs: string[];
  /** Scored targets per sample (tokens per window). */
  scale: number;
}

async function resnetCase(): Promise<Case> {
  const rng = new Random(0);
  const shape = [3, 32, 32];
  const model = zooModel("resnet20", { inputShape: shape, seed: 0 });
  return {
    label: "ResNet-20 3x32x32, --only '^layer3\\.' (last stage)",
    model,
    data: {
      name: "synthetic",
      shape,
      inputs: Float32Array.from({ length: samples * 3072 }, () => rng.normal()),
      labels: Uint8Array.from({ length: samples }, () => rng.int(10)),
      classes: 10,
    },
    moving: model.params
      .filter((p) => p.name.startsWith("layer3.") && p.role === "filter")
      .map((p) => p.name),
    peerArgs: ["resnet20", String(threads), String(batchSize), String(samples)],
    scale: 1,
  };
}

async function lmCase(): Promise<Case> {
  const onnxPath = join(mkdtempSync(join(tmpdir(), "losscape-bench-")), "gpt-lm.onnx");
  const exporter = await startPeer(PEER, ["gpt-lm", String(threads), "1", "1", onnxPath], threads);
  await exporter.close();
  const model = await readOnnx(onnxPath);
  const windows = loadDataset("tokens", "train", { context: 64 });
  return {
    label: "gpt-lm (2 blocks), --only '^blocks\\.1\\.' (last block)",
    model,
    data: {
      ...windows,
      inputs: windows.inputs.subarray(0, samples * 64),
      labels: windows.labels.subarray(0, samples * 64),
    },
    moving: model.params.filter((p) => /^blocks\.1\./.test(p.name) && p.role === "filter").map((p) => p.name),
    peerArgs: ["gpt-lm", String(threads), String(batchSize), String(samples), onnxPath],
    scale: 64,
  };
}

console.log(
  `prefix cache: ${samples} samples per point, batch ${batchSize}, ${threads} threads, ${rounds} rounds rotating the three sides after a warm-up; medians`,
);
console.log(await machineLine());
console.log(`peer: torch ${torchVersion}; ${PEER_SETUP}`);
console.log(
  "| case | moving tensors | whole graph (s/point) | prefix cache (s/point) | speed-up | PyTorch (s/point) | cache vs PyTorch |",
);
console.log("|---|---|---|---|---|---|---|");
for (const make of [resnetCase, lmCase]) {
  const c = await make();
  const full = await createOrtEngine(c.model, { threads });
  const cached = await createOrtEngine(c.model, { threads, prefixCache: { moving: c.moving } });
  let call = 0;
  const at = (): Float32Array => {
    call++;
    const p = c.model.initial.slice();
    for (const s of c.model.params)
      if (c.moving.includes(s.name)) for (let i = 0; i < s.size; i++) p[s.offset + i]! *= 1 + 1e-4 * call;
    return p;
  };
  const ours = async (engine: typeof full): Promise<number> => {
    await sleep(100); // the other side's spinning threads go quiet
    const p = at();
    const t0 = performance.now();
    await engine.evaluate(p, c.data, { batchSize });
    return (performance.now() - t0) / 1000;
  };
  const peer = await startPeer(PEER, c.peerArgs, threads);
  const theirs = async (): Promise<number> => {
    await sleep(100);
    return (samples * c.scale) / ((await peer.round()).rate as number);
  };
  await ours(full);
  await ours(cached); // fills the cache, as the first point of a surface does
  const sides = [() => ours(full), () => ours(cached), theirs];
  const times: number[][] = [[], [], []];
  for (let r = 0; r < rounds; r++)
    for (let k = 0; k < 3; k++) {
      const side = (r + k) % 3;
      times[side]!.push(await sides[side]!());
    }
  await peer.close();
  const report = cached.prefix?.();
  await full.dispose();
  await cached.dispose();
  const [a, b, t] = times as [number[], number[], number[]];
  const speedup = median(a.map((v, i) => v / b[i]!));
  const vsPeer = median(t.map((v, i) => v / b[i]!));
  console.log(
    `| ${c.label} | ${c.moving.length} | ${median(a).toFixed(3)} | ${median(b).toFixed(3)} | ${speedup.toFixed(2)} | ${median(t).toFixed(3)} | ${vsPeer.toFixed(2)} |`,
  );
  if (typeof report === "object")
    console.log(
      `  split: ${report.prefixNodes} prefix nodes, ${report.suffixNodes} suffix nodes, ${report.cuts.length} cut tensor(s), ${(report.memoryBytes / 2 ** 20).toFixed(1)} MiB held`,
    );
  console.log(`speed-up of the prefix cache (${c.label.split(",")[0]}): ${speedup.toFixed(2)}`);
}
