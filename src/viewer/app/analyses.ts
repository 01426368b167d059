// The analyses' panels as plain data: Plotly figures of mode connectivity
// (loss and accuracy against t along the curve and the straight line) and of
// the Hessian's spectral density (log-density against eigenvalue, with the
// quadrature nodes), and the rows and settings of the sharpness table and the
// barrier table. No DOM here: the page renders these (main.ts).

import type {
  BarrierJson,
  ConnectAnalysisJson,
  PathJson,
  SharpnessAnalysisJson,
  SharpnessRowJson,
  SpectrumAnalysisJson,
} from "../api.ts";
import type { Figure, PlotObject } from "./figures.ts";

const FONT = { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12, color: "#222" };
const TRAIN = "#1f5fa8";
const TEST = "#e07b00";

/**
 * A number for a table cell: 4 significant digits, "NaN" for a value that was not finite (null in JSON).
 *
 * @example
 * cell(0.0123456); // "0.01235"
 * cell(null); // "NaN"
 */
export function cell(v: number | null | undefined, digits = 4): string {
  if (v === null || v === undefined) return "NaN";
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e-3 && a < 1e6) return String(Number(v.toPrecision(digits)));
  return v.toExponential(digits - 1);
}

function layout(xTitle: string, yTitle: string, extra: PlotObject = {}): PlotObject {
  return {
    font: FONT,
    margin: { l: 64, r: 16, t: 24, b: 48 },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "#fff",
    hovermode: "closest",
    legend: { orientation: "h", x: 0, y: -0.25 },
    xaxis: { title: { text: xTitle }, zeroline: false, gridcolor: "#eee" },
    yaxis: { title: { text: yTitle }, gridcolor: "#eee", automargin: true },
    ...extra,
  };
}

/**
 * Loss (or accuracy, %) against t along the trained curve (solid) and the
 * straight line (dashed), train in blue and test in orange where the file has
 * them. Trace names are "<curve> curve, train", "straight line, train", ...
 *
 * @example
 * Plotly.react(div, ...Object.values(connectFigure(a, "loss")));
 */
export function connectFigure(a: ConnectAnalysisJson, quantity: "loss" | "accuracy"): Figure {
  const data: PlotObject[] = [];
  const key = (split: "train" | "test") =>
    `${split}_${quantity === "loss" ? "loss" : "acc"}` as keyof PathJson;
  for (const split of ["train", "test"] as const) {
    for (const [path, label, dash] of [
      [a.curve, `${a.kind} curve`, "solid"],
      [a.line, "straight line", "dash"],
    ] as const) {
      const y = path[key(split)];
      if (y === undefined) continue;
      data.push({
        type: "scatter",
        mode: a.t.length <= 60 ? "lines+markers" : "lines",
        name: `${label}, ${split}`,
        x: a.t,
        y,
        line: { color: split === "train" ? TRAIN : TEST, dash, width: 2 },
        marker: { size: 4, color: split === "train" ? TRAIN : TEST },
        hovertemplate: `t %{x:.3g}<br>${split} ${quantity} %{y:.5g}<extra>${label}</extra>`,
      });
    }
  }
  return {
    data,
    layout: layout("t (0: first model, 1: second model)", quantity === "loss" ? "loss" : "accuracy (%)"),
  };
}

/** One row of the barrier table: the quantity, the curve's and the line's height and where. */
export interface BarrierRow {
  quantity: string;
  curve: BarrierJson | null;
  line: BarrierJson | null;
}

const BARRIER_ORDER = ["train_loss", "test_loss", "train_error", "test_error"];
const BARRIER_LABELS: Record<string, string> = {
  train_loss: "train loss",
  test_loss: "test loss",
  train_error: "train error (%)",
  test_error: "test error (%)",
};

/**
 * The barrier heights of both paths, one row per quantity (train loss first,
 * then test loss, train and test error in points of %).
 *
 * @example
 * barrierRows(a); // [{ quantity: "train loss", curve: { height: 0.01, at: 0.4 }, line: { height: 1.9, at: 0.5 } }, ...]
 */
export function barrierRows(a: ConnectAnalysisJson): BarrierRow[] {
  const keys = [...new Set([...Object.keys(a.barriers.curve), ...Object.keys(a.barriers.line)])];
  keys.sort((x, y) => {
    const i = BARRIER_ORDER.indexOf(x);
    const j = BARRIER_ORDER.indexOf(y);
    return (i < 0 ? 99 : i) - (j < 0 ? 99 : j) || x.localeCompare(y);
  });
  return keys.map((k) => ({
    quantity: BARRIER_LABELS[k] ?? k,
    curve: a.barriers.curve[k] ?? null,
    line: a.barriers.line[k] ?? null,
  }));
}

/**
 * What a connectivity run was: the curve, points, batch norm, and the training settings the file states.
 *
 * @example
 * connectDescription(a); // "bezier curve · 21 points of t per path · batch norm recompute · model cnn · 1000 steps · lr 0.05 ..."
 */
export function connectDescription(a: ConnectAnalysisJson): string {
  const s = a.settings;
  const parts = [`${a.kind} curve`, `${a.t.length} points of t per path`, `batch norm ${a.bn}`];
  if (s["model"]) parts.push(`model ${s["model"]}`);
  if (s["steps"]) parts.push(`${s["steps"]} training steps`);
  if (s["lr"]) parts.push(`lr ${s["lr"]}`);
  if (s["batch_size"]) parts.push(`batch ${s["batch_size"]}`);
  if (s["seed"] !== undefined) parts.push(`seed ${s["seed"]}`);
  return parts.join(" · ");
}

/**
 * The training loss of the curve's control point per step (the loss at a random t of each step).
 *
 * @example
 * const fig = trainingFigure(a.trainingLosses!);
 */
export function trainingFigure(losses: readonly (number | null)[]): Figure {
  return {
    data: [
      {
        type: "scatter",
        mode: "lines",
        name: "training loss",
        x: losses.map((_, i) => i + 1),
        y: losses,
        line: { color: "#555", width: 1 },
        hovertemplate: "step %{x}<br>loss %{y:.5g}<extra></extra>",
      },
    ],
    layout: layout("step (one t ~ U(0, 1) and one batch each)", "loss at the sampled t", {
      showlegend: false,
    }),
  };
}

/**
 * The log-density against eigenvalue (Ghorbani et al. 2019): the broadened
 * density on a log axis from 1e-8 of its peak (lower values are drawn on that
 * floor), and the quadrature nodes of every probe as marks along the bottom,
 * their weights in the hover text.
 *
 * @example
 * const fig = spectrumDensityFigure(a); // fig.layout.yaxis.type === "log"
 */
export function spectrumDensityFigure(a: SpectrumAnalysisJson, floor = 1e-8): Figure {
  let peak = 0;
  for (const d of a.density) if (d !== null && d > peak) peak = d;
  const low = peak > 0 ? 10 ** Math.floor(Math.log10(peak * floor)) : floor;
  const high = peak > 0 ? 10 ** Math.ceil(Math.log10(peak)) : 1;
  const density = a.density.map((d) => (d === null ? null : Math.max(d, low)));
  const nodes = a.nodes.flat();
  const weights = a.weights.flat();
  const probe = a.nodes.flatMap((t, p) => t.map(() => p + 1));
  return {
    data: [
      {
        type: "scatter",
        mode: "lines",
        name: `SLQ density (σ ${cell(a.sigma, 3)})`,
        x: a.grid,
        y: density,
        line: { color: TRAIN, width: 2 },
        hovertemplate: "λ %{x:.4g}<br>density %{y:.3g}<extra></extra>",
      },
      {
        type: "scatter",
        mode: "markers",
        name: "quadrature nodes",
        x: nodes,
        y: nodes.map(() => low),
        customdata: nodes.map((_, k) => [probe[k], weights[k]]),
        marker: { symbol: "line-ns-open", size: 10, color: "#c62828" },
        hovertemplate: "node %{x:.5g}<br>probe %{customdata[0]}, weight %{customdata[1]:.3g}<extra></extra>",
      },
    ],
    layout: layout("eigenvalue", "density (log scale)", {
      yaxis: {
        title: { text: "density (log scale)" },
        type: "log",
        range: [Math.log10(low), Math.log10(high > low ? high : low * 10)],
        gridcolor: "#eee",
        exponentformat: "power",
        automargin: true,
      },
    }),
  };
}

/**
 * The settings of a spectrum, stated: probes x steps, products, broadening, trace.
 *
 * @example
 * spectrumDescription(a); // "4 rademacher probes × 40 Lanczos steps = 160 Hessian-vector products · σ 0.0123 · ..."
 */
export function spectrumDescription(a: SpectrumAnalysisJson): string {
  const s = a.settings;
  const dist = s["distribution"] ? `${s["distribution"]} ` : "";
  const products = s["products"] ?? String(a.probes * a.steps);
  const parts = [
    `${a.probes} ${dist}probe${a.probes === 1 ? "" : "s"} × ${a.steps} Lanczos steps = ${products} Hessian-vector products`,
    `density broadened with σ ${cell(a.sigma, 3)}`,
  ];
  const all = a.nodes.flat();
  parts.push(`nodes ${cell(Math.min(...all))} .. ${cell(Math.max(...all))}`);
  if (a.trace)
    parts.push(
      `trace ${cell(a.trace.trace)} ± ${cell(a.trace.stderr, 2)} (Hutchinson, ${a.trace.samples} probes)`,
    );
  if (s["model"]) parts.push(`model ${s["model"]}`);
  if (s["data"]) parts.push(`${s["data"]}${s["samples"] ? ` (${s["samples"]} samples)` : ""}`);
  if (s["seed"] !== undefined) parts.push(`seed ${s["seed"]}`);
  return parts.join(" · ");
}

/**
 * The sharpness table's column titles, with the radii of the measures.
 *
 * @example
 * sharpnessHeader(a)[5]; // "worst case ℓ2 (ρ 0.5)"
 */
export function sharpnessHeader(a: SharpnessAnalysisJson): string[] {
  const s = a.settings;
  return [
    "model",
    "loss",
    "acc %",
    `ε-sharpness % (ε ${s["epsilon"]})`,
    `average case (ρ ${s["rhoAverage"]})`,
    `worst case ℓ2 (ρ ${s["rhoL2"]})`,
    `worst case ℓ∞ (ρ ${s["rhoLinf"]})`,
    "λmax",
    "trace",
  ];
}

/**
 * One model's cells in the order of `sharpnessHeader`; standard errors after ±.
 *
 * @example
 * sharpnessCells(a.rows[0]!); // ["bs128", "0.3121", "90.2", "1.234", "0.0132 ± 0.0011", ...]
 */
export function sharpnessCells(r: SharpnessRowJson): string[] {
  return [
    r.label,
    cell(r.loss),
    r.accuracy === null ? "NaN" : (100 * r.accuracy).toFixed(2),
    cell(r.epsilon.sharpness),
    `${cell(r.average.sharpness)} ± ${cell(r.average.stderr, 2)}`,
    cell(r.worstL2.sharpness),
    cell(r.worstLinf.sharpness),
    `${cell(r.lambdaMax)}${r.lambdaConverged ? "" : " (not converged)"}`,
    r.trace ? `${cell(r.trace.trace)} ± ${cell(r.trace.stderr, 2)}` : "—",
  ];
}

/**
 * How the table was measured: what is perturbed, the radii, the ascent steps, the draws, Lanczos and the trace.
 *
 * @example
 * sharpnessDescription(a); // "perturbs filters (12 values) · ε 0.001, ρ avg 0.05, ρ ℓ2 0.5, ρ ℓ∞ 0.001 · 20 ascent steps · ..."
 */
export function sharpnessDescription(a: SharpnessAnalysisJson): string {
  const s = a.settings;
  const parts = [
    `perturbs ${s["perturb"]}${s["perturbed"] !== undefined ? ` (${s["perturbed"]} values)` : ""}`,
    `radii ε ${s["epsilon"]}, ρ average ${s["rhoAverage"]}, ρ ℓ2 ${s["rhoL2"]}, ρ ℓ∞ ${s["rhoLinf"]}`,
    `${s["steps"]} ascent steps (ε-sharpness, worst case)`,
    `${s["samples"]} Gaussian draws at ±d (average case)`,
    `λmax: Lanczos, at most ${s["lanczosIterations"]} products, tolerance ${s["lanczosTol"]}`,
    `trace: ${s["traceMethod"]}, ${s["traceSamples"]} products`,
    `${s["data"]}${s["samplesInData"] !== undefined ? ` (${s["samplesInData"]} samples)` : ""}, eval mode`,
    `seed ${s["seed"]}`,
  ];
  if (a.model) parts.unshift(`model ${a.model}`);
  return parts.join(" · ");
}
