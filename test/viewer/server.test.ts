// The viewer server's API: listing, surface data (NaN -> null), refusal of
// every path that tries to leave the served files, and JSON errors for
// missing or corrupt files that leave the server serving. Uses a stand-in app
// folder, so no Vite build is needed here (the browser tests build the app).

import { copyFileSync, mkdirSync, readFileSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { readSurface } from "../../src/formats/surface-file.ts";
import type { ApiError, SurfaceJson, SurfaceList, SurfaceListOk } from "../../src/viewer/api.ts";
import { startViewer, type Viewer } from "../../src/viewer/server.ts";
import { tempDir } from "../helpers.ts";
import { paraboloid, TRAJECTORY, writeViewerFolder } from "./_fixtures.ts";

/** A raw GET: the path goes on the wire exactly as written (fetch would normalize "..") */
function rawGet(
  base: string,
  path: string,
  headers: Record<string, string> = {},
  method = "GET",
): Promise<{ status: number; body: string; type: string }> {
  const url = new URL(base);
  return new Promise((done, fail) => {
    const req = request({ host: url.hostname, port: url.port, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        done({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString("utf8"),
          type: String(res.headers["content-type"]),
        }),
      );
    });
    req.on("error", fail);
    req.end();
  });
}

async function getJson<T>(base: string, path: string): Promise<{ status: number; json: T; text: string }> {
  const r = await rawGet(base, path);
  return { status: r.status, json: JSON.parse(r.body) as T, text: r.body };
}

describe("viewer server", () => {
  let dir: string;
  let outside: string;
  let cleanup: () => void;
  let cleanupOutside: () => void;
  let viewer: Viewer;
  let list: SurfaceList;
  const idOf = (name: string) => {
    const e = list.surfaces.find((s) => s.name === name);
    if (e === undefined) throw new Error(`'${name}' not listed`);
    return e.id;
  };

  beforeAll(async () => {
    ({ dir, cleanup } = tempDir("losscape-viewer-"));
    ({ dir: outside, cleanup: cleanupOutside } = tempDir("losscape-viewer-outside-"));
    const data = join(dir, "runs");
    writeViewerFolder(data);
    copyFileSync(join(data, "paraboloid.h5"), join(data, "victim.h5"));
    copyFileSync(join(data, "paraboloid.h5"), join(data, "vanishing.h5"));
    // A surface outside the folder, reachable only through a symlink inside it.
    writeFileSync(join(outside, "secret.h5"), new Uint8Array(0));
    copyFileSync(join(data, "paraboloid.h5"), join(outside, "secret.h5"));
    symlinkSync(join(outside, "secret.h5"), join(data, "escape.h5"));
    symlinkSync(outside, join(data, "escape-dir"));
    symlinkSync(join(data, "line.h5"), join(data, "alias-inside.h5"));
    // A stand-in for the built app.
    const app = join(dir, "app");
    mkdirSync(join(app, "assets"), { recursive: true });
    mkdirSync(join(app, ".vite"), { recursive: true });
    writeFileSync(join(app, "index.html"), "<!doctype html><title>stand-in</title>");
    writeFileSync(join(app, "assets", "app.js"), "console.log('app');");
    writeFileSync(join(app, ".vite", "manifest.json"), "{}");
    viewer = await startViewer({ paths: [data, join(dir, "missing.h5")], appDir: app });
    list = (await getJson<SurfaceList>(viewer.url, "/api/surfaces")).json;
  });

  afterAll(async () => {
    await viewer?.close();
    cleanup?.();
    cleanupOutside?.();
  });

  test("binds to 127.0.0.1 by default", () => {
    expect(viewer.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
  });

  test("lists the surfaces under the folder, recursively, and the unreadable .h5 files with their reason", () => {
    const ok = list.surfaces.filter((s): s is SurfaceListOk => s.status === "ok").map((s) => s.name);
    expect(ok).toEqual(
      expect.arrayContaining(["paraboloid.h5", "steep.h5", "line.h5", "interp.h5", "sub/deeper.h5"]),
    );
    const broken = list.surfaces.find((s) => s.name === "broken.h5");
    expect(broken).toMatchObject({ status: "error" });
    expect(broken?.status === "error" && broken.error).toMatch(/broken\.h5.*not an HDF5 file/);
    const missing = list.surfaces.find((s) => s.name.endsWith("missing.h5"));
    expect(missing?.status === "error" && missing.error).toMatch(/not found/);
    const parab = list.surfaces.find((s) => s.name === "paraboloid.h5") as SurfaceListOk;
    expect(parab).toMatchObject({ dims: 2, nx: 15, ny: 11, trajectory: true, interpolation: false });
    expect(parab.quantities).toEqual([
      "train_loss",
      "train_acc",
      "test_loss",
      "test_acc",
      "max_eig",
      "min_eig",
    ]);
    expect(list.surfaces.find((s) => s.name === "interp.h5")).toMatchObject({ dims: 1, interpolation: true });
  });

  test("skips direction and projection files, non-.h5 files and symlinks that leave the folder", () => {
    const names = list.surfaces.map((s) => s.name);
    for (const skipped of ["pca.h5", "plain.directions.h5", "pca.h5_proj_cos.h5", "notes.txt"]) {
      expect(names).not.toContain(skipped);
    }
    expect(list.skipped).toEqual(
      expect.arrayContaining([
        { name: "pca.h5", reason: "direction file" },
        { name: "plain.directions.h5", reason: "direction file" },
        { name: "escape.h5", reason: "symlink leads out of the folder" },
        { name: "escape-dir", reason: "symlink leads out of the folder" },
      ]),
    );
    expect(names.some((n) => n.includes("escape") || n.includes("secret"))).toBe(false);
    // A symlink that stays inside names a file already listed: listed once.
    expect(names.filter((n) => n === "line.h5" || n === "alias-inside.h5")).toHaveLength(1);
  });

  test("serves a surface's values, with NaN as null and done telling diverged from not computed", async () => {
    const {
      status,
      json: s,
      text,
    } = await getJson<SurfaceJson>(viewer.url, `/api/surface?id=${idOf("paraboloid.h5")}`);
    expect(status).toBe(200);
    expect(text).not.toMatch(/NaN|Infinity/);
    const want = paraboloid();
    expect(s.x).toEqual(Array.from(want.x));
    expect(s.y).toEqual(Array.from(want.y!));
    const ny = want.y!.length;
    for (const [i, j] of [
      [10, 3],
      [3, 9],
      [14, 1],
    ] as const) {
      const k = i * ny + j;
      expect(s.values.train_loss![k]).toBe(want.values.train_loss![k]);
      expect(s.values.test_acc![k]).toBe(want.values.test_acc![k]);
      expect(s.values.min_eig![k]).toBe(want.values.min_eig![k]);
    }
    const diverged = 14 * ny + 10;
    expect(s.values.train_loss![diverged]).toBeNull();
    expect(s.done[diverged]).toBe(1);
    expect(s.values.train_loss![0]).toBeNull();
    expect(s.done[0]).toBe(0);
    expect(s.meta["direction_normalization"]).toBe("filter");
  });

  test("attaches the projected trajectory and the PCA explained variance", async () => {
    const { json: s } = await getJson<SurfaceJson>(viewer.url, `/api/surface?id=${idOf("paraboloid.h5")}`);
    expect(s.trajectory).toEqual({
      x: TRAJECTORY.x,
      y: TRAJECTORY.y,
      labels: null,
      explainedVarianceRatio: [...TRAJECTORY.ratio],
      source: "pca.h5_proj_cos.h5",
    });
    const { json: steep } = await getJson<SurfaceJson>(viewer.url, `/api/surface?id=${idOf("steep.h5")}`);
    expect(steep.trajectory).toBeNull();
  });

  test("reads reference-code files (meshgrid order, non-square) the way readSurface does", async () => {
    const ref = join(import.meta.dirname, "../../fixtures/reference-h5");
    const v = await startViewer({ paths: [ref], appDir: join(dir, "app") });
    try {
      const refList = (await getJson<SurfaceList>(v.url, "/api/surfaces")).json;
      const entry = refList.surfaces.find((s) => s.name === "surface_2d_5x3.h5");
      expect(entry).toMatchObject({ status: "ok", nx: 5, ny: 3 });
      expect(refList.skipped.map((s) => s.name)).toEqual(expect.arrayContaining(["direction_2d.h5"]));
      const { json: s } = await getJson<SurfaceJson>(v.url, `/api/surface?id=${entry!.id}`);
      const want = readSurface(join(ref, "surface_2d_5x3.h5"));
      expect(s.values.train_loss).toEqual(
        Array.from(want.values.train_loss!, (x) => (Number.isNaN(x) ? null : x)),
      );
    } finally {
      await v.close();
    }
  });

  test.each([
    ["/api/surface?id=../../etc/passwd", 403],
    ["/api/surface?id=%2Fetc%2Fpasswd", 403],
    ["/api/surface?id=..%2F..%2Fetc%2Fpasswd", 403],
    ["/api/surface?id=nosuchid", 404],
    ["/..%2f..%2fetc/passwd", 403],
    ["/../../etc/passwd", 403],
    ["/%2e%2e/%2e%2e/etc/passwd", 403],
    ["/assets/../../../../etc/passwd", 403],
    ["/assets/..%5c..%5cetc%5cpasswd", 403],
    ["/index.html%00.h5", 403],
    ["/etc/passwd", 404],
    ["//etc/passwd", 404],
    ["/runs/paraboloid.h5", 404],
    ["/paraboloid.h5", 404],
    ["/.vite/manifest.json", 404],
    ["/%ZZ", 400],
  ])("refuses %s with %i and a JSON error", async (path, status) => {
    const r = await rawGet(viewer.url, path);
    expect(r.status).toBe(status);
    expect(r.type).toMatch(/application\/json/);
    expect((JSON.parse(r.body) as ApiError).error).toEqual(expect.any(String));
    expect(r.body).not.toMatch(/root:|HDF/);
  });

  test("never serves a file reached through a symlink out of the folder, whatever the id", async () => {
    for (const id of ["escape.h5", "secret.h5", join(outside, "secret.h5")]) {
      const r = await rawGet(viewer.url, `/api/surface?id=${encodeURIComponent(id)}`);
      expect([403, 404]).toContain(r.status);
    }
  });

  test("serves the app's own files and nothing else", async () => {
    expect((await rawGet(viewer.url, "/")).body).toContain("stand-in");
    const js = await rawGet(viewer.url, "/assets/app.js");
    expect(js.status).toBe(200);
    expect(js.type).toMatch(/text\/javascript/);
  });

  test("refuses other methods and, on loopback, requests naming another host", async () => {
    expect((await rawGet(viewer.url, "/api/surfaces", {}, "POST")).status).toBe(405);
    const rebinding = await rawGet(viewer.url, "/api/surfaces", { Host: "evil.example:80" });
    expect(rebinding.status).toBe(403);
    expect(rebinding.body).toMatch(/localhost only/);
    expect((await rawGet(viewer.url, "/api/surfaces", { Host: "localhost:1234" })).status).toBe(200);
  });

  test("a corrupt file is a JSON error naming the file and the reason, and the server keeps serving", async () => {
    const broken = await getJson<ApiError>(viewer.url, `/api/surface?id=${idOf("broken.h5")}`);
    expect(broken.status).toBe(422);
    expect(broken.json.file).toBe("broken.h5");
    expect(broken.json.error).toMatch(/broken\.h5.*not an HDF5 file/);

    // A file that is damaged after it was listed.
    writeFileSync(join(dir, "runs", "victim.h5"), new Uint8Array(4096).fill(7));
    const damaged = await getJson<ApiError>(viewer.url, `/api/surface?id=${idOf("victim.h5")}`);
    expect(damaged.status).toBe(422);
    expect(damaged.json).toMatchObject({ file: "victim.h5", error: expect.stringMatching(/victim\.h5/) });

    // A file truncated mid-way.
    const bytes = readFileSync(join(dir, "runs", "steep.h5"));
    writeFileSync(join(dir, "runs", "steep.h5"), bytes.subarray(0, 600));
    const cut = await getJson<ApiError>(viewer.url, `/api/surface?id=${idOf("steep.h5")}`);
    expect(cut.status).toBe(422);
    expect(cut.json.error).toMatch(/steep\.h5/);

    // A file deleted after it was listed.
    unlinkSync(join(dir, "runs", "vanishing.h5"));
    const gone = await getJson<ApiError>(viewer.url, `/api/surface?id=${idOf("vanishing.h5")}`);
    expect([404, 422]).toContain(gone.status);
    expect(gone.json.error).toMatch(/vanishing\.h5/);

    const after = await getJson<SurfaceList>(viewer.url, "/api/surfaces");
    expect(after.status).toBe(200);
    expect(after.json.surfaces.find((s) => s.name === "victim.h5")).toMatchObject({ status: "error" });
    expect(after.json.surfaces.some((s) => s.name === "vanishing.h5")).toBe(false);
    const still = await getJson<SurfaceJson>(viewer.url, `/api/surface?id=${idOf("paraboloid.h5")}`);
    expect(still.status).toBe(200);
  });

  test("startViewer names a bad argument", async () => {
    await expect(startViewer({ paths: [] })).rejects.toThrow(/'paths' is empty/);
    await expect(startViewer({ paths: [dir], port: 70000, appDir: join(dir, "app") })).rejects.toThrow(
      /'port' is 70000/,
    );
    await expect(startViewer({ paths: [dir], appDir: join(dir, "runs") })).rejects.toThrow(/no index.html/);
  });
});
