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
  skipped: { name: string; reason: string }[];
}

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
 * const bundle: ReportData = { title: "run 1", list, surfaces: { [id]: surfaceJson } };
 */
export interface ReportData {
  title: string;
  list: SurfaceList;
  surfaces: Record<string, SurfaceJson | ApiError>;
}

/** The id of the `<script type="application/json">` element a report keeps its data in. */
export const REPORT_DATA_ELEMENT = "losscape-report-data";
