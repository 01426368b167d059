// The system tools the test suite uses beyond npm packages, how to find each
// and which Debian package brings it. Plain JavaScript: scripts/setup-tests.mjs
// reads it before `npm install` has run; tests import it through test/_tools.ts.

import { existsSync, readFileSync } from "node:fs";
import { delimiter, join } from "node:path";

/**
 * True on an x86-64 Linux machine whose CPU has AVX-512 (ONNX Runtime then runs its NCHWc
 * kernels with block 16; the suite reruns the CPU-dependent tests under QEMU with block 8).
 */
export function hasAvx512() {
  if (process.arch !== "x64" || process.platform !== "linux") return false;
  try {
    return /^flags\s*:.*\bavx512f\b/m.test(readFileSync("/proc/cpuinfo", "utf8"));
  } catch {
    return false;
  }
}

/** @type {readonly import("./test-tools.d.mts").TestTool[]} */
export const TEST_TOOLS = [
  {
    id: "fonts",
    what: "DejaVu Sans fonts",
    usedBy: "PNG figures (test/plot)",
    debian: "fonts-dejavu-core",
    files: ["/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/share/fonts/TTF"].map((d) =>
      join(d, "DejaVuSans.ttf"),
    ),
  },
  {
    id: "redis-server",
    what: "redis-server",
    usedBy: "the Redis queue tests (test/queue)",
    debian: "redis-server",
    command: "redis-server",
    files: ["/usr/bin/redis-server"],
  },
  {
    id: "openssl",
    what: "openssl",
    usedBy: "the TLS queue tests (test/queue)",
    debian: "openssl",
    command: "openssl",
    files: ["/usr/bin/openssl"],
  },
  {
    id: "chromium",
    what: "Chromium",
    usedBy: "the viewer's browser tests (test/viewer/browser.test.ts)",
    debian: "chromium",
    env: "LOSSCAPE_CHROMIUM",
    files: ["/usr/bin/chromium"],
  },
  {
    id: "qemu",
    what: "QEMU user-mode emulation (qemu-x86_64)",
    usedBy: "the rerun of the CPU-dependent tests as on an AVX2 machine (scripts/test-other-cpu.mjs)",
    debian: "qemu-user",
    command: "qemu-x86_64",
    files: ["/usr/bin/qemu-x86_64"],
    onlyIf: "avx512",
  },
];

/** Whether this machine needs `tool` at all (QEMU only where the CPU has AVX-512). */
export function toolNeeded(tool) {
  return tool.onlyIf === undefined || (tool.onlyIf === "avx512" && hasAvx512());
}

/** The path of `tool` on this machine, or undefined. An environment override must exist. */
export function findTool(tool) {
  if (tool.env !== undefined && process.env[tool.env]) {
    const p = process.env[tool.env];
    return existsSync(p) ? p : undefined;
  }
  if (tool.command !== undefined) {
    for (const dir of (process.env.PATH ?? "").split(delimiter).filter(Boolean)) {
      const p = join(dir, tool.command);
      if (existsSync(p)) return p;
    }
  }
  return (tool.files ?? []).find((p) => existsSync(p));
}

/** The command that installs `tools` on Debian or Ubuntu. */
export function installCommand(tools) {
  const root = typeof process.getuid === "function" && process.getuid() === 0;
  return `${root ? "" : "sudo "}apt-get install -y --no-install-recommends ${tools.map((t) => t.debian).join(" ")}`;
}

/** The tool of an id (throws on an unknown id: a typo in a test). */
export function testTool(id) {
  const tool = TEST_TOOLS.find((t) => t.id === id);
  if (!tool) throw new Error(`testTool(): no tool '${id}'; known: ${TEST_TOOLS.map((t) => t.id).join(", ")}`);
  return tool;
}
