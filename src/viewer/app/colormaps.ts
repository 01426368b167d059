// Colour maps of the viewer, as evenly spaced stops (matplotlib's maps sampled
// at 10 points): one table feeds both Plotly's `colorscale` and the pixels of
// the contour map's shading, so the two always agree.

/** The colour maps the page offers. */
export type ColormapName =
  | "viridis"
  | "magma"
  | "inferno"
  | "plasma"
  | "cividis"
  | "coolwarm"
  | "jet"
  | "greys";

const STOPS: Record<ColormapName, readonly string[]> = {
  viridis: [
    "#440154",
    "#482878",
    "#3e4989",
    "#31688e",
    "#26828e",
    "#1f9e89",
    "#35b779",
    "#6ece58",
    "#b5de2b",
    "#fde725",
  ],
  magma: [
    "#000004",
    "#180f3d",
    "#440f76",
    "#721f81",
    "#9e2f7f",
    "#cd4071",
    "#f1605d",
    "#fd9668",
    "#feca8d",
    "#fcfdbf",
  ],
  inferno: [
    "#000004",
    "#1b0c41",
    "#4a0c6b",
    "#781c6d",
    "#a52c60",
    "#cf4446",
    "#ed6925",
    "#fb9b06",
    "#f7d13d",
    "#fcffa4",
  ],
  plasma: [
    "#0d0887",
    "#46039f",
    "#7201a8",
    "#9c179e",
    "#bd3786",
    "#d8576b",
    "#ed7953",
    "#fb9f3a",
    "#fdca26",
    "#f0f921",
  ],
  cividis: [
    "#00224e",
    "#123570",
    "#3b496c",
    "#575d6d",
    "#707173",
    "#8a8779",
    "#a69d75",
    "#c4b56c",
    "#e4cf5b",
    "#fee838",
  ],
  coolwarm: ["#3b4cc0", "#6788ee", "#9abbff", "#c9d7f0", "#edd1c2", "#f7a889", "#e26952", "#b40426"],
  jet: ["#00007f", "#0000ff", "#007fff", "#00ffff", "#7fff7f", "#ffff00", "#ff7f00", "#ff0000", "#7f0000"],
  greys: ["#000000", "#ffffff"],
};

/**
 * Every colour map name, in the order the page lists them.
 *
 * @example
 * for (const name of COLORMAPS) select.add(new Option(name));
 */
export const COLORMAPS = Object.keys(STOPS) as ColormapName[];

/**
 * Whether `name` is a colour map the viewer knows.
 *
 * @example
 * const map = isColormap(input) ? input : "viridis";
 */
export function isColormap(name: string): name is ColormapName {
  return Object.hasOwn(STOPS, name);
}

/**
 * A colour map as Plotly's `colorscale`: [[0, "#440154"], ..., [1, "#fde725"]].
 *
 * @example
 * const trace = { type: "surface", colorscale: plotlyColorscale("viridis") };
 */
export function plotlyColorscale(name: ColormapName): [number, string][] {
  const stops = STOPS[name];
  return stops.map((c, k) => [k / (stops.length - 1), c]);
}

function rgb(hex: string): [number, number, number] {
  const n = Number.parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/**
 * A colour map as a lookup table of `size` RGB triples (flat, 3*size bytes),
 * linear between stops as Plotly interpolates them.
 *
 * @example
 * const lut = colormapTable("viridis", 256); // lut[0..2] = 68, 1, 84
 */
export function colormapTable(name: ColormapName, size = 256): Uint8Array {
  const stops = STOPS[name].map(rgb);
  const out = new Uint8Array(size * 3);
  for (let k = 0; k < size; k++) {
    const t = (k / (size - 1)) * (stops.length - 1);
    const lo = Math.min(Math.floor(t), stops.length - 2);
    const f = t - lo;
    const a = stops[lo]!;
    const b = stops[lo + 1]!;
    for (let c = 0; c < 3; c++) out[k * 3 + c] = Math.round(a[c]! + (b[c]! - a[c]!) * f);
  }
  return out;
}
