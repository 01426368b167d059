// The quantities a surface file can hold. No imports: the browser viewer
// (src/viewer/app) shares this list with the Node side.

/**
 * The quantities a surface can hold, under their reference dataset names.
 * Accuracies are in percent; `max_eig`/`min_eig` are Hessian extreme eigenvalues.
 *
 * @example
 * const q: SurfaceQuantity = "train_loss";
 */
export type SurfaceQuantity = "train_loss" | "train_acc" | "test_loss" | "test_acc" | "max_eig" | "min_eig";

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
  "max_eig",
  "min_eig",
];
