// Figure commands: `plot` (SVG/PNG figures of surface files) and `export`
// (VTK/STL/OBJ meshes). Each parses its options, calls the library
// (src/plot), and reports what it wrote.

import { existsSync } from "node:fs";
import { type Command, InvalidArgumentError } from "@commander-js/extra-typings";
import {
  readSurface,
  SURFACE_QUANTITIES,
  type Surface,
  type SurfaceQuantity,
} from "../formats/surface-file.ts";
import { COLORMAP_NAMES, type ColormapName } from "../plot/colormap.ts";
import { exportSurface } from "../plot/export.ts";
import { LEVEL_SPACINGS } from "../plot/options.ts";
import { figureFormat, PLOT_KINDS, type PlotKind, plotSurfaces, writeFigure } from "../plot/plot.ts";
import { defaultFontFiles } from "../plot/png.ts";
import { oneOf, positiveInt, positiveNumber } from "./_parse.ts";

/** A finite number option (may be negative). */
function finiteNumber(option: string) {
  return (text: string): number => {
    const n = Number(text);
    if (text.trim() === "" || !Number.isFinite(n)) {
      throw new InvalidArgumentError(`${option} expects a number, got '${text}'`);
    }
    return n;
  };
}

/** --levels: a count ("20") or a comma-separated list of values ("0.5,1,2,5"). */
function levelsOption(text: string): number | number[] {
  const parts = text.split(",").map((s) => s.trim());
  if (parts.length === 1) {
    const n = Number(parts[0]);
    if (/^\d+$/.test(parts[0]!) && n >= 1) return n;
    throw new InvalidArgumentError(
      `--levels expects a count like 20 or a list of values like 0.5,1,2,5, got '${text}'`,
    );
  }
  const values = parts.map(Number);
  const bad = parts.findIndex((p, k) => p === "" || !Number.isFinite(values[k]!));
  if (bad >= 0) {
    throw new InvalidArgumentError(`--levels: '${parts[bad]}' in '${text}' is not a number`);
  }
  return values;
}

/**
 * The PDF creation date from SOURCE_DATE_EPOCH (seconds; the reproducible-builds
 * convention), so a rebuilt figure has the same bytes; none when unset.
 */
function sourceDate(): { creationDate?: Date } {
  const text = process.env["SOURCE_DATE_EPOCH"];
  if (text === undefined || text === "") return {};
  const seconds = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(seconds)) {
    throw new Error(`SOURCE_DATE_EPOCH must be a whole number of seconds, got '${text}'`);
  }
  return { creationDate: new Date(seconds * 1000) };
}

/** A comma-separated list of labels. */
function labelList(text: string): string[] {
  return text.split(",").map((s) => s.trim());
}

function readAll(files: readonly string[]): Surface[] {
  for (const f of files) {
    if (!existsSync(f)) throw new Error(`surface file '${f}' does not exist`);
  }
  return files.map((f) => readSurface(f));
}

/** Adds `plot` and `export` to the program. */
export function registerPlotCommands(program: Command): void {
  program
    .command("plot")
    .description(
      "draw a figure of surface files as SVG, PNG or vector PDF: contours, heat map, 3D surface, 1D curves",
    )
    .argument(
      "<surfaces...>",
      "surface files (.h5, losscape's or the reference code's); several only with --kind 1d",
    )
    .requiredOption("--out <file>", "figure to write: .svg, .png or .pdf (vector, fonts embedded)")
    .option(
      "--kind <kind>",
      `figure: ${PLOT_KINDS.join(", ")}`,
      oneOf("--kind", PLOT_KINDS),
      "contour" as PlotKind,
    )
    .option(
      "--quantity <name>",
      `what to draw: ${SURFACE_QUANTITIES.join(", ")} (default train_loss; 1D: losses and accuracies)`,
      oneOf("--quantity", SURFACE_QUANTITIES),
    )
    .option("--vmin <v>", "low end of the levels / color range / loss axis", finiteNumber("--vmin"))
    .option("--vmax <v>", "high end of the levels / color range / loss axis", finiteNumber("--vmax"))
    .option(
      "--step <v>",
      "distance between contour levels, from --vmin (reference: 0.5)",
      positiveNumber("--step"),
    )
    .option(
      "--levels <n|list>",
      "number of contour levels (default 12 focused, 10 even), or the levels themselves (0.5,1,2,5)",
      levelsOption,
    )
    .option(
      "--spacing <how>",
      "levels from a count: focus (default: dense near the minimum, over the region of interest) or even",
      oneOf("--spacing", LEVEL_SPACINGS),
    )
    .option("--log", "log color scale and log-spaced levels (1D: log loss axis)")
    .option("--zmax <v>", "clip finite values above this first", finiteNumber("--zmax"))
    .option(
      "--cmap <name>",
      `color map: ${COLORMAP_NAMES.join(", ")}`,
      oneOf("--cmap", COLORMAP_NAMES),
      "paper" as ColormapName,
    )
    .option("--title <text>", "title above the plot")
    .option("--xlabel <text>", "label of the x axis")
    .option("--ylabel <text>", "label of the y axis")
    .option("--width <px>", "figure width in pixels", positiveInt("--width"), 640)
    .option("--height <px>", "figure height in pixels", positiveInt("--height"), 480)
    .option("--scale <k>", "PNG pixels per figure pixel (2 or 3 for print)", positiveNumber("--scale"), 1)
    .option("--azimuth <deg>", "3D view azimuth (default -60)", finiteNumber("--azimuth"))
    .option("--elevation <deg>", "3D view elevation (default 30)", finiteNumber("--elevation"))
    .option("--labels <a,b,...>", "legend labels of overlaid 1D surfaces, one per file", labelList)
    .option("--no-contour-labels", "do not write level values on contour lines")
    .option("--lines", "filled contours: draw the level lines too")
    .action((files, o) => {
      figureFormat(o.out); // a bad extension fails before any reading
      const surfaces = readAll(files);
      const svg = plotSurfaces(surfaces, {
        kind: o.kind,
        names: files,
        width: o.width,
        height: o.height,
        cmap: o.cmap,
        contourLabels: o.contourLabels,
        ...(o.quantity ? { quantity: o.quantity as SurfaceQuantity } : {}),
        ...(o.vmin !== undefined ? { vmin: o.vmin } : {}),
        ...(o.vmax !== undefined ? { vmax: o.vmax } : {}),
        ...(o.step !== undefined ? { step: o.step } : {}),
        ...(o.levels !== undefined ? { levels: o.levels } : {}),
        ...(o.spacing !== undefined ? { spacing: o.spacing } : {}),
        ...(o.log ? { log: true } : {}),
        ...(o.zmax !== undefined ? { zmax: o.zmax } : {}),
        ...(o.title !== undefined ? { title: o.title } : {}),
        ...(o.xlabel !== undefined ? { xlabel: o.xlabel } : {}),
        ...(o.ylabel !== undefined ? { ylabel: o.ylabel } : {}),
        ...(o.azimuth !== undefined ? { azimuth: o.azimuth } : {}),
        ...(o.elevation !== undefined ? { elevation: o.elevation } : {}),
        ...(o.labels !== undefined ? { labels: o.labels } : {}),
        ...(o.lines ? { lines: true } : {}),
      });
      if (figureFormat(o.out) === "png" && defaultFontFiles().length === 0) {
        console.error(
          "plot: DejaVu Sans not found (Debian: apt-get install fonts-dejavu-core); using system fonts",
        );
      }
      const r = writeFigure(o.out, svg, { scale: o.scale, ...sourceDate() });
      const size = r.format === "pdf" ? `${r.width} x ${r.height} pt` : `${r.width} x ${r.height}`;
      console.log(`wrote ${r.path} (${r.format.toUpperCase()}, ${size}, ${(r.bytes / 1024).toFixed(1)} KiB)`);
    });

  program
    .command("export")
    .description("write a 2D surface as a mesh: VTK PolyData for ParaView, binary STL, Wavefront OBJ")
    .argument("<surface>", "surface file (.h5)")
    .option("--vtk <file>", "VTK XML PolyData file to write (.vtp)")
    .option("--stl <file>", "binary STL file to write (.stl)")
    .option("--obj <file>", "Wavefront OBJ file to write (.obj)")
    .option(
      "--quantity <name>",
      `z: ${SURFACE_QUANTITIES.join(", ")}`,
      oneOf("--quantity", SURFACE_QUANTITIES),
      "train_loss" as SurfaceQuantity,
    )
    .option("--log", "z = ln(z + 0.1), as the reference's h52vtp --log")
    .option("--zmax <v>", "clip z above this (before --log)", finiteNumber("--zmax"))
    .option(
      "--resample <n>",
      "resample to n x n points, bicubic (the reference's --interp)",
      positiveInt("--resample"),
    )
    .option("--zscale <k>", "multiply z by k in the mesh (e.g. for 3D printing)", finiteNumber("--zscale"), 1)
    .action((file, o) => {
      if (o.vtk === undefined && o.stl === undefined && o.obj === undefined) {
        throw new Error("export: nothing to write; give at least one of --vtk, --stl, --obj");
      }
      const [surface] = readAll([file]);
      const r = exportSurface(
        surface!,
        {
          ...(o.vtk !== undefined ? { vtk: o.vtk } : {}),
          ...(o.stl !== undefined ? { stl: o.stl } : {}),
          ...(o.obj !== undefined ? { obj: o.obj } : {}),
        },
        {
          name: file,
          quantity: o.quantity,
          zscale: o.zscale,
          ...(o.log ? { log: true } : {}),
          ...(o.zmax !== undefined ? { zmax: o.zmax } : {}),
          ...(o.resample !== undefined ? { resample: o.resample } : {}),
        },
      );
      console.log(
        `wrote ${r.files.join(", ")}: ${r.points} points, ${r.faces} faces (${r.triangles} triangles)`,
      );
    });
}
