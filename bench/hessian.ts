// Benchmark: time to lambda_max and lambda_min of the Hessian (filter weights, eval mode) of the
// zoo's small CNN on 1,000 Fashion-MNIST samples: losscape (exact forward-over-reverse products on
// ORT + Lanczos) against PyTorch doing the reference approach (double-backward products + a
// Lanczos eigensolver, see bench/torch_hessian.py) on the same cores; plus the throughput of one
// Hessian-vector product over the set (samples/s) for both.
// With --spectrum PxM (default 2x30), each round also times the spectral density by stochastic
// Lanczos quadrature (P seeded probes, M Lanczos steps each) on both sides, from the same probes.
// Rounds alternate between the two, and medians are reported.
// --model takes a zoo name (on the embedded Fashion-MNIST) or an image model fixture of
// fixtures/torch_models.py (vit, resnet18, ...: the module exported by python/losscape_export.py,
// on seeded N(0, 1) samples of its input shape, seeded labels).
// Run: npm run bench:hessian [-- --threads 2 --rounds 3 --samples 1000 --batch 256 --tol 1e-3 --model vit --spectrum 2x30]

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { modelFixture, references } from "../fixtures/_models.ts";
import { createHvpSession } from "../src/autodiff/hvp.ts";
import { probeVectors } from "../src/core/lanczos.ts";
import { Random } from "../src/core/random.ts";
import { hessianExtremes } from "../src/curvature/hessian.ts";
import { filterMask, hessianOperator } from "../src/curvature/hvp.ts";
import { hessianSpectrum, spectrumMoments } from "../src/curvature/spectrum.ts";
import type { Dataset } from "../src/data/dataset.ts";
import { loadEmbedded } from "../src/data/embedded.ts";
import { writeSafetensors } from "../src/formats/safetensors.ts";
import { type Model, paramView } from "../src/model/model.ts";
import { zooModel } from "../src/zoo/zoo.ts";
import { machineLine, median, PEER_SETUP, requirePeer, runPeer } from "./_peer.ts";

const { values } = parseArgs({
  options: {
    threads: { type: "string", default: "2" },
    rounds: { type: "string", default: "3" },
    samples: { type: "string", default: "1000" },
    batch: { type: "string", default: "256" },
    tol: { type: "string", default: "1e-3" },
    model: { type: "string", default: "cnn" },
    spectrum: { type: "string", default: "2x30" },
  },
});
const threads = Number(values.threads);
const rounds = Number(values.rounds);
const samples = Number(values.samples);
const batchSize = Number(values.batch);
const tol = Number(values.tol);
const name = values.model;
const spectrumMatch = /^(\d+)x(\d+)$/.exec(values.spectrum);
if (!spectrumMatch && values.spectrum !== "0")
  throw new Error(`--spectrum expects PROBESxSTEPS (e.g. 2x30) or 0, got '${values.spectrum}'`);
const slqProbes = spectrumMatch ? Number(spectrumMatch[1]) : 0;
const slqSteps = spectrumMatch ? Number(spectrumMatch[2]) : 0;
const SLQ_SEED = 3;
const torchVersion = requirePeer();

const fixture = references.models[name];
if (fixture && fixture.inputKind !== "image")
  throw new Error(
    `--model ${name}: the Hessian benchmark takes image models (zoo names, resnet18, vit, ...)`,
  );
function seededData(shape: readonly number[]): Dataset {
  const rng = new Random(7);
  const per = shape.reduce((a, b) => a * b, 1);
  return {
    name: `seeded N(0, 1) [${samples}, ${shape.join(", ")}]`,
    shape,
    inputs: Float32Array.from({ length: samples * per }, () => rng.normal()),
    labels: Uint8Array.from({ length: samples }, () => rng.int(10)),
    classes: 10,
  };
}
function embeddedData(): Dataset {
  const all = loadEmbedded("train");
  const per = all.shape.reduce((a, b) => a * b, 1);
  if (samples > all.labels.length) throw new Error(`--samples: the embedded set has ${all.labels.length}`);
  return {
    ...all,
    name: `fashion-mnist/train[0:${samples}]`,
    inputs: all.inputs.slice(0, samples * per),
    labels: all.labels.slice(0, samples),
  };
}
const data = fixture ? seededData(fixture.shape) : embeddedData();
const model: Model = fixture ? modelFixture(name).model : zooModel(name, { inputShape: data.shape, seed: 0 });
// Away from the initialization's near-zero logits, as a trained net: last layer scaled up.
const theta = model.initial.slice();
const last = model.params.filter((p) => p.role === "filter").at(-1)!;
const lastView = paramView(theta, last);
for (let i = 0; i < lastView.length; i++) lastView[i]! *= 10;

const filters = model.params.filter((p) => p.role === "filter").reduce((a, p) => a + p.size, 0);
console.log(
  `${name} Hessian (filter weights, ${filters} parameters, eval mode), ${data.name}, batch ${batchSize}, ${threads} threads; median of ${rounds} rounds, alternating`,
);
console.log(
  `losscape: exact forward-over-reverse Hessian-vector products on onnxruntime-node, Lanczos (full reorthogonalization) to tol ${tol}`,
);
console.log(await machineLine());
console.log(
  `peer: torch ${torchVersion}; double-backward products as the reference code, numpy Lanczos with full reorthogonalization and the same number of products (scipy's ARPACK eigsh, which the reference uses, is not installed); ${PEER_SETUP.replace(", no_grad, eval mode", ", eval mode")}`,
);

/** One losscape round: a new session, Lanczos to tol, then one more product alone, then SLQ. */
async function oursRound(r: number) {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const session = await createHvpSession(model, { threads });
  const e = await hessianExtremes(model, theta, data, { tol, maxIterations: 200, batchSize, session });
  const seconds = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const H = await hessianOperator(model, theta, data, { batchSize, session });
  const rng = new Random(r);
  const v = Float32Array.from({ length: model.size }, () => rng.normal());
  const t1 = performance.now();
  await H.hvp(v);
  const rate = samples / ((performance.now() - t1) / 1000);
  await H.dispose();
  await session.dispose();
  let slq: { seconds: number; cpu: number; moments: number[]; largest: number; products: number } | undefined;
  if (slqProbes > 0) {
    // As the peer's (which reuses the round's model), the timing starts with a ready session.
    const slqSession = await createHvpSession(model, { threads });
    const t2 = performance.now();
    const c2 = process.cpuUsage();
    const s = await hessianSpectrum(model, theta, data, {
      probes: slqProbes,
      steps: slqSteps,
      seed: SLQ_SEED,
      batchSize,
      session: slqSession,
    });
    const cs = process.cpuUsage(c2);
    await slqSession.dispose();
    slq = {
      seconds: (performance.now() - t2) / 1000,
      cpu: (cs.user + cs.system) / 1e6,
      moments: spectrumMoments(s, 2),
      largest: Math.max(...s.nodes.map((t) => t[0]!)),
      products: s.products,
    };
  }
  return { e, seconds, cpu: (c.user + c.system) / 1e6, perProduct: seconds / e.passes, rate, slq };
}

const tmp = mkdtempSync(join(tmpdir(), "losscape-bench-hessian-"));
const file = join(tmp, "case.safetensors");
writeSafetensors(
  file,
  [
    ...model.params.map((p) => ({ name: p.name, shape: p.shape, data: paramView(theta, p) })),
    { name: "__input__", shape: [samples, ...data.shape], data: data.inputs },
    { name: "__labels__", shape: [samples], data: Int32Array.from(data.labels) },
    // The SLQ probes, so the peer starts from the very same vectors.
    ...probeVectors(model.size, slqProbes, { seed: SLQ_SEED, mask: filterMask(model) }).flatMap((z, k) =>
      model.params
        .filter((p) => p.role === "filter")
        .map((p) => ({ name: `__z${k}__:${p.name}`, shape: p.shape, data: paramView(z, p) })),
    ),
  ],
  { model: name, input_shape: data.shape.join(","), classes: String(data.classes) },
);

// Rounds alternate between losscape and the peer, so that load from other processes on a shared
// machine hits both alike.
const mine: Awaited<ReturnType<typeof oursRound>>[] = [];
const theirs: Record<string, unknown>[] = [];
try {
  console.log("");
  console.log("| round | losscape s (CPU s) | PyTorch s (CPU s) |");
  console.log("|---|---|---|");
  for (let r = 1; r <= rounds; r++) {
    const o = await oursRound(r);
    mine.push(o);
    const p = runPeer(
      new URL("./torch_hessian.py", import.meta.url).pathname,
      [
        file,
        String(threads),
        String(batchSize),
        String(o.e.iterations),
        "1",
        ...(slqProbes > 0 ? [String(slqProbes), String(slqSteps)] : []),
      ],
      threads,
    );
    theirs.push(p);
    const ps = (p.seconds as number[])[0]!;
    const pc = (p.cpuSeconds as number[])[0]!;
    console.log(
      `| ${r} | ${o.seconds.toFixed(2)} (${o.cpu.toFixed(1)}) | ${ps.toFixed(2)} (${pc.toFixed(1)}) |`,
    );
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

const e = mine[mine.length - 1]!.e;
const peer = theirs[theirs.length - 1]!;
const pick = (key: string): number[] => theirs.map((p) => (p[key] as number[])[0]!);
const ours = median(mine.map((o) => o.seconds));
const their = median(pick("seconds"));
const ourRate = median(mine.map((o) => o.rate));
const theirRate = median(pick("hvpRates"));
const ourPer = median(mine.map((o) => o.perProduct));
const theirPer = median(pick("perProduct"));
const fmt = (v: number): string => v.toPrecision(6);
console.log("");
console.log("| median | losscape | PyTorch | ratio (losscape / PyTorch speed) |");
console.log("|---|---|---|---|");
console.log(
  `| time to lambda_max and lambda_min (s) | ${ours.toFixed(2)} | ${their.toFixed(2)} | ${(their / ours).toFixed(2)} |`,
);
console.log(
  `| CPU time (s) | ${median(mine.map((o) => o.cpu)).toFixed(1)} | ${median(pick("cpuSeconds")).toFixed(1)} | ${(median(pick("cpuSeconds")) / median(mine.map((o) => o.cpu))).toFixed(2)} |`,
);
console.log(`| Hessian-vector products | ${e.passes} | ${peer.iterations as number} | |`);
console.log(
  `| time per product incl. eigensolver (s) | ${ourPer.toFixed(3)} | ${theirPer.toFixed(3)} | ${(theirPer / ourPer).toFixed(2)} |`,
);
console.log(
  `| one product over the set (samples/s) | ${ourRate.toFixed(0)} | ${theirRate.toFixed(0)} | ${(ourRate / theirRate).toFixed(2)} |`,
);
console.log(`| lambda_max | ${fmt(e.max)} | ${fmt(peer.lambdaMax as number)} | |`);
console.log(`| lambda_min | ${fmt(e.min)} | ${fmt(peer.lambdaMin as number)} | |`);
console.log(
  `losscape residual bounds: lambda_max +- ${e.residualMax.toExponential(1)}, lambda_min +- ${e.residualMin.toExponential(1)} (tol ${tol} x max |lambda|, converged: ${e.converged})`,
);
console.log(
  `HVP ratio vs PyTorch double backward: ${(ourRate / theirRate).toFixed(2)} (issue 3 target >= 0.5)`,
);
console.log(`ratio vs PyTorch: ${(their / ours).toFixed(2)}`);

if (slqProbes > 0) {
  const ourSlq = median(mine.map((o) => o.slq!.seconds));
  const theirSlq = median(pick("slqSeconds"));
  const ourCpu = median(mine.map((o) => o.slq!.cpu));
  const theirCpu = median(pick("slqCpuSeconds"));
  const mySlq = mine[mine.length - 1]!.slq!;
  const peerSlq = peer.slq as { moments: number[]; largestNode: number; products: number };
  console.log("");
  console.log(
    `spectral density by stochastic Lanczos quadrature: ${slqProbes} Rademacher probes (seed ${SLQ_SEED}, the same on both sides) x ${slqSteps} Lanczos steps, full reorthogonalization`,
  );
  console.log("| median | losscape | PyTorch | ratio (losscape / PyTorch speed) |");
  console.log("|---|---|---|---|");
  console.log(
    `| time to the SLQ nodes and weights (s) | ${ourSlq.toFixed(2)} | ${theirSlq.toFixed(2)} | ${(theirSlq / ourSlq).toFixed(2)} |`,
  );
  console.log(
    `| CPU time (s) | ${ourCpu.toFixed(1)} | ${theirCpu.toFixed(1)} | ${(theirCpu / ourCpu).toFixed(2)} |`,
  );
  console.log(`| Hessian-vector products | ${mySlq.products} | ${peerSlq.products} | |`);
  console.log(`| largest node | ${fmt(mySlq.largest)} | ${fmt(peerSlq.largestNode)} | |`);
  console.log(
    `| moments k = 1, 2 | ${mySlq.moments.slice(1).map(fmt).join(", ")} | ${peerSlq.moments.slice(1).map(fmt).join(", ")} | |`,
  );
  console.log(`spectrum ratio vs PyTorch: ${(theirSlq / ourSlq).toFixed(2)}`);
}
