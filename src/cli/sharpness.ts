// losscape sharpness: one table of sharpness measures across several parameter
// files of one model (e.g. a small- and a large-batch run): loss, accuracy,
// epsilon-sharpness, adaptive average- and worst-case sharpness, lambda_max
// and the Hessian trace, as Markdown or JSON. Parses options, calls src/curvature.

import { basename } from "node:path";
import type { Command } from "@commander-js/extra-typings";
import { TRACE_METHODS, type TraceMethod } from "../curvature/hessian.ts";
import { type PerturbedParameters, sharpnessMarkdown, sharpnessTable } from "../curvature/sharpness.ts";
import { writeFileAtomic } from "../formats/atomic.ts";
import { dataOptions, loadFromFlags, openFromFlags, taskFromFlags } from "./_options.ts";
import { nonNegativeInt, oneOf, positiveInt, positiveNumber, regex, shape } from "./_parse.ts";
import { startProgress } from "./progress.ts";

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/**
 * Adds `losscape sharpness` to the program.
 *
 * @example
 * registerSharpnessCommand(program); // losscape sharpness --model cnn --params a.safetensors --params b.safetensors
 */
export function registerSharpnessCommand(program: Command): void {
  dataOptions(program.command("sharpness"))
    .description(
      "sharpness at one or more models: epsilon-sharpness (Keskar et al.), adaptive average- and worst-case sharpness (Andriushchenko et al.), lambda_max and the Hessian trace, as one table (eval mode)",
    )
    .requiredOption("--model <model>", "an .onnx file or a zoo name")
    .option(
      "--params <file>",
      "safetensors file with the parameters; repeat for several models (default: the model's own)",
      collect,
    )
    .option("--label <name>", "a row's name, one per --params in order (default: the file name)", collect)
    .option("--input <name>", "graph input holding the samples (when the graph has several)")
    .option("--output <name>", "graph output holding the logits (when the graph has several)")
    .option(
      "--input-shape <shape>",
      "shape of one sample (zoo models: default from the data)",
      shape("--input-shape"),
    )
    .option("--allow-folded-bn", "accept a graph whose BatchNorm was folded into Conv weights")
    .option(
      "--trainable <regex>",
      "float initializers whose names match are parameters",
      regex("--trainable"),
    )
    .option("--constant <regex>", "float initializers whose names match stay constant", regex("--constant"))
    .option(
      "--perturb <set>",
      "parameters the sharpness measures move: filters (rank >= 2 weights, as the Hessian) or trainable (all but BN statistics)",
      oneOf("--perturb", ["filters", "trainable"] as const),
      "filters" as PerturbedParameters,
    )
    .option(
      "--epsilon <e>",
      "epsilon of Keskar's box |y_i| <= e (|x_i| + 1)",
      positiveNumber("--epsilon"),
      1e-3,
    )
    .option(
      "--rho-avg <r>",
      "rho of the average-case measure (d ~ N(0, r^2 w^2))",
      positiveNumber("--rho-avg"),
      0.05,
    )
    .option(
      "--rho-l2 <r>",
      "rho of the worst-case measure ||d / |w| ||_2 <= r",
      positiveNumber("--rho-l2"),
      0.5,
    )
    .option(
      "--rho-linf <r>",
      "rho of the worst-case measure ||d / |w| ||_inf <= r",
      positiveNumber("--rho-linf"),
      1e-3,
    )
    .option(
      "--steps <n>",
      "ascent steps of the worst-case measures and eps-sharpness",
      positiveInt("--steps"),
      20,
    )
    .option(
      "--samples <n>",
      "Gaussian draws of the average-case measure (each at +d and -d)",
      positiveInt("--samples"),
      20,
    )
    .option("--seed <n>", "seed of the random starts, draws and Lanczos", nonNegativeInt("--seed"), 0)
    .option(
      "--iterations <n>",
      "at most n Hessian-vector products for lambda_max",
      positiveInt("--iterations"),
      50,
    )
    .option("--tol <r>", "relative tolerance of lambda_max", positiveNumber("--tol"), 1e-3)
    .option(
      "--trace <n>",
      "Hessian-vector products of the trace estimate (0: none)",
      nonNegativeInt("--trace"),
      20,
    )
    .option(
      "--trace-method <name>",
      "hutchinson or hutch++ (Meyer et al. 2021)",
      oneOf("--trace-method", TRACE_METHODS),
      "hutchinson" as TraceMethod,
    )
    .option("--json", "print the table as JSON instead of Markdown")
    .option("--out <file>", "also write the table there (.json: JSON, otherwise Markdown)")
    .action(async (o) => {
      if (o.samples < 2) throw new Error(`sharpness: --samples expects at least 2, got ${o.samples}`);
      if (o.iterations < 2)
        throw new Error(`sharpness: --iterations expects at least 2, got ${o.iterations}`);
      if (!(o.tol < 1)) throw new Error(`sharpness: --tol expects a number in (0, 1), got ${o.tol}`);
      if (o.loss === "mse-onehot")
        throw new Error(
          "sharpness: needs gradients of cross-entropy or mse; --loss mse-onehot is not supported",
        );
      const files = o.params ?? [];
      const labels = o.label ?? [];
      if (labels.length > 0 && labels.length !== Math.max(files.length, 1))
        throw new Error(
          `sharpness: --label was given ${labels.length} time(s) but there are ${Math.max(files.length, 1)} model(s) (--params)`,
        );
      const data = loadFromFlags(o, "train");
      const runs: { label: string; params: Float32Array }[] = [];
      let model: Awaited<ReturnType<typeof openFromFlags>>["model"] | undefined;
      for (const [k, file] of (files.length ? files : [undefined]).entries()) {
        const { params: _files, label: _labels, ...flags } = o;
        const opened = await openFromFlags(
          { ...flags, ...(file !== undefined ? { params: file } : {}) },
          data,
        );
        if (model && opened.model.size !== model.size)
          throw new Error(`sharpness: --params '${file}' has another size than the first model's`);
        model ??= opened.model;
        runs.push({
          label: labels[k] ?? (file ? basename(file).replace(/\.safetensors$/, "") : o.model),
          params: opened.params,
        });
      }
      const measures = 6;
      const bar = o.json
        ? undefined
        : startProgress("sharpness", runs.length * measures, { unit: "measures" });
      let done = 0;
      const table = await sharpnessTable(model!, runs, data, {
        perturb: o.perturb,
        batchSize: o.batchSize,
        task: taskFromFlags(o),
        ...(o.threads ? { threads: o.threads } : {}),
        epsilon: o.epsilon,
        rhoAverage: o.rhoAvg,
        rhoL2: o.rhoL2,
        rhoLinf: o.rhoLinf,
        steps: o.steps,
        samples: o.samples,
        seed: o.seed,
        lanczosIterations: o.iterations,
        lanczosTol: o.tol,
        traceSamples: o.trace,
        traceMethod: o.traceMethod,
        onMeasure: (name) => bar?.update(done++, name),
      });
      bar?.update(done);
      bar?.stop();
      const json = `${JSON.stringify({ model: model!.name, ...table }, null, 1)}\n`;
      const markdown = sharpnessMarkdown(table);
      if (o.out) writeFileAtomic(o.out, o.out.endsWith(".json") ? json : markdown);
      process.stdout.write(o.json ? json : markdown);
    });
}
