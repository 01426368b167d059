// Surface export for 3D tools: VTK XML PolyData (.vtp, for ParaView, as the
// reference's h52vtp.py writes it: points x, y, z = the value, quads, a point
// scalar "zvalue" and a cell scalar "averaged zvalue"), binary STL (3D
// printing) and Wavefront OBJ (Blender). Serializers return bytes/strings;
// `exportSurface` builds all outputs first and then writes each atomically.

import { type GridMesh, gridMesh, landscapeZ, resampleGrid, triangles } from "../core/mesh.ts";
import { writeFileAtomic } from "../formats/atomic.ts";
import { SURFACE_QUANTITIES, type Surface, type SurfaceQuantity } from "../formats/surface-file.ts";

/**
 * Options of `landscapeMesh` / `exportSurface`.
 *
 * @example
 * const o: MeshOptions = { quantity: "train_loss", zmax: 10, log: true, resample: 200 };
 */
export interface MeshOptions {
  /** Which quantity is z (default "train_loss"). */
  quantity?: SurfaceQuantity;
  /** z = ln(z + 0.1), after clipping (the reference's --log). */
  log?: boolean;
  /** Clip z at zmax before the log (the reference's --zmax). */
  zmax?: number;
  /** Resample to N x N points by bicubic interpolation (the reference's --interp). */
  resample?: number;
  /** Multiply z by this in the written positions (default 1), e.g. to print a flat surface. */
  zscale?: number;
  /** Name of the surface in messages and headers (a file name). */
  name?: string;
}

/**
 * A surface ready to write: its mesh and a description.
 *
 * @example
 * const m = landscapeMesh(readSurface("surf.h5"), { zmax: 10 });
 */
export interface LandscapeMesh {
  mesh: GridMesh;
  quantity: SurfaceQuantity;
  /** What z is, e.g. "train_loss" or "ln(train_loss + 0.1)", clipped at zmax. */
  description: string;
}

function finite(name: string, v: number | undefined, where: string): void {
  if (v !== undefined && !Number.isFinite(v))
    throw new Error(`${where}: '${name}' must be a finite number, got ${v}`);
}

/**
 * Builds the mesh of one quantity of a 2D surface: clip at zmax, resample,
 * clip again (cubic interpolation overshoots), log, scale z.
 *
 * @example
 * const { mesh } = landscapeMesh(surface, { quantity: "test_loss", log: true });
 */
export function landscapeMesh(surface: Surface, options: MeshOptions = {}): LandscapeMesh {
  const { quantity = "train_loss", log = false, zmax, resample, zscale = 1, name } = options;
  const where = name ? `export '${name}'` : "landscapeMesh()";
  if (!SURFACE_QUANTITIES.includes(quantity)) {
    throw new Error(
      `${where}: unknown quantity '${quantity}', expected one of ${SURFACE_QUANTITIES.join(", ")}`,
    );
  }
  finite("zmax", zmax, where);
  finite("zscale", zscale, where);
  if (zscale === 0) throw new Error(`${where}: 'zscale' must not be 0`);
  if (resample !== undefined && (!Number.isInteger(resample) || resample < 2 || resample > 4000)) {
    throw new Error(`${where}: 'resample' must be an integer from 2 to 4000, got ${resample}`);
  }
  if (surface.y === null) {
    throw new Error(`${where}: the surface is 1D (${surface.x.length} points); a mesh needs a 2D surface`);
  }
  if (surface.x.length < 2 || surface.y.length < 2) {
    throw new Error(
      `${where}: the grid is ${surface.x.length} x ${surface.y.length}; a mesh needs at least 2 points along each axis`,
    );
  }
  const values = surface.values[quantity];
  if (values === undefined) {
    const has = Object.keys(surface.values).join(", ") || "no quantities";
    throw new Error(`${where}: the surface has no '${quantity}' (it has ${has})`);
  }
  let x: ArrayLike<number> = surface.x;
  let y: ArrayLike<number> = surface.y;
  let z: Float64Array = landscapeZ(values, zmax === undefined ? {} : { zmax });
  if (resample !== undefined) {
    const r = resampleGrid(x, y, z, resample, resample);
    x = r.x;
    y = r.y;
    z = r.values;
  }
  z = landscapeZ(z, { zmax, log });
  if (zscale !== 1) z = z.map((v) => v * zscale);
  let description = log ? `ln(${quantity} + 0.1)` : quantity;
  if (zmax !== undefined) description += `, clipped at ${zmax}`;
  if (zscale !== 1) description += `, times ${zscale}`;
  if (resample !== undefined) description += `, resampled to ${resample} x ${resample}`;
  return { mesh: gridMesh(x, y, z), quantity, description };
}

/** Float32 text: enough digits to read back the same float32. */
function f32(v: number): string {
  const r = Math.fround(v);
  return r === 0 ? "0" : String(Number(r.toPrecision(9)));
}

function dataArray(type: string, name: string, values: string[], components = 1, perLine = 6): string {
  const lines: string[] = [];
  for (let k = 0; k < values.length; k += perLine)
    lines.push(`          ${values.slice(k, k + perLine).join(" ")}`);
  const comps = components > 1 || type === "Float32" ? ` NumberOfComponents="${components}"` : "";
  return [
    `        <DataArray type="${type}" Name="${name}"${comps} format="ascii">`,
    ...lines,
    "        </DataArray>",
  ].join("\n");
}

/**
 * VTK XML PolyData (ASCII): the vertices (x, y, z), the faces as polygons, a
 * point scalar "zvalue" (z) and a cell scalar "averaged zvalue" (the mean z of
 * each face's corners), as the reference's h52vtp.py names them.
 *
 * @example
 * writeFileSync("surf.vtp", toVtp(landscapeMesh(surface)));
 */
export function toVtp({ mesh, description }: LandscapeMesh): string {
  const n = mesh.positions.length / 3;
  const z: string[] = [];
  const pts: string[] = [];
  for (let k = 0; k < n; k++) {
    z.push(f32(mesh.positions[3 * k + 2]!));
    pts.push(
      `${f32(mesh.positions[3 * k]!)} ${f32(mesh.positions[3 * k + 1]!)} ${f32(mesh.positions[3 * k + 2]!)}`,
    );
  }
  const avg: string[] = [];
  const conn: string[] = [];
  const offsets: string[] = [];
  let offset = 0;
  for (const f of mesh.faces) {
    avg.push(f32(f.reduce((a, v) => a + mesh.positions[3 * v + 2]!, 0) / f.length));
    conn.push(f.join(" "));
    offset += f.length;
    offsets.push(String(offset));
  }
  return `${[
    '<?xml version="1.0"?>',
    `<!-- losscape surface: z = ${description.replace(/--/g, "- -")} -->`,
    '<VTKFile type="PolyData" version="1.0" byte_order="LittleEndian" header_type="UInt64">',
    "  <PolyData>",
    `    <Piece NumberOfPoints="${n}" NumberOfVerts="0" NumberOfLines="0" NumberOfStrips="0" NumberOfPolys="${mesh.faces.length}">`,
    '      <PointData Scalars="zvalue">',
    dataArray("Float32", "zvalue", z),
    "      </PointData>",
    '      <CellData Scalars="averaged zvalue">',
    dataArray("Float32", "averaged zvalue", avg),
    "      </CellData>",
    "      <Points>",
    dataArray("Float32", "Points", pts, 3, 2),
    "      </Points>",
    "      <Polys>",
    dataArray("Int64", "connectivity", conn, 1, 4),
    dataArray("Int64", "offsets", offsets),
    "      </Polys>",
    "    </Piece>",
    "  </PolyData>",
    "</VTKFile>",
  ].join("\n")}\n`;
}

/**
 * Binary STL: an 80-byte header, a uint32 triangle count, then per triangle
 * its unit normal and three vertices (float32) and a zero uint16; 84 + 50 *
 * triangles bytes. Quads are split in two triangles.
 *
 * @example
 * writeFileSync("surf.stl", toStl(landscapeMesh(surface, { zscale: 0.2 })));
 */
export function toStl({ mesh, quantity, description }: LandscapeMesh): Uint8Array {
  const tris = triangles(mesh.faces);
  const bytes = new Uint8Array(84 + 50 * tris.length);
  const view = new DataView(bytes.buffer);
  // The header must not start with "solid", or readers take the file for ASCII STL.
  const header = `losscape ${quantity} mesh: ${description}`.slice(0, 80);
  for (let k = 0; k < header.length; k++) bytes[k] = header.charCodeAt(k) & 0x7f;
  view.setUint32(80, tris.length, true);
  const p = mesh.positions;
  let o = 84;
  for (const [a, b, c] of tris) {
    const ux = p[3 * b]! - p[3 * a]!;
    const uy = p[3 * b + 1]! - p[3 * a + 1]!;
    const uz = p[3 * b + 2]! - p[3 * a + 2]!;
    const vx = p[3 * c]! - p[3 * a]!;
    const vy = p[3 * c + 1]! - p[3 * a + 1]!;
    const vz = p[3 * c + 2]! - p[3 * a + 2]!;
    let nx = uy * vz - uz * vy;
    let ny = uz * vx - ux * vz;
    let nz = ux * vy - uy * vx;
    const len = Math.hypot(nx, ny, nz);
    if (len > 0) {
      nx /= len;
      ny /= len;
      nz /= len;
    }
    for (const v of [nx, ny, nz]) {
      view.setFloat32(o, v, true);
      o += 4;
    }
    for (const idx of [a, b, c]) {
      for (let d = 0; d < 3; d++) {
        view.setFloat32(o, p[3 * idx + d]!, true);
        o += 4;
      }
    }
    view.setUint16(o, 0, true);
    o += 2;
  }
  return bytes;
}

/**
 * Wavefront OBJ: `v x y z` per vertex and `f a b c [d]` per face (1-based).
 *
 * @example
 * writeFileSync("surf.obj", toObj(landscapeMesh(surface)));
 */
export function toObj({ mesh, quantity, description }: LandscapeMesh): string {
  const lines = [`# losscape ${quantity} mesh: z = ${description}`, `o ${quantity}`];
  const p = mesh.positions;
  const num = (v: number) => String(Number(v.toPrecision(10)));
  for (let k = 0; k < p.length; k += 3) lines.push(`v ${num(p[k]!)} ${num(p[k + 1]!)} ${num(p[k + 2]!)}`);
  for (const f of mesh.faces) lines.push(`f ${f.map((v) => v + 1).join(" ")}`);
  return `${lines.join("\n")}\n`;
}

/**
 * Where `exportSurface` writes: any of the three formats.
 *
 * @example
 * const out: ExportTargets = { vtk: "surf.vtp", stl: "surf.stl" };
 */
export interface ExportTargets {
  vtk?: string;
  stl?: string;
  obj?: string;
}

/**
 * Writes a surface's mesh to each requested file. Everything is built and
 * checked before the first write, and each file is written atomically, so bad
 * input writes nothing.
 *
 * @example
 * exportSurface(readSurface("surf.h5"), { vtk: "surf.vtp", obj: "surf.obj" }, { log: true, zmax: 10 });
 */
export function exportSurface(
  surface: Surface,
  targets: ExportTargets,
  options: MeshOptions = {},
): { files: string[]; points: number; faces: number; triangles: number } {
  const where = options.name ? `export '${options.name}'` : "exportSurface()";
  const paths = [targets.vtk, targets.stl, targets.obj].filter((p): p is string => p !== undefined);
  if (paths.length === 0) throw new Error(`${where}: nothing to write; give a vtk, stl or obj path`);
  if (new Set(paths).size !== paths.length) throw new Error(`${where}: two outputs have the same path`);
  const m = landscapeMesh(surface, options);
  if (m.mesh.faces.length === 0) {
    throw new Error(`${where}: no cell of the grid has finite values at three corners; nothing to export`);
  }
  const outputs: [string, string | Uint8Array][] = [];
  if (targets.vtk !== undefined) outputs.push([targets.vtk, toVtp(m)]);
  if (targets.stl !== undefined) outputs.push([targets.stl, toStl(m)]);
  if (targets.obj !== undefined) outputs.push([targets.obj, toObj(m)]);
  for (const [path, data] of outputs) writeFileAtomic(path, data);
  return {
    files: outputs.map(([p]) => p),
    points: m.mesh.positions.length / 3,
    faces: m.mesh.faces.length,
    triangles: triangles(m.mesh.faces).length,
  };
}
