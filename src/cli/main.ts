// The losscape command line: each command parses its options into a typed
// config, calls the library, and reports. Only this file exits the process.

import { Command } from "@commander-js/extra-typings";
import { datasetSize } from "../data/dataset.ts";
import { loadDataset, type Split } from "../data/load.ts";
import { parseSubset } from "../data/transform.ts";
import { runDemo } from "../demo.ts";
import type { LossName } from "../engine/engine.ts";
import { createOrtEngine } from "../engine/ort.ts";
import { saveModel } from "../model/checkpoint.ts";
import { isTrainable } from "../model/model.ts";
import { openModel } from "../model/open.ts";
import { zooModel } from "../zoo/zoo.ts";
import { nonNegativeInt, oneOf, positiveInt, positiveNumber, shape } from "./_parse.ts";
import { startProgress } from "./progress.ts";

const program = new Command()
  .name("losscape")
  .description("Loss landscapes of neural networks on ONNX Runtime (Li et al., NeurIPS 2018)")
  .showHelpAfterError();

const SPLITS = ["train", "test"] as const satisfies readonly Split[];
const LOSSES = ["cross-entropy", "mse"] as const satisfies readonly LossName[];

program
  .command("demo")
  .description("run the main job on the embedded Fashion-MNIST subset and a small CNN")
  .option("--out <dir>", "output folder", "out/demo")
  .option("--threads <n>", "ONNX Runtime threads (default: all cores)", positiveInt("--threads"))
  .option("--seed <n>", "seed of the initial parameters", nonNegativeInt("--seed"), 0)
  .action(async (o) => {
    const t0 = performance.now();
    const result = await runDemo({ out: o.out, seed: o.seed, log: (l) => console.log(l), ...(o.threads ? { threads: o.threads } : {}) });
    console.log(`wrote ${result.files.join(", ")}`);
    console.log(`demo finished in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  });

program
  .command("zoo")
  .description("build a zoo model with seeded PyTorch-default initial parameters; writes <out>.onnx and <out>.safetensors")
  .argument("<name>", "mlp, cnn, vgg9, resnet20/56/110, resnet<depth>-noshort, wrn<depth>-<k>")
  .requiredOption("--out <base>", "output path without extension")
  .option("--input-shape <shape>", "shape of one sample", shape("--input-shape"), [1, 28, 28])
  .option("--classes <n>", "number of classes", positiveInt("--classes"), 10)
  .option("--seed <n>", "seed of the initial parameters", nonNegativeInt("--seed"), 0)
  .option("--width <k>", "width multiplier", positiveNumber("--width"), 1)
  .action((name, o) => {
    const model = zooModel(name, { inputShape: o.inputShape, classes: o.classes, seed: o.seed, width: o.width });
    const files = saveModel(model, model.initial, o.out, { seed: String(o.seed) });
    console.log(`${name}: ${model.params.length} tensors, ${model.size} parameters -> ${files.onnx}, ${files.safetensors}`);
  });

/** Options shared by commands that open a model. */
function modelOptions(cmd: Command) {
  return cmd
    .requiredOption("--model <model>", "an .onnx file or a zoo name")
    .option("--params <file>", "safetensors file with the parameters (matched by name)")
    .option("--input <name>", "graph input holding the samples (when the graph has several)")
    .option("--output <name>", "graph output holding the logits (when the graph has several)")
    .option("--input-shape <shape>", "shape of one sample, e.g. 3,32,32 (zoo models: default from the data)", shape("--input-shape"))
    .option("--allow-folded-bn", "accept a graph whose BatchNorm was folded into Conv weights");
}

modelOptions(program.command("describe").description("list a model's parameters and their roles")).action(async (o) => {
  const { model } = await openModel(o.model, {
    ...(o.params ? { params: o.params } : {}),
    ...(o.input ? { input: o.input } : {}),
    ...(o.output ? { output: o.output } : {}),
    ...(o.inputShape ? { inputShape: o.inputShape } : {}),
    allowFoldedBatchNorm: Boolean(o.allowFoldedBn),
  });
  console.log(`${model.name}: input '${model.input.name}' [${model.input.batch ?? "N"}, ${model.input.shape.join(", ")}], output '${model.output}', ${model.classes ?? "?"} classes`);
  const trainable = model.params.filter((p) => isTrainable(p.role)).reduce((a, p) => a + p.size, 0);
  console.log(`${model.params.length} parameter tensors, ${model.size} values (${trainable} trainable)`);
  for (const p of model.params) {
    console.log(`  ${p.name.padEnd(36)} ${`[${p.shape.join(", ")}]`.padEnd(18)} ${p.role}${p.filterAxis !== undefined ? ` (filters along axis ${p.filterAxis})` : ""}`);
  }
  for (const w of model.warnings) console.log(`warning: ${w}`);
});

modelOptions(program.command("evaluate"))
  .description("mean loss and accuracy of a model on a dataset, in evaluation mode")
  .option("--data <spec>", "fashion-mnist (embedded), fashion-mnist:DIR, mnist:DIR, cifar10:DIR, cifar100:DIR", "fashion-mnist")
  .option("--split <split>", "train or test", oneOf("--split", SPLITS), "test" as Split)
  .option("--subset <n>", "a seeded subset: a count (1000), a fraction (0.1) or a percentage (10%)")
  .option("--seed <n>", "seed of the subset", nonNegativeInt("--seed"), 0)
  .option("--batch-size <n>", "samples per forward pass", positiveInt("--batch-size"), 256)
  .option("--loss <name>", "cross-entropy or mse", oneOf("--loss", LOSSES), "cross-entropy" as LossName)
  .option("--threads <n>", "ONNX Runtime threads (default: all cores)", positiveInt("--threads"))
  .option("--json", "print the result as JSON")
  .action(async (o) => {
  const data = loadDataset(o.data, o.split, { ...(o.subset ? { subset: parseSubset(o.subset) } : {}), seed: o.seed });
  const { model, params } = await openModel(o.model, {
    inputShape: o.inputShape ?? data.shape,
    classes: data.classes,
    ...(o.params ? { params: o.params } : {}),
    ...(o.input ? { input: o.input } : {}),
    ...(o.output ? { output: o.output } : {}),
    allowFoldedBatchNorm: Boolean(o.allowFoldedBn),
  });
  for (const w of model.warnings) console.error(`warning: ${w}`);
  const engine = await createOrtEngine(model, o.threads ? { threads: o.threads } : {});
  const bar = startProgress("evaluate", datasetSize(data), { unit: "samples" });
  const t0 = performance.now();
  try {
    const m = await engine.evaluate(params, data, { batchSize: o.batchSize, loss: o.loss, onProgress: (done) => bar.update(done) });
    bar.stop();
    const seconds = (performance.now() - t0) / 1000;
    if (o.json) console.log(JSON.stringify({ model: model.name, data: data.name, ...m, seconds }));
    else {
      console.log(
        `${model.name} on ${data.name}: loss ${m.loss.toFixed(6)}, accuracy ${(100 * m.accuracy).toFixed(2)} % (${m.count} samples, ${seconds.toFixed(2)} s, ${(m.count / seconds).toFixed(0)} samples/s)`,
      );
    }
  } finally {
    await engine.dispose();
  }
});

try {
  await program.parseAsync(process.argv);
} catch (e) {
  console.error(`losscape: ${(e as Error).message}`);
  process.exit(1);
}
