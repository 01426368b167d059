// Types of scripts/test-tools.mjs (plain JavaScript, so that it runs before npm install).

/** A system tool the test suite uses. */
export interface TestTool {
  /** Short id used by tests ("redis-server", "chromium", ...). */
  readonly id: string;
  /** What it is, for messages. */
  readonly what: string;
  /** Which tests use it, for messages. */
  readonly usedBy: string;
  /** The Debian/Ubuntu package that installs it. */
  readonly debian: string;
  /** A command searched on PATH. */
  readonly command?: string;
  /** An environment variable naming the tool's path, which overrides the search. */
  readonly env?: string;
  /** Fixed paths tried after PATH. */
  readonly files?: readonly string[];
  /** Needed only on some machines: "avx512" (x86-64 Linux with AVX-512). */
  readonly onlyIf?: "avx512";
}

export const TEST_TOOLS: readonly TestTool[];
export function hasAvx512(): boolean;
export function toolNeeded(tool: TestTool): boolean;
export function findTool(tool: TestTool): string | undefined;
export function installCommand(tools: readonly TestTool[]): string;
export function testTool(id: string): TestTool;
