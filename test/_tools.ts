// System tools for test files (scripts/test-tools.mjs lists them): a test file
// asks for the tool it needs when it is collected. A missing tool fails the
// file with CI=true, naming the install command; elsewhere the file's tests
// are skipped, and one line says which and why.

import { findTool, installCommand, testTool } from "../scripts/test-tools.mjs";

const ci = Boolean(process.env.CI) && process.env.CI !== "false";

/**
 * The path of system tool `id` for the tests described by `what`, or undefined (skip them) when it
 * is missing outside CI. With CI=true a missing tool throws.
 *
 * @example
 * const redis = systemTool("redis-server", "Redis queue tests");
 * describe.skipIf(redis === undefined)("queue", () => { ... });
 */
export function systemTool(id: string, what: string): string | undefined {
  const tool = testTool(id);
  const path = findTool(tool);
  if (path !== undefined) return path;
  const where = tool.env !== undefined ? ` (or set ${tool.env} to its path)` : "";
  const how = `install it with: ${installCommand([tool])}${where}; 'npm test' run as root installs it itself`;
  if (ci) throw new Error(`${what} needs ${tool.what}, which is not installed; ${how}`);
  console.warn(`skipped: ${what}: ${tool.what} not found; ${how}`);
  return undefined;
}
