// Figures of mode connectivity (src/landscape/connect.ts): loss along the
// trained curve and along the straight line between two models, and the
// loss contours of the plane through w1, w2 and the control point with the
// curve drawn on it.

import { trajectoryFigure } from "./contour.ts";
import { type LineSeries, lineFigure, PALETTE } from "./lines.ts";
import type { Field2D, FigureOptions } from "./options.ts";

/** Loss along both paths, as connectivity figures take it. */
export interface ConnectionPaths {
  t: readonly number[];
  curve: { train_loss: readonly number[]; test_loss?: readonly number[] };
  line: { train_loss: readonly number[]; test_loss?: readonly number[] };
  /** "bezier" or "polychain", for the legend. */
  kind: string;
}

/**
 * Loss against t along the curve (solid) and the straight line (dashed), train in blue, test in
 * orange when present.
 *
 * @example
 * writeFigure("connect.svg", connectionFigure(connection, { title: "cnn: seed 0 to seed 1" }));
 */
export function connectionFigure(c: ConnectionPaths, options: FigureOptions = {}): string {
  const series: LineSeries[] = [];
  const add = (y: readonly number[] | undefined, label: string, color: string, dash?: string) => {
    if (y) series.push({ x: c.t, y, label, color, ...(dash ? { dash } : {}) });
  };
  add(c.curve.train_loss, `${c.kind} curve, train`, PALETTE[0]);
  add(c.line.train_loss, "straight line, train", PALETTE[0], "6 4");
  add(c.curve.test_loss, `${c.kind} curve, test`, PALETTE[1]);
  add(c.line.test_loss, "straight line, test", PALETTE[1], "6 4");
  return lineFigure(series, { xlabel: "t (0: first model, 1: second model)", ylabel: "loss", ...options });
}

/**
 * Loss contours of the plane w1 + x u + y v (u = w2 - w1, v the part of theta - w1 orthogonal to u)
 * with the curve on top; w1 is at (0, 0), w2 at (1, 0), the straight line between them on y = 0.
 *
 * @example
 * const svg = curvePlaneFigure(field, { x: plane.x, y: plane.y, labels }, { title: "plane of the curve" });
 */
export function curvePlaneFigure(
  field: Field2D,
  path: { x: readonly number[]; y: readonly number[]; labels?: readonly string[] },
  options: FigureOptions = {},
): string {
  return trajectoryFigure(field, path, {
    xlabel: "u = w2 - w1 (w1 at 0, w2 at 1)",
    ylabel: "v: theta - w1 orthogonal to u",
    ...options,
  });
}
