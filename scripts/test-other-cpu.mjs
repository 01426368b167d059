// The last step of `npm test`: on an x86-64 machine with AVX-512 (ONNX Runtime's
// NCHWc block 16) it reruns the CPU-dependent tests (test/autodiff/nchwc.test.ts,
// 2 threads) under QEMU user-mode emulation with a CPU that has AVX2 but no
// AVX-512, where ORT picks its AVX2 kernels and block 8, so that both kinds of
// machine are tested on either. On an AVX2 machine the suite itself already ran
// block 8 and QEMU cannot emulate AVX-512, so it says so and stops. Emulation
// is slow (about 40x): only the 2-thread cases run.
//
//   node scripts/test-other-cpu.mjs

import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { findTool, hasAvx512, installCommand, testTool } from "./test-tools.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const ci = Boolean(process.env.CI) && process.env.CI !== "false";
const say = (line) => console.log(`test-other-cpu: ${line}`);

if (!hasAvx512()) {
  say(
    "skipped: this CPU has no AVX-512, so the tests above ran ORT's AVX2 kernels (block 8); the AVX-512 kind (block 16) needs such a machine (QEMU cannot emulate AVX-512)",
  );
  process.exit(0);
}
const qemu = findTool(testTool("qemu"));
if (qemu === undefined) {
  const how = `install QEMU with: ${installCommand([testTool("qemu")])}`;
  if (ci) {
    console.error(
      `test-other-cpu: qemu-x86_64 not found; with CI=true the AVX2 rerun may not be skipped; ${how}`,
    );
    process.exit(1);
  }
  say(`skipped: the AVX2 rerun of test/autodiff/nchwc.test.ts: qemu-x86_64 not found; ${how}`);
  process.exit(0);
}

say(
  "rerunning test/autodiff/nchwc.test.ts and the prefix cache's ResNet/transformer cases (2 threads) as on an AVX2 machine: qemu-x86_64 -cpu max (no AVX-512)",
);
const started = Date.now();
const r = spawnSync(
  qemu,
  [
    "-cpu",
    "max",
    process.execPath,
    join(root, "node_modules", "vitest", "vitest.mjs"),
    "run",
    // Worker threads stay inside the emulated process (forked workers would run natively).
    "--pool=threads",
    "test/autodiff/nchwc.test.ts",
    "test/engine/prefix-cache.test.ts",
    "-t",
    "ORT reports a block size|mode, 2 thread|Hessian-vector products|prefix cache on ResNet-20|transformer's last block",
  ],
  { cwd: root, stdio: "inherit", env: { ...process.env, LOSSCAPE_EXPECT_BLOCK: "8" } },
);
say(`${r.status === 0 ? "passed" : "FAILED"} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
process.exit(r.status ?? 1);
