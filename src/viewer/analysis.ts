// The analyses' JSON files the viewer shows beside the surfaces: a
// mode-connectivity run (connect.json of `losscape connect`), a Hessian
// spectral density (`losscape spectrum --out`) and a sharpness table
// (`losscape sharpness --out x.json`, the demo's sharpness.json). A file is
// recognised by its contents (the fields each kind writes) and then checked
// field by field, so a damaged file is listed with the field that is wrong,
// and a JSON file of another kind (a training log, package.json) is left out
// with its reason. Pure: text in, a value or a reason out.

import type {
  AnalysisKind,
  BarrierJson,
  ConnectAnalysisJson,
  PathJson,
  SharpnessAnalysisJson,
  SharpnessRowJson,
  SpectrumAnalysisJson,
} from "./api.ts";

/** An analysis without the id, name and plane link the catalog gives it. */
export type ParsedAnalysis =
  | Omit<ConnectAnalysisJson, "id" | "name" | "plane">
  | Omit<SpectrumAnalysisJson, "id" | "name">
  | Omit<SharpnessAnalysisJson, "id" | "name">;

/**
 * What a JSON file is to the viewer: an analysis, a JSON file of another kind
 * (left out, with why), or a file that is damaged (listed, with why).
 */
export type AnalysisParse =
  | { kind: "analysis"; value: ParsedAnalysis }
  | { kind: "foreign"; reason: string }
  | { kind: "error"; error: string };

/** File names that promise an analysis: a file so named that is not one is an error, not foreign. */
const NAMED: [RegExp, AnalysisKind][] = [
  [/connect/i, "connect"],
  [/spectrum/i, "spectrum"],
  [/sharpness/i, "sharpness"],
];

class Invalid extends Error {}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === "string") return `'${v.length > 40 ? `${v.slice(0, 40)}...` : v}'`;
  return typeof v === "object" ? "an object" : String(v);
}

/** Readers of one file's fields; every failure names the field, what was expected and what came. */
function fields(file: string) {
  const fail = (path: string, expected: string, got: unknown): never => {
    throw new Invalid(`file '${file}': '${path}' must be ${expected}, got ${describe(got)}`);
  };
  const object = (v: unknown, path: string): Json => (isObject(v) ? v : fail(path, "an object", v));
  const number = (v: unknown, path: string): number =>
    typeof v === "number" && Number.isFinite(v) ? v : fail(path, "a finite number", v);
  /** JSON writes NaN and infinities as null: a number or null. */
  const numberOrNull = (v: unknown, path: string): number | null => (v === null ? null : number(v, path));
  const count = (v: unknown, path: string): number =>
    Number.isInteger(v) && (v as number) >= 0 ? (v as number) : fail(path, "a whole number >= 0", v);
  const string = (v: unknown, path: string): string =>
    typeof v === "string" ? v : fail(path, "a string", v);
  const array = (v: unknown, path: string, length?: number): unknown[] => {
    if (!Array.isArray(v)) return fail(path, length === undefined ? "an array" : `an array of ${length}`, v);
    if (length !== undefined && v.length !== length) return fail(path, `an array of ${length}`, v);
    return v;
  };
  const numbers = (v: unknown, path: string, length?: number): number[] =>
    array(v, path, length).map((x, k) => number(x, `${path}[${k}]`));
  const numbersOrNull = (v: unknown, path: string, length?: number): (number | null)[] =>
    array(v, path, length).map((x, k) => numberOrNull(x, `${path}[${k}]`));
  return { fail, object, number, numberOrNull, count, string, array, numbers, numbersOrNull };
}

/** Scalars of `o` (but `skip`) as display strings: the settings a panel states. */
function settingsOf(o: Json, skip: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) {
    if (skip.includes(k)) continue;
    if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") out[k] = String(v);
    else if (isObject(v) && Object.values(v).every((x) => typeof x !== "object" || x === null))
      for (const [k2, v2] of Object.entries(v)) out[`${k}.${k2}`] = String(v2);
  }
  return out;
}

function parseConnect(o: Json, file: string): Omit<ConnectAnalysisJson, "id" | "name" | "plane"> {
  const f = fields(file);
  const t = f.numbers(o["t"], "t");
  if (t.length < 2) f.fail("t", "an array of at least 2 values of t", o["t"]);
  const path = (name: "curve" | "line"): PathJson => {
    const p = f.object(o[name], name);
    const out: PathJson = {
      train_loss: f.numbersOrNull(p["train_loss"], `${name}.train_loss`, t.length),
      train_acc: f.numbersOrNull(p["train_acc"], `${name}.train_acc`, t.length),
    };
    for (const q of ["test_loss", "test_acc"] as const)
      if (p[q] !== undefined) out[q] = f.numbersOrNull(p[q], `${name}.${q}`, t.length);
    return out;
  };
  const b = f.object(o["barriers"], "barriers");
  const barriers = (name: "curve" | "line"): Record<string, BarrierJson> => {
    const r = f.object(b[name], `barriers.${name}`);
    const out: Record<string, BarrierJson> = {};
    for (const [q, v] of Object.entries(r)) {
      const x = f.object(v, `barriers.${name}.${q}`);
      out[q] = {
        height: f.numberOrNull(x["height"], `barriers.${name}.${q}.height`),
        at: f.numberOrNull(x["at"], `barriers.${name}.${q}.at`),
      };
    }
    return out;
  };
  const losses = o["training_losses"];
  return {
    analysis: "connect",
    kind: f.string(o["kind"], "kind"),
    t,
    curve: path("curve"),
    line: path("line"),
    barriers: { curve: barriers("curve"), line: barriers("line") },
    bn: o["bn"] === undefined ? "not stated" : f.string(o["bn"], "bn"),
    settings: settingsOf(o, ["kind", "t", "curve", "line", "barriers", "bn", "identity", "training_losses"]),
    trainingLosses: losses === undefined ? null : f.numbersOrNull(losses, "training_losses"),
  };
}

function parseSpectrum(o: Json, file: string): Omit<SpectrumAnalysisJson, "id" | "name"> {
  const f = fields(file);
  const grid = f.numbers(o["grid"], "grid");
  if (grid.length < 2) f.fail("grid", "an array of at least 2 eigenvalues", o["grid"]);
  for (let k = 1; k < grid.length; k++)
    if (!(grid[k]! > grid[k - 1]!))
      f.fail(`grid[${k}]`, `larger than grid[${k - 1}] (${grid[k - 1]})`, grid[k]);
  const density = f.numbersOrNull(o["density"], "density", grid.length);
  for (const [k, d] of density.entries())
    if (d !== null && d < 0) f.fail(`density[${k}]`, "a density >= 0", d);
  const nodes = f.array(o["nodes"], "nodes").map((p, k) => f.numbers(p, `nodes[${k}]`));
  if (nodes.length === 0) f.fail("nodes", "one array per probe", o["nodes"]);
  const weights = f
    .array(o["weights"], "weights", nodes.length)
    .map((p, k) => f.numbers(p, `weights[${k}]`, nodes[k]!.length));
  const probes = f.count(o["probes"], "probes");
  if (probes !== nodes.length) f.fail("probes", `${nodes.length} (the probes in 'nodes')`, probes);
  const sigma = f.number(o["sigma"], "sigma");
  if (!(sigma > 0)) f.fail("sigma", "a positive number", sigma);
  const tr = o["trace"];
  let trace: SpectrumAnalysisJson["trace"] = null;
  if (tr !== undefined) {
    const x = f.object(tr, "trace");
    trace = {
      trace: f.number(x["trace"], "trace.trace"),
      stderr: f.number(x["stderr"], "trace.stderr"),
      samples: f.count(x["samples"], "trace.samples"),
    };
  }
  return {
    analysis: "spectrum",
    probes,
    steps: f.count(o["steps"], "steps"),
    sigma,
    grid,
    density,
    nodes,
    weights,
    moments: o["moments"] === undefined ? null : f.numbers(o["moments"], "moments"),
    trace,
    settings: settingsOf(o, [
      "probes",
      "steps",
      "sigma",
      "grid",
      "density",
      "nodes",
      "weights",
      "moments",
      "trace",
    ]),
  };
}

function parseSharpness(o: Json, file: string): Omit<SharpnessAnalysisJson, "id" | "name"> {
  const f = fields(file);
  const s = f.object(o["settings"], "settings");
  const settings: Record<string, string | number> = {};
  for (const key of [
    "epsilon",
    "rhoAverage",
    "rhoL2",
    "rhoLinf",
    "steps",
    "samples",
    "seed",
    "lanczosIterations",
    "lanczosTol",
    "traceSamples",
  ])
    settings[key] = f.number(s[key], `settings.${key}`);
  for (const key of ["perturb", "data", "traceMethod"]) settings[key] = f.string(s[key], `settings.${key}`);
  for (const key of ["perturbed", "samplesInData"])
    if (s[key] !== undefined) settings[key] = f.number(s[key], `settings.${key}`);
  const rows = f.array(o["rows"], "rows").map((r, k): SharpnessRowJson => {
    const at = `rows[${k}]`;
    const x = f.object(r, at);
    const part = (name: string, keys: readonly string[]) => {
      const p = f.object(x[name], `${at}.${name}`);
      return Object.fromEntries(keys.map((key) => [key, f.numberOrNull(p[key], `${at}.${name}.${key}`)]));
    };
    const tr = x["trace"];
    let trace: SharpnessRowJson["trace"] = null;
    if (tr !== undefined && tr !== null) {
      const y = f.object(tr, `${at}.trace`);
      trace = {
        trace: f.numberOrNull(y["trace"], `${at}.trace.trace`),
        stderr: f.numberOrNull(y["stderr"], `${at}.trace.stderr`),
        samples: f.count(y["samples"], `${at}.trace.samples`),
        method: f.string(y["method"], `${at}.trace.method`),
      };
    }
    const converged = x["lambdaConverged"];
    if (typeof converged !== "boolean") f.fail(`${at}.lambdaConverged`, "true or false", converged);
    return {
      label: f.string(x["label"], `${at}.label`),
      loss: f.numberOrNull(x["loss"], `${at}.loss`),
      accuracy: f.numberOrNull(x["accuracy"], `${at}.accuracy`),
      epsilon: part("epsilon", ["sharpness", "epsilon", "accepted"]) as SharpnessRowJson["epsilon"],
      average: part("average", ["sharpness", "stderr", "rho"]) as SharpnessRowJson["average"],
      worstL2: part("worstL2", ["sharpness", "rho", "accepted"]) as SharpnessRowJson["worstL2"],
      worstLinf: part("worstLinf", ["sharpness", "rho", "accepted"]) as SharpnessRowJson["worstLinf"],
      lambdaMax: f.numberOrNull(x["lambdaMax"], `${at}.lambdaMax`),
      lambdaResidual: f.numberOrNull(x["lambdaResidual"], `${at}.lambdaResidual`),
      lambdaConverged: converged as boolean,
      trace,
      seconds: x["seconds"] === undefined ? null : f.numberOrNull(x["seconds"], `${at}.seconds`),
    };
  });
  if (rows.length === 0) f.fail("rows", "at least one model's row", o["rows"]);
  return {
    analysis: "sharpness",
    model: typeof o["model"] === "string" ? o["model"] : null,
    settings,
    rows,
  };
}

/** Which kind the fields of `o` say it is (the fields each kind's writer always writes), or null. */
function kindOf(o: Json): AnalysisKind | null {
  if ("barriers" in o && "t" in o && ("curve" in o || "line" in o)) return "connect";
  if ("density" in o && "grid" in o && ("nodes" in o || "weights" in o)) return "spectrum";
  if ("settings" in o && "rows" in o) return "sharpness";
  return null;
}

/**
 * Reads an analysis JSON file's text: the analysis, checked field by field;
 * "foreign" for valid JSON of another kind (e.g. a training log); "error" for
 * text that is not JSON, or a file that has an analysis's fields (or name) but
 * a wrong one, naming the field, what was expected and what came.
 *
 * @example
 * parseAnalysis(readFileSync("out/connect/connect.json", "utf8"), "connect/connect.json");
 * // { kind: "analysis", value: { analysis: "connect", kind: "bezier", t: [0, 0.05, ...], ... } }
 */
export function parseAnalysis(text: string, file: string): AnalysisParse {
  const base = file.slice(file.lastIndexOf("/") + 1);
  const named = NAMED.find(([re]) => re.test(base))?.[1] ?? null;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    const why = (e as Error).message;
    if (text.trim() === "") return { kind: "error", error: `file '${file}' is empty` };
    return { kind: "error", error: `file '${file}' is not valid JSON (${why})` };
  }
  const kind = isObject(json) ? kindOf(json) : null;
  if (kind === null) {
    if (named !== null)
      return {
        kind: "error",
        error: `file '${file}' is named like a ${named} file but does not hold one (${expectedFields(named)})`,
      };
    return {
      kind: "foreign",
      reason: "JSON, not a connect, spectrum or sharpness analysis",
    };
  }
  try {
    const o = json as Json;
    const value =
      kind === "connect"
        ? parseConnect(o, file)
        : kind === "spectrum"
          ? parseSpectrum(o, file)
          : parseSharpness(o, file);
    return { kind: "analysis", value };
  } catch (e) {
    if (e instanceof Invalid) return { kind: "error", error: `${e.message} (read as a ${kind} file)` };
    throw e;
  }
}

function expectedFields(kind: AnalysisKind): string {
  switch (kind) {
    case "connect":
      return "expected 't', 'curve', 'line' and 'barriers'";
    case "spectrum":
      return "expected 'grid', 'density', 'nodes' and 'weights'";
    case "sharpness":
      return "expected 'settings' and 'rows'";
    default:
      return kind satisfies never;
  }
}

function num(v: number | null | undefined, digits = 3): string {
  return v === null || v === undefined ? "NaN" : Number(v.toPrecision(digits)).toString();
}

/**
 * A line about an analysis for the list: the curve and its barrier against the
 * line's, the spectrum's probes and range, the table's models.
 *
 * @example
 * analysisSummary(parsed); // "bezier curve, 21 points: train-loss barrier 0.0123 (line 1.93)"
 */
export function analysisSummary(a: ParsedAnalysis): string {
  switch (a.analysis) {
    case "connect": {
      const c = a.barriers.curve["train_loss"];
      const l = a.barriers.line["train_loss"];
      const barrier =
        c !== undefined
          ? `: train-loss barrier ${num(c.height)}${l !== undefined ? ` (line ${num(l.height)})` : ""}`
          : "";
      return `${a.kind} curve, ${a.t.length} points${barrier}`;
    }
    case "spectrum": {
      const all = a.nodes.flat();
      const [lo, hi] = [Math.min(...all), Math.max(...all)];
      return `SLQ, ${a.probes} probes x ${a.steps} steps, nodes ${num(lo)} .. ${num(hi)}`;
    }
    case "sharpness":
      return `${a.rows.length} model${a.rows.length === 1 ? "" : "s"}: ${a.rows.map((r) => r.label).join(", ")}`;
    default:
      return a satisfies never;
  }
}

/**
 * Whether `name` is a file the catalog reads as a possible analysis (any .json).
 *
 * @example
 * isAnalysisCandidate("connect/connect.json"); // true
 */
export function isAnalysisCandidate(name: string): boolean {
  return /\.json$/i.test(name);
}
