// Several finished figures side by side in one SVG (e.g. SGD vs Adam
// trajectories, each on its own PCA plane).

/**
 * Places SVG documents next to each other, left to right, in one SVG.
 *
 * @example
 * writeFigure("compare.svg", sideBySide([sgdSvg, adamSvg]));
 */
export function sideBySide(svgs: readonly string[], { gap = 16 }: { gap?: number } = {}): string {
  if (svgs.length === 0) throw new Error("sideBySide(): no figures given");
  let x = 0;
  let height = 0;
  const parts = svgs.map((svg, k) => {
    const m = /<svg[^>]*\swidth="([\d.]+)"[^>]*\sheight="([\d.]+)"/.exec(svg);
    if (!m) throw new Error(`sideBySide(): figure ${k + 1} is not an SVG document with width and height`);
    const w = Number(m[1]);
    const h = Number(m[2]);
    const body = svg.replace(/^<\?xml[^>]*>\s*/, "").replace(/<svg/, `<svg x="${x}" y="0"`);
    x += w + gap;
    height = Math.max(height, h);
    return body;
  });
  const width = x - gap;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}"><rect width="${width}" height="${height}" fill="white"/>${parts.join("")}</svg>\n`;
}
