// Scratch measurements behind the choices in src/autodiff: a ResNet-20 (or
// another zoo model's) forward+backward step at batch 128 on ORT with each
// alternative formulation of the costly rules, with and without ORT's blocked
// (NCHWc) convolutions, parameters as initializers (new session per step) vs
// graph inputs (one session), and the PyTorch peer. Variants run in turn in one
// process, round after round, so a shared machine's drift hits them alike.
//
//   node --import tsx bench/autodiff-formulations.ts [--model resnet20] [--batch 128] [--threads 2]
//        [--rounds 5] [--only variant,variant] [--params initializers|inputs] [--no-peer]

import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { type GradientOptions, gradientGraph } from "../src/autodiff/gradient.ts";
import { nchwcBlockSize } from "../src/autodiff/nchwc.ts";
import { gradientSessionOptions } from "../src/autodiff/session.ts";
import { Random } from "../src/core/random.ts";
import { encodeModel } from "../src/onnx/proto.ts";
import { zooModel } from "../src/zoo/zoo.ts";
import { median, PEER_SETUP, PYTHON } from "./_peer.ts";

function argument(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

const name = argument("--model", "resnet20");
const batch = Number(argument("--batch", "128"));
const threads = Number(argument("--threads", "2"));
const rounds = Number(argument("--rounds", "5"));
const only = argument("--only", "");
/** Parameter mode of every variant but "params=*" (default: inputs, as the session does). */
const baseParams = argument("--params", "inputs") as "initializers" | "inputs";
const shape = name === "mlp" || name === "cnn" ? [1, 28, 28] : [3, 32, 32];
const model = zooModel(name, { inputShape: shape, seed: 1 });
const rng = new Random(3);
const x = new Float32Array(batch * shape.reduce((a, b) => a * b, 1)).map(() => rng.normal());
const labels = BigInt64Array.from({ length: batch }, () => BigInt(rng.int(10)));

const block = await nchwcBlockSize();
/** The session's defaults: blocked convolutions with this machine's block and a static batch. */
const blocked: GradientOptions = block ? { convBlock: block, batch } : {};
const VARIANTS: Record<string, GradientOptions> = {
  default: {},
  "no blocked convolutions": { convBlock: undefined, batch: undefined },
  "blocked with symbolic batch (no blocked dW)": { batch: undefined },
  "convInput=conv-transpose": { formulations: { convInput: "conv-transpose" } },
  "convWeight=im2col-batched": { formulations: { convWeight: "im2col-batched" } },
  "convWeight=conv": { formulations: { convWeight: "conv" } },
  "convWeight=im2col": { formulations: { convWeight: "im2col" } },
  "relu=where": { formulations: { relu: "where" } },
  "relu=sign": { formulations: { relu: "sign" } },
  "channelSums=direct": { formulations: { channelSums: "direct" } },
  "channelSums=two-stage": { formulations: { channelSums: "two-stage" } },
  "maxPool=mask": { formulations: { maxPool: "mask" } },
  "params=inputs": { parameters: "inputs" },
  "params=initializers": { parameters: "initializers" },
  "params=initializers-fixed": { parameters: "initializers" },
  "bn=inference": { batchNorm: "inference" },
};

interface Runner {
  step(): Promise<void>;
  release(): Promise<void>;
}

/** One step = (patch + new session when parameters are initializers) + run. */
async function runner(options: GradientOptions, fixed = false): Promise<Runner> {
  const g = gradientGraph(model, {
    batchNorm: "training",
    parameters: baseParams,
    ...(baseParams === "inputs" ? blocked : {}),
    ...options,
  });
  const { bytes, offsets } = encodeModel(g.proto);
  const params = model.initial.slice();
  const feeds: Record<string, ort.Tensor> = {
    input: new ort.Tensor("float32", x, [batch, ...shape]),
    labels: new ort.Tensor("int64", labels, [batch]),
  };
  for (const p of model.params) {
    if (g.parameterInputs.includes(p.name))
      feeds[p.name] = new ort.Tensor("float32", params.slice(p.offset, p.offset + p.size), [...p.shape]);
  }
  const base = gradientSessionOptions(threads, g.parameters);
  // Without spinning, the process CPU time is the work done, a measure that survives a shared machine.
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    ...base,
    extra: { ...(base.extra as object), session: { intra_op: { allow_spinning: "0" } } },
  };
  let session: ort.InferenceSession | undefined;
  if (g.parameters === "inputs") session = await ort.InferenceSession.create(bytes, sessionOptions);
  return {
    async step() {
      if (g.parameters === "initializers" && !(fixed && session)) {
        for (const p of model.params) {
          const at = offsets.get(p.name);
          if (at !== undefined) bytes.set(new Uint8Array(params.buffer, p.offset * 4, p.size * 4), at);
        }
        await session?.release();
        session = await ort.InferenceSession.create(bytes, sessionOptions);
      }
      await session!.run(feeds);
    },
    async release() {
      await session?.release();
    },
  };
}

const PEER = `
import json, sys, time, os
sys.path.insert(0, ${JSON.stringify(join(process.cwd(), "fixtures"))})
import torch, torch.nn.functional as F
from torch_reference import build
name, batch, threads, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
torch.manual_seed(0)
shape = (1, 28, 28) if name in ("mlp", "cnn") else (3, 32, 32)
model = build(name, shape, 10).train()
x = torch.randn(batch, *shape); y = torch.randint(0, 10, (batch,))
times = []
cpu = []
for r in range(rounds + 2):
    t0 = time.perf_counter(); c0 = time.process_time()
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    dt = time.perf_counter() - t0; dc = time.process_time() - c0
    if r >= 2: times.append(dt * 1000); cpu.append(dc * 1000)
print(json.dumps({"ms": times, "cpu": cpu, "torch": torch.__version__}))
`;

function peer(): { ms: number[]; cpu: number[] } | undefined {
  const dir = mkdtempSync(join(tmpdir(), "losscape-bench-"));
  try {
    const script = join(dir, "peer.py");
    writeFileSync(script, PEER);
    const env = {
      ...process.env,
      GLIBC_TUNABLES: "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296",
      OMP_NUM_THREADS: String(threads),
      OPENBLAS_NUM_THREADS: String(threads),
      OMP_WAIT_POLICY: "PASSIVE",
    };
    const r = spawnSync(PYTHON, [script, name, String(batch), String(threads), String(rounds)], {
      encoding: "utf8",
      env,
    });
    if (r.status !== 0) {
      console.error(`peer failed: ${r.stderr}`);
      return undefined;
    }
    const lines = r.stdout.trim().split("\n");
    return JSON.parse(lines[lines.length - 1]!) as { ms: number[]; cpu: number[] };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const chosen = Object.entries(VARIANTS).filter(([k]) => only === "" || only.split(",").includes(k));
const runners: [string, Runner][] = [];
for (const [k, v] of chosen) {
  try {
    runners.push([k, await runner(v, k.endsWith("-fixed"))]);
  } catch (e) {
    console.log(`${k}: ${(e as Error).message}`);
  }
}
const times = new Map<string, number[]>(runners.map(([k]) => [k, []]));
const cpu = new Map<string, number[]>(runners.map(([k]) => [k, []]));
for (const [, r] of runners) await r.step(); // warm-up
for (let round = 0; round < rounds; round++) {
  for (const [k, r] of runners) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    await r.step();
    times.get(k)!.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.get(k)!.push((c.user + c.system) / 1000);
  }
}
for (const [, r] of runners) await r.release();
console.log(
  `${name} forward+backward, batch ${batch}, ${threads} threads, BN training mode unless noted, parameters as ${baseParams} unless noted; ${rounds} rounds`,
);
// The machine may be shared: the minimum is the least disturbed measurement.
console.log("variant                                      min ms  median ms  img/s (min)  CPU ms (median)");
for (const [k, t] of times) {
  const m = Math.min(...t);
  console.log(
    `${k.padEnd(44)} ${m.toFixed(1).padStart(7)} ${median(t).toFixed(1).padStart(10)} ${((batch / m) * 1000).toFixed(0).padStart(12)} ${median(cpu.get(k)!).toFixed(0).padStart(16)}`,
  );
}
if (!process.argv.includes("--no-peer")) {
  const result = peer();
  if (result) {
    const { ms } = result;
    const m = Math.min(...ms);
    console.log(
      `${"PyTorch (peer)".padEnd(44)} ${m.toFixed(1).padStart(7)} ${median(ms).toFixed(1).padStart(10)} ${((batch / m) * 1000).toFixed(0).padStart(12)} ${median(result.cpu).toFixed(0).padStart(16)}`,
    );
    console.log(
      `peer: ${PEER_SETUP.replace(", no_grad, eval mode", ", train mode, forward + backward, OMP_WAIT_POLICY=PASSIVE")}`,
    );
    const ours = Math.min(...(times.get("default") ?? [Number.NaN]));
    const oursCpu = median(cpu.get("default") ?? [Number.NaN]);
    console.log(`CPU-time ratio vs PyTorch: ${(median(result.cpu) / oursCpu).toFixed(2)}`);
    console.log(`ratio vs PyTorch: ${(m / ours).toFixed(2)}`);
  }
}
