import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { gridMesh, landscapeZ, resampleGrid, triangles } from "../../src/core/mesh.ts";
import { exportSurface, landscapeMesh, toObj, toStl, toVtp } from "../../src/plot/export.ts";
import { tempDir } from "../helpers.ts";
import { bumpySurface, curve1D, holeySurface } from "./_surfaces.ts";

const { dir, cleanup } = tempDir("losscape-export-");
afterAll(cleanup);

/** The numbers of a VTK DataArray by name. */
function vtkArray(xml: string, name: string): number[] {
  const m = new RegExp(`<DataArray [^>]*Name="${name}"[^>]*>([^<]*)</DataArray>`).exec(xml);
  if (!m) throw new Error(`no DataArray ${name}`);
  return m[1]!.trim().split(/\s+/).filter(Boolean).map(Number);
}

function vtkAttr(xml: string, attr: string): number {
  return Number(new RegExp(`${attr}="(\\d+)"`).exec(xml)![1]);
}

describe("VTK PolyData export", () => {
  it("writes every grid point and cell, z = the surface value, as the reference's h52vtp", () => {
    const s = bumpySurface(7, 5);
    const xml = toVtp(landscapeMesh(s));
    expect(xml).toMatch(/^<\?xml version="1.0"\?>/);
    expect(xml).toMatch(
      /<VTKFile type="PolyData" version="1.0" byte_order="LittleEndian" header_type="UInt64">/,
    );
    expect(vtkAttr(xml, "NumberOfPoints")).toBe(35);
    expect(vtkAttr(xml, "NumberOfPolys")).toBe(24);
    const pts = vtkArray(xml, "Points");
    const z = vtkArray(xml, "zvalue");
    expect(pts).toHaveLength(35 * 3);
    expect(vtkArray(xml, "connectivity")).toHaveLength(24 * 4);
    expect(vtkArray(xml, "offsets").at(-1)).toBe(96);
    expect(vtkArray(xml, "averaged zvalue")).toHaveLength(24);
    // Vertex of grid point (i, j) = (3, 2): index i*ny + j when nothing is missing.
    const k = 3 * 5 + 2;
    expect(pts[3 * k]).toBeCloseTo(s.x[3]!, 6);
    expect(pts[3 * k + 1]).toBeCloseTo(s.y![2]!, 6);
    expect(pts[3 * k + 2]).toBeCloseTo(s.values.train_loss![k]!, 6);
    expect(z[k]).toBeCloseTo(s.values.train_loss![k]!, 6);
  });

  it("clips at zmax, then takes ln(z + 0.1) with log, like the reference", () => {
    const s = bumpySurface(5, 5);
    const loss = s.values.train_loss!;
    const z = vtkArray(toVtp(landscapeMesh(s, { zmax: 1, log: true })), "zvalue");
    loss.forEach((v, k) => {
      expect(z[k]).toBeCloseTo(Math.log(Math.min(v, 1) + 0.1), 5);
    });
    expect(
      Array.from(landscapeZ(Float64Array.of(Number.POSITIVE_INFINITY, Number.NaN), { zmax: 3 })),
    ).toEqual([3, Number.NaN]);
  });

  it("leaves out missing points: quads where all four corners exist, triangles where three do", () => {
    const s = holeySurface(9, 7);
    const m = landscapeMesh(s);
    const finite = Array.from(s.values.train_loss!).filter(Number.isFinite).length;
    expect(m.mesh.positions.length / 3).toBe(finite);
    expect(m.mesh.faces.some((f) => f.length === 3)).toBe(true);
    const xml = toVtp(m);
    expect(vtkAttr(xml, "NumberOfPoints")).toBe(finite);
    expect(vtkArray(xml, "offsets").at(-1)).toBe(m.mesh.faces.reduce((a, f) => a + f.length, 0));
    expect(xml).not.toMatch(/NaN|Infinity/);
  });

  it("resamples bicubically through the original points", () => {
    const s = bumpySurface(5, 5);
    const fine = resampleGrid(s.x, s.y!, s.values.train_loss!, 9, 9);
    for (let i = 0; i < 5; i++) {
      for (let j = 0; j < 5; j++) {
        expect(fine.values[2 * i * 9 + 2 * j]).toBeCloseTo(s.values.train_loss![i * 5 + j]!, 12);
      }
    }
    const xml = toVtp(landscapeMesh(s, { resample: 40 }));
    expect(vtkAttr(xml, "NumberOfPoints")).toBe(1600);
    expect(vtkAttr(xml, "NumberOfPolys")).toBe(39 * 39);
  });
});

describe("STL and OBJ export", () => {
  it("binary STL: 84 + 50 * triangles bytes, count in the header, unit +z normals on a flat grid", () => {
    const s = bumpySurface(6, 4);
    const stl = toStl(landscapeMesh(s));
    const view = new DataView(stl.buffer, stl.byteOffset, stl.byteLength);
    const count = view.getUint32(80, true);
    expect(count).toBe(5 * 3 * 2);
    expect(stl.length).toBe(84 + 50 * count);
    expect(new TextDecoder().decode(stl.slice(0, 5))).not.toBe("solid");
    // Flat surface: every normal is (0, 0, 1).
    const flat = { ...s, values: { train_loss: new Float64Array(24).fill(2) } };
    const f = toStl(landscapeMesh(flat));
    const fv = new DataView(f.buffer, f.byteOffset, f.byteLength);
    for (let t = 0; t < 30; t++) expect(fv.getFloat32(84 + 50 * t + 8, true)).toBe(1);
    // First vertex of the first triangle is grid point (0, 0).
    expect(view.getFloat32(84 + 12 + 8, true)).toBeCloseTo(s.values.train_loss![0]!, 5);
  });

  it("OBJ: one v per point and one f per face, 1-based, z = the value times zscale", () => {
    const s = holeySurface(6, 5);
    const m = landscapeMesh(s, { zscale: 0.5 });
    const obj = toObj(m);
    const v = obj.split("\n").filter((l) => l.startsWith("v "));
    const f = obj.split("\n").filter((l) => l.startsWith("f "));
    expect(v).toHaveLength(m.mesh.positions.length / 3);
    expect(f).toHaveLength(m.mesh.faces.length);
    expect(Number(v[0]!.split(" ")[3])).toBeCloseTo(0.5 * s.values.train_loss![0]!, 9);
    const max = Math.max(...f.flatMap((l) => l.slice(2).split(" ").map(Number)));
    expect(max).toBe(v.length);
    expect(triangles([[0, 1, 2, 3]])).toEqual([
      [0, 1, 2],
      [0, 2, 3],
    ]);
  });

  it("gridMesh orders quads counter-clockwise seen from +z", () => {
    const m = gridMesh([0, 1], [0, 1], [0, 0, 0, 0]);
    expect(m.faces).toEqual([[0, 2, 3, 1]]);
  });
});

describe("exportSurface", () => {
  it("writes the requested files", () => {
    const s = bumpySurface(5, 4);
    const out = { vtk: join(dir, "a.vtp"), stl: join(dir, "a.stl"), obj: join(dir, "a.obj") };
    const r = exportSurface(s, out, { log: true });
    expect(r.files).toEqual([out.vtk, out.stl, out.obj]);
    expect(readFileSync(out.stl).length).toBe(84 + 50 * r.triangles);
    expect(readFileSync(out.vtk, "utf8")).toMatch(/ln\(train_loss \+ 0.1\)/);
  });

  it("refuses bad input by name and writes nothing", () => {
    const target = { vtk: join(dir, "bad.vtp") };
    const s = bumpySurface(5, 4);
    expect(() => exportSurface(curve1D(9), target)).toThrow(/is 1D \(9 points\); a mesh needs a 2D surface/);
    expect(() => exportSurface(s, target, { quantity: "test_loss" })).toThrow(
      /has no 'test_loss' \(it has train_loss, train_acc\)/,
    );
    expect(() => exportSurface(s, target, { resample: 1 })).toThrow(
      /'resample' must be an integer from 2 to 4000/,
    );
    expect(() => exportSurface(s, {})).toThrow(/nothing to write/);
    const empty = { ...s, values: { train_loss: new Float64Array(20).fill(Number.NaN) } };
    expect(() => exportSurface(empty, target)).toThrow(/no cell of the grid has finite values/);
    expect(() => readFileSync(target.vtk)).toThrow(/ENOENT/);
  });
});
