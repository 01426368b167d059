import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  type DirectionFile,
  type DirectionTensor,
  parseDirectionFile,
  readDirectionFile,
  serializeDirectionFile,
  writeDirectionFile,
} from "../../src/formats/direction-file.ts";
import { decodeH5, encodeH5, type H5Node } from "../../src/formats/h5.ts";

const fixtures = join(import.meta.dirname, "../../fixtures/reference-h5");
const dir = mkdtempSync(join(tmpdir(), "losscape-direction-file-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Shapes of make_reference_h5.py's directions: 11 tensors (so "10" sorts before "2"), the last a scalar. */
const SHAPES = [[4, 3, 3, 3], [4], [4], [4], [6, 4, 1, 1], [6], [6], [6], [2, 6], [2], []];

/** d[t].flat[e] = sign * (t + 1) + e / 1000, as make_reference_h5.py writes (rounded to float32). */
function pattern(sign: number, names = true): DirectionTensor[] {
  return SHAPES.map((shape, t) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = Float32Array.from({ length: n }, (_, e) => sign * (t + 1) + e / 1000);
    return { name: names ? `layer${t}.weight` : "", shape, data };
  });
}

function tempFiles(): string[] {
  return readdirSync(dir).filter((name) => name.includes(".tmp"));
}

describe("direction file round trip", () => {
  it("round-trips two directions with names, shapes (a scalar included), metadata and PCA fields", () => {
    const d: DirectionFile = {
      x: pattern(1),
      y: pattern(-1),
      meta: {
        seed: "42",
        normalization: "filter",
        ignore: "biasbn",
        mode: "weights",
        model_hash: "sha256:ab",
      },
      explainedVarianceRatio: Float64Array.of(0.482, 0.213),
      singularValues: Float64Array.of(12.5, 8.25),
      explainedVariance: Float64Array.of(3.5, 1.5),
    };
    expect(parseDirectionFile(serializeDirectionFile(d))).toEqual(d);
  });

  it("round-trips a 1D direction (no ydirection) and keeps tensors in model order past index 9", () => {
    const d: DirectionFile = { x: pattern(1), y: null, meta: {} };
    const back = parseDirectionFile(serializeDirectionFile(d));
    expect(back).toEqual(d);
    expect(back.x.map((t) => t.name)).toEqual(SHAPES.map((_, t) => `layer${t}.weight`));
  });

  it("stores float32 datasets 0..n-1 with a 'name' attribute, and none for an unknown name", () => {
    const x = pattern(1, false);
    x[0]!.name = "conv1.weight";
    const bytes = serializeDirectionFile({ x, y: null, meta: { seed: "1" } });
    decodeH5(bytes, "raw", (r) => {
      expect(
        r
          .keys("xdirection")
          .map(Number)
          .sort((a, b) => a - b),
      ).toEqual(SHAPES.map((_, t) => t));
      expect(r.has("ydirection")).toBe(false);
      expect(r.attrs("xdirection/0")).toEqual({ name: "conv1.weight" });
      expect(r.attrs("xdirection/1")).toEqual({});
      expect(r.attrs("/")).toEqual({ losscape_file_version: "1", losscape_seed: "1" });
    });
    expect(parseDirectionFile(bytes).x.map((t) => t.name)).toEqual([
      "conv1.weight",
      ...new Array(10).fill(""),
    ]);
  });
});

describe("reading reference-code direction files", () => {
  it("reads xdirection and ydirection in numeric order with empty names", () => {
    const d = readDirectionFile(join(fixtures, "direction_2d.h5"));
    expect(d.meta).toEqual({});
    expect(d.x).toEqual(pattern(1, false));
    expect(d.y).toEqual(pattern(-1, false));
    expect(d.explainedVarianceRatio).toBeUndefined();
  });

  it("reads a 1D direction file with y null", () => {
    const d = readDirectionFile(join(fixtures, "direction_1d.h5"));
    expect(d.y).toBeNull();
    expect(d.x).toHaveLength(11);
    expect(d.x[10]).toEqual({ name: "", shape: [], data: Float32Array.of(11) });
  });

  it("reads the PCA fields of a trajectory direction file", () => {
    const d = readDirectionFile(join(fixtures, "direction_pca.h5"));
    expect(d.explainedVarianceRatio).toEqual(Float64Array.of(0.482, 0.213));
    expect(d.singularValues).toEqual(Float64Array.of(12.5, 8.25));
    expect(d.explainedVariance).toEqual(Float64Array.of(3.5, 1.5));
  });

  it("reads float64 direction datasets as float32", () => {
    const bytes = encodeH5({
      kind: "group",
      children: {
        xdirection: {
          kind: "group",
          children: { "0": { kind: "dataset", data: Float64Array.of(0.1, 2), shape: [2] } },
        },
      },
    });
    expect(parseDirectionFile(bytes).x[0]!.data).toEqual(Float32Array.of(0.1, 2));
  });
});

describe("bad direction files give errors naming the file and the dataset", () => {
  const ds = (n: number): H5Node => ({ kind: "dataset", data: new Float32Array(n), shape: [n] });
  const file = (children: Record<string, H5Node>) => encodeH5({ kind: "group", children });
  const grp = (children: Record<string, H5Node>): H5Node => ({ kind: "group", children });

  it("names a missing xdirection group", () => {
    expect(() => parseDirectionFile(file({ ydirection: grp({ "0": ds(1) }) }), { file: "d.h5" })).toThrow(
      /direction file 'd\.h5': group 'xdirection' is missing/,
    );
  });

  it("names a gap in the numbered datasets, a stray name and an empty group", () => {
    expect(() =>
      parseDirectionFile(file({ xdirection: grp({ "0": ds(1), "2": ds(1) }) }), { file: "d.h5" }),
    ).toThrow(/direction file 'd\.h5': group 'xdirection' lacks dataset 'xdirection\/1'/);
    expect(() => parseDirectionFile(file({ xdirection: grp({ "0": ds(1), bias: ds(1) }) }))).toThrow(
      /group 'xdirection' has 'bias', expected datasets named 0, 1, .../,
    );
    expect(() => parseDirectionFile(file({ xdirection: grp({}) }))).toThrow(/group 'xdirection' is empty/);
    expect(() => parseDirectionFile(file({ xdirection: grp({ "0": grp({}) }) }))).toThrow(
      /'xdirection\/0' is a group, expected numeric dataset/,
    );
  });

  it("rejects x and y directions that do not pair up", () => {
    const count = file({ xdirection: grp({ "0": ds(2), "1": ds(3) }), ydirection: grp({ "0": ds(2) }) });
    expect(() => parseDirectionFile(count, { file: "d.h5" })).toThrow(
      /direction file 'd\.h5': xdirection has 2 tensors but ydirection has 1/,
    );
    const shape = file({ xdirection: grp({ "0": ds(2) }), ydirection: grp({ "0": ds(3) }) });
    expect(() => parseDirectionFile(shape)).toThrow(
      /tensor 0 has shape \[2\] in xdirection but \[3\] in ydirection/,
    );
  });

  it("rejects non-HDF5 and truncated bytes, naming the file", () => {
    expect(() => parseDirectionFile(new Uint8Array(64), { file: "zeros.h5" })).toThrow(
      /direction file 'zeros\.h5': is not an HDF5 file/,
    );
    const bytes = readFileSync(join(fixtures, "direction_2d.h5"));
    expect(() => parseDirectionFile(bytes.subarray(0, 5000), { file: "cut.h5" })).toThrow(
      /direction file 'cut\.h5': .*truncated/,
    );
  });
});

describe("invalid directions are rejected before anything is written", () => {
  const base = (): DirectionFile => ({ x: pattern(1), y: pattern(-1), meta: { seed: "0" } });
  const cases: [string, (d: DirectionFile) => void, RegExp][] = [
    [
      "data that does not fill its shape",
      (d) => (d.x[1]!.data = new Float32Array(3)),
      /x\[1\] \('layer1\.weight'\): 'data' has 3 values but shape \[4\] needs 4/,
    ],
    [
      "a non-float32 tensor",
      (d) => (d.y![0]!.data = new Float64Array(108) as unknown as Float32Array),
      /y\[0\].*must be a Float32Array/,
    ],
    ["a y with fewer tensors", (d) => d.y!.pop(), /xdirection has 11 tensors but ydirection has 10/],
    [
      "a y tensor of another shape",
      (d) => (d.y![8] = { name: "", shape: [6, 2], data: new Float32Array(12) }),
      /tensor 8 has shape \[2,6\] in xdirection but \[6,2\] in ydirection/,
    ],
    ["no tensors", (d) => (d.x = []), /'x' has no tensors/],
    [
      "a negative dimension",
      (d) => (d.x[1]!.shape = [-4]),
      /x\[1\].*'shape' must be an array of non-negative integers/,
    ],
    ["a reserved meta key", (d) => (d.meta = { file_version: "9" }), /meta key 'file_version' is reserved/],
    ["a non-string meta value", (d) => (d.meta = { seed: 0 as unknown as string }), /meta 'seed' is number/],
    [
      "a non-Float64Array PCA field",
      (d) => (d.singularValues = [1, 2] as unknown as Float64Array),
      /'singularValues' must be a Float64Array/,
    ],
  ];
  for (const [what, spoil, message] of cases) {
    it(`rejects ${what}`, () => {
      const d = base();
      spoil(d);
      expect(() => serializeDirectionFile(d)).toThrow(message);
    });
  }

  it("keeps the previous file and leaves no temporary file when the new directions are invalid", () => {
    const path = join(dir, "dirs.h5");
    writeDirectionFile(path, base());
    const before = readFileSync(path);
    const bad = base();
    bad.x[0]!.data = new Float32Array(1);
    expect(() => writeDirectionFile(path, bad)).toThrow(/'data' has 1 values/);
    expect(readFileSync(path)).toEqual(before);
    expect(readDirectionFile(path)).toEqual(base());
    expect(tempFiles()).toEqual([]);
    expect(() => writeDirectionFile(join(dir, "new.h5"), bad)).toThrow(/'data' has 1 values/);
    expect(existsSync(join(dir, "new.h5"))).toBe(false);
  });
});
