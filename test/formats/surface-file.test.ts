import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { decodeH5, encodeH5, H5FormatError, type H5Node } from "../../src/formats/h5.ts";
import {
  emptySurface,
  parseSurface,
  readSurface,
  SURFACE_QUANTITIES,
  type Surface,
  serializeSurface,
  writeSurface,
} from "../../src/formats/surface-file.ts";

const fixtures = join(import.meta.dirname, "../../fixtures/reference-h5");
const dir = mkdtempSync(join(tmpdir(), "losscape-surface-file-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function linspace(a: number, b: number, n: number): Float64Array {
  return Float64Array.from({ length: n }, (_, k) => (n === 1 ? a : a + ((b - a) * k) / (n - 1)));
}

const f = (x: number, y: number) => x + 10 * y;

/** A surface with f(x, y) = x + 10 y (2D) or x + 10 (1D) everywhere, all points done. */
function fullSurface(x: Float64Array, y: Float64Array | null): Surface {
  const s = emptySurface(x, y, SURFACE_QUANTITIES, "dirs.h5", { seed: "3", normalization: "filter" });
  const ny = y === null ? 1 : y.length;
  for (let i = 0; i < x.length; i++) {
    for (let j = 0; j < ny; j++) {
      const k = i * ny + j;
      const v = f(x[i]!, y === null ? 1 : y[j]!);
      for (const [n, q] of SURFACE_QUANTITIES.entries()) s.values[q]![k] = v + n / 8;
      s.done[k] = 1;
    }
  }
  return s;
}

/** NaN-aware equality of a typed array with expected numbers. */
function expectSame(actual: Float64Array | undefined, expected: ArrayLike<number>): void {
  expect(actual).toBeDefined();
  expect(Array.from(actual!).map((v) => (Number.isNaN(v) ? "NaN" : v))).toEqual(
    Array.from(expected).map((v) => (Number.isNaN(v) ? "NaN" : v)),
  );
}

function expectRoundTrip(s: Surface): Surface {
  const back = parseSurface(serializeSurface(s));
  expect(back.x).toEqual(s.x);
  expect(back.y).toEqual(s.y);
  expect(back.done).toEqual(s.done);
  expect(back.dirFile).toBe(s.dirFile);
  expect(back.meta).toEqual(s.meta);
  expect(Object.keys(back.values).sort()).toEqual(Object.keys(s.values).sort());
  for (const [q, data] of Object.entries(s.values)) {
    const expected = Array.from(data, (v, k) => (s.done[k] === 1 ? v : Number.NaN));
    expectSame(back.values[q as keyof Surface["values"]], expected);
  }
  return back;
}

/** The raw [nx, ny] array of a dataset as stored in the file. */
function raw(bytes: Uint8Array, path: string) {
  return decodeH5(bytes, "raw", (r) => r.float64(path));
}

function tempFiles(): string[] {
  return readdirSync(dir).filter((name) => name.includes(".tmp"));
}

describe("surface file round trip", () => {
  it("round-trips a 1D surface with every quantity, metadata and a partial status", () => {
    const s = fullSurface(linspace(-1, 1, 7), null);
    s.done[6] = 0;
    s.done[2] = 0;
    const back = expectRoundTrip(s);
    expect(back.y).toBeNull();
    expect(back.values.train_loss![2]).toBeNaN();
    expect(back.values.train_loss![0]).toBe(9);
  });

  it("round-trips a square 2D surface", () => {
    expectRoundTrip(fullSurface(linspace(-1, 1, 4), linspace(-1, 1, 4)));
  });

  it("round-trips a non-square 2D surface and stores element [i][j] as the value at (x_i, y_j)", () => {
    const s = fullSurface(linspace(-1, 1, 5), linspace(1, 3, 3));
    expectRoundTrip(s);
    const stored = raw(serializeSurface(s), "train_loss");
    expect(stored.shape).toEqual([5, 3]);
    for (let i = 0; i < 5; i++) {
      for (let j = 0; j < 3; j++) expect(stored.data[i * 3 + j]).toBeCloseTo(f(s.x[i]!, s.y![j]!), 12);
    }
  });

  it("keeps a diverged (NaN) computed point apart from a point not yet computed", () => {
    const s = emptySurface(linspace(-1, 1, 3), linspace(0, 1, 2), ["train_loss", "test_acc"], "d.h5", {});
    s.values.train_loss!.set([1, Number.NaN, 3, Number.POSITIVE_INFINITY, 5, 6]);
    s.values.test_acc!.set([10, Number.NaN, 30, 40, 50, 60]);
    s.done.set([1, 1, 1, 1, 0, 0]);
    const bytes = serializeSurface(s);
    // In the file: NaN/Inf where computed, -1 only where not computed.
    expectSame(raw(bytes, "train_loss").data, [1, Number.NaN, 3, Number.POSITIVE_INFINITY, -1, -1]);
    expect(Array.from(raw(bytes, "losscape_status").data)).toEqual([1, 1, 1, 1, 0, 0]);
    const back = parseSurface(bytes);
    expect(Array.from(back.done)).toEqual([1, 1, 1, 1, 0, 0]);
    expectSame(back.values.train_loss, [1, Number.NaN, 3, Number.POSITIVE_INFINITY, Number.NaN, Number.NaN]);
    expectSame(back.values.test_acc, [10, Number.NaN, 30, 40, Number.NaN, Number.NaN]);
  });

  it("reads a computed value of exactly -1 in a losscape file as -1, not as missing", () => {
    const s = emptySurface(Float64Array.of(0, 1), null, ["min_eig"], "d.h5", {});
    s.values.min_eig!.set([-1, -2]);
    s.done.set([1, 1]);
    expectSame(parseSurface(serializeSurface(s)).values.min_eig, [-1, -2]);
  });

  it("writes the layout and metadata as root attributes and reads back only losscape's", () => {
    const s = fullSurface(linspace(-1, 1, 2), null);
    s.meta = { seed: "3", command: "losscape surface --x=-1:1:2", model_hash: "abc" };
    const bytes = serializeSurface(s);
    const attrs = decodeH5(bytes, "raw", (r) => r.attrs("/"));
    expect(attrs).toEqual({
      losscape_layout: "ij",
      losscape_file_version: "1",
      losscape_seed: "3",
      losscape_command: "losscape surface --x=-1:1:2",
      losscape_model_hash: "abc",
    });
    expect(parseSurface(bytes).meta).toEqual(s.meta);
  });
});

describe("emptySurface", () => {
  it("starts with every point not done and every value NaN", () => {
    const s = emptySurface(linspace(0, 1, 3), linspace(0, 1, 2), ["train_loss", "train_acc"], "d.h5", {
      a: "1",
    });
    expect(s.done).toEqual(new Uint8Array(6));
    expect(Object.keys(s.values)).toEqual(["train_loss", "train_acc"]);
    expect(Array.from(s.values.train_loss!).every(Number.isNaN)).toBe(true);
    expect(s.meta).toEqual({ a: "1" });
  });

  it("rejects unknown quantities and bad coordinates, naming them", () => {
    expect(() => emptySurface(linspace(0, 1, 3), null, ["train_los" as "train_loss"], "d.h5")).toThrow(
      /emptySurface\(\): unknown quantity 'train_los', expected one of train_loss, train_acc/,
    );
    expect(() => emptySurface(new Float64Array(0), null, [], "d.h5")).toThrow(/'x' is empty/);
    expect(() => emptySurface(Float64Array.of(0, Number.NaN), null, [], "d.h5")).toThrow(/'x\[1\]' is NaN/);
    expect(() =>
      emptySurface(Float64Array.of(0), Float64Array.of(Number.POSITIVE_INFINITY), [], "d.h5"),
    ).toThrow(/'y\[0\]' is Infinity/);
  });
});

describe("reading reference-code surface files", () => {
  it("reinterprets the meshgrid fill order on a non-square 5 x 3 grid: value(i, j) = x_i + 10 y_j", () => {
    const s = readSurface(join(fixtures, "surface_2d_5x3.h5"));
    expect(Array.from(s.x)).toEqual([-1, -0.5, 0, 0.5, 1]);
    expect(Array.from(s.y!)).toEqual([1, 2, 3]);
    expect(s.dirFile).toBe("direction_2d.h5");
    expect(s.meta).toEqual({});
    expect(Array.from(s.done)).toEqual(new Array(15).fill(1));
    for (let i = 0; i < 5; i++) {
      for (let j = 0; j < 3; j++) {
        const k = i * 3 + j;
        expect(s.values.train_loss![k]).toBeCloseTo(f(s.x[i]!, s.y![j]!), 12);
        expect(s.values.train_acc![k]).toBeCloseTo(100 - f(s.x[i]!, s.y![j]!), 12);
        // test_* was crunched for the first 6 points of the reference order (j*nx + i < 6).
        if (j * 5 + i < 6) expect(s.values.test_loss![k]).toBeCloseTo(f(s.x[i]!, s.y![j]!) + 0.5, 12);
        else expect(s.values.test_loss![k]).toBeNaN();
      }
    }
  });

  it("reinterprets the square 3 x 3 grid too (where a plain [i][j] read would silently transpose)", () => {
    const s = readSurface(join(fixtures, "surface_2d_3x3.h5"));
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++)
        expect(s.values.train_loss![i * 3 + j]).toBeCloseTo(f(s.x[i]!, s.y![j]!), 12);
    }
    expect(s.values.train_loss![0 * 3 + 2]).toBe(29); // (x=-1, y=3), not (x=1, y=1)
  });

  it("marks a point done where train_loss != -1, keeping a diverged NaN point done", () => {
    const s = readSurface(join(fixtures, "surface_2d_5x3_partial.h5"));
    // The reference computed flat indices k = j*5 + i = 0..7, the third (k = 2) diverged.
    for (let i = 0; i < 5; i++) {
      for (let j = 0; j < 3; j++) {
        const k = i * 3 + j;
        const order = j * 5 + i;
        expect(s.done[k]).toBe(order < 8 ? 1 : 0);
        if (order === 2 || order >= 8) expect(s.values.train_loss![k]).toBeNaN();
        else expect(s.values.train_loss![k]).toBeCloseTo(f(s.x[i]!, s.y![j]!), 12);
      }
    }
  });

  it("reads a 1D reference surface", () => {
    const s = readSurface(join(fixtures, "surface_1d.h5"));
    expect(s.y).toBeNull();
    expect(s.dirFile).toBe("direction_1d.h5");
    expect(Array.from(s.done)).toEqual(new Array(7).fill(1));
    for (let i = 0; i < 7; i++) expect(s.values.train_loss![i]).toBeCloseTo(s.x[i]! + 10, 12);
  });

  it("re-saves a reference surface in losscape's layout without changing a value", () => {
    const s = readSurface(join(fixtures, "surface_2d_5x3_partial.h5"));
    const back = parseSurface(serializeSurface(s));
    expect(back.done).toEqual(s.done);
    expectSame(back.values.train_loss, s.values.train_loss!);
  });
});

describe("atomic writes", () => {
  it("writes the file and leaves no temporary file behind", () => {
    const path = join(dir, "ok.h5");
    const s = fullSurface(linspace(-1, 1, 3), linspace(-1, 1, 2));
    writeSurface(path, s);
    expect(tempFiles()).toEqual([]);
    expect(readSurface(path).values.train_loss).toEqual(s.values.train_loss);
  });

  it("never clobbers the previous file when the new surface is invalid", () => {
    const path = join(dir, "keep.h5");
    writeSurface(path, fullSurface(linspace(-1, 1, 3), null));
    const before = readFileSync(path);
    const bad = fullSurface(linspace(-1, 1, 3), null);
    bad.values.train_loss = new Float64Array(2);
    expect(() => writeSurface(path, bad)).toThrow(
      /values 'train_loss' has 2 entries but the 3 grid has 3 points/,
    );
    expect(readFileSync(path)).toEqual(before);
    expect(tempFiles()).toEqual([]);
  });

  it("writes nothing at all for an invalid surface at a new path", () => {
    const path = join(dir, "never.h5");
    const bad = fullSurface(linspace(-1, 1, 3), null);
    bad.done = new Uint8Array(4);
    expect(() => writeSurface(path, bad)).toThrow(/'done' has 4 entries/);
    expect(existsSync(path)).toBe(false);
    expect(tempFiles()).toEqual([]);
  });
});

describe("invalid surfaces are rejected with the field named", () => {
  const base = () => fullSurface(linspace(-1, 1, 3), linspace(0, 1, 2));
  const cases: [string, (s: Surface) => void, RegExp][] = [
    [
      "a short values array",
      (s) => (s.values.test_acc = new Float64Array(5)),
      /values 'test_acc' has 5 entries but the 3 x 2 grid has 6 points/,
    ],
    [
      "a long done array",
      (s) => (s.done = new Uint8Array(7)),
      /'done' has 7 entries but the 3 x 2 grid has 6 points/,
    ],
    ["a status outside 0..4", (s) => (s.done[3] = 5), /'done\[3\]' is 5, expected a point status 0..4/],
    [
      "an unknown quantity",
      (s) => ((s.values as Record<string, Float64Array>)["val_loss"] = new Float64Array(6)),
      /unknown quantity 'val_loss'/,
    ],
    [
      "non-Float64Array values",
      (s) => ((s.values as Record<string, unknown>)["train_loss"] = [1, 2, 3, 4, 5, 6]),
      /values 'train_loss' must be a Float64Array/,
    ],
    ["an empty y", (s) => (s.y = new Float64Array(0)), /'y' is empty/],
    ["a reserved meta key", (s) => (s.meta = { layout: "ji" }), /meta key 'layout' is reserved/],
    [
      "a non-string meta value",
      (s) => (s.meta = { seed: 3 as unknown as string }),
      /meta 'seed' is number, expected a string/,
    ],
  ];
  for (const [what, spoil, message] of cases) {
    it(`rejects ${what}`, () => {
      const s = base();
      spoil(s);
      expect(() => serializeSurface(s)).toThrow(message);
    });
  }
});

describe("bad surface files give errors naming the file and the dataset", () => {
  /** A losscape-layout file built by hand, with `edit` applied to its datasets. */
  function handMade(
    edit: (children: Record<string, H5Node>, attrs: Record<string, string>) => void,
  ): Uint8Array {
    const children: Record<string, H5Node> = {
      dir_file: { kind: "dataset", data: "d.h5", shape: [] },
      xcoordinates: { kind: "dataset", data: Float64Array.of(0, 1, 2), shape: [3] },
      ycoordinates: { kind: "dataset", data: Float64Array.of(0, 1), shape: [2] },
      train_loss: { kind: "dataset", data: new Float64Array(6), shape: [3, 2] },
      losscape_status: { kind: "dataset", data: new Uint8Array(6).fill(1), shape: [3, 2] },
    };
    const attrs: Record<string, string> = { losscape_layout: "ij" };
    edit(children, attrs);
    return encodeH5({ kind: "group", children, attrs });
  }

  it("accepts the hand-made baseline", () => {
    expect(parseSurface(handMade(() => {})).done).toEqual(new Uint8Array(6).fill(1));
  });

  it("names a missing xcoordinates or dir_file", () => {
    const noX = handMade((c) => delete c["xcoordinates"]);
    expect(() => parseSurface(noX, { file: "s.h5" })).toThrow(
      /surface file 's\.h5': numeric dataset 'xcoordinates' is missing/,
    );
    const noDir = handMade((c) => delete c["dir_file"]);
    expect(() => parseSurface(noDir, { file: "s.h5" })).toThrow(
      /surface file 's\.h5': string dataset 'dir_file' is missing/,
    );
  });

  it("names a missing status in a losscape file", () => {
    const bytes = handMade((c) => delete c["losscape_status"]);
    expect(() => parseSurface(bytes, { file: "s.h5" })).toThrow(/'losscape_status' is missing/);
  });

  it("names a quantity whose shape does not match the grid", () => {
    const bytes = handMade((c) => {
      c["train_loss"] = { kind: "dataset", data: new Float64Array(6), shape: [2, 3] };
    });
    expect(() => parseSurface(bytes, { file: "s.h5" })).toThrow(
      /surface file 's\.h5': dataset 'train_loss' has shape \[2,3\], expected \[3,2\]/,
    );
  });

  it("rejects a status value other than 0/1 and an unknown layout", () => {
    const status = handMade((c) => {
      c["losscape_status"] = { kind: "dataset", data: Uint8Array.of(1, 1, 7, 1, 1, 1), shape: [3, 2] };
    });
    expect(() => parseSurface(status)).toThrow(/'losscape_status' holds 7 at flat index 2/);
    const layout = handMade((_c, a) => (a["losscape_layout"] = "ji"));
    expect(() => parseSurface(layout)).toThrow(/attribute 'losscape_layout' is 'ji', expected 'ij'/);
  });

  it("rejects 2D coordinates", () => {
    const bytes = handMade((c) => {
      c["xcoordinates"] = { kind: "dataset", data: Float64Array.of(0, 1, 2, 3), shape: [2, 2] };
    });
    expect(() => parseSurface(bytes, { file: "s.h5" })).toThrow(
      /dataset 'xcoordinates' has shape \[2,2\], expected a non-empty 1D array/,
    );
  });

  it("rejects non-HDF5, truncated and corrupt bytes, naming the file", () => {
    expect(() => parseSurface(new TextEncoder().encode('{"x": [1, 2]}'), { file: "s.json" })).toThrow(
      /surface file 's\.json': is not an HDF5 file/,
    );
    const bytes = readFileSync(join(fixtures, "surface_2d_5x3.h5"));
    expect(() => parseSurface(bytes.subarray(0, bytes.length - 100), { file: "cut.h5" })).toThrow(
      /surface file 'cut\.h5': .*truncated/,
    );
    const corrupt = new Uint8Array(bytes);
    corrupt.fill(0, 800, 4000);
    expect(() => parseSurface(corrupt, { file: "bad.h5" })).toThrow(H5FormatError);
    expect(() => parseSurface(corrupt, { file: "bad.h5" })).toThrow(/surface file 'bad\.h5': /);
  });

  it("reads from disk through readSurface and names the path in errors", () => {
    const path = join(dir, "garbage.h5");
    writeFileSync(path, "garbage");
    expect(() => readSurface(path)).toThrow(
      new RegExp(`surface file '${path.replaceAll(".", "\\.")}': is not an HDF5 file`),
    );
    expect(() => readSurface(join(dir, "absent.h5"))).toThrow(/ENOENT/);
  });
});
