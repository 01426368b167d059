// The set-up step of `npm test` (its "pretest" script): on a fresh machine with
// only Node.js 20 it installs the npm packages when node_modules is missing or
// differs from package-lock.json, and the system tools of scripts/test-tools.mjs
// with apt-get when it runs as root on Debian/Ubuntu. Otherwise it prints the
// exact command to run; with CI=true a tool it cannot install fails the run,
// elsewhere the tests that need it are skipped, each with one line saying why.
//
//   node scripts/setup-tests.mjs

import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { findTool, installCommand, TEST_TOOLS, toolNeeded } from "./test-tools.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const ci = Boolean(process.env.CI) && process.env.CI !== "false";
const say = (line) => console.log(`setup-tests: ${line}`);

function run(command, args, env = process.env) {
  say(`${command} ${args.join(" ")}`);
  const r = spawnSync(command, args, { cwd: root, stdio: "inherit", env });
  return r.status === 0;
}

/** Why node_modules does not match package-lock.json, or undefined when it does. */
function staleModules() {
  const hidden = join(root, "node_modules", ".package-lock.json");
  if (!existsSync(hidden)) return "node_modules is missing";
  const want = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")).packages ?? {};
  const have = JSON.parse(readFileSync(hidden, "utf8")).packages ?? {};
  for (const [path, entry] of Object.entries(want)) {
    if (path === "" || entry.optional) continue;
    if (have[path]?.version !== entry.version) {
      return `${path} is ${have[path]?.version ?? "not installed"}, package-lock.json has ${entry.version}`;
    }
  }
  return undefined;
}

const major = Number(process.versions.node.split(".")[0]);
if (major < 20) {
  console.error(`setup-tests: losscape needs Node.js 20 or newer; this is ${process.version}`);
  process.exit(1);
}

const stale = staleModules();
if (stale !== undefined) {
  say(`${stale}: installing the npm packages`);
  if (!run("npm", ["ci", "--no-audit", "--no-fund"])) {
    console.error("setup-tests: npm ci failed (see above)");
    process.exit(1);
  }
}

let missing = TEST_TOOLS.filter((t) => toolNeeded(t) && findTool(t) === undefined);
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const apt = existsSync("/usr/bin/apt-get");
if (missing.length > 0 && isRoot && apt) {
  say(`installing ${missing.map((t) => t.debian).join(", ")} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const ok =
    run("apt-get", ["update", "-qq"], env) &&
    run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing.map((t) => t.debian)], env);
  if (!ok) say("apt-get failed (see above)");
  missing = missing.filter((t) => findTool(t) === undefined);
}
if (missing.length > 0) {
  const lines = missing.map((t) => `  - ${t.what}, for ${t.usedBy}`);
  const how = apt
    ? `Install ${missing.length === 1 ? "it" : "them"} with:\n  ${installCommand(missing)}`
    : `Install ${missing.map((t) => `${t.what} (Debian package ${t.debian})`).join(", ")} with this system's package manager.`;
  console.error(`setup-tests: not installed:\n${lines.join("\n")}\n${how}`);
  if (ci) {
    console.error("setup-tests: CI=true, so no test may be skipped for a missing tool: stopping.");
    process.exit(1);
  }
  console.error("setup-tests: the tests that need them will be skipped, each saying so.");
} else {
  const found = TEST_TOOLS.filter(toolNeeded).map((t) => t.id);
  say(`npm packages match package-lock.json; system tools found: ${found.join(", ")}`);
}
