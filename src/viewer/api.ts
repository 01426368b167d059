// The viewer's JSON shapes: what `losscape view` serves under /api and what a
// report embeds. Types only, shared by the Node server and the browser app.
// Numbers that are NaN or infinite in a surface (not computed, or diverged)
// are null in JSON; `done` says which of the two a null is.

import type { SurfaceQuantity } from "../formats/quantities.ts";

/**
 * One file found in the folders and files given to the viewer: a surface the
 * page can open, or a `.h5` file that could not be read (shown with its reason).
 *
 * @example
 * const entry: SurfaceListEntry = { id: "s3f2a", name: "resnet56.h5", status: "ok", dims: 2, nx: 51, ny: 51,
 *   quantities: ["train_loss", "train_acc"], interpolation: false, trajectory: false, kind: "random" };
 */
export type SurfaceListEntry = SurfaceListOk | SurfaceListError;

/** A surface the page can open with `GET /api/surface?id=<id>`. */
export interface SurfaceListOk {
  /** Opaque id; the only way to ask for the file. */
  id: string;
  /** Path relative to the folder it was found in (the file name for a file given directly). */
  name: string;
  status: "ok";
  dims: 1 | 2;
  nx: number;
  /** null for a 1D surface. */
  ny: number | null;
  quantities: SurfaceQuantity[];
  /** A 1D interpolation between two models (`losscape interpolate`). */
  interpolation: boolean;
  /** A projected optimization path is available for this surface. */
  trajectory: boolean;
  /** What made the surface, from its metadata (`kind`: "random", "trajectory", "interpolation", ...), or null. */
  kind: string | null;
}

/** A `.h5` file that is not a readable surface: missing, corrupt, or of another kind. */
export interface SurfaceListError {
  id: string;
  name: string;
  status: "error";
  /** What is wrong, naming the file (e.g. "surface file 'a.h5': is not an HDF5 file ..."). */
  error: string;
}

/**
 * `GET /api/surfaces`: the surfaces, then the files left out on purpose
 * (direction and projection files, symlinks leading out of a folder).
 *
 * @example
 * const list: SurfaceList = await (await fetch("/api/surfaces")).json();
 */
export interface SurfaceList {
  surfaces: SurfaceListEntry[];
  /** The analyses' JSON files (connect, spectrum, sharpness), readable or not; sorted by name. */
  analyses: AnalysisListEntry[];
  skipped: { name: string; reason: string }[];
}

/**
 * What an analysis JSON file holds: a mode-connectivity run (`losscape
 * connect`'s connect.json), a Hessian spectral density (`losscape spectrum
 * --out`) or a sharpness table (`losscape sharpness --out x.json`, the demo's
 * sharpness.json).
 *
 * @example
 * const kind: AnalysisKind = "spectrum";
 */
export type AnalysisKind = "connect" | "spectrum" | "sharpness";

/**
 * One analysis file found, recognised by its contents: one the page can open
 * with `GET /api/analysis?id=<id>`, or one that is damaged (shown with its reason).
 *
 * @example
 * const entry: AnalysisListEntry = { id: "f3a9", name: "connect/connect.json", status: "ok",
 *   analysis: "connect", summary: "bezier curve, 21 points, train barrier 0.012 (line 1.93)" };
 */
export type AnalysisListEntry =
  | { id: string; name: string; status: "ok"; analysis: AnalysisKind; summary: string }
  | { id: string; name: string; status: "error"; error: string };

/** A barrier along a path: max over t of value(t) minus the chord of the end values, and where. null: not finite. */
export interface BarrierJson {
  height: number | null;
  at: number | null;
}

/** Loss and accuracy (%) at the points t of a path; null where not finite. */
export interface PathJson {
  train_loss: (number | null)[];
  train_acc: (number | null)[];
  test_loss?: (number | null)[];
  test_acc?: (number | null)[];
}

/**
 * `GET /api/analysis?id=<id>` for connect.json: loss and accuracy along the
 * trained curve and along the straight line, the barriers, the settings, and
 * the plane surface (plane.h5 beside it) when it is served too.
 *
 * @example
 * const a = (await (await fetch(`/api/analysis?id=${id}`)).json()) as ConnectAnalysisJson;
 * a.barriers.curve.train_loss?.height; // 0.012
 */
export interface ConnectAnalysisJson {
  analysis: "connect";
  id: string;
  name: string;
  /** The curve: "bezier" or "polychain". */
  kind: string;
  t: number[];
  curve: PathJson;
  line: PathJson;
  /** Per path, per quantity (train_loss, train_error, test_loss, test_error; error = 100 - accuracy). */
  barriers: { curve: Record<string, BarrierJson>; line: Record<string, BarrierJson> };
  /** Batch norm at the points: "recompute" or "interpolate". */
  bn: string;
  /** The run's settings as the file states them (model, steps, lr, seed, batch_size, bn_settings...). */
  settings: Record<string, string>;
  /** The training loss of each step of the control point, when recorded. */
  trainingLosses: (number | null)[] | null;
  /** The surface of the curve's plane (plane.h5 in the same folder), when listed. */
  plane: { id: string; name: string } | null;
}

/**
 * `GET /api/analysis?id=<id>` for a spectrum JSON: the broadened SLQ density
 * on its grid, the quadrature nodes and weights per probe, and the settings.
 *
 * @example
 * const a = (await (await fetch(`/api/analysis?id=${id}`)).json()) as SpectrumAnalysisJson;
 * a.probes * a.steps; // Hessian-vector products
 */
export interface SpectrumAnalysisJson {
  analysis: "spectrum";
  id: string;
  name: string;
  probes: number;
  steps: number;
  /** The Gaussian broadening of the density. */
  sigma: number;
  grid: number[];
  density: (number | null)[];
  nodes: number[][];
  weights: number[][];
  /** Moments mean_p sum_j w t^k, k = 0.., when recorded. */
  moments: number[] | null;
  /** Hutchinson's trace from the same probes, when recorded. */
  trace: { trace: number; stderr: number; samples: number } | null;
  /** Other settings as the file states them (model, data, samples, seed, distribution, dimension, products, method). */
  settings: Record<string, string>;
}

/** One model's row of a sharpness table; null where a value is not finite. */
export interface SharpnessRowJson {
  label: string;
  loss: number | null;
  /** Fraction 0..1. */
  accuracy: number | null;
  epsilon: { sharpness: number | null; epsilon: number | null; accepted: number | null };
  average: { sharpness: number | null; stderr: number | null; rho: number | null };
  worstL2: { sharpness: number | null; rho: number | null; accepted: number | null };
  worstLinf: { sharpness: number | null; rho: number | null; accepted: number | null };
  lambdaMax: number | null;
  lambdaResidual: number | null;
  lambdaConverged: boolean;
  trace: { trace: number | null; stderr: number | null; samples: number; method: string } | null;
  seconds: number | null;
}

/**
 * `GET /api/analysis?id=<id>` for a sharpness table: the shared settings
 * (radii, steps, samples, Lanczos, trace) and a row per model.
 *
 * @example
 * const a = (await (await fetch(`/api/analysis?id=${id}`)).json()) as SharpnessAnalysisJson;
 * a.rows.map((r) => r.worstL2.sharpness);
 */
export interface SharpnessAnalysisJson {
  analysis: "sharpness";
  id: string;
  name: string;
  model: string | null;
  settings: Record<string, string | number>;
  rows: SharpnessRowJson[];
}

/**
 * An analysis as the API serves it, by its `analysis` kind.
 *
 * @example
 * if (a.analysis === "spectrum") console.log(a.sigma);
 */
export type AnalysisJson = ConnectAnalysisJson | SpectrumAnalysisJson | SharpnessAnalysisJson;

/**
 * A projected optimization path (Li et al. 2018, section 7) to draw on a
 * surface's contours: checkpoint i sits at (x[i], y[i]) in the surface's
 * coordinates, from the first checkpoint to the last (the minimizer the
 * surface is centred on). Read from a reference projection file
 * (`proj_xcoord`, `proj_ycoord`) and, for the axis titles, the explained
 * variance ratios of the PCA direction file.
 *
 * @example
 * const t: TrajectoryJson = { x: [0.9, 0.4, 0], y: [0.2, 0.1, 0], labels: null,
 *   explainedVarianceRatio: [0.482, 0.153], source: "directions.h5_proj_cos.h5" };
 */
export interface TrajectoryJson {
  x: number[];
  y: number[];
  /** One label per checkpoint (e.g. "epoch 10"), or null to number them. */
  labels: string[] | null;
  /** Explained variance ratio of the first and second direction (0..1), when known. */
  explainedVarianceRatio: [number, number] | null;
  /** The file the path was read from. */
  source: string;
}

/**
 * `GET /api/surface?id=<id>`: one surface. A 2D quantity is flat with index
 * i*ny + j = value at (x[i], y[j]); a 1D one has index i = value at x[i].
 * Accuracy is in percent; null marks a point that is not computed (done 0) or
 * diverged (done 1).
 *
 * @example
 * const s: SurfaceJson = await (await fetch(`/api/surface?id=${id}`)).json();
 * const loss = s.values.train_loss?.[i * s.y!.length + j];
 */
export interface SurfaceJson {
  id: string;
  name: string;
  x: number[];
  y: number[] | null;
  values: Partial<Record<SurfaceQuantity, (number | null)[]>>;
  done: number[];
  dirFile: string;
  meta: Record<string, string>;
  trajectory: TrajectoryJson | null;
}

/**
 * Every error the API answers with (status 4xx/5xx): the reason and, where one
 * is involved, the file's name as listed.
 *
 * @example
 * const { error, file } = (await res.json()) as ApiError;
 */
export interface ApiError {
  error: string;
  file?: string;
}

/**
 * What a report embeds in place of the API: the list, and every listed
 * surface's data or error by id.
 *
 * @example
 * const bundle: ReportData = { title: "run 1", list, surfaces: { [id]: surfaceJson }, analyses: {} };
 */
export interface ReportData {
  title: string;
  list: SurfaceList;
  surfaces: Record<string, SurfaceJson | ApiError>;
  /** Every listed analysis's data or error by id. */
  analyses: Record<string, AnalysisJson | ApiError>;
}

/** The id of the `<script type="application/json">` element a report keeps its data in. */
export const REPORT_DATA_ELEMENT = "losscape-report-data";
