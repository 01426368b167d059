// losscape spectrum: the Hessian's spectral density at the model by stochastic Lanczos
// quadrature (Ghorbani et al. 2019) on exact Hessian-vector products (filter weights, eval
// mode): the quadrature nodes and weights (JSON / CSV), the broadened density and its figure.
// Parses options, calls src/curvature/spectrum.ts, reports.

import type { Command } from "@commander-js/extra-typings";
import { PROBE_DISTRIBUTIONS, type ProbeDistribution } from "../core/lanczos.ts";
import { formatHessianCost, probeHessianCost } from "../curvature/cost.ts";
import {
  type HessianSpectrum,
  hessianSpectrum,
  type SpectralDensity,
  spectralDensity,
  spectrumMoments,
} from "../curvature/spectrum.ts";
import { datasetSize } from "../data/dataset.ts";
import { taskIdentity } from "../engine/task.ts";
import { writeFileAtomic } from "../formats/atomic.ts";
import { figureFormat, writeFigure } from "../plot/plot.ts";
import { spectrumFigure } from "../plot/spectrum.ts";
import { dataOptions, loadFromFlags, modelOptions, openFromFlags, taskFromFlags } from "./_options.ts";
import { nonNegativeInt, oneOf, positiveInt, positiveNumber } from "./_parse.ts";
import { startProgress } from "./progress.ts";

/** Moments reported: k = 0..MOMENTS. */
const MOMENTS = 4;

/**
 * The spectrum as one JSON document: settings, per-probe nodes and weights, moments, the
 * Hutchinson trace of the same probes, and the density on its grid.
 *
 * @example
 * writeFileAtomic("spectrum.json", spectrumJson(s, spectralDensity(s), { model: "cnn" }));
 */
export function spectrumJson(s: HessianSpectrum, d: SpectralDensity, about: Record<string, unknown>): string {
  return `${JSON.stringify({
    ...about,
    method: "stochastic Lanczos quadrature (Ghorbani et al. 2019), full reorthogonalization",
    probes: s.nodes.length,
    steps: s.steps,
    seed: s.seed,
    distribution: s.distribution,
    dimension: s.dimension,
    products: s.products,
    nodes: s.nodes.map((t) => Array.from(t)),
    weights: s.weights.map((w) => Array.from(w)),
    moments: spectrumMoments(s, MOMENTS),
    trace: s.trace,
    sigma: d.sigma,
    grid: Array.from(d.grid),
    density: Array.from(d.density),
  })}\n`;
}

/**
 * The nodes and weights as CSV: probe,node,weight, one row per node.
 *
 * @example
 * writeFileAtomic("nodes.csv", spectrumCsv(s));
 */
export function spectrumCsv(s: Pick<HessianSpectrum, "nodes" | "weights">): string {
  const rows = ["probe,node,weight"];
  s.nodes.forEach((t, p) => {
    const w = s.weights[p]!;
    for (let j = 0; j < t.length; j++) rows.push(`${p},${t[j]!.toPrecision(10)},${w[j]!.toPrecision(10)}`);
  });
  return `${rows.join("\n")}\n`;
}

/**
 * Adds `losscape spectrum` to the program.
 *
 * @example
 * registerSpectrumCommand(program); // losscape spectrum --model cnn --subset 500 --figure spectrum.svg
 */
export function registerSpectrumCommand(program: Command): void {
  dataOptions(modelOptions(program.command("spectrum")))
    .description(
      "Hessian spectral density w.r.t. the filter weights (stochastic Lanczos quadrature on exact Hessian-vector products, eval mode): nodes, weights, density, figure",
    )
    .option("--probes <n>", "seeded probe vectors", positiveInt("--probes"), 4)
    .option("--steps <m>", "Lanczos steps (Hessian-vector products) per probe", positiveInt("--steps"), 40)
    .option("--probe-seed <n>", "seed of the probes", nonNegativeInt("--probe-seed"), 0)
    .option(
      "--distribution <name>",
      `probe entries: ${PROBE_DISTRIBUTIONS.join(", ")}`,
      oneOf("--distribution", PROBE_DISTRIBUTIONS),
      "rademacher" as ProbeDistribution,
    )
    .option(
      "--sigma <s>",
      "Gaussian broadening of the density (default 1 % of the nodes' range)",
      positiveNumber("--sigma"),
    )
    .option("--points <n>", "grid points of the density", positiveInt("--points"), 1000)
    .option("--out <file>", "write everything as JSON (nodes, weights, moments, trace, density)")
    .option("--csv <file>", "write the nodes and weights as CSV (probe,node,weight)")
    .option("--figure <file>", "draw the log-density against the eigenvalue (.svg, .png or .pdf)")
    .option("--title <text>", "title of the figure")
    .option("--json", "print the summary as one JSON line")
    .option("--plan", "print probes x steps x samples and the estimated time, then exit")
    .action(async (o) => {
      const task = taskFromFlags(o);
      if (o.loss === "mse-onehot")
        throw new Error(
          "spectrum: the Hessian is of cross-entropy or mse (regression); --loss mse-onehot is not supported",
        );
      if (o.points < 2) throw new Error(`spectrum: --points expects at least 2, got ${o.points}`);
      if (o.figure !== undefined) figureFormat(o.figure); // a bad extension fails before any work
      for (const [flag, path, ext] of [
        ["--out", o.out, ".json"],
        ["--csv", o.csv, ".csv"],
      ] as const)
        if (path !== undefined && !path.toLowerCase().endsWith(ext))
          throw new Error(`spectrum: ${flag} '${path}' must end in ${ext}`);
      const data = loadFromFlags(o, "train");
      const { model, params } = await openFromFlags(o, data);
      const filters = model.params.filter((p) => p.role === "filter");
      const count = filters.reduce((a, p) => a + p.size, 0);
      if (!o.json)
        console.log(
          `${model.name}: Hessian spectrum of the mean ${taskIdentity(task, model)} over ${data.name} (${datasetSize(data)} samples) w.r.t. ${filters.length} filter tensors (${count} parameters), eval mode`,
        );
      const run = { batchSize: o.batchSize, task, ...(o.threads ? { threads: o.threads } : {}) };
      const total = o.probes * Math.min(o.steps, count);
      if (o.plan || !o.json) {
        const cost = await probeHessianCost(model, params, data, { points: 1, maxProducts: total, ...run });
        console.log(formatHessianCost(cost).replace(/ \(Lanczos stops.*\)$/, ""));
      }
      if (o.plan) return;
      const bar = o.json ? undefined : startProgress("spectrum", total, { unit: "products" });
      const t0 = performance.now();
      let done = 0;
      const s = await hessianSpectrum(model, params, data, {
        probes: o.probes,
        steps: o.steps,
        seed: o.probeSeed,
        distribution: o.distribution,
        ...run,
        onStep: (p) => {
          done++;
          bar?.update(done, `probe ${p + 1}/${o.probes}`);
        },
      });
      bar?.stop();
      const seconds = (performance.now() - t0) / 1000;
      const d = spectralDensity(s, {
        points: o.points,
        ...(o.sigma !== undefined ? { sigma: o.sigma } : {}),
      });
      const about = { model: model.name, data: data.name, samples: datasetSize(data) };
      if (o.out !== undefined) writeFileAtomic(o.out, spectrumJson(s, d, about));
      if (o.csv !== undefined) writeFileAtomic(o.csv, spectrumCsv(s));
      if (o.figure !== undefined)
        writeFigure(
          o.figure,
          spectrumFigure([{ ...d, label: model.name }], o.title ? { title: o.title } : {}),
        );
      const top = Math.max(...s.nodes.map((t) => t[0]!));
      const bottom = Math.min(...s.nodes.map((t) => t[t.length - 1]!));
      const moments = spectrumMoments(s, MOMENTS);
      if (o.json) {
        console.log(
          JSON.stringify({
            ...about,
            probes: s.nodes.length,
            steps: s.steps,
            products: s.products,
            dimension: s.dimension,
            largestNode: top,
            smallestNode: bottom,
            moments,
            trace: s.trace,
            sigma: d.sigma,
            seconds,
          }),
        );
        return;
      }
      console.log(
        `nodes from ${bottom.toPrecision(6)} to ${top.toPrecision(6)} (the extremes approximate lambda_min, lambda_max)`,
      );
      console.log(
        `moments mean_p sum_j w t^k, k = 1..${MOMENTS}: ${moments
          .slice(1)
          .map((m) => m.toPrecision(5))
          .join(", ")} (estimates of tr(H^k) / ${s.dimension})`,
      );
      console.log(
        `trace ${s.trace.trace.toPrecision(6)} +- ${s.trace.stderr.toPrecision(2)} (Hutchinson on the same ${s.trace.samples} probes)`,
      );
      console.log(
        `SLQ: ${s.nodes.length} ${s.distribution} probes x ${s.steps} Lanczos steps = ${s.products} products, density broadened with sigma ${d.sigma.toPrecision(3)}; ${s.passes} passes over the data in ${seconds.toFixed(1)} s`,
      );
      for (const [what, path] of [
        ["JSON", o.out],
        ["CSV", o.csv],
        ["figure", o.figure],
      ] as const)
        if (path !== undefined) console.log(`wrote ${what} ${path}`);
    });
}
