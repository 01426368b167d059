import { defineConfig } from "vitest/config";

// Two cores in CI: at most two test files at a time, and generous timeouts for ONNX Runtime sessions.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
