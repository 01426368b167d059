// The losscape command line: each command parses its options into a typed
// config, calls the library, and reports. Only this file exits the process.

import { Command } from "@commander-js/extra-typings";
import { datasetSize, targetSize } from "../data/dataset.ts";
import type { Split } from "../data/load.ts";
import { runDemo } from "../demo.ts";
import { createOrtEngine } from "../engine/ort.ts";
import { isRegression, taskIdentity } from "../engine/task.ts";
import { saveModel } from "../model/checkpoint.ts";
import { isTrainable } from "../model/model.ts";
import { zooModel } from "../zoo/zoo.ts";
import {
  dataOptions,
  loadFromFlags,
  modelOptions,
  openFromFlags,
  SPLITS,
  taskFromFlags,
} from "./_options.ts";
import { nonNegativeInt, oneOf, positiveInt, positiveNumber, shape } from "./_parse.ts";
import { registerConnectCommand } from "./connect.ts";
import { registerHessianCommand } from "./hessian.ts";
import { registerLandscapeCommands } from "./landscape.ts";
import { registerPlotCommands } from "./plot.ts";
import { startProgress } from "./progress.ts";
import { registerQueueCommands } from "./queue.ts";
import { registerSharpnessCommand } from "./sharpness.ts";
import { registerSpectrumCommand } from "./spectrum.ts";
import { registerTrainCommand } from "./train.ts";
import { registerTrajectoryCommand } from "./trajectory.ts";
import { registerViewCommands } from "./view.ts";

const program = new Command()
  .name("losscape")
  .description("Loss landscapes of neural networks on ONNX Runtime (Li et al., NeurIPS 2018)")
  .showHelpAfterError();

program
  .command("demo")
  .description("the main job: train a small CNN on the embedded Fashion-MNIST subset and draw its landscape")
  .option("--out <dir>", "output folder", "out/demo")
  .option("--threads <n>", "ONNX Runtime threads (default: all cores)", positiveInt("--threads"))
  .option(
    "--seed <n>",
    "seed of the initial parameters, shuffling and directions",
    nonNegativeInt("--seed"),
    0,
  )
  .option("--epochs <n>", "training epochs", positiveInt("--epochs"), 3)
  .option("--points <n>", "grid points per axis of the 2D surface", positiveInt("--points"), 15)
  .action(async (o) => {
    const t0 = performance.now();
    let bar: ReturnType<typeof startProgress> | undefined;
    let current = "";
    const result = await runDemo({
      out: o.out,
      seed: o.seed,
      epochs: o.epochs,
      points: o.points,
      ...(o.threads ? { threads: o.threads } : {}),
      log: (l) => console.log(l),
      progress: (label, done, total) => {
        if (label !== current) {
          bar?.stop();
          bar = startProgress(label, total, { unit: label.startsWith("train") ? "batches" : "points" });
          current = label;
        }
        bar?.update(done);
        if (done === total) {
          bar?.stop();
          bar = undefined;
          current = "";
        }
      },
    });
    console.log(`surfaces: ${result.files.join(", ")}`);
    console.log(`figures: ${result.figures.join(", ")}`);
    console.log(`report: ${result.report}`);
    console.log(`explore them: npx losscape view ${o.out}`);
    console.log(`demo finished in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  });

program
  .command("zoo")
  .description(
    "build a zoo model with seeded PyTorch-default initial parameters; writes <out>.onnx and <out>.safetensors",
  )
  .argument("<name>", "mlp, cnn, vgg9, resnet20/56/110, resnet<depth>-noshort, wrn<depth>-<k>")
  .requiredOption("--out <base>", "output path without extension")
  .option("--input-shape <shape>", "shape of one sample", shape("--input-shape"), [1, 28, 28])
  .option("--classes <n>", "number of classes", positiveInt("--classes"), 10)
  .option("--seed <n>", "seed of the initial parameters", nonNegativeInt("--seed"), 0)
  .option("--width <k>", "width multiplier", positiveNumber("--width"), 1)
  .option(
    "--activation <kind>",
    "relu (the paper's) or softplus (no kinks)",
    oneOf("--activation", ["relu", "softplus"] as const),
    "relu" as const,
  )
  .action((name, o) => {
    const model = zooModel(name, {
      inputShape: o.inputShape,
      classes: o.classes,
      seed: o.seed,
      width: o.width,
      activation: o.activation,
    });
    const files = saveModel(model, model.initial, o.out, { seed: String(o.seed) });
    console.log(
      `${name}: ${model.params.length} tensors, ${model.size} parameters -> ${files.onnx}, ${files.safetensors}`,
    );
  });

modelOptions(program.command("describe"))
  .description("list a model's parameters and their roles")
  .action(async (o) => {
    const { model } = await openFromFlags(o);
    console.log(
      `${model.name}: input '${model.input.name}' [${model.input.batch ?? "N"}, ${model.input.shape.join(", ")}], output '${model.output}', ${model.classes ?? "?"} classes`,
    );
    const trainable = model.params.filter((p) => isTrainable(p.role)).reduce((a, p) => a + p.size, 0);
    console.log(`${model.params.length} parameter tensors, ${model.size} values (${trainable} trainable)`);
    const report = new Map((model.initializers ?? []).map((r) => [r.name, r]));
    for (const p of model.params) {
      const axis = p.filterAxis !== undefined ? ` (filters along axis ${p.filterAxis})` : "";
      const r = report.get(p.name);
      const notes = [
        p.kind,
        r?.shared ? `shared: ${r.users.join(", ")}` : undefined,
        r?.restoredFrom ? `restored: the exporter had merged it into '${r.restoredFrom}'` : undefined,
      ].filter(Boolean);
      console.log(
        `  ${p.name.padEnd(36)} ${`[${p.shape.join(", ")}]`.padEnd(18)} ${p.role}${axis}${notes.length ? `  ${notes.join("; ")}` : ""}`,
      );
    }
    const constants = (model.initializers ?? []).filter((r) => r.status === "constant");
    if (constants.length > 0) {
      console.log(`${constants.length} float initializer(s) kept constant:`);
      for (const r of constants)
        console.log(`  ${r.name.padEnd(36)} ${`[${r.shape.join(", ")}]`.padEnd(18)} ${r.kind}`);
    }
  });

dataOptions(modelOptions(program.command("evaluate")))
  .description(
    "mean loss and accuracy of a model on a dataset, in evaluation mode (per token / pixel for dense targets, MSE for regression)",
  )
  .option("--split <split>", "train or test", oneOf("--split", SPLITS), "test" as Split)
  .option("--json", "print the result as JSON")
  .action(async (o) => {
    const data = loadFromFlags(o, o.split);
    const task = taskFromFlags(o);
    const { model, params } = await openFromFlags(o, data);
    const engine = await createOrtEngine(model, o.threads ? { threads: o.threads } : {});
    const bar = startProgress("evaluate", datasetSize(data), { unit: "samples" });
    const t0 = performance.now();
    try {
      const m = await engine.evaluate(params, data, {
        batchSize: o.batchSize,
        ...task,
        onProgress: (done) => bar.update(done),
      });
      bar.stop();
      const seconds = (performance.now() - t0) / 1000;
      const scored = isRegression(data) ? "" : targetSize(data) > 1 ? " per target" : "";
      const loss = taskIdentity(task, model);
      if (o.json)
        console.log(
          JSON.stringify({
            model: model.name,
            data: data.name,
            task: loss,
            ...m,
            accuracy: Number.isNaN(m.accuracy) ? null : m.accuracy,
            seconds,
          }),
        );
      else {
        const acc = Number.isNaN(m.accuracy) ? "" : `, accuracy${scored} ${(100 * m.accuracy).toFixed(2)} %`;
        const perplexity =
          loss === "cross-entropy" && targetSize(data) > 1
            ? `, perplexity ${Math.exp(m.loss).toPrecision(6)}`
            : "";
        console.log(
          `${model.name} on ${data.name}: ${loss} ${m.loss.toFixed(6)}${perplexity}${acc} (${m.count} samples, ${seconds.toFixed(2)} s, ${(m.count / seconds).toFixed(0)} samples/s)`,
        );
      }
    } finally {
      await engine.dispose();
    }
  });

registerLandscapeCommands(program);
registerHessianCommand(program);
registerSharpnessCommand(program);
registerSpectrumCommand(program);
registerPlotCommands(program);
registerQueueCommands(program);
registerViewCommands(program);
registerTrainCommand(program);
registerTrajectoryCommand(program);
registerConnectCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  console.error(`losscape: ${(e as Error).message}`);
  process.exit(1);
}
