// The main job on the embedded defaults: a small CNN on the embedded
// Fashion-MNIST subset, saved and evaluated. Later capabilities (training,
// surfaces, figures) extend this same entry point.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { datasetSize } from "./data/dataset.ts";
import { loadEmbedded } from "./data/embedded.ts";
import type { Metrics } from "./engine/engine.ts";
import { createOrtEngine } from "./engine/ort.ts";
import { saveModel } from "./model/checkpoint.ts";
import { zooModel } from "./zoo/zoo.ts";

/** Options of the demo. */
export interface DemoOptions {
  /** Output folder (default "out/demo"). */
  out?: string;
  /** ONNX Runtime threads (default: all cores). */
  threads?: number;
  /** Seed of the model's initial parameters (default 0). */
  seed?: number;
  /** Receives one line per step. */
  log?: (line: string) => void;
}

/** What the demo produced. */
export interface DemoResult {
  files: string[];
  train: Metrics & { seconds: number };
  test: Metrics & { seconds: number };
}

/**
 * Runs the demo: builds the zoo `cnn`, saves it, evaluates it on the embedded train and test sets.
 *
 * @example
 * const result = await runDemo({ out: "out/demo", log: console.log });
 */
export async function runDemo({
  out = "out/demo",
  threads,
  seed = 0,
  log = () => {},
}: DemoOptions = {}): Promise<DemoResult> {
  mkdirSync(out, { recursive: true });
  const trainData = loadEmbedded("train");
  const testData = loadEmbedded("test");
  log(
    `data: embedded Fashion-MNIST subset, ${datasetSize(trainData)} train / ${datasetSize(testData)} test samples of [${trainData.shape.join(", ")}]`,
  );
  const model = zooModel("cnn", { inputShape: trainData.shape, classes: trainData.classes, seed });
  log(`model: zoo 'cnn', ${model.params.length} tensors, ${model.size} parameters (seed ${seed})`);
  const saved = saveModel(model, model.initial, join(out, "cnn"));
  const engine = await createOrtEngine(model, threads === undefined ? {} : { threads });
  try {
    const timed = async (data: typeof trainData) => {
      const t0 = performance.now();
      const m = await engine.evaluate(model.initial, data);
      return { ...m, seconds: (performance.now() - t0) / 1000 };
    };
    const train = await timed(trainData);
    const test = await timed(testData);
    for (const [name, m] of [
      ["train", train],
      ["test", test],
    ] as const) {
      log(
        `${name}: loss ${m.loss.toFixed(4)}, accuracy ${(100 * m.accuracy).toFixed(2)} % on ${m.count} samples in ${m.seconds.toFixed(2)} s (${(m.count / m.seconds).toFixed(0)} samples/s)`,
      );
    }
    return { files: [saved.onnx, saved.safetensors], train, test };
  } finally {
    await engine.dispose();
  }
}
