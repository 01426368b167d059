import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { decodeH5, encodeH5, H5FormatError, type H5GroupNode } from "../../src/formats/h5.ts";

const fixtures = join(import.meta.dirname, "../../fixtures/reference-h5");

const tree: H5GroupNode = {
  kind: "group",
  attrs: { losscape_layout: "ij", note: "héllo" },
  children: {
    title: { kind: "dataset", data: "dir.h5", shape: [] },
    grid: { kind: "dataset", data: Float64Array.of(1, 2, 3, 4, 5, 6), shape: [2, 3] },
    inner: {
      kind: "group",
      children: {
        "0": { kind: "dataset", data: Float32Array.of(0.5, -1.5), shape: [2], attrs: { name: "fc.bias" } },
        "1": { kind: "dataset", data: Float32Array.of(7), shape: [] },
        flags: { kind: "dataset", data: Uint8Array.of(0, 1, 1), shape: [3] },
      },
    },
  },
};

afterEach(() => vi.restoreAllMocks());

describe("encodeH5 / decodeH5", () => {
  it("round-trips groups, numeric and string datasets, scalars and string attributes", () => {
    const bytes = encodeH5(tree);
    decodeH5(bytes, "test file", (r) => {
      expect(r.keys("/").sort()).toEqual(["grid", "inner", "title"]);
      expect(r.kind("inner")).toBe("group");
      expect(r.kind("grid")).toBe("dataset");
      expect(r.kind("nothing")).toBeNull();
      expect(r.has("inner/0")).toBe(true);
      expect(r.has("inner/9")).toBe(false);
      expect(r.string("title")).toBe("dir.h5");
      expect(r.float64("grid")).toEqual({ data: Float64Array.of(1, 2, 3, 4, 5, 6), shape: [2, 3] });
      expect(r.float32("inner/0")).toEqual({ data: Float32Array.of(0.5, -1.5), shape: [2] });
      expect(r.float32("inner/1")).toEqual({ data: Float32Array.of(7), shape: [] });
      expect(Array.from(r.float64("inner/flags").data)).toEqual([0, 1, 1]);
      expect(r.attrs("/")).toEqual({ losscape_layout: "ij", note: "héllo" });
      expect(r.attrs("inner/0")).toEqual({ name: "fc.bias" });
    });
  });

  it("names the file and the path when a dataset is missing or has the wrong kind", () => {
    const bytes = encodeH5(tree);
    expect(() => decodeH5(bytes, "test file 'a.h5'", (r) => r.float64("missing"))).toThrow(
      /test file 'a\.h5': numeric dataset 'missing' is missing/,
    );
    expect(() => decodeH5(bytes, "test file 'a.h5'", (r) => r.float64("inner"))).toThrow(
      /test file 'a\.h5': 'inner' is a group, expected numeric dataset/,
    );
    expect(() => decodeH5(bytes, "f", (r) => r.float64("title"))).toThrow(
      /dataset 'title' has type .*expected numbers/,
    );
    expect(() => decodeH5(bytes, "f", (r) => r.string("grid"))).toThrow(
      /dataset 'grid' has type .*expected a string/,
    );
    expect(() => decodeH5(bytes, "f", (r) => r.keys("grid"))).toThrow(
      /'grid' is a dataset, expected a group/,
    );
  });

  it("rejects non-HDF5, empty, truncated and corrupt bytes with the file's name", () => {
    expect(() => decodeH5(new TextEncoder().encode("not hdf5 at all"), "x 'a.txt'", () => 0)).toThrow(
      /x 'a\.txt': is not an HDF5 file \(no HDF5 signature/,
    );
    expect(() => decodeH5(new Uint8Array(0), "x 'e.h5'", () => 0)).toThrow(/x 'e\.h5': is empty/);
    const bytes = readFileSync(join(fixtures, "surface_2d_5x3.h5"));
    expect(() => decodeH5(bytes.subarray(0, 3000), "x 't.h5'", () => 0)).toThrow(H5FormatError);
    expect(() => decodeH5(bytes.subarray(0, 3000), "x 't.h5'", () => 0)).toThrow(/x 't\.h5': .*truncated/);
    // The superblock survives but everything behind it is garbage.
    const corrupt = new Uint8Array(bytes);
    corrupt.fill(0xa5, 96);
    expect(() => decodeH5(corrupt, "x 'c.h5'", (r) => r.float64("xcoordinates"))).toThrow(/x 'c\.h5': /);
  });

  it("keeps HDF5's diagnostic stack off stderr and stays usable after a failure", () => {
    const stderr = vi.spyOn(process.stderr, "write");
    const bytes = readFileSync(join(fixtures, "surface_2d_5x3.h5"));
    expect(() => decodeH5(bytes.subarray(0, 2000), "x", () => 0)).toThrow(H5FormatError);
    expect(stderr).not.toHaveBeenCalled();
    expect(decodeH5(bytes, "x", (r) => r.float64("xcoordinates").data.length)).toBe(5);
  });

  it("checks shapes and names before writing anything", () => {
    const bad = (node: H5GroupNode["children"][string]) => () =>
      encodeH5({ kind: "group", children: { d: node } });
    expect(bad({ kind: "dataset", data: Float64Array.of(1, 2, 3), shape: [2, 2] })).toThrow(
      /encodeH5\(\): dataset '\/d' has 3 values but shape \[2,2\] needs 4/,
    );
    expect(bad({ kind: "dataset", data: "s", shape: [1] })).toThrow(/string dataset '\/d' must be scalar/);
    expect(bad({ kind: "dataset", data: Float64Array.of(1), shape: [-1] })).toThrow(/invalid shape/);
    expect(() =>
      encodeH5({ kind: "group", children: { "a/b": { kind: "dataset", data: "s", shape: [] } } }),
    ).toThrow(/invalid name 'a\/b'/);
  });
});
