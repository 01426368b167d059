import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Command } from "@commander-js/extra-typings";
import { afterAll, describe, expect, it, vi } from "vitest";
import { registerPlotCommands } from "../../src/cli/plot.ts";
import { writeSurface } from "../../src/formats/surface-file.ts";
import { tempDir } from "../helpers.ts";
import { bumpySurface, curve1D, holeySurface } from "./_surfaces.ts";

const FIXTURES = new URL("../../fixtures/reference-h5/", import.meta.url).pathname;
const { dir, cleanup } = tempDir("losscape-plot-cli-");
afterAll(cleanup);

const surf2d = join(dir, "surf2d.h5");
const holes = join(dir, "holes.h5");
const small = join(dir, "bs128.h5");
const large = join(dir, "bs8192.h5");
writeSurface(surf2d, bumpySurface(11, 9));
writeSurface(holes, holeySurface(11, 9));
writeSurface(small, curve1D(21, 3));
writeSurface(large, curve1D(21, 4, { sharpness: 12 }));

/** Runs `losscape <args>` in process, as main.ts would: the message of a thrown error is the failure. */
async function run(...args: string[]): Promise<{ ok: boolean; out: string; err: string }> {
  let out = "";
  let err = "";
  const log = vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => {
    out += `${a.join(" ")}\n`;
  });
  const error = vi.spyOn(console, "error").mockImplementation((...a: unknown[]) => {
    err += `${a.join(" ")}\n`;
  });
  const program = new Command()
    .name("losscape")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => {
        out += s;
      },
      writeErr: (s) => {
        err += s;
      },
    });
  registerPlotCommands(program);
  try {
    await program.parseAsync(["node", "losscape", ...args]);
    return { ok: true, out, err };
  } catch (e) {
    err += `losscape: ${(e as Error).message}\n`;
    return { ok: false, out, err };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

function files(): string[] {
  return readdirSync(dir).sort();
}

describe("losscape plot", () => {
  it("writes each kind of figure as SVG and PNG", async () => {
    for (const kind of ["contour", "filled", "heatmap", "surface3d"]) {
      const out = join(dir, `${kind}.png`);
      const r = await run("plot", surf2d, "--kind", kind, "--out", out, "--title", kind);
      expect(r.err).toBe("");
      expect(r.out).toMatch(new RegExp(`wrote .*${kind}\\.png \\(PNG, 640 x 480, [\\d.]+ KiB\\)`));
      expect(Array.from(readFileSync(out).slice(1, 4))).toEqual([0x50, 0x4e, 0x47]);
    }
    const svg = join(dir, "contour.svg");
    expect(
      (await run("plot", surf2d, "--out", svg, "--vmin", "0.1", "--vmax", "10", "--step", "0.5")).ok,
    ).toBe(true);
    expect(readFileSync(svg, "utf8")).toMatch(/data-level="0.6"/);
  });

  it("writes every kind as a vector PDF with the page size in points", async () => {
    const cases: [string, string[]][] = [
      ["contour", [surf2d]],
      ["filled", [surf2d]],
      ["heatmap", [holes]],
      ["surface3d", [surf2d]],
      ["1d", [small, large]],
    ];
    for (const [kind, inputs] of cases) {
      const out = join(dir, `${kind}.pdf`);
      const r = await run("plot", ...inputs, "--kind", kind, "--out", out);
      expect(r.err).toBe("");
      expect(r.out).toMatch(new RegExp(`wrote .*${kind}\\.pdf \\(PDF, 480 x 360 pt, [\\d.]+ KiB\\)`));
      const text = readFileSync(out).toString("latin1");
      expect(text.startsWith("%PDF-")).toBe(true);
      expect(text).toMatch(/\/FontFile2 /);
    }
  });

  it("takes the PDF creation date from SOURCE_DATE_EPOCH, so rebuilt figures are identical", async () => {
    const a = join(dir, "a.pdf");
    const b = join(dir, "b.pdf");
    process.env["SOURCE_DATE_EPOCH"] = "1700000000";
    try {
      expect((await run("plot", surf2d, "--out", a)).ok).toBe(true);
      expect((await run("plot", surf2d, "--out", b)).ok).toBe(true);
    } finally {
      delete process.env["SOURCE_DATE_EPOCH"];
    }
    expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
    expect(readFileSync(a).toString("latin1")).toMatch(/\(D:20231114221320Z\)/);
  });

  it("focuses the default levels on the minimum; --spacing even spaces them evenly", async () => {
    const focused = join(dir, "focused.svg");
    const even = join(dir, "even.svg");
    expect((await run("plot", surf2d, "--out", focused)).ok).toBe(true);
    expect((await run("plot", surf2d, "--spacing", "even", "--levels", "5", "--out", even)).ok).toBe(true);
    const levels = (file: string) =>
      [...readFileSync(file, "utf8").matchAll(/class="level" data-level="([\d.]+)"/g)].map((m) =>
        Number(m[1]),
      );
    const f = levels(focused);
    const e = levels(even);
    expect(f.length).toBeGreaterThanOrEqual(10);
    // Focused: gaps grow away from the minimum; even: one gap.
    expect(f[f.length - 1]! - f[f.length - 2]!).toBeGreaterThan(3 * (f[1]! - f[0]!));
    for (let k = 2; k < e.length; k++) expect(e[k]! - e[k - 1]!).toBeCloseTo(e[1]! - e[0]!, 9);
  });

  it("passes levels, log, zmax, color map, labels and size to the figure", async () => {
    const out = join(dir, "opts.svg");
    const r = await run(
      ...["plot", holes, "--kind", "filled", "--out", out, "--log", "--levels", "0.2,0.5,1,2", "--zmax", "3"],
      ...[
        "--cmap",
        "magma",
        "--xlabel",
        "1st PC: 48.21 %",
        "--ylabel",
        "2nd PC",
        "--width",
        "800",
        "--height",
        "600",
      ],
    );
    expect(r.ok).toBe(true);
    const svg = readFileSync(out, "utf8");
    expect(svg).toMatch(/^<svg [^>]*width="800" height="600"/);
    expect(svg).toMatch(/1st PC: 48.21 %/);
    expect(svg.match(/class="band"/g)).toHaveLength(5);
    expect(svg).toMatch(/diverged \(NaN\/Inf\)/);
    expect(svg).toMatch(/not computed/);
  });

  it("draws 3D views, 1D curves and overlays with labels", async () => {
    expect(
      (
        await run(
          "plot",
          surf2d,
          "--kind",
          "surface3d",
          "--azimuth",
          "30",
          "--elevation",
          "60",
          "--out",
          join(dir, "v.svg"),
        )
      ).ok,
    ).toBe(true);
    const one = join(dir, "one.svg");
    expect((await run("plot", small, "--kind", "1d", "--out", one)).ok).toBe(true);
    expect(readFileSync(one, "utf8")).toMatch(/test accuracy/);
    const both = join(dir, "both.svg");
    const r = await run(
      "plot",
      small,
      large,
      "--kind",
      "1d",
      "--labels",
      "bs128,bs8192",
      "--quantity",
      "train_loss",
      "--out",
      both,
    );
    expect(r.ok).toBe(true);
    const svg = readFileSync(both, "utf8");
    expect(svg).toMatch(/>bs128</);
    expect(svg).toMatch(/>bs8192</);
  });

  it("draws the Hessian ratio map of a 2D surface and the ratio curve of a 1D one", async () => {
    const s = bumpySurface(9, 7);
    const loss = s.values.train_loss!;
    s.values.min_eig = loss.map((v) => -0.1 * v);
    s.values.max_eig = loss.map((v) => 1 + v);
    const eig2 = join(dir, "eig2.h5");
    writeSurface(eig2, s);
    const c = curve1D(11);
    c.values.min_eig = c.values.train_loss!.map((v) => -0.2 * v);
    c.values.max_eig = c.values.train_loss!.map((v) => 2 + v);
    const eig1 = join(dir, "eig1.h5");
    writeSurface(eig1, c);
    for (const [file, out] of [
      [eig2, join(dir, "h2.svg")],
      [eig1, join(dir, "h1.svg")],
    ] as const) {
      expect((await run("plot", file, "--kind", "hessian", "--out", out)).err).toBe("");
      expect(readFileSync(out, "utf8")).toMatch(/λmin \/ λmax/);
    }
    const labels = join(dir, "nolabels.svg");
    expect((await run("plot", surf2d, "--no-contour-labels", "--out", labels)).ok).toBe(true);
    expect(readFileSync(labels, "utf8")).not.toMatch(/level-label/);
  });

  it("reads the reference code's files: a non-square grid, an interrupted one, a 1D one", async () => {
    for (const [file, kind] of [
      ["surface_2d_5x3.h5", "contour"],
      ["surface_2d_5x3_partial.h5", "heatmap"],
      ["surface_2d_3x3.h5", "surface3d"],
      ["surface_1d.h5", "1d"],
    ] as const) {
      const out = join(dir, `ref-${kind}.svg`);
      const r = await run("plot", join(FIXTURES, file), "--kind", kind, "--out", out);
      expect(r.err).toBe("");
      expect(readFileSync(out, "utf8")).toMatch(/^<svg /);
    }
    expect(readFileSync(join(dir, "ref-heatmap.svg"), "utf8")).toMatch(/not computed|diverged/);
  });

  it("rejects bad input with a clear message and writes nothing", async () => {
    const before = files();
    const out = join(dir, "never.svg");
    const cases: [string[], RegExp][] = [
      [["plot", join(dir, "missing.h5"), "--out", out], /surface file '.*missing\.h5' does not exist/],
      [
        ["plot", small, "--kind", "contour", "--out", out],
        /'.*bs128\.h5' is 1D \(21 points\); this figure needs a 2D surface \(use --kind 1d\)/,
      ],
      [["plot", surf2d, "--kind", "1d", "--out", out], /is 2D \(11 x 9\); a 1D figure needs a 1D surface/],
      [
        ["plot", surf2d, "--quantity", "val_loss", "--out", out],
        /--quantity expects one of train_loss, .*got 'val_loss'/,
      ],
      [
        ["plot", surf2d, "--quantity", "test_loss", "--out", out],
        /has no 'test_loss' \(it has train_loss, train_acc\)/,
      ],
      [["plot", surf2d, "--levels", "1,x", "--out", out], /--levels: 'x' in '1,x' is not a number/],
      [["plot", surf2d, "--levels", "0", "--out", out], /--levels expects a count like 20/],
      [["plot", surf2d, "--step", "0", "--out", out], /--step expects a positive number, got '0'/],
      [
        ["plot", surf2d, "--vmin", "3", "--vmax", "1", "--out", out],
        /'vmin' \(3\) must be less than 'vmax' \(1\)/,
      ],
      [["plot", surf2d, "--vmin", "0", "--log", "--out", out], /log scale needs 'vmin' > 0, got 0/],
      [
        ["plot", surf2d, "--step", "0.5", "--levels", "10", "--out", out],
        /either 'step' or a count of 'levels'/,
      ],
      [
        ["plot", surf2d, "--kind", "pie", "--out", out],
        /--kind expects one of contour, filled, heatmap, surface3d, 1d, hessian, got 'pie'/,
      ],
      [
        ["plot", surf2d, "--kind", "hessian", "--out", out],
        /lacks Hessian eigenvalues: needs 'min_eig' and 'max_eig'/,
      ],
      [["plot", surf2d, "--out", join(dir, "fig.eps")], /must end in \.svg, \.png or \.pdf, got '\.eps'/],
      [
        ["plot", surf2d, "--spacing", "dense", "--out", out],
        /--spacing expects one of focus, even, got 'dense'/,
      ],
      [
        ["plot", surf2d, "--kind", "heatmap", "--spacing", "even", "--out", out],
        /'step', 'levels' and 'spacing' apply to contour figures; a heat map is continuous/,
      ],
      [["plot", surf2d, holes, "--out", out], /draws one surface, got 2; only --kind 1d overlays several/],
      [["plot", small, large, "--kind", "1d", "--labels", "a", "--out", out], /1 labels for 2 surfaces/],
      [["plot", surf2d, "--cmap", "jet", "--out", out], /--cmap expects one of paper, viridis/],
    ];
    for (const [args, message] of cases) {
      const r = await run(...args);
      expect(r.ok, args.join(" ")).toBe(false);
      expect(r.err).toMatch(message);
    }
    expect(files()).toEqual(before);
  });
});

describe("losscape export", () => {
  it("writes VTK, STL and OBJ with log, zmax and resampling", async () => {
    const vtp = join(dir, "s.vtp");
    const stl = join(dir, "s.stl");
    const obj = join(dir, "s.obj");
    const r = await run(
      "export",
      surf2d,
      "--vtk",
      vtp,
      "--stl",
      stl,
      "--obj",
      obj,
      "--log",
      "--zmax",
      "3",
      "--resample",
      "21",
    );
    expect(r.err).toBe("");
    expect(r.out).toMatch(/wrote .*s\.vtp, .*s\.stl, .*s\.obj: 441 points, 400 faces \(800 triangles\)/);
    expect(readFileSync(vtp, "utf8")).toMatch(/NumberOfPoints="441"/);
    expect(readFileSync(stl).length).toBe(84 + 50 * 800);
    expect(readFileSync(obj, "utf8")).toMatch(
      /^# losscape train_loss mesh: z = ln\(train_loss \+ 0.1\), clipped at 3/,
    );
  });

  it("rejects bad input and writes nothing", async () => {
    const before = files();
    const vtp = join(dir, "never.vtp");
    const cases: [string[], RegExp][] = [
      [["export", surf2d], /nothing to write; give at least one of --vtk, --stl, --obj/],
      [["export", small, "--vtk", vtp], /is 1D \(21 points\); a mesh needs a 2D surface/],
      [["export", join(dir, "nope.h5"), "--vtk", vtp], /surface file '.*nope\.h5' does not exist/],
      [["export", surf2d, "--vtk", vtp, "--quantity", "test_acc"], /has no 'test_acc'/],
      [
        ["export", surf2d, "--vtk", vtp, "--resample", "1"],
        /'resample' must be an integer from 2 to 4000, got 1/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = await run(...args);
      expect(r.ok, args.join(" ")).toBe(false);
      expect(r.err).toMatch(message);
    }
    expect(files()).toEqual(before);
  });
});
