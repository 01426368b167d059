// The quantities a surface file can hold. No imports: the browser viewer
// (src/viewer/app) shares this list with the Node side.

/**
 * The quantities a surface can hold, under their reference dataset names.
 * Accuracies are in percent; `*_loss_se` is the standard error of the point's mean loss over the
 * samples; `max_eig`/`min_eig` are Hessian extreme eigenvalues.
 *
 * @example
 * const q: SurfaceQuantity = "train_loss";
 */
export type SurfaceQuantity =
  | "train_loss"
  | "train_acc"
  | "test_loss"
  | "test_acc"
  | "train_loss_se"
  | "test_loss_se"
  | "max_eig"
  | "min_eig";

/**
 * Every `SurfaceQuantity`, in the order files list them.
 *
 * @example
 * for (const q of SURFACE_QUANTITIES) if (surface.values[q]) console.log(q);
 */
export const SURFACE_QUANTITIES: readonly SurfaceQuantity[] = [
  "train_loss",
  "train_acc",
  "test_loss",
  "test_acc",
  "train_loss_se",
  "test_loss_se",
  "max_eig",
  "min_eig",
];

/**
 * What a point of a surface holds (`done[k]`, the file's `losscape_status`): not computed yet, an
 * exact mean, a diverged evaluation stopped at its first non-finite batch (loss NaN or +Inf,
 * accuracy NaN), a lower bound above `--loss-cap` (accuracy NaN), or a value interpolated from
 * computed neighbours (`--refine`).
 *
 * @example
 * if (s.done[k] === POINT.CAPPED) label = `>= ${s.values.train_loss[k]}`;
 */
export const POINT = {
  NOT_COMPUTED: 0,
  COMPUTED: 1,
  DIVERGED: 2,
  CAPPED: 3,
  INTERPOLATED: 4,
} as const;

/** A point's status code. */
export type PointStatus = (typeof POINT)[keyof typeof POINT];

/** Status codes as words, for messages and the viewer. */
export const POINT_NAMES: readonly string[] = [
  "not computed",
  "computed",
  "diverged",
  "capped",
  "interpolated",
];
