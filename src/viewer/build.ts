// Builds the viewer app (src/viewer/app) with Vite when it is needed, so a
// clean clone runs `losscape view` and `losscape report` without a build step.
// Builds are cached in dist/viewer/<hash>/, where the hash covers the app's
// sources and the versions of Vite and plotly.js: a changed source gives a new
// folder, an unchanged one is reused. Each build goes to a temporary folder
// that is renamed into place, so concurrent builds never see half a build.

import { createHash } from "node:crypto";
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The app's source folder. */
export const VIEWER_APP_DIR = fileURLToPath(new URL("./app/", import.meta.url));

/** Files outside app/ that the app imports (the API's types, the quantity list, the contour tracer). */
const SHARED_SOURCES = [
  fileURLToPath(new URL("./api.ts", import.meta.url)),
  fileURLToPath(new URL("../core/contour.ts", import.meta.url)),
  fileURLToPath(new URL("../formats/quantities.ts", import.meta.url)),
];

/** Where builds are cached: dist/viewer/ in the checkout, or the system temp folder when that is read-only. */
function cacheRoot(): string {
  const inRepo = fileURLToPath(new URL("../../dist/viewer/", import.meta.url));
  try {
    mkdirSync(inRepo, { recursive: true });
    accessSync(inRepo, constants.W_OK);
    return inRepo;
  } catch {
    return join(tmpdir(), "losscape-viewer");
  }
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(full));
    else if (e.isFile()) out.push(full);
  }
  return out.sort();
}

function packageVersion(name: string): string {
  try {
    const require = createRequire(import.meta.url);
    return (require(`${name}/package.json`) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

/**
 * A hash of everything a build depends on: the app's files (names and bytes)
 * and the Vite and plotly.js versions.
 *
 * @example
 * const hash = viewerSourceHash(); // "3f9a0c1e2b7d4a55"
 */
export function viewerSourceHash(): string {
  const h = createHash("sha256");
  for (const file of [...filesUnder(VIEWER_APP_DIR), ...SHARED_SOURCES]) {
    h.update(file.slice(VIEWER_APP_DIR.length - 1));
    h.update("\0");
    h.update(readFileSync(file));
    h.update("\0");
  }
  h.update(`vite ${packageVersion("vite")} plotly ${packageVersion("plotly.js-gl3d-dist-min")}`);
  return h.digest("hex").slice(0, 16);
}

/** Options of `ensureViewerBuild`. */
export interface ViewerBuildOptions {
  /** Build even when a build of the current sources exists. */
  force?: boolean;
  /** Progress messages ("building the viewer app ..."). */
  log?: (line: string) => void;
}

/**
 * The folder of a built viewer app (index.html, assets/, .vite/manifest.json)
 * for the current sources, building it with Vite first when it is missing.
 * A build takes a few seconds; later calls return at once.
 *
 * @example
 * const dir = await ensureViewerBuild({ log: console.log });
 */
export async function ensureViewerBuild({
  force = false,
  log = () => {},
}: ViewerBuildOptions = {}): Promise<string> {
  const root = cacheRoot();
  const hash = viewerSourceHash();
  const dir = join(root, hash);
  if (!force && existsSync(join(dir, "index.html"))) return dir;

  log(`building the viewer app (vite) into ${dir}`);
  const t0 = performance.now();
  const tmp = join(root, `.tmp-${hash}-${process.pid}-${Date.now()}`);
  let build: typeof import("vite").build;
  try {
    ({ build } = await import("vite"));
  } catch (e) {
    throw new Error(
      `the viewer app needs building and Vite cannot be loaded (${(e as Error).message}); install the dev dependencies (npm install) in ${fileURLToPath(new URL("../../", import.meta.url))}`,
    );
  }
  try {
    await build({
      configFile: join(VIEWER_APP_DIR, "vite.config.ts"),
      root: VIEWER_APP_DIR,
      logLevel: "warn",
      build: { outDir: tmp, emptyOutDir: true },
    });
    if (force) rmSync(dir, { recursive: true, force: true });
    try {
      renameSync(tmp, dir);
    } catch (e) {
      // Another process finished the same build first: keep theirs.
      if (!existsSync(join(dir, "index.html"))) throw e;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  // Builds of older sources and leftovers of crashed builds, once a day old
  // (a running viewer may still serve a recent one).
  for (const e of readdirSync(root, { withFileTypes: true })) {
    if (!e.isDirectory() || e.name === hash || !/^(\.tmp-)?[0-9a-f]{16}/.test(e.name)) continue;
    const old = join(root, e.name);
    if (Date.now() - statSync(old).mtimeMs > 86_400_000) rmSync(old, { recursive: true, force: true });
  }
  log(`built the viewer app in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return dir;
}

/** The built app's entry files, from Vite's manifest: the page, its script and its styles. */
export interface ViewerBundle {
  html: string;
  /** Script file, relative to the build folder (assets/index-*.js). */
  script: string;
  /** Style files, relative to the build folder. */
  styles: string[];
}

/**
 * Reads a build's manifest for its entry files.
 *
 * @example
 * const { script, styles } = readViewerBundle(await ensureViewerBuild());
 */
export function readViewerBundle(dir: string): ViewerBundle {
  const manifestPath = join(dir, ".vite", "manifest.json");
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as Record<
    string,
    { file: string; css?: string[]; isEntry?: boolean }
  >;
  const entry = Object.values(manifest).find((m) => m.isEntry);
  if (entry === undefined) throw new Error(`viewer build '${dir}': manifest lists no entry`);
  return { html: readFileSync(join(dir, "index.html"), "utf8"), script: entry.file, styles: entry.css ?? [] };
}
