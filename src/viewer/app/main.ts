/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// The viewer page: a list of surfaces, and for the one opened a rotatable 3D
// surface, a linked contour map (click a point: its values, slices through
// it, and its place on the 3D surface), the Hessian ratio map when the file
// has eigenvalues, and curves for 1D surfaces; or several surfaces side by
// side on one colour scale; or an analysis's panel (mode connectivity, Hessian
// spectrum, sharpness table). The same page runs live (`losscape view`) and
// inlined in a report. State lives in one object; `render()` redraws from it.
// body[data-status] is "ready" once a render has finished, and body[data-renders]
// counts finished renders (tests wait on them).

import Plotly, { type PlotlyEvent } from "plotly.js-gl3d-dist-min";
import { POINT, POINT_NAMES, SURFACE_QUANTITIES } from "../../formats/quantities.ts";
import type {
  AnalysisJson,
  ConnectAnalysisJson,
  SharpnessAnalysisJson,
  SpectrumAnalysisJson,
  SurfaceJson,
  SurfaceList,
  SurfaceListOk,
} from "../api.ts";
import {
  barrierRows,
  cell,
  connectDescription,
  connectFigure,
  sharpnessCells,
  sharpnessDescription,
  sharpnessHeader,
  spectrumDensityFigure,
  spectrumDescription,
  trainingFigure,
} from "./analyses.ts";
import { mainSurface } from "./choose.ts";
import { COLORMAPS, type ColormapName, isColormap } from "./colormaps.ts";
import { focusedLevels } from "./contour.ts";
import {
  displayField,
  finiteRange,
  formatValue,
  HESSIAN_RATIO_RANGE,
  nearestIndex,
  paddedRange,
  QUANTITY_LABELS,
  rawField,
  type ViewQuantity,
  viewQuantities,
} from "./field.ts";
import {
  type ColorOptions,
  type CurveSet,
  contourFigure,
  curvesFigure,
  type Figure,
  type GridPoint,
  type PlaneView,
  type SliceSeries,
  sliceFigure,
  surface3dFigure,
} from "./figures.ts";
import { shadeField } from "./shading.ts";
import { openSource } from "./source.ts";
import "./style.css";

type Mode = "single" | "compare";

interface State {
  list: SurfaceList | null;
  /** The surface the Surface tab shows. */
  active: string | null;
  /** The analysis the Surface tab shows instead of a surface (connect, spectrum, sharpness), or null. */
  analysis: string | null;
  /** Surfaces ticked for comparison, in ticking order. */
  ticked: string[];
  mode: Mode;
  quantity: ViewQuantity;
  log: boolean;
  /** Clip slider position, 1..1000 over the displayed range; 1000 = no clipping. */
  clip: number;
  colormap: ColormapName;
  levels: number;
  /** Selected grid point of the open 2D surface. */
  selected: GridPoint | null;
  /** Selected index of the open 1D surface. */
  selected1d: number | null;
  /** Selected coordinates in the comparison. */
  compareAt: { x: number; y: number } | null;
}

const CLIP_OFF = 1000;
const MAX_3D_IN_COMPARE = 4;
const PLOT_CONFIG = {
  responsive: true,
  displaylogo: false,
  modeBarButtonsToRemove: ["sendDataToCloud", "lasso2d", "select2d"],
  toImageButtonOptions: { format: "png", scale: 2 },
};

const state: State = {
  list: null,
  active: null,
  analysis: null,
  ticked: [],
  mode: "single",
  quantity: "train_loss",
  log: false,
  clip: CLIP_OFF,
  colormap: "viridis",
  levels: 12,
  selected: null,
  selected1d: null,
  compareAt: null,
};

const source = openSource(document);
const surfaces = new Map<string, Promise<SurfaceJson>>();

function load(id: string): Promise<SurfaceJson> {
  let p = surfaces.get(id);
  if (p === undefined) {
    p = source.surface(id);
    surfaces.set(id, p);
  }
  return p;
}

const analyses = new Map<string, Promise<AnalysisJson>>();

function loadAnalysis(id: string): Promise<AnalysisJson> {
  let p = analyses.get(id);
  if (p === undefined) {
    p = source.analysis(id);
    analyses.set(id, p);
  }
  return p;
}

// ---------- DOM helpers ----------

function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`page element #${id} is missing`);
  return el as T;
}

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.append(...children);
  return el;
}

function showMessage(text: string | null): void {
  const box = byId("message");
  box.hidden = text === null;
  box.textContent = text ?? "";
}

const wired = new WeakSet<HTMLElement>();

/** Draws a figure into a div; `events` are attached once, after Plotly has set the div up. */
async function draw(div: HTMLElement, fig: Figure, events: Record<string, (e: PlotlyEvent) => void> = {}) {
  const gd = await Plotly.react(div, fig.data, fig.layout, PLOT_CONFIG);
  if (!wired.has(div)) {
    for (const [name, handler] of Object.entries(events)) gd.on(name, handler);
    wired.add(div);
  }
  return gd;
}

let viewKey = "";

/** Replaces the view's content when `key` changes (purging old plots), else keeps it. */
function ensureView(key: string, build: () => Node[]): void {
  if (key === viewKey) return;
  const view = byId("view");
  for (const div of view.querySelectorAll<HTMLElement>(".js-plotly-plot")) Plotly.purge(div);
  view.replaceChildren(...build());
  viewKey = key;
}

function panel(caption: string, ...children: Node[]): HTMLElement {
  return h("figure", { class: "panel" }, h("figcaption", {}, caption), ...children);
}

function plotDiv(id: string, kind = ""): HTMLDivElement {
  return h("div", { id, class: `plot ${kind}`.trim() });
}

const shadeCache = new Map<string, string>();

/** The contour map's shaded background as a PNG data URL (cached per look). */
function shadeImage(key: string, v: PlaneView, c: ColorOptions): string {
  const full = `${key}|${v.quantity}|${v.log}|${v.zmax}|${c.cmin}|${c.cmax}|${c.colormap}`;
  const hit = shadeCache.get(full);
  if (hit !== undefined) return hit;
  const size = Math.min(512, Math.max(160, 8 * Math.max(v.x.length, v.y.length)));
  const pixels = shadeField(v.z, v.x, v.y, { width: size, height: size, ...c });
  const canvas = h("canvas", { width: String(size), height: String(size) });
  canvas.getContext("2d")?.putImageData(new ImageData(pixels, size, size), 0, 0);
  const url = canvas.toDataURL("image/png");
  if (shadeCache.size > 48) shadeCache.clear();
  shadeCache.set(full, url);
  return url;
}

// ---------- shared computations ----------

/** The clip value (raw units) the slider stands for, over the displayed range of `raws`. */
function clipValue(raws: readonly Float64Array[]): number | null {
  if (state.clip >= CLIP_OFF) return null;
  const range = finiteRange(raws.map((r) => displayField(r, { log: state.log, zmax: null })));
  if (range === null) return null;
  const d = range[0] + (state.clip / CLIP_OFF) * (range[1] - range[0]);
  return state.log ? 10 ** d : d;
}

function colorRange(q: ViewQuantity, displayed: readonly Float64Array[]): [number, number] {
  if (q === "hessian_ratio" && !state.log) return HESSIAN_RATIO_RANGE;
  return paddedRange(finiteRange(displayed) ?? [0, 1]);
}

function zRange(displayed: readonly Float64Array[], colors: [number, number]): [number, number] {
  const r = finiteRange(displayed) ?? colors;
  const [lo, hi] = paddedRange([Math.min(r[0], colors[0]), Math.max(r[1], colors[1])]);
  const pad = (hi - lo) * 0.02;
  return [lo - pad, hi + pad];
}

function planeView(s: SurfaceJson, q: ViewQuantity, zmax: number | null): PlaneView | null {
  const raw = rawField(s, q);
  if (raw === null || s.y === null) return null;
  return {
    name: s.name,
    x: s.x,
    y: s.y,
    raw,
    z: displayField(raw, { log: state.log, zmax }),
    quantity: q,
    log: state.log,
    zmax,
    trajectory: s.trajectory,
  };
}

/** Quantity options for the surfaces shown; keeps the current one when possible. */
function updateQuantities(shown: readonly SurfaceJson[]): void {
  const options: ViewQuantity[] = [];
  for (const s of shown) for (const q of viewQuantities(s)) if (!options.includes(q)) options.push(q);
  options.sort((a, b) => order(a) - order(b));
  if (!options.includes(state.quantity) && options[0] !== undefined) state.quantity = options[0];
  const select = byId<HTMLSelectElement>("quantity");
  const want = options.join(",");
  if (select.dataset["options"] !== want) {
    select.replaceChildren(...options.map((q) => new Option(QUANTITY_LABELS[q], q)));
    select.dataset["options"] = want;
  }
  select.value = state.quantity;
}

function order(q: ViewQuantity): number {
  return q === "hessian_ratio" ? SURFACE_QUANTITIES.length : SURFACE_QUANTITIES.indexOf(q);
}

function setClipLabel(zmax: number | null): void {
  byId<HTMLOutputElement>("clip-value").textContent = zmax === null ? "no clip" : formatValue(zmax);
  byId<HTMLInputElement>("clip").value = String(state.clip);
}

function setPlaneControls(enabled: boolean): void {
  for (const id of ["quantity", "colormap", "levels"]) byId<HTMLInputElement>(id).disabled = !enabled;
}

function describeSurface(s: SurfaceJson): string {
  const grid = s.y === null ? `${s.x.length} points` : `${s.x.length} × ${s.y.length} grid`;
  const done = s.done.filter((v) => v !== POINT.NOT_COMPUTED).length;
  const parts = [grid, `${done}/${s.done.length} computed`];
  const norm = s.meta["direction_normalization"];
  if (norm) parts.push(`${norm} normalization`);
  if (s.meta["kind"] === "interpolation") parts.push("interpolation");
  if (s.trajectory) parts.push(`trajectory from ${s.trajectory.source}`);
  return parts.join(" · ");
}

// ---------- the list ----------

function okEntries(): SurfaceListOk[] {
  return (state.list?.surfaces ?? []).filter((s): s is SurfaceListOk => s.status === "ok");
}

function renderList(): void {
  const ul = byId("surface-list");
  const list = state.list;
  if (list === null) return;
  if (list.surfaces.length === 0) {
    ul.replaceChildren(h("li", { class: "muted" }, "no .h5 surface files found"));
  } else {
    ul.replaceChildren(
      ...list.surfaces.map((s) => {
        if (s.status === "error") {
          return h(
            "li",
            { class: "error", "data-id": s.id },
            h("strong", {}, `⚠ ${s.name}`),
            h("span", { class: "reason" }, s.error),
          );
        }
        const box = h("input", { type: "checkbox", "aria-label": `compare ${s.name}` });
        box.checked = state.ticked.includes(s.id);
        box.addEventListener("change", () => {
          state.ticked = box.checked ? [...state.ticked, s.id] : state.ticked.filter((t) => t !== s.id);
          if (box.checked && state.ticked.length >= 2) state.mode = "compare";
          void render();
        });
        const name = h("button", { type: "button", class: "name" }, s.name);
        name.addEventListener("click", () => {
          state.analysis = null;
          if (state.active !== s.id) {
            state.active = s.id;
            state.selected = null;
            state.selected1d = null;
          }
          state.mode = "single";
          void render();
        });
        const badge = [
          s.dims === 1 ? `1D · ${s.nx}` : `${s.nx}×${s.ny}`,
          s.interpolation ? "interp." : "",
          s.trajectory ? "path" : "",
          s.quantities.includes("max_eig") ? "Hessian" : "",
        ]
          .filter(Boolean)
          .join(" · ");
        const active = state.mode === "single" && state.analysis === null && s.id === state.active;
        return h(
          "li",
          { "data-id": s.id, class: active ? "active" : "" },
          box,
          h("div", { class: "entry" }, name, h("span", { class: "badge" }, badge)),
        );
      }),
    );
  }
  renderAnalysisList(list);
  const skipped = byId("skipped");
  skipped.hidden = list.skipped.length === 0;
  skipped
    .querySelector("ul")
    ?.replaceChildren(...list.skipped.map((s) => h("li", {}, `${s.name} (${s.reason})`)));
  byId("tab-single").setAttribute("aria-selected", String(state.mode === "single"));
  byId("tab-compare").setAttribute("aria-selected", String(state.mode === "compare"));
}

const ANALYSIS_BADGES = { connect: "connectivity", spectrum: "spectrum", sharpness: "sharpness" } as const;

function renderAnalysisList(list: SurfaceList): void {
  const section = byId("analyses");
  const entries = list.analyses ?? [];
  section.hidden = entries.length === 0;
  byId("analysis-list").replaceChildren(
    ...entries.map((a) => {
      if (a.status === "error") {
        return h(
          "li",
          { class: "error", "data-id": a.id },
          h("strong", {}, `⚠ ${a.name}`),
          h("span", { class: "reason" }, a.error),
        );
      }
      const name = h("button", { type: "button", class: "name" }, a.name);
      name.addEventListener("click", () => {
        state.analysis = a.id;
        state.mode = "single";
        void render();
      });
      const active = state.mode === "single" && state.analysis === a.id;
      return h(
        "li",
        { "data-id": a.id, "data-analysis": a.analysis, class: active ? "active" : "" },
        h(
          "div",
          { class: "entry" },
          name,
          h("span", { class: "badge" }, `${ANALYSIS_BADGES[a.analysis]} · ${a.summary}`),
        ),
      );
    }),
  );
}

// ---------- the analyses ----------

function table(
  head: readonly string[],
  rows: readonly (Node | string)[][],
  attrs: Record<string, string> = {},
) {
  return h(
    "table",
    { class: "details", ...attrs },
    h("thead", {}, h("tr", {}, ...head.map((c) => h("th", {}, c)))),
    h(
      "tbody",
      {},
      ...rows.map((r) => h("tr", {}, ...r.map((c) => (c instanceof Node ? c : h("td", {}, c))))),
    ),
  );
}

function settingsPanel(settings: Record<string, string | number>): HTMLElement {
  const rows = Object.entries(settings).sort(([a], [b]) => a.localeCompare(b));
  return panel(
    "Settings (from the file)",
    h(
      "table",
      { class: "details meta" },
      h("tbody", {}, ...rows.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, String(v))))),
    ),
  );
}

async function renderAnalysis(token: number): Promise<void> {
  const entry = state.list?.analyses?.find((a) => a.id === state.analysis);
  setPlaneControls(false);
  setClipLabel(null);
  if (entry === undefined) {
    state.analysis = null;
    await renderSingle(token);
    return;
  }
  if (entry.status === "error") {
    showMessage(null);
    ensureView(`analysis-error:${entry.id}`, () => [
      panel(entry.name, h("p", { class: "error-panel" }, `This file cannot be shown: ${entry.error}`)),
    ]);
    return;
  }
  let a: AnalysisJson;
  try {
    a = await loadAnalysis(entry.id);
  } catch (e) {
    const reason = (e as Error).message;
    analyses.delete(entry.id);
    void refreshList();
    showMessage(null);
    ensureView(`analysis-error:${entry.id}:${reason}`, () => [
      panel(entry.name, h("p", { class: "error-panel" }, `This file cannot be shown: ${reason}`)),
    ]);
    return;
  }
  if (token !== renderToken) return;
  showMessage(null);
  switch (a.analysis) {
    case "connect":
      await renderConnect(a);
      break;
    case "spectrum":
      await renderSpectrum(a);
      break;
    case "sharpness":
      renderSharpness(a);
      break;
    default:
      a satisfies never;
  }
}

function barrierCell(b: { height: number | null; at: number | null } | null, path: string, q: string) {
  if (b === null) return [h("td", { class: "missing" }, "—"), h("td", { class: "missing" }, "—")];
  return [
    h("td", { "data-path": path, "data-quantity": q, "data-value": String(b.height) }, cell(b.height)),
    h("td", {}, b.at === null ? "—" : `t = ${cell(b.at, 3)}`),
  ];
}

async function renderConnect(a: ConnectAnalysisJson): Promise<void> {
  ensureView(`connect:${a.id}`, () => {
    const plane = a.plane;
    const planeNode =
      plane === null
        ? h("p", { class: "muted" }, "No plane surface (plane.h5) is served beside this file.")
        : (() => {
            const open = h(
              "button",
              { type: "button", class: "link", id: "open-plane" },
              `open ${plane.name}`,
            );
            open.addEventListener("click", () => {
              state.analysis = null;
              state.active = plane.id;
              state.selected = null;
              state.mode = "single";
              void render();
            });
            return h(
              "p",
              {},
              "The loss surface of the plane through both models and the control point (the straight line is β = 0): ",
              open,
            );
          })();
    const rows = barrierRows(a).map((r) => [
      h("th", {}, r.quantity),
      ...barrierCell(r.curve, "curve", r.quantity),
      ...barrierCell(r.line, "line", r.quantity),
    ]);
    return [
      h("h2", { class: "surface-title" }, a.name, h("small", {}, connectDescription(a))),
      h(
        "div",
        { class: "row" },
        panel(
          "Loss along the curve (solid) and the straight line (dashed)",
          plotDiv("plot-connect-loss", "line"),
        ),
        panel("Accuracy along the curve and the straight line", plotDiv("plot-connect-acc", "line")),
      ),
      h(
        "div",
        { class: "row" },
        panel(
          "Barrier heights: max over t of value(t) − ((1 − t) value(0) + t value(1))",
          table([" ", `${a.kind} curve`, "at", "straight line", "at"], rows, { id: "barriers" }),
        ),
        panel("Plane of the curve", planeNode),
      ),
      h(
        "div",
        { class: "row" },
        ...(a.trainingLosses !== null && a.trainingLosses.length > 0
          ? [panel("Training of the control point", plotDiv("plot-connect-training", "small"))]
          : []),
        settingsPanel({ bn: a.bn, curve: a.kind, ...a.settings }),
      ),
    ];
  });
  const jobs = [
    draw(byId("plot-connect-loss"), connectFigure(a, "loss")),
    draw(byId("plot-connect-acc"), connectFigure(a, "accuracy")),
  ];
  if (a.trainingLosses !== null && a.trainingLosses.length > 0)
    jobs.push(draw(byId("plot-connect-training"), trainingFigure(a.trainingLosses)));
  await Promise.all(jobs);
}

async function renderSpectrum(a: SpectrumAnalysisJson): Promise<void> {
  ensureView(`spectrum:${a.id}`, () => [
    h("h2", { class: "surface-title" }, a.name),
    h("p", { class: "analysis-about", id: "spectrum-about" }, spectrumDescription(a)),
    h(
      "div",
      { class: "row" },
      panel("Hessian spectral density (stochastic Lanczos quadrature)", plotDiv("plot-spectrum", "line")),
    ),
    h(
      "div",
      { class: "row" },
      ...(a.moments !== null
        ? [
            panel(
              "Moments mean over probes of Σ w tᵏ (estimates of tr(Hᵏ) / n)",
              table(
                ["k", "moment"],
                a.moments.map((m, k) => [String(k), cell(m)]),
              ),
            ),
          ]
        : []),
      settingsPanel({ probes: a.probes, steps: a.steps, sigma: a.sigma, ...a.settings }),
    ),
  ]);
  await draw(byId("plot-spectrum"), spectrumDensityFigure(a));
}

function renderSharpness(a: SharpnessAnalysisJson): void {
  ensureView(`sharpness:${a.id}`, () => [
    h("h2", { class: "surface-title" }, a.name),
    h("p", { class: "analysis-about", id: "sharpness-about" }, sharpnessDescription(a)),
    panel(
      "Sharpness at each model",
      table(
        sharpnessHeader(a),
        a.rows.map((r) => sharpnessCells(r)),
        { id: "sharpness-table" },
      ),
    ),
    h(
      "p",
      { class: "muted" },
      "ε-sharpness (Keskar et al. 2017): 100 (max L(x+y) − L(x)) / (1 + L(x)) over |yᵢ| ≤ ε (|xᵢ| + 1). " +
        "Worst case (Andriushchenko et al. 2023): max L(w+d) − L(w) over ‖d / |w|‖ ≤ ρ, by projected ascent (a lower bound). " +
        "Average case (Kwon et al. 2021): E L(w+d) − L(w), d ~ N(0, ρ² diag(w²)), ± one standard error. " +
        "λmax and the trace are of the Hessian w.r.t. the filter weights.",
    ),
  ]);
}

// ---------- the Surface tab ----------

async function renderSingle(token: number): Promise<void> {
  if (state.analysis !== null) {
    await renderAnalysis(token);
    return;
  }
  const entry = state.list?.surfaces.find((s) => s.id === state.active);
  if (entry === undefined) {
    ensureView("empty", () => [
      h(
        "p",
        { class: "empty" },
        okEntries().length === 0 ? "No surface to show." : "Pick a surface in the list.",
      ),
    ]);
    return;
  }
  if (entry.status === "error") {
    showMessage(null);
    ensureView(`error:${entry.id}`, () => [
      panel(entry.name, h("p", { class: "error-panel" }, `This file cannot be shown: ${entry.error}`)),
    ]);
    return;
  }
  let s: SurfaceJson;
  try {
    s = await load(entry.id);
  } catch (e) {
    const reason = (e as Error).message;
    // Forget the failure (the file may come back) and show the folder as it is now.
    surfaces.delete(entry.id);
    void refreshList();
    showMessage(null);
    ensureView(`error:${entry.id}:${reason}`, () => [
      panel(entry.name, h("p", { class: "error-panel" }, `This file cannot be shown: ${reason}`)),
    ]);
    return;
  }
  if (token !== renderToken) return;
  showMessage(null);
  updateQuantities([s]);
  if (s.y === null) await renderCurve(s);
  else await renderPlane(s);
}

function selectPoint(s: SurfaceJson, x: number, y: number): void {
  if (s.y === null) return;
  state.selected = { i: nearestIndex(s.x, x), j: nearestIndex(s.y, y) };
  void render();
}

function clickHandler(s: SurfaceJson) {
  return (e: PlotlyEvent) => {
    const p = e.points?.[0];
    if (p === undefined) return;
    const ij = p.customdata;
    if (Array.isArray(ij) && ij.length === 2 && typeof ij[0] === "number" && typeof ij[1] === "number") {
      state.selected = { i: ij[0], j: ij[1] as number };
      void render();
    } else if (typeof p.x === "number" && typeof p.y === "number") selectPoint(s, p.x, p.y);
  };
}

async function renderPlane(s: SurfaceJson): Promise<void> {
  const y = s.y!;
  const hasHessian = viewQuantities(s).includes("hessian_ratio");
  ensureView(`plane:${s.id}:${hasHessian}`, () => [
    h("h2", { class: "surface-title" }, s.name, h("small", {}, describeSurface(s))),
    h(
      "div",
      { class: "row" },
      panel("3D surface (drag to rotate)", plotDiv("plot-3d")),
      panel("Contour map (click a point)", plotDiv("plot-contour")),
    ),
    h(
      "div",
      { class: "row three" },
      panel("Selected point", h("div", { id: "details" })),
      panel("Slice along α", plotDiv("plot-slice-x", "small")),
      panel("Slice along β", plotDiv("plot-slice-y", "small")),
    ),
    h(
      "div",
      { class: "row" },
      ...(hasHessian
        ? [panel("Hessian ratio |λmin / λmax| (0 = locally convex)", plotDiv("plot-hessian"))]
        : []),
      fileInfo(s),
    ),
  ]);
  setPlaneControls(true);
  const q = state.quantity;
  const raw = rawField(s, q)!;
  const zmax = clipValue([raw]);
  setClipLabel(zmax);
  const view = planeView(s, q, zmax)!;
  const [cmin, cmax] = colorRange(q, [view.z]);
  const colors: ColorOptions = { cmin, cmax, colormap: state.colormap, showScale: true };
  const sel = state.selected;
  if (sel === null || sel.i >= s.x.length || sel.j >= y.length) {
    state.selected = { i: nearestIndex(s.x, 0), j: nearestIndex(y, 0) };
  }
  const selected = state.selected!;
  const onClick = { plotly_click: clickHandler(s) };
  const jobs: Promise<unknown>[] = [
    draw(
      byId("plot-3d"),
      surface3dFigure(
        view,
        { ...colors, showScale: false },
        { zrange: zRange([view.z], [cmin, cmax]), selected, uirevision: s.id },
      ),
      onClick,
    ),
    draw(
      byId("plot-contour"),
      contourFigure(view, colors, {
        levels: state.levels,
        image: shadeImage(s.id, view, colors),
        selected,
        uirevision: s.id,
      }),
      onClick,
    ),
  ];
  // Slices through the selected point: the quantity and its train/test sibling.
  const family: ViewQuantity[] =
    q === "train_loss" || q === "test_loss"
      ? ["train_loss", "test_loss"]
      : q === "train_acc" || q === "test_acc"
        ? ["train_acc", "test_acc"]
        : [q];
  const ny = y.length;
  const series = (along: "x" | "y"): SliceSeries[] =>
    family.flatMap((f) => {
      const r = rawField(s, f);
      if (r === null) return [];
      const pick = (k: number) => (Number.isFinite(r[k]!) ? r[k]! : null);
      const values =
        along === "x"
          ? s.x.map((_, i) => pick(i * ny + selected.j))
          : y.map((_, j) => pick(selected.i * ny + j));
      return [{ name: family.length > 1 ? f.slice(0, f.indexOf("_")) : QUANTITY_LABELS[f], values }];
    });
  const lossLike = q.endsWith("_loss");
  const sliceTitle = lossLike ? "loss" : q.endsWith("_acc") ? "accuracy (%)" : QUANTITY_LABELS[q];
  jobs.push(
    draw(
      byId("plot-slice-x"),
      sliceFigure({
        coords: s.x,
        series: series("x"),
        at: selected.i,
        yTitle: sliceTitle,
        title: `α (β = ${formatValue(y[selected.j])})`,
        log: state.log && lossLike,
        ymax: zmax,
      }),
    ),
    draw(
      byId("plot-slice-y"),
      sliceFigure({
        coords: y,
        series: series("y"),
        at: selected.j,
        yTitle: sliceTitle,
        title: `β (α = ${formatValue(s.x[selected.i])})`,
        log: state.log && lossLike,
        ymax: zmax,
      }),
    ),
  );
  if (hasHessian) {
    const hv = planeView(s, "hessian_ratio", null)!;
    hv.log = false;
    hv.z = hv.raw;
    const hc: ColorOptions = {
      cmin: HESSIAN_RATIO_RANGE[0],
      cmax: HESSIAN_RATIO_RANGE[1],
      colormap: state.colormap,
      showScale: true,
    };
    jobs.push(
      draw(
        byId("plot-hessian"),
        contourFigure(hv, hc, {
          levels: 10,
          image: shadeImage(`${s.id}:hessian`, hv, hc),
          selected,
          uirevision: `${s.id}:hessian`,
        }),
        onClick,
      ),
    );
  }
  renderDetails(s, selected);
  await Promise.all(jobs);
}

/** The file's metadata: direction file, seeds, normalization, the command that made it. */
function fileInfo(s: SurfaceJson): HTMLElement {
  const rows: [string, string][] = [
    ["file", s.name],
    ["direction file", s.dirFile || "—"],
    ...Object.entries(s.meta).sort(([a], [b]) => a.localeCompare(b)),
  ];
  if (s.trajectory)
    rows.push(["trajectory", `${s.trajectory.x.length} checkpoints from ${s.trajectory.source}`]);
  return panel(
    "File",
    h(
      "table",
      { class: "details meta" },
      h("tbody", {}, ...rows.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v)))),
    ),
  );
}

function valueCell(q: string, v: number | null | undefined, status: number): HTMLTableCellElement {
  if (v === null || v === undefined || !Number.isFinite(v)) {
    const why =
      status === POINT.NOT_COMPUTED
        ? "not computed"
        : status === POINT.CAPPED
          ? "capped"
          : "diverged (NaN/Inf)";
    return h("td", { class: "missing", "data-quantity": q, "data-status": POINT_NAMES[status] ?? "" }, why);
  }
  const text =
    status === POINT.CAPPED
      ? `≥ ${formatValue(v)} (capped)`
      : status === POINT.INTERPOLATED
        ? `${formatValue(v)} (interpolated)`
        : formatValue(v);
  return h(
    "td",
    { "data-quantity": q, "data-value": String(v), "data-status": POINT_NAMES[status] ?? "" },
    text,
  );
}

function renderDetails(s: SurfaceJson, p: GridPoint): void {
  const ny = s.y?.length ?? 1;
  const k = p.i * ny + p.j;
  const status = s.done[k] ?? POINT.NOT_COMPUTED;
  const rows: HTMLTableRowElement[] = [
    h(
      "tr",
      {},
      h("th", {}, "α"),
      h("td", { "data-quantity": "x", "data-value": String(s.x[p.i]) }, formatValue(s.x[p.i])),
    ),
  ];
  if (s.y !== null) {
    rows.push(
      h(
        "tr",
        {},
        h("th", {}, "β"),
        h("td", { "data-quantity": "y", "data-value": String(s.y[p.j]) }, formatValue(s.y[p.j])),
      ),
    );
  }
  rows.push(
    h("tr", {}, h("th", {}, "grid point"), h("td", {}, s.y === null ? `${p.i}` : `(${p.i}, ${p.j})`)),
    h(
      "tr",
      {},
      h("th", {}, "status"),
      h("td", { "data-status": POINT_NAMES[status] ?? "" }, POINT_NAMES[status] ?? String(status)),
    ),
  );
  for (const q of viewQuantities(s)) {
    const r = rawField(s, q);
    rows.push(h("tr", {}, h("th", {}, QUANTITY_LABELS[q]), valueCell(q, r?.[k], status)));
  }
  byId("details").replaceChildren(h("table", { class: "details" }, h("tbody", {}, ...rows)));
}

async function renderCurve(s: SurfaceJson): Promise<void> {
  ensureView(`curve:${s.id}`, () => [
    h("h2", { class: "surface-title" }, s.name, h("small", {}, describeSurface(s))),
    h(
      "div",
      { class: "row curve" },
      panel("Selected point", h("div", { id: "details" })),
      panel(
        s.meta["kind"] === "interpolation"
          ? "Interpolation between two models (click a point)"
          : "1D surface (click a point)",
        plotDiv("plot-line", "line"),
      ),
    ),
    h("div", { class: "row" }, fileInfo(s)),
  ]);
  setPlaneControls(false);
  const losses = (["train_loss", "test_loss"] as const).flatMap((q) => rawField(s, q) ?? []);
  const zmax = clipValue(losses);
  setClipLabel(zmax);
  if (state.selected1d === null || state.selected1d >= s.x.length) state.selected1d = nearestIndex(s.x, 0);
  const selected = state.selected1d;
  renderDetails(s, { i: selected, j: 0 });
  await draw(
    byId("plot-line"),
    curvesFigure([curveSet(s)], {
      log: state.log,
      ymax: zmax,
      selected,
      interpolation: s.meta["kind"] === "interpolation",
    }),
    {
      plotly_click: (e) => {
        const p = e.points?.[0];
        const ij = p?.customdata;
        if (Array.isArray(ij) && typeof ij[1] === "number") {
          state.selected1d = ij[1];
          void render();
        }
      },
    },
  );
}

function curveSet(s: SurfaceJson): CurveSet {
  const { train_loss, test_loss, train_acc, test_acc } = s.values;
  return {
    name: s.name,
    x: s.x,
    values: {
      ...(train_loss ? { train_loss } : {}),
      ...(test_loss ? { test_loss } : {}),
      ...(train_acc ? { train_acc } : {}),
      ...(test_acc ? { test_acc } : {}),
    },
  };
}

// ---------- the Compare tab ----------

let syncingCamera = false;

async function renderCompare(token: number): Promise<void> {
  const ids = state.ticked.filter((id) => okEntries().some((e) => e.id === id));
  if (ids.length < 2) {
    showMessage(null);
    ensureView("compare-empty", () => [
      h("p", { class: "empty" }, "Tick two or more surfaces in the list to compare them side by side."),
    ]);
    setClipLabel(null);
    return;
  }
  const results = await Promise.allSettled(ids.map(load));
  if (token !== renderToken) return;
  const shown: SurfaceJson[] = [];
  const failures: string[] = [];
  results.forEach((r, k) => {
    if (r.status === "fulfilled") shown.push(r.value);
    else failures.push(`Could not open ${ids[k]}: ${(r.reason as Error).message}`);
  });
  showMessage(failures.length > 0 ? failures.join("\n") : null);
  updateQuantities(shown);
  const planes = shown.filter((s) => s.y !== null);
  const curves = shown.filter((s) => s.y === null);
  const with3d = planes.length <= MAX_3D_IN_COMPARE;
  const columns = Math.min(planes.length, 4);
  ensureView(`compare:${shown.map((s) => s.id).join(",")}`, () => [
    ...(planes.length > 0
      ? [
          h(
            "div",
            { class: "compare-grid", style: `grid-template-columns: repeat(${columns}, minmax(0, 1fr))` },
            ...planes.map((s, n) =>
              h(
                "figure",
                { class: "panel", "data-id": s.id },
                h("h3", {}, s.name),
                h("p", { class: "muted" }, describeSurface(s)),
                ...(with3d ? [plotDiv(`compare-3d-${n}`)] : []),
                plotDiv(`compare-contour-${n}`),
              ),
            ),
          ),
          panel(
            "Values at the selected point (nearest grid point of each surface)",
            h("div", { id: "compare-details" }),
          ),
        ]
      : []),
    ...(curves.length > 0 ? [panel("1D surfaces", plotDiv("compare-curves", "line"))] : []),
  ]);
  const jobs: Promise<unknown>[] = [];
  const q = state.quantity;
  const raws = planes.map((s) => rawField(s, q));
  const lossRaws = curves.flatMap((s) =>
    (["train_loss", "test_loss"] as const).flatMap((k) => rawField(s, k) ?? []),
  );
  const zmax = clipValue(planes.length > 0 ? raws.filter((r) => r !== null) : lossRaws);
  setClipLabel(zmax);
  setPlaneControls(planes.length > 0);
  if (planes.length > 0) {
    const views = planes.map((s) => planeView(s, q, zmax));
    const displayed = views.flatMap((v) => (v === null ? [] : [v.z]));
    const [cmin, cmax] = colorRange(q, displayed);
    const zrange = zRange(displayed, [cmin, cmax]);
    // One set of levels for every plane, focused on all of them together, so equal lines mean equal values.
    const levels = focusedLevels(Float64Array.from(displayed.flatMap((z) => Array.from(z))), [], [], {
      count: state.levels,
      toward: q.endsWith("_acc") ? "max" : "min",
      lo: cmin,
      hi: cmax,
    });
    const at = state.compareAt ?? { x: 0, y: 0 };
    const onClick = (e: PlotlyEvent) => {
      const p = e.points?.[0];
      if (p && typeof p.x === "number" && typeof p.y === "number") {
        state.compareAt = { x: p.x, y: p.y };
        void render();
      }
    };
    views.forEach((v, n) => {
      const s = planes[n]!;
      const contourDiv = byId(`compare-contour-${n}`);
      if (v === null) {
        contourDiv.replaceChildren(h("p", { class: "empty" }, `no ${QUANTITY_LABELS[q]} in this file`));
        return;
      }
      const selected = { i: nearestIndex(v.x, at.x), j: nearestIndex(v.y, at.y) };
      const colors: ColorOptions = {
        cmin,
        cmax,
        colormap: state.colormap,
        showScale: n === views.length - 1,
      };
      if (with3d) {
        jobs.push(
          draw(
            byId(`compare-3d-${n}`),
            surface3dFigure(v, { ...colors, showScale: false }, { zrange, selected, uirevision: s.id }),
            {
              plotly_click: onClick,
              plotly_relayout: (e) => syncCamera(n, planes.length, e),
            },
          ),
        );
      }
      jobs.push(
        draw(
          contourDiv,
          contourFigure(v, colors, {
            levels,
            image: shadeImage(s.id, v, colors),
            selected,
            uirevision: s.id,
          }),
          { plotly_click: onClick },
        ),
      );
    });
    renderCompareDetails(planes, at);
  }
  if (curves.length > 0) {
    jobs.push(
      draw(
        byId("compare-curves"),
        curvesFigure(curves.map(curveSet), {
          log: state.log,
          ymax: planes.length > 0 ? null : zmax,
          selected: null,
          interpolation: curves.every((s) => s.meta["kind"] === "interpolation"),
        }),
      ),
    );
  }
  await Promise.all(jobs);
}

/** Turning one 3D plot of a comparison turns the others the same way. */
function syncCamera(from: number, count: number, e: PlotlyEvent): void {
  const camera = e["scene.camera"];
  if (syncingCamera || camera === undefined) return;
  syncingCamera = true;
  const updates: Promise<unknown>[] = [];
  for (let n = 0; n < count; n++) {
    const div = document.getElementById(`compare-3d-${n}`);
    if (n !== from && div !== null) updates.push(Plotly.relayout(div, { "scene.camera": camera }));
  }
  void Promise.allSettled(updates).then(() => {
    syncingCamera = false;
  });
}

function renderCompareDetails(planes: readonly SurfaceJson[], at: { x: number; y: number }): void {
  const quantities: ViewQuantity[] = [];
  for (const s of planes) for (const q of viewQuantities(s)) if (!quantities.includes(q)) quantities.push(q);
  quantities.sort((a, b) => order(a) - order(b));
  const points = planes.map((s) => {
    const i = nearestIndex(s.x, at.x);
    const j = nearestIndex(s.y!, at.y);
    return { s, i, j, k: i * s.y!.length + j };
  });
  const head = h("tr", {}, h("th", {}, ""), ...points.map((p) => h("th", {}, p.s.name)));
  const rows = [
    h("tr", {}, h("th", {}, "α"), ...points.map((p) => h("td", {}, formatValue(p.s.x[p.i])))),
    h("tr", {}, h("th", {}, "β"), ...points.map((p) => h("td", {}, formatValue(p.s.y![p.j])))),
    ...quantities.map((q) =>
      h(
        "tr",
        {},
        h("th", {}, QUANTITY_LABELS[q]),
        ...points.map((p) => valueCell(q, rawField(p.s, q)?.[p.k], p.s.done[p.k] ?? POINT.NOT_COMPUTED)),
      ),
    ),
  ];
  byId("compare-details").replaceChildren(
    h("table", { class: "details" }, h("thead", {}, head), h("tbody", {}, ...rows)),
  );
}

// ---------- render loop, controls, start ----------

let renderToken = 0;

async function render(): Promise<void> {
  const token = ++renderToken;
  document.body.dataset["status"] = "loading";
  try {
    syncControls();
    renderList();
    if (state.mode === "single") await renderSingle(token);
    else await renderCompare(token);
    writeHash();
    if (token === renderToken) {
      document.body.dataset["status"] = "ready";
      document.body.dataset["renders"] = String(Number(document.body.dataset["renders"] ?? 0) + 1);
    }
  } catch (e) {
    showMessage(`The viewer failed to draw: ${(e as Error).message}`);
    if (token === renderToken) document.body.dataset["status"] = "error";
  }
}

/** Controls show the state (it may come from the URL hash). */
function syncControls(): void {
  byId<HTMLInputElement>("log-z").checked = state.log;
  byId<HTMLSelectElement>("colormap").value = state.colormap;
  byId<HTMLInputElement>("levels").value = String(state.levels);
}

/** The page's state in the URL hash, so a view can be bookmarked or shared. */
function writeHash(): void {
  const p = new URLSearchParams();
  if (state.mode === "compare") p.set("compare", state.ticked.join(","));
  else if (state.analysis !== null) p.set("analysis", state.analysis);
  else if (state.active !== null) p.set("surface", state.active);
  p.set("q", state.quantity);
  if (state.log) p.set("log", "1");
  if (state.colormap !== "viridis") p.set("cmap", state.colormap);
  const hash = `#${p.toString()}`;
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

function readHash(): void {
  const p = new URLSearchParams(location.hash.slice(1));
  const ids = new Set(okEntries().map((e) => e.id));
  const compare = (p.get("compare") ?? "").split(",").filter((id) => ids.has(id));
  const surface = p.get("surface");
  if (compare.length > 0) {
    state.ticked = compare;
    state.mode = "compare";
  }
  if (surface !== null && ids.has(surface)) {
    state.active = surface;
    state.analysis = null;
  }
  const analysis = p.get("analysis");
  if (analysis !== null && (state.list?.analyses ?? []).some((a) => a.id === analysis))
    state.analysis = analysis;
  const q = p.get("q");
  if (q !== null && q in QUANTITY_LABELS) state.quantity = q as ViewQuantity;
  state.log = p.get("log") === "1";
  const cmap = p.get("cmap");
  if (cmap !== null && isColormap(cmap)) state.colormap = cmap;
}

function wireControls(): void {
  const quantity = byId<HTMLSelectElement>("quantity");
  quantity.addEventListener("change", () => {
    state.quantity = quantity.value as ViewQuantity;
    state.clip = CLIP_OFF;
    void render();
  });
  const log = byId<HTMLInputElement>("log-z");
  log.checked = state.log;
  log.addEventListener("change", () => {
    state.log = log.checked;
    state.clip = CLIP_OFF;
    void render();
  });
  const clip = byId<HTMLInputElement>("clip");
  let pending = false;
  clip.addEventListener("input", () => {
    state.clip = Number(clip.value);
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      void render();
    });
  });
  const cmap = byId<HTMLSelectElement>("colormap");
  cmap.replaceChildren(...COLORMAPS.map((c) => new Option(c, c)));
  cmap.value = state.colormap;
  cmap.addEventListener("change", () => {
    if (isColormap(cmap.value)) state.colormap = cmap.value;
    void render();
  });
  const levels = byId<HTMLInputElement>("levels");
  levels.addEventListener("change", () => {
    const n = Math.round(Number(levels.value));
    state.levels = Number.isFinite(n) ? Math.min(60, Math.max(3, n)) : 12;
    levels.value = String(state.levels);
    void render();
  });
  const rescan = byId<HTMLButtonElement>("rescan");
  rescan.hidden = source.title !== null; // a report's data is fixed
  rescan.addEventListener("click", () => {
    surfaces.clear();
    analyses.clear();
    void refreshList().then(() => render());
  });
  byId("tab-single").addEventListener("click", () => {
    state.mode = "single";
    void render();
  });
  byId("tab-compare").addEventListener("click", () => {
    state.mode = "compare";
    void render();
  });
}

/** Lists the files again (new surfaces, files gone or damaged); keeps the state that still applies. */
async function refreshList(): Promise<void> {
  try {
    state.list = await source.list();
  } catch (e) {
    showMessage(`Could not list the surfaces: ${(e as Error).message}`);
    return;
  }
  const ids = new Set(okEntries().map((e) => e.id));
  state.ticked = state.ticked.filter((id) => ids.has(id));
  renderList();
}

async function start(): Promise<void> {
  if (source.title !== null) {
    byId("page-title").textContent = source.title;
    document.title = `${source.title} · losscape`;
  }
  wireControls();
  try {
    state.list = await source.list();
  } catch (e) {
    showMessage(`Could not list the surfaces: ${(e as Error).message}`);
    byId("surface-list").replaceChildren(h("li", { class: "muted" }, "unavailable"));
    document.body.dataset["status"] = "error";
    return;
  }
  const ok = okEntries();
  state.active = mainSurface(ok);
  // The main loss surface opens first; with no surface at all, the first readable analysis.
  if (state.active === null) state.analysis = state.list.analyses?.find((a) => a.status === "ok")?.id ?? null;
  readHash();
  await render();
}

void start();
