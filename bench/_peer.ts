// Runs the PyTorch peer of a benchmark (Debian python3-torch) configured at
// its best on the same cores, and reads the JSON it prints on its last line.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { createInterface } from "node:readline";

/** Python with Debian's torch; the pyenv python on PATH does not have it. */
export const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

/** How the peer is configured, printed with every result. */
export const PEER_SETUP =
  "PyTorch (Debian python3-torch) with OpenMP OpenBLAS (libopenblas0-openmp), glibc malloc tunables keeping buffers (mmap/trim thresholds 4 GiB), torch.set_num_threads(threads), no_grad, eval mode";

/**
 * The machine a benchmark ran on, for its output: CPU model, cores, SIMD kind and ONNX Runtime's
 * NCHWc block size (8 with AVX2, 16 with AVX-512), which select different kernels.
 *
 * @example
 * console.log(await machineLine()); // "machine: AMD EPYC (family 25, model 17), 2 cores, AVX-512 (ORT NCHWc block 16)"
 */
export async function machineLine(): Promise<string> {
  const { nchwcBlockSize } = await import("../src/autodiff/nchwc.ts");
  let cpu: string = process.arch;
  let simd = "";
  try {
    const info = readFileSync("/proc/cpuinfo", "utf8");
    const field = (key: string) => new RegExp(`^${key}\\s*:\\s*(.*)$`, "m").exec(info)?.[1]?.trim();
    cpu = `${field("model name") ?? cpu} (family ${field("cpu family")}, model ${field("model")})`;
    const flags = field("flags") ?? "";
    simd = /\bavx512f\b/.test(flags) ? "AVX-512" : /\bavx2\b/.test(flags) ? "AVX2" : "no AVX2";
  } catch {
    // not Linux: the model name is unknown
  }
  const block = await nchwcBlockSize();
  return `machine: ${cpu}, ${availableParallelism()} cores, ${simd} (ORT NCHWc block ${block ?? "none"})`;
}

/** Checks that the peer is importable; prints how to install it and exits otherwise. */
export function requirePeer(): string {
  const r = spawnSync(PYTHON, ["-c", "import torch; print(torch.__version__)"], { encoding: "utf8" });
  if (r.status !== 0) {
    console.error(
      "PyTorch peer not found. Install it with: sudo apt-get install python3-torch libopenblas0-openmp  (Debian/Ubuntu)",
    );
    process.exit(2);
  }
  return r.stdout.trim();
}

/** The peer's environment: threads pinned to `threads`, glibc malloc keeping its buffers. */
function peerEnv(threads: number): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GLIBC_TUNABLES: "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296",
    OMP_NUM_THREADS: String(threads),
    OPENBLAS_NUM_THREADS: String(threads),
  };
}

/** Runs a peer script with arguments; returns the JSON object of its last stdout line. */
export function runPeer(script: string, args: string[], threads: number): Record<string, unknown> {
  const env = peerEnv(threads);
  const r = spawnSync(PYTHON, [script, ...args], { encoding: "utf8", env, maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`peer ${script} failed (exit ${r.status}):\n${r.stderr}`);
  const lines = r.stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1] ?? "{}") as Record<string, unknown>;
}

/** Median of a list of numbers. */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** A peer process that runs one measured round per request, so rounds can alternate with ours. */
export interface PeerServer {
  /** Runs one round in the peer; resolves with the JSON object it prints for it. */
  round(): Promise<Record<string, unknown>>;
  /** Ends the peer (closes its stdin) and waits for it to exit. */
  close(): Promise<void>;
}

/**
 * Starts a peer script that, after its set-up and warm-up, prints `ready`, then runs one round per
 * `round` line read on stdin and prints one JSON line per round. Alternating its rounds with ours
 * puts both under the same machine conditions (a shared machine's speed drifts over minutes).
 *
 * @example
 * const peer = await startPeer("bench/torch_train.py", ["resnet20", "2", "128", "5", "3,32,32"], 2);
 * const { rate } = await peer.round();
 * await peer.close();
 */
export async function startPeer(script: string, args: string[], threads: number): Promise<PeerServer> {
  const child = spawn(PYTHON, [script, ...args], { env: peerEnv(threads), stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
  const next = async (): Promise<string> => {
    const r = await lines.next();
    if (r.done) throw new Error(`peer ${script} exited (code ${await exited}):\n${stderr}`);
    return r.value;
  };
  const first = await next();
  if (first.trim() !== "ready")
    throw new Error(`peer ${script} said '${first}' instead of 'ready':\n${stderr}`);
  return {
    async round() {
      child.stdin.write("round\n");
      return JSON.parse(await next()) as Record<string, unknown>;
    },
    async close() {
      child.stdin.end();
      await exited;
    },
  };
}
