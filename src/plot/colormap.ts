// Color maps for figures: perceptually uniform viridis and magma (matplotlib's
// data by Smith & van der Walt, CC0), Moreland's diverging coolwarm (computed
// in his Msh space), ColorBrewer RdBu, matplotlib's summer and greys, each
// also reversed with an `_r` suffix. "paper" picks what the reference code's
// figures use for each figure kind (see `resolveColormap`).

/** An sRGB color, channels 0..255. */
export type RGB = [number, number, number];

/** The color maps by name (add `_r` to reverse one). */
export const COLORMAPS = ["viridis", "magma", "coolwarm", "rdbu", "summer", "greys"] as const;

/** A color map's base name. */
export type ColormapBase = (typeof COLORMAPS)[number];

/**
 * A color map choice: a base name, a reversed one (`viridis_r`), or "paper",
 * the reference code's choice for the figure kind.
 *
 * @example
 * const c: ColormapName = "magma_r";
 */
export type ColormapName = "paper" | ColormapBase | `${ColormapBase}_r`;

/** Every accepted color map name, for messages and parsers. */
export const COLORMAP_NAMES: readonly ColormapName[] = [
  "paper",
  ...COLORMAPS,
  ...COLORMAPS.map((c) => `${c}_r` as const),
];

const VIRIDIS =
  "44015444025645045745055946075a46085c460a5d460b5e470d60470e61471063471164471365481467481668481769" +
  "48186a481a6c481b6d481c6e481d6f481f70482071482173482374482475482576482677482878482979472a7a472c7a" +
  "472d7b472e7c472f7d46307e46327e46337f463480453581453781453882443983443a83443b84433d84433e85423f85" +
  "4240864241864142874144874045884046883f47883f48893e49893e4a893e4c8a3d4d8a3d4e8a3c4f8a3c508b3b518b" +
  "3b528b3a538b3a548c39558c39568c38588c38598c375a8c375b8d365c8d365d8d355e8d355f8d34608d34618d33628d" +
  "33638d32648e32658e31668e31678e31688e30698e306a8e2f6b8e2f6c8e2e6d8e2e6e8e2e6f8e2d708e2d718e2c718e" +
  "2c728e2c738e2b748e2b758e2a768e2a778e2a788e29798e297a8e297b8e287c8e287d8e277e8e277f8e27808e26818e" +
  "26828e26828e25838e25848e25858e24868e24878e23888e23898e238a8d228b8d228c8d228d8d218e8d218f8d21908d" +
  "21918c20928c20928c20938c1f948c1f958b1f968b1f978b1f988b1f998a1f9a8a1e9b8a1e9c891e9d891f9e891f9f88" +
  "1fa0881fa1881fa1871fa28720a38620a48621a58521a68522a78522a88423a98324aa8325ab8225ac8226ad8127ad81" +
  "28ae8029af7f2ab07f2cb17e2db27d2eb37c2fb47c31b57b32b67a34b67935b77937b87838b9773aba763bbb753dbc74" +
  "3fbc7340bd7242be7144bf7046c06f48c16e4ac16d4cc26c4ec36b50c46a52c56954c56856c66758c7655ac8645cc863" +
  "5ec96260ca6063cb5f65cb5e67cc5c69cd5b6ccd5a6ece5870cf5773d05675d05477d1537ad1517cd2507fd34e81d34d" +
  "84d44b86d54989d5488bd6468ed64590d74393d74195d84098d83e9bd93c9dd93ba0da39a2da37a5db36a8db34aadc32" +
  "addc30b0dd2fb2dd2db5de2bb8de29bade28bddf26c0df25c2df23c5e021c8e020cae11fcde11dd0e11cd2e21bd5e21a" +
  "d8e219dae319dde318dfe318e2e418e5e419e7e419eae51aece51befe51cf1e51df4e61ef6e620f8e621fbe723fde725";
const MAGMA =
  "00000401000501010601010802010902020b02020d03030f03031204041405041606051806051a07061c08071e090720" +
  "0a08220b09240c09260d0a290e0b2b100b2d110c2f120d31130d34140e36150e38160f3b180f3d19103f1a10421c1044" +
  "1d11471e114920114b21114e22115024125325125527125829115a2a115c2c115f2d11612f1163311165331067341069" +
  "36106b38106c390f6e3b0f703d0f713f0f72400f74420f75440f764510774710784910784a10794c117a4e117b4f127b" +
  "51127c52137c54137d56147d57157e59157e5a167e5c167f5d177f5f187f601880621980641a80651a80671b80681c81" +
  "6a1c816b1d816d1d816e1e81701f81721f817320817521817621817822817922827b23827c23827e2482802582812581" +
  "8326818426818627818827818928818b29818c29818e2a81902a81912b81932b80942c80962c80982d80992d809b2e7f" +
  "9c2e7f9e2f7fa02f7fa1307ea3307ea5317ea6317da8327daa337dab337cad347cae347bb0357bb2357bb3367ab5367a" +
  "b73779b83779ba3878bc3978bd3977bf3a77c03a76c23b75c43c75c53c74c73d73c83e73ca3e72cc3f71cd4071cf4070" +
  "d0416fd2426fd3436ed5446dd6456cd8456cd9466bdb476adc4869de4968df4a68e04c67e24d66e34e65e44f64e55064" +
  "e75263e85362e95462ea5661eb5760ec5860ed5a5fee5b5eef5d5ef05f5ef1605df2625df2645cf3655cf4675cf4695c" +
  "f56b5cf66c5cf66e5cf7705cf7725cf8745cf8765cf9785df9795df97b5dfa7d5efa7f5efa815ffb835ffb8560fb8761" +
  "fc8961fc8a62fc8c63fc8e64fc9065fd9266fd9467fd9668fd9869fd9a6afd9b6bfe9d6cfe9f6dfea16efea36ffea571" +
  "fea772fea973feaa74feac76feae77feb078feb27afeb47bfeb67cfeb77efeb97ffebb81febd82febf84fec185fec287" +
  "fec488fec68afec88cfeca8dfecc8ffecd90fecf92fed194fed395fed597fed799fed89afdda9cfddc9efddea0fde0a1" +
  "fde2a3fde3a5fde5a7fde7a9fde9aafdebacfcecaefceeb0fcf0b2fcf2b4fcf4b6fcf6b8fcf7b9fcf9bbfcfbbdfcfdbf";

function hexColors(hex: string): RGB[] {
  const out: RGB[] = [];
  for (let k = 0; k + 6 <= hex.length; k += 6) {
    out.push([
      Number.parseInt(hex.slice(k, k + 2), 16),
      Number.parseInt(hex.slice(k + 2, k + 4), 16),
      Number.parseInt(hex.slice(k + 4, k + 6), 16),
    ]);
  }
  return out;
}

// ColorBrewer RdBu, 11 classes, red (low) to blue (high) as in matplotlib.
const RDBU = "67001fb2182bd6604df4a582fddbc7f7f7f7d1e5f092c5de4393c32166ac053061";

// --- Moreland's diverging map (Moreland 2009, "Diverging Color Maps for
// Scientific Visualization"): interpolate in Msh, a polar form of CIELAB, with
// an unsaturated white-ish middle. coolwarm = blue (59,76,192) -> red (180,4,38).

type Vec3 = [number, number, number];
const WHITE: Vec3 = [0.95047, 1, 1.08883];

function toLinear(c: number): number {
  const s = c / 255;
  return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
}

function fromLinear(c: number): number {
  const s = c <= 0.0031308 ? 12.92 * c : 1.055 * c ** (1 / 2.4) - 0.055;
  return Math.max(0, Math.min(255, Math.round(255 * s)));
}

function rgbToMsh([r, g, b]: RGB): Vec3 {
  const lr = toLinear(r);
  const lg = toLinear(g);
  const lb = toLinear(b);
  const xyz: Vec3 = [
    0.4124 * lr + 0.3576 * lg + 0.1805 * lb,
    0.2126 * lr + 0.7152 * lg + 0.0722 * lb,
    0.0193 * lr + 0.1192 * lg + 0.9505 * lb,
  ];
  const f = (t: number) => (t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 16 / 116);
  const [fx, fy, fz] = xyz.map((v, k) => f(v / WHITE[k]!)) as Vec3;
  const L = 116 * fy - 16;
  const a = 500 * (fx - fy);
  const bb = 200 * (fy - fz);
  const M = Math.sqrt(L * L + a * a + bb * bb);
  return [M, M === 0 ? 0 : Math.acos(L / M), Math.atan2(bb, a)];
}

function mshToRgb([M, s, h]: Vec3): RGB {
  const L = M * Math.cos(s);
  const a = M * Math.sin(s) * Math.cos(h);
  const b = M * Math.sin(s) * Math.sin(h);
  const fy = (L + 16) / 116;
  const fx = a / 500 + fy;
  const fz = fy - b / 200;
  const inv = (t: number) => (t ** 3 > 0.008856 ? t ** 3 : (t - 16 / 116) / 7.787);
  const [x, y, z] = [inv(fx) * WHITE[0], inv(fy) * WHITE[1], inv(fz) * WHITE[2]];
  const lr = 3.2406 * x - 1.5372 * y - 0.4986 * z;
  const lg = -0.9689 * x + 1.8758 * y + 0.0415 * z;
  const lb = 0.0557 * x - 0.204 * y + 1.057 * z;
  return [fromLinear(lr), fromLinear(lg), fromLinear(lb)];
}

function adjustHue([M, s, h]: Vec3, mUnsat: number): number {
  if (M >= mUnsat) return h;
  const spin = (s * Math.sqrt(mUnsat * mUnsat - M * M)) / (M * Math.sin(s));
  return h > -Math.PI / 3 ? h + spin : h - spin;
}

function diverging(low: RGB, high: RGB, t: number): RGB {
  let m1 = rgbToMsh(low);
  let m2 = rgbToMsh(high);
  let u = t;
  if (m1[1] > 0.05 && m2[1] > 0.05 && Math.abs(m1[2] - m2[2]) > Math.PI / 3) {
    const mid = Math.max(m1[0], m2[0], 88);
    if (u < 0.5) {
      m2 = [mid, 0, 0];
      u = 2 * u;
    } else {
      m1 = [mid, 0, 0];
      u = 2 * u - 1;
    }
  }
  if (m1[1] < 0.05 && m2[1] > 0.05) m1 = [m1[0], m1[1], adjustHue(m2, m1[0])];
  else if (m2[1] < 0.05 && m1[1] > 0.05) m2 = [m2[0], m2[1], adjustHue(m1, m2[0])];
  return mshToRgb([(1 - u) * m1[0] + u * m2[0], (1 - u) * m1[1] + u * m2[1], (1 - u) * m1[2] + u * m2[2]]);
}

function table(n: number, f: (t: number) => RGB): RGB[] {
  return Array.from({ length: n }, (_, k) => f(k / (n - 1)));
}

const TABLES: Record<ColormapBase, () => RGB[]> = {
  viridis: () => hexColors(VIRIDIS),
  magma: () => hexColors(MAGMA),
  coolwarm: () => table(65, (t) => diverging([59, 76, 192], [180, 4, 38], t)),
  rdbu: () => hexColors(RDBU),
  // matplotlib's summer: (0, 0.5, 0.4) -> (1, 1, 0.4).
  summer: () => table(2, (t) => [Math.round(255 * t), Math.round(255 * (0.5 + 0.5 * t)), 102]),
  // White (low) to black (high), matplotlib's Greys.
  greys: () =>
    table(2, (t) => [Math.round(255 * (1 - t)), Math.round(255 * (1 - t)), Math.round(255 * (1 - t))]),
};
const cache = new Map<ColormapBase, RGB[]>();

/**
 * A color map as a function of t in [0, 1] (clamped; NaN gives the low end).
 * Colors are linearly interpolated between the map's table entries.
 *
 * @example
 * const c = colormap("viridis");
 * rgbHex(c(0)); // "#440154"
 */
export function colormap(name: Exclude<ColormapName, "paper">): (t: number) => RGB {
  const reversed = name.endsWith("_r");
  const base = (reversed ? name.slice(0, -2) : name) as ColormapBase;
  if (!(COLORMAPS as readonly string[]).includes(base)) {
    throw new Error(`colormap(): unknown color map '${name}', expected one of ${COLORMAP_NAMES.join(", ")}`);
  }
  let colors = cache.get(base);
  if (!colors) {
    colors = TABLES[base]();
    cache.set(base, colors);
  }
  const stops = colors;
  return (t: number): RGB => {
    let u = Number.isNaN(t) ? 0 : Math.max(0, Math.min(1, t));
    if (reversed) u = 1 - u;
    const x = u * (stops.length - 1);
    const k = Math.min(stops.length - 2, Math.floor(x));
    const f = x - k;
    const a = stops[k]!;
    const b = stops[k + 1]!;
    return [
      Math.round(a[0] + f * (b[0] - a[0])),
      Math.round(a[1] + f * (b[1] - a[1])),
      Math.round(a[2] + f * (b[2] - a[2])),
    ];
  };
}

/**
 * Checks a color map name from user input, listing the valid ones.
 *
 * @example
 * parseColormap("magma"); // "magma"
 */
export function parseColormap(text: string): ColormapName {
  if (!(COLORMAP_NAMES as readonly string[]).includes(text)) {
    throw new Error(`unknown color map '${text}', expected one of ${COLORMAP_NAMES.join(", ")}`);
  }
  return text as ColormapName;
}

/**
 * The figure kinds whose "paper" color map differs: the reference draws
 * contours, filled contours and heat maps with matplotlib's default viridis
 * (its `cmpa='summer'` is a misspelt, ignored keyword) and 3D surfaces with
 * coolwarm.
 */
export type ColormapRole = "contour" | "filled" | "heatmap" | "surface3d" | "hessian" | "trajectory";

/**
 * Resolves "paper" to the reference's choice for a figure kind; other names
 * pass through.
 *
 * @example
 * resolveColormap("paper", "surface3d"); // "coolwarm"
 */
export function resolveColormap(name: ColormapName, role: ColormapRole): Exclude<ColormapName, "paper"> {
  if (name !== "paper") return name;
  return role === "surface3d" ? "coolwarm" : "viridis";
}

/**
 * "#rrggbb" for a color.
 *
 * @example
 * rgbHex([255, 0, 0]); // "#ff0000"
 */
export function rgbHex([r, g, b]: RGB): string {
  return `#${[r, g, b].map((c) => c.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * A color scaled towards black by `f` in [0, 1] (1 keeps it): Lambert shading.
 *
 * @example
 * shade([200, 100, 50], 0.5); // [100, 50, 25]
 */
export function shade([r, g, b]: RGB, f: number): RGB {
  const k = Math.max(0, Math.min(1, f));
  return [Math.round(r * k), Math.round(g * k), Math.round(b * k)];
}
