// Vite configuration of the viewer app. `losscape view` and `losscape report`
// build with it on demand (src/viewer/build.ts); for working on the app,
// `npx vite src/viewer/app` serves it with hot reload and forwards /api to a
// running `losscape view --port 8050` (or to $LOSSCAPE_API).

import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  // Relative asset URLs: the same build works under any path and inlined in a report.
  base: "./",
  logLevel: "warn",
  build: {
    outDir: fileURLToPath(new URL("../../../dist/viewer/dev", import.meta.url)),
    emptyOutDir: true,
    target: "es2022",
    manifest: true,
    // plotly.js is one 1.7 MB module; one chunk is what a report inlines.
    chunkSizeWarningLimit: 4096,
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
  server: {
    proxy: { "/api": process.env["LOSSCAPE_API"] ?? "http://127.0.0.1:8050" },
  },
});
