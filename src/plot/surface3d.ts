// A 3D surface plot drawn as an SVG image (the reference's plot_surface with
// matplotlib's Axes3D): the grid's cells become quadrilaterals, projected
// orthographically from an azimuth/elevation, shaded by a Lambert term and
// colored by height, and painted back to front (painter's algorithm). Cells
// with a missing corner are holes, their footprint marked on the floor.

import { ticks as niceTicks } from "../core/levels.ts";
import {
  CAPPED,
  CAPPED_FILL,
  colorRange,
  colorsFor,
  DIVERGED,
  FINITE,
  hasMissing,
  missingItems,
  NOT_COMPUTED,
  normalizer,
  prepareField,
} from "./_map.ts";
import {
  colorbar,
  el,
  formatTicks,
  hatchDef,
  LABEL_SIZE,
  legendRows,
  NOT_COMPUTED_FILL,
  pathData,
  type Rect,
  scale,
  svgDocument,
  text,
  textWidth,
  title,
} from "./_svg.ts";
import { rgbHex, shade } from "./colormap.ts";
import type { ColorOptions, Field2D, FigureOptions } from "./options.ts";

/**
 * Options of `surface3dFigure`.
 *
 * @example
 * const o: Surface3DOptions = { azimuth: -60, elevation: 30, zmax: 10, log: true };
 */
export interface Surface3DOptions extends FigureOptions, ColorOptions {
  /** Viewing direction around the vertical axis, degrees (default -60, matplotlib's). */
  azimuth?: number;
  /** Viewing height above the floor, degrees in [-90, 90] (default 30). */
  elevation?: number;
  /** Label of the vertical axis (default: the color label). */
  zlabel?: string;
  /** Draw the grid lines of the mesh (default true for grids up to 60 x 60). */
  mesh?: boolean;
}

type V3 = [number, number, number];

const dot = (a: V3, b: V3) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const sub = (a: V3, b: V3): V3 => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const cross = (a: V3, b: V3): V3 => [
  a[1] * b[2] - a[2] * b[1],
  a[2] * b[0] - a[0] * b[2],
  a[0] * b[1] - a[1] * b[0],
];
const unit = (a: V3): V3 => {
  const n = Math.hypot(a[0], a[1], a[2]) || 1;
  return [a[0] / n, a[1] / n, a[2] / n];
};

/** Half-height of the box relative to its half-width (matplotlib's box aspect 4:4:3). */
const Z_HALF = 0.75;

/**
 * A shaded 3D surface seen from (azimuth, elevation), with axes on the box's
 * front edges, back panes with grid lines, and a color bar. z is clipped to
 * [vmin, vmax] (default: the finite data range after zmax clipping); `log`
 * draws log10 z. Missing cells are holes, marked on the floor (hatched:
 * diverged; grey: not computed).
 *
 * @example
 * const svg = surface3dFigure({ x: s.x, y: s.y!, values: s.values.train_loss! }, { zmax: 10, azimuth: -60 });
 */
export function surface3dFigure(field: Field2D, options: Surface3DOptions = {}): string {
  const where = "surface3dFigure()";
  const {
    width = 640,
    height = 480,
    azimuth = -60,
    elevation = 30,
    log = false,
    colorbar: withBar = true,
  } = options;
  if (!Number.isFinite(azimuth))
    throw new Error(`${where}: 'azimuth' must be a finite number of degrees, got ${azimuth}`);
  if (!Number.isFinite(elevation) || elevation < -90 || elevation > 90) {
    throw new Error(`${where}: 'elevation' must be between -90 and 90 degrees, got ${elevation}`);
  }
  const p = prepareField(where, field, options.zmax);
  const [lo, hi] = colorRange(where, p, options);
  const t = normalizer(lo, hi, log);
  const cmap = colorsFor(options.cmap, "surface3d");
  const { nx, ny } = p;
  const mesh = options.mesh ?? (nx <= 60 && ny <= 60);
  const missing = hasMissing(p);
  const prefix = options.idPrefix ?? "lsc";

  // World coordinates: x, y in [-1, 1], z in [-Z_HALF, Z_HALF].
  const x0 = p.x[0]!;
  const x1 = p.x[nx - 1]!;
  const y0 = p.y[0]!;
  const y1 = p.y[ny - 1]!;
  const wx = (v: number) => (2 * (v - x0)) / (x1 - x0) - 1;
  const wy = (v: number) => (2 * (v - y0)) / (y1 - y0) - 1;
  const wz = (tz: number) => (2 * tz - 1) * Z_HALF;
  const world = (i: number, j: number): V3 => [wx(p.x[i]!), wy(p.y[j]!), wz(t(p.values[i * ny + j]!))];

  // View: v points to the viewer, r right, u up on screen (r x u = v).
  const az = (azimuth * Math.PI) / 180;
  const elv = (elevation * Math.PI) / 180;
  const v: V3 = [Math.cos(elv) * Math.cos(az), Math.cos(elv) * Math.sin(az), Math.sin(elv)];
  const r: V3 = [-Math.sin(az), Math.cos(az), 0];
  const u: V3 = [-Math.sin(elv) * Math.cos(az), -Math.sin(elv) * Math.sin(az), Math.cos(elv)];
  const light = unit([
    v[0] + 0.6 * u[0] - 0.4 * r[0],
    v[1] + 0.6 * u[1] - 0.4 * r[1],
    v[2] + 0.6 * u[2] - 0.4 * r[2],
  ]);

  // Fit the box into the plot area, leaving room for tick and axis labels.
  const top = options.title ? 40 : 16;
  const legendItems = missing ? missingItemsFor(p) : [];
  const bottom = 16 + (legendItems.length > 0 ? 24 : 0);
  const right = withBar ? 118 : 16;
  const area: Rect = { x: 16, y: top, width: width - 16 - right, height: height - top - bottom };
  if (area.width < 80 || area.height < 80) {
    throw new Error(`figure ${width} x ${height} is too small for a 3D plot; use at least 360 x 280`);
  }
  const corners: V3[] = [];
  for (const a of [-1, 1])
    for (const b of [-1, 1]) for (const c of [-Z_HALF, Z_HALF]) corners.push([a, b, c]);
  const sxs = corners.map((c) => dot(c, r));
  const sys = corners.map((c) => dot(c, u));
  const margin = 58;
  const spanX = Math.max(...sxs) - Math.min(...sxs);
  const spanY = Math.max(...sys) - Math.min(...sys);
  const k = Math.min((area.width - 2 * margin) / spanX, (area.height - 2 * margin) / (spanY || 1));
  const cx = area.x + area.width / 2 - (k * (Math.max(...sxs) + Math.min(...sxs))) / 2;
  const cy = area.y + area.height / 2 + (k * (Math.max(...sys) + Math.min(...sys))) / 2;
  const project = (w: V3): [number, number] => [cx + k * dot(w, r), cy - k * dot(w, u)];

  // Back panes (those facing the viewer from behind the surface) with grid lines.
  const xBack = v[0] > 0 ? -1 : 1;
  const yBack = v[1] > 0 ? -1 : 1;
  const zFloor = elevation >= 0 ? -Z_HALF : Z_HALF;
  const xTicks = niceTicks(x0, x1, 5);
  const yTicks = niceTicks(y0, y1, 5);
  const zScale = scale([lo, hi], [-Z_HALF, Z_HALF], log);
  const zTicks = zScale.ticks(5);
  const panes: string[] = [];
  const pane = (pts: V3[]) =>
    panes.push(el("path", { d: pathData(pts.map(project), true), fill: "#f3f3f3", stroke: "#c8c8c8" }));
  const gridLine = (a: V3, b: V3) => {
    const [pa, pb] = [project(a), project(b)];
    panes.push(
      el("line", { x1: pa[0], y1: pa[1], x2: pb[0], y2: pb[1], stroke: "#dcdcdc", "stroke-width": 0.8 }),
    );
  };
  pane([
    [-1, -1, zFloor],
    [1, -1, zFloor],
    [1, 1, zFloor],
    [-1, 1, zFloor],
  ]);
  pane([
    [xBack, -1, -Z_HALF],
    [xBack, 1, -Z_HALF],
    [xBack, 1, Z_HALF],
    [xBack, -1, Z_HALF],
  ]);
  pane([
    [-1, yBack, -Z_HALF],
    [1, yBack, -Z_HALF],
    [1, yBack, Z_HALF],
    [-1, yBack, Z_HALF],
  ]);
  for (const tx of xTicks) {
    const X = wx(tx);
    gridLine([X, -1, zFloor], [X, 1, zFloor]);
    gridLine([X, yBack, -Z_HALF], [X, yBack, Z_HALF]);
  }
  for (const ty of yTicks) {
    const Y = wy(ty);
    gridLine([-1, Y, zFloor], [1, Y, zFloor]);
    gridLine([xBack, Y, -Z_HALF], [xBack, Y, Z_HALF]);
  }
  for (const tz of zTicks) {
    const Z = zScale.map(tz);
    if (!Number.isFinite(Z)) continue;
    gridLine([xBack, -1, Z], [xBack, 1, Z]);
    gridLine([-1, yBack, Z], [1, yBack, Z]);
  }

  // Footprints of missing cells on the floor.
  const holes: Record<number, string[]> = { [DIVERGED]: [], [NOT_COMPUTED]: [], [CAPPED]: [] };
  const quads: { depth: number; svg: string }[] = [];
  for (let i = 0; i + 1 < nx; i++) {
    for (let j = 0; j + 1 < ny; j++) {
      const ids = [i * ny + j, (i + 1) * ny + j, (i + 1) * ny + j + 1, i * ny + j + 1];
      const status = ids.map((q) => p.status[q]!);
      if (status.some((s) => s !== FINITE)) {
        const kind = status.includes(DIVERGED) ? DIVERGED : status.includes(CAPPED) ? CAPPED : NOT_COMPUTED;
        const foot: V3[] = [
          [wx(p.x[i]!), wy(p.y[j]!), zFloor],
          [wx(p.x[i + 1]!), wy(p.y[j]!), zFloor],
          [wx(p.x[i + 1]!), wy(p.y[j + 1]!), zFloor],
          [wx(p.x[i]!), wy(p.y[j + 1]!), zFloor],
        ];
        holes[kind]!.push(pathData(foot.map(project), true));
        continue;
      }
      const w = [world(i, j), world(i + 1, j), world(i + 1, j + 1), world(i, j + 1)];
      const n = unit(cross(sub(w[2]!, w[0]!), sub(w[3]!, w[1]!)));
      const lambert = Math.abs(dot(n, light));
      const tMean = ids.reduce((a, q) => a + t(p.values[q]!), 0) / 4;
      const base = cmap(tMean);
      const fill = rgbHex(shade(base, 0.5 + 0.5 * lambert));
      const depth = w.reduce((a, q) => a + dot(q, v), 0) / 4;
      quads.push({
        depth,
        svg: el("path", {
          d: pathData(w.map(project), true),
          fill,
          stroke: mesh ? rgbHex(shade(base, 0.35)) : fill,
          "stroke-width": mesh ? 0.35 : 0.5,
          "stroke-opacity": mesh ? 0.6 : undefined,
        }),
      });
    }
  }
  quads.sort((a, b) => a.depth - b.depth);
  const holeGroups: string[] = [];
  if (holes[NOT_COMPUTED]!.length > 0)
    holeGroups.push(
      el("path", { class: "not-computed", d: holes[NOT_COMPUTED]!.join(""), fill: NOT_COMPUTED_FILL }),
    );
  if (holes[CAPPED]!.length > 0)
    holeGroups.push(el("path", { class: "capped", d: holes[CAPPED]!.join(""), fill: CAPPED_FILL }));
  if (holes[DIVERGED]!.length > 0) {
    holeGroups.push(
      el("path", { class: "diverged", d: holes[DIVERGED]!.join(""), fill: `url(#${prefix}-hatch)` }),
    );
  }

  // Axes on the front edges of the floor, z on the left vertical edge.
  const axes: string[] = [];
  const edgeAxis = (
    from: V3,
    to: V3,
    values: number[],
    at: (tick: number) => V3,
    label: string | undefined,
    outward: V3,
  ) => {
    const [a, b] = [project(from), project(to)];
    axes.push(el("line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1], stroke: "#222" }));
    const o0 = project([0, 0, 0]);
    const o1 = project(outward);
    let dx = o1[0] - o0[0];
    let dy = o1[1] - o0[1];
    const len = Math.hypot(dx, dy) || 1;
    dx /= len;
    dy /= len;
    const labels = formatTicks(values);
    let widest = 0;
    values.forEach((tick, n) => {
      const q = project(at(tick));
      if (!Number.isFinite(q[0]) || !Number.isFinite(q[1])) return;
      axes.push(el("line", { x1: q[0], y1: q[1], x2: q[0] + 5 * dx, y2: q[1] + 5 * dy, stroke: "#222" }));
      const s = labels[n]!;
      widest = Math.max(widest, textWidth(s, 12));
      const anchor = dx > 0.35 ? "start" : dx < -0.35 ? "end" : "middle";
      axes.push(text(q[0] + 10 * dx, q[1] + 10 * dy + 4 + (dy > 0.35 ? 4 : 0), s, { "text-anchor": anchor }));
    });
    if (label) {
      const m = project([(from[0] + to[0]) / 2, (from[1] + to[1]) / 2, (from[2] + to[2]) / 2]);
      const off = 22 + Math.abs(dx) * widest;
      const anchor = dx > 0.35 ? "start" : dx < -0.35 ? "end" : "middle";
      axes.push(
        text(m[0] + off * dx, m[1] + off * dy + 12, label, {
          "text-anchor": anchor,
          "font-size": LABEL_SIZE,
        }),
      );
    }
  };
  const yFront = -yBack;
  const xFront = -xBack;
  edgeAxis(
    [-1, yFront, zFloor],
    [1, yFront, zFloor],
    xTicks,
    (tx) => [wx(tx), yFront, zFloor],
    options.xlabel,
    [0, yFront, 0],
  );
  edgeAxis(
    [xFront, -1, zFloor],
    [xFront, 1, zFloor],
    yTicks,
    (ty) => [xFront, wy(ty), zFloor],
    options.ylabel,
    [xFront, 0, 0],
  );
  // z axis on whichever side corner appears leftmost.
  const sides: V3[] = [
    [xFront, yBack, 0],
    [xBack, yFront, 0],
  ];
  const zCorner = project(sides[0]!)[0] <= project(sides[1]!)[0] ? sides[0]! : sides[1]!;
  edgeAxis(
    [zCorner[0], zCorner[1], -Z_HALF],
    [zCorner[0], zCorner[1], Z_HALF],
    zTicks,
    (tz) => [zCorner[0], zCorner[1], zScale.map(tz)],
    undefined,
    [zCorner[0], zCorner[1], 0],
  );
  const zlabel = options.zlabel ?? options.colorLabel;
  if (zlabel) {
    const top3 = project([zCorner[0], zCorner[1], Z_HALF]);
    axes.push(text(top3[0], top3[1] - 12, zlabel, { "text-anchor": "middle", "font-size": LABEL_SIZE }));
  }

  const defs = [hatchDef(`${prefix}-hatch`)];
  const body = [
    el("g", { class: "panes" }, panes),
    el("g", { class: "holes", "stroke-width": 0 }, holeGroups),
    el(
      "g",
      { class: "surface", "stroke-linejoin": "round" },
      quads.map((q) => q.svg),
    ),
    el("g", { class: "axes3d" }, axes),
    title(options.title, area, width),
  ];
  if (withBar) {
    const bar = { x: area.x + area.width + 20, y: top + 20, width: 16, height: area.height - 40 };
    const [d, b] = colorbar({
      rect: bar,
      min: lo,
      max: hi,
      log,
      color: cmap,
      label: options.colorLabel,
      gradientId: `${prefix}-gradient`,
    });
    if (d) defs.push(d);
    body.push(b);
  }
  if (legendItems.length > 0)
    body.push(legendRows(legendItems, area.x + 8, height - 14, area.width, `${prefix}-hatch`).svg);
  return svgDocument(
    width,
    height,
    defs,
    body,
    options.title ?? `3D surface${options.colorLabel ? ` of ${options.colorLabel}` : ""}`,
  );
}

function missingItemsFor(p: { status: Uint8Array }) {
  return missingItems({
    diverged: p.status.some((s) => s === DIVERGED),
    notComputed: p.status.some((s) => s === NOT_COMPUTED),
    capped: p.status.some((s) => s === CAPPED),
  });
}
