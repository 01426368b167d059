// The files a viewer or a report may show: the `.h5` surfaces and the
// analyses' `.json` files (connect, spectrum, sharpness; see analysis.ts)
// under the folders and files it was given, and nothing else. Every request is answered
// from this whitelist by opaque id, so no request path ever reaches the disk;
// symlinks that lead out of a given folder are left out. Folders are rescanned
// on every listing (new surfaces appear while a run writes them); files are
// parsed once per (size, mtime).

import { createHash } from "node:crypto";
import { type Dirent, readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { decodeH5 } from "../formats/h5.ts";
import { parseSurface, SURFACE_QUANTITIES, type Surface } from "../formats/surface-file.ts";
import { analysisSummary, isAnalysisCandidate, type ParsedAnalysis, parseAnalysis } from "./analysis.ts";
import type {
  AnalysisJson,
  AnalysisListEntry,
  ApiError,
  SurfaceJson,
  SurfaceList,
  SurfaceListEntry,
  TrajectoryJson,
} from "./api.ts";
import { surfaceToJson } from "./surface-json.ts";

/** How deep folders are searched below each folder given. */
const MAX_DEPTH = 6;

/** Analysis files are small (a spectrum is ~100 kB); a larger .json is not read. */
const MAX_ANALYSIS_BYTES = 32 * 1024 * 1024;

type Classified =
  | { kind: "surface"; surface: Surface }
  | { kind: "direction"; explainedVarianceRatio: [number, number] | null }
  | { kind: "projection"; x: number[]; y: number[] }
  | { kind: "analysis"; value: ParsedAnalysis }
  | { kind: "foreign"; reason: string }
  | { kind: "error"; error: string };

/** A `.h5` file found under the given paths, by its real path. */
interface FoundFile {
  id: string;
  name: string;
  /** Real path (symlinks resolved), or the absolute path of a missing file. */
  path: string;
  /** Set when the file cannot even be looked at (given but missing, not .h5). */
  problem?: string;
}

/** The answer to a request for one analysis: its JSON, or an error with an HTTP status. */
export type AnalysisLookup =
  | { ok: true; analysis: AnalysisJson }
  | { ok: false; status: 404 | 422; error: ApiError };

/** The answer to a request for one surface: its JSON, or an error with an HTTP status. */
export type SurfaceLookup =
  | { ok: true; surface: SurfaceJson }
  | { ok: false; status: 404 | 422; error: ApiError };

function idOf(path: string): string {
  return `f${createHash("sha256").update(path).digest("hex").slice(0, 16)}`;
}

function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel));
}

function toPosix(path: string): string {
  return path.split(sep).join("/");
}

function isH5(name: string): boolean {
  return /\.h5$/i.test(name);
}

/** A file the catalog reads: a surface (.h5) or a possible analysis (.json). */
function isServed(name: string): boolean {
  return isH5(name) || isAnalysisCandidate(name);
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Why a file cannot be read, without the absolute path that Node's messages carry. */
function unreadable(name: string, e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return `file '${name}' no longer exists (deleted or moved since it was listed)`;
  if (code === "EACCES") return `file '${name}' cannot be read (permission denied)`;
  return `file '${name}' cannot be read (${code ?? message(e)})`;
}

/** Reads what kind of losscape file `bytes` hold, without trusting the name. */
function classify(bytes: Uint8Array, name: string): Classified {
  try {
    const kind = decodeH5(bytes, `file '${name}'`, (r) => {
      if (r.has("xcoordinates")) return "surface" as const;
      if (r.has("xdirection")) {
        const ratio = r.has("explained_variance_ratio_") ? r.float64("explained_variance_ratio_").data : null;
        return {
          kind: "direction" as const,
          explainedVarianceRatio:
            ratio !== null && ratio.length >= 2 ? ([ratio[0]!, ratio[1]!] as [number, number]) : null,
        };
      }
      if (r.has("proj_xcoord") && r.has("proj_ycoord")) {
        const x = r.float64("proj_xcoord");
        const y = r.float64("proj_ycoord");
        if (x.data.length !== y.data.length || x.data.length === 0) {
          throw r.error(
            `'proj_xcoord' has ${x.data.length} values and 'proj_ycoord' ${y.data.length}, expected the same non-zero count`,
          );
        }
        return { kind: "projection" as const, x: Array.from(x.data), y: Array.from(y.data) };
      }
      throw r.error(
        "is neither a surface file ('xcoordinates'), a direction file ('xdirection') nor a projection file ('proj_xcoord')",
      );
    });
    if (kind === "surface") return { kind, surface: parseSurface(bytes, { file: name }) };
    return kind;
  } catch (e) {
    return { kind: "error", error: message(e) };
  }
}

/**
 * The whitelist of files a viewer serves, built from the folders and files it
 * was given. Folders are searched recursively (hidden entries and
 * node_modules skipped); a file given directly is served as given.
 *
 * @example
 * const catalog = new SurfaceCatalog(["runs/"]);
 * const { surfaces } = catalog.list();
 * const answer = catalog.surface(surfaces[0]!.id); // { ok: true, surface } or { ok: false, status, error }
 */
export class SurfaceCatalog {
  private readonly roots: readonly string[];
  private readonly cache = new Map<string, { stamp: string; value: Classified }>();
  private files = new Map<string, FoundFile>();
  private skipped: { name: string; reason: string }[] = [];

  constructor(paths: readonly string[]) {
    if (paths.length === 0)
      throw new Error("SurfaceCatalog: 'paths' is empty, expected folders or .h5 files");
    this.roots = paths;
  }

  /** Rescans the given paths and lists the surfaces and unreadable files, by name. */
  list(): SurfaceList {
    this.scan();
    const found = [...this.files.values()].map((f) => ({ f, c: this.read(f) }));
    const surfaces: SurfaceListEntry[] = [];
    const analyses: AnalysisListEntry[] = [];
    const skipped = [...this.skipped];
    for (const { f, c } of found) {
      if (isAnalysisCandidate(f.name) && !isH5(f.name)) {
        if (c.kind === "analysis")
          analyses.push({
            id: f.id,
            name: f.name,
            status: "ok",
            analysis: c.value.analysis,
            summary: analysisSummary(c.value),
          });
        else if (c.kind === "error")
          analyses.push({ id: f.id, name: f.name, status: "error", error: c.error });
        else if (c.kind === "foreign") skipped.push({ name: f.name, reason: c.reason });
        continue;
      }
      switch (c.kind) {
        case "surface": {
          const s = c.surface;
          surfaces.push({
            id: f.id,
            name: f.name,
            status: "ok",
            dims: s.y === null ? 1 : 2,
            nx: s.x.length,
            ny: s.y === null ? null : s.y.length,
            quantities: SURFACE_QUANTITIES.filter((q) => s.values[q] !== undefined),
            interpolation: s.meta["kind"] === "interpolation",
            trajectory: s.y !== null && this.trajectoryFor(f, s) !== null,
            kind: s.meta["kind"] ?? null,
          });
          break;
        }
        case "direction":
          skipped.push({ name: f.name, reason: "direction file" });
          break;
        case "projection":
          skipped.push({ name: f.name, reason: "trajectory projection file (drawn on its surface)" });
          break;
        case "error":
          surfaces.push({ id: f.id, name: f.name, status: "error", error: c.error });
          break;
        case "analysis":
        case "foreign":
          break; // only .json files are read as analyses
        default:
          c satisfies never;
      }
    }
    surfaces.sort((a, b) => a.name.localeCompare(b.name));
    analyses.sort((a, b) => a.name.localeCompare(b.name));
    return { surfaces, analyses, skipped };
  }

  /**
   * One listed analysis as JSON, with its id and name; a mode-connectivity
   * run links the plane surface (plane.h5 in its folder) when that is served.
   * Unknown ids are 404; a file that became unreadable or vanished is 422/404.
   */
  analysis(id: string): AnalysisLookup {
    const found = this.find(id);
    if (found === undefined)
      return { ok: false, status: 404, error: { error: `no analysis with id '${id}'` } };
    const c = this.read(found);
    if (c.kind === "error") {
      const missing = /not found|no longer exists/.test(c.error);
      return { ok: false, status: missing ? 404 : 422, error: { error: c.error, file: found.name } };
    }
    if (c.kind !== "analysis") {
      return {
        ok: false,
        status: 422,
        error: { error: `'${found.name}' is not an analysis file (${c.kind})`, file: found.name },
      };
    }
    const base = { id: found.id, name: found.name };
    if (c.value.analysis !== "connect") return { ok: true, analysis: { ...c.value, ...base } };
    const planePath = join(dirname(found.path), "plane.h5");
    const plane = [...this.files.values()].find((f) => f.path === planePath);
    const isSurface = plane !== undefined && this.read(plane).kind === "surface";
    return {
      ok: true,
      analysis: {
        ...c.value,
        ...base,
        plane: isSurface ? { id: plane.id, name: plane.name } : null,
      },
    };
  }

  private find(id: string): FoundFile | undefined {
    if (this.files.size === 0) this.scan();
    let f = this.files.get(id);
    if (f === undefined) {
      this.scan();
      f = this.files.get(id);
    }
    return f;
  }

  /**
   * One listed surface as JSON. Unknown ids are 404 (the catalog is the only
   * way to a file); a file that became unreadable or vanished is 422/404 with
   * the reason.
   */
  surface(id: string): SurfaceLookup {
    const f = this.find(id);
    if (f === undefined) return { ok: false, status: 404, error: { error: `no surface with id '${id}'` } };
    const c = this.read(f);
    if (c.kind === "error") {
      const missing = /not found|no longer exists/.test(c.error);
      return { ok: false, status: missing ? 404 : 422, error: { error: c.error, file: f.name } };
    }
    if (c.kind !== "surface") {
      const what = c.kind === "analysis" || c.kind === "foreign" ? "JSON" : c.kind;
      return { ok: false, status: 422, error: { error: `'${f.name}' is a ${what} file`, file: f.name } };
    }
    const trajectory = c.surface.y === null ? null : this.trajectoryFor(f, c.surface);
    return { ok: true, surface: surfaceToJson(c.surface, { id: f.id, name: f.name, trajectory }) };
  }

  private read(f: FoundFile): Classified {
    if (f.problem !== undefined) return { kind: "error", error: f.problem };
    let stamp: string;
    try {
      const st = statSync(f.path);
      stamp = `${st.size}:${st.mtimeMs}`;
    } catch (e) {
      this.cache.delete(f.path);
      return { kind: "error", error: unreadable(f.name, e) };
    }
    const hit = this.cache.get(f.path);
    if (hit !== undefined && hit.stamp === stamp) return hit.value;
    let value: Classified;
    try {
      if (isH5(f.name)) value = classify(new Uint8Array(readFileSync(f.path)), f.name);
      else if (Number(stamp.split(":")[0]) > MAX_ANALYSIS_BYTES)
        value = { kind: "foreign", reason: "JSON file too large to be an analysis (over 32 MiB)" };
      else {
        const parsed = parseAnalysis(readFileSync(f.path, "utf8"), f.name);
        value =
          parsed.kind === "analysis"
            ? { kind: "analysis", value: parsed.value }
            : parsed.kind === "foreign"
              ? { kind: "foreign", reason: parsed.reason }
              : { kind: "error", error: parsed.error };
      }
    } catch (e) {
      value = { kind: "error", error: unreadable(f.name, e) };
    }
    this.cache.set(f.path, { stamp, value });
    return value;
  }

  /**
   * The projected path of a surface's PCA directions, named the reference
   * code's way: `<dir_file>_proj_<method>.h5` beside the direction file, and
   * found among the served files only. The direction file, when served too,
   * gives the explained variance ratios.
   */
  private trajectoryFor(surfaceFile: FoundFile, s: Surface): TrajectoryJson | null {
    if (s.dirFile === "") return null;
    const dirBase = basename(s.dirFile);
    const dirPath = resolve(dirname(surfaceFile.path), s.dirFile);
    const candidates = [...this.files.values()]
      .filter((f) => basename(f.path).startsWith(`${dirBase}_proj_`))
      .sort((a, b) => a.name.localeCompare(b.name));
    for (const f of candidates) {
      const c = this.read(f);
      if (c.kind !== "projection") continue;
      const dirFile = [...this.files.values()].find(
        (d) => d.path === dirPath || (basename(d.path) === dirBase && dirname(d.path) === dirname(f.path)),
      );
      const dir = dirFile === undefined ? null : this.read(dirFile);
      return {
        x: c.x,
        y: c.y,
        labels: null,
        explainedVarianceRatio: dir?.kind === "direction" ? dir.explainedVarianceRatio : null,
        source: f.name,
      };
    }
    return null;
  }

  private scan(): void {
    const files = new Map<string, FoundFile>();
    const skipped: { name: string; reason: string }[] = [];
    // Names carry their folder's name only when several folders are served.
    const folders = this.roots.filter((given) => {
      try {
        return statSync(given).isDirectory();
      } catch {
        return false;
      }
    });
    const several = folders.length > 1;
    // One entry per real file; a name reached without a symlink wins over an alias.
    const viaLink = new Set<string>();
    const add = (f: FoundFile, link = false) => {
      const seen = files.get(f.id);
      if (seen === undefined || (viaLink.has(f.id) && !link)) {
        files.set(f.id, f);
        if (link) viaLink.add(f.id);
        else viaLink.delete(f.id);
      }
    };
    for (const given of this.roots) {
      const abs = resolve(given);
      let real: string;
      let isDir: boolean;
      try {
        real = realpathSync(abs);
        isDir = statSync(real).isDirectory();
      } catch {
        add({ id: idOf(abs), name: given, path: abs, problem: `file or folder '${given}' not found` });
        continue;
      }
      if (!isDir) {
        const name = basename(abs);
        if (!isServed(name)) {
          add({
            id: idOf(real),
            name,
            path: real,
            problem: `'${given}' is not a .h5 surface file or a .json analysis file`,
          });
        } else add({ id: idOf(real), name, path: real });
        continue;
      }
      const prefix = several ? `${basename(real)}/` : "";
      const visited = new Set<string>([real]);
      const walk = (dir: string, depth: number) => {
        let entries: Dirent[];
        try {
          entries = readdirSync(dir, { withFileTypes: true });
        } catch {
          return;
        }
        for (const e of entries) {
          if (e.name.startsWith(".") || e.name === "node_modules") continue;
          const full = join(dir, e.name);
          const name = prefix + toPosix(relative(real, full));
          let target = full;
          if (e.isSymbolicLink()) {
            try {
              target = realpathSync(full);
            } catch {
              if (isServed(e.name)) skipped.push({ name, reason: "broken symlink" });
              continue;
            }
            if (!isInside(real, target)) {
              skipped.push({ name, reason: "symlink leads out of the folder" });
              continue;
            }
          }
          let st: ReturnType<typeof statSync>;
          try {
            st = statSync(target);
          } catch {
            continue;
          }
          if (st.isDirectory()) {
            if (depth < MAX_DEPTH && !visited.has(target)) {
              visited.add(target);
              walk(target === full ? full : target, depth + 1);
            }
          } else if (st.isFile() && isServed(e.name))
            add({ id: idOf(target), name, path: target }, target !== full);
        }
      };
      walk(real, 1);
    }
    this.files = files;
    this.skipped = skipped;
  }
}
