import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { halfToFloat, type NpyData, openNpy, parseNpy, parseNpyHeader, readNpy } from "../../src/data/npy.ts";

// Written by fixtures/data_formats.py (NumPy); expected.json holds what it wrote.
const DIR = join(import.meta.dirname, "..", "..", "fixtures", "data", "formats");
interface Written {
  file: string;
  descr: string;
  shape: number[];
  values?: number[];
  bits?: string[];
}
const EXPECTED = JSON.parse(readFileSync(join(DIR, "..", "expected.json"), "utf8")) as {
  npy: Record<string, Written>;
  versions: Record<string, Written>;
};

/** Elements as numbers, or floats as the hex bits of their float32 (float64 for a Float64Array of floats). */
function asWritten(data: NpyData, written: Written): string[] | number[] {
  if (written.values) return Array.from(data, Number);
  const hex = (v: number | bigint, digits: number) => `0x${v.toString(16).padStart(digits, "0")}`;
  if (written.bits?.[0]?.length === 18)
    return Array.from(new BigUint64Array(Float64Array.from(data).buffer), (v) => hex(v, 16));
  return Array.from(new Uint32Array(Float32Array.from(data).buffer), (v) => hex(v, 8));
}

describe("parseNpy", () => {
  it("reads every dtype NumPy wrote, bit for bit (float16 widened, int64 exact, bool as 0/1)", () => {
    const types: Record<string, string> = {
      bool: "Uint8Array",
      uint8: "Uint8Array",
      int8: "Int8Array",
      uint16: "Uint16Array",
      int16: "Int16Array",
      uint32: "Uint32Array",
      int32: "Int32Array",
      uint64: "Float64Array",
      int64: "Float64Array",
      float16: "Float32Array",
      float32: "Float32Array",
      float64: "Float64Array",
    };
    for (const [dtype, written] of Object.entries(EXPECTED.npy)) {
      const a = readNpy(join(DIR, written.file));
      expect(a.dtype).toBe(dtype);
      expect(a.descr).toBe(written.descr);
      expect(a.shape).toEqual(written.shape);
      expect(a.fortranOrder).toBe(false);
      expect(a.version).toBe("1.0");
      expect(a.data.constructor.name).toBe(types[dtype]);
      expect(asWritten(a.data, written)).toEqual(written.values ?? written.bits);
    }
  });

  it("reads format versions 2.0 and 3.0 (uint32 header lengths)", () => {
    for (const [version, written] of Object.entries(EXPECTED.versions)) {
      const a = readNpy(join(DIR, written.file));
      expect(a.version).toBe(version);
      expect(a.shape).toEqual(written.shape);
      expect(asWritten(a.data, written)).toEqual(written.values ?? written.bits);
    }
  });

  it("converts float16 exactly: subnormals, limits, signed zero, infinities and NaN", () => {
    expect(halfToFloat(0x3c00)).toBe(1);
    expect(halfToFloat(0x0001)).toBe(2 ** -24);
    expect(halfToFloat(0x03ff)).toBe(1023 * 2 ** -24);
    expect(halfToFloat(0x0400)).toBe(2 ** -14);
    expect(halfToFloat(0x7bff)).toBe(65504);
    expect(halfToFloat(0xc000)).toBe(-2);
    expect(Object.is(halfToFloat(0x8000), -0)).toBe(true);
    expect(halfToFloat(0x7c00)).toBe(Infinity);
    expect(halfToFloat(0xfc00)).toBe(-Infinity);
    expect(halfToFloat(0x7e00)).toBeNaN();
  });

  it("rejects bad files, naming the file and what was expected", () => {
    const bad = (name: string) => () => readNpy(join(DIR, name));
    expect(bad("truncated.npy")).toThrow(
      /truncated\.npy: header says <f4 shape \(4, 4\) \(64 bytes\) but 30 bytes follow at offset 128 \(the file is truncated\)/,
    );
    expect(bad("trailing.npy")).toThrow(
      /trailing\.npy: header says <f4 shape \(4, 4\) \(64 bytes\) but 67 bytes follow at offset 128: 3 unexpected bytes from offset 192/,
    );
    expect(bad("bigendian.npy")).toThrow(
      /bigendian\.npy: dtype '>f4' is big-endian; only little-endian arrays are read/,
    );
    expect(bad("fortran.npy")).toThrow(
      /fortran\.npy: array is stored in Fortran order \(fortran_order True\); only C order is read/,
    );
    expect(bad("badmagic.npy")).toThrow(
      /badmagic\.npy: not an \.npy file: magic at offset 0 is 50 4b 03 04 20 74, expected 93 4e 55 4d 50 59/,
    );
    expect(bad("int64_overflow.npy")).toThrow(
      /int64_overflow\.npy: int64 element 1 is 9007199254740992, beyond ±9007199254740991 \(2\^53 - 1\)/,
    );
    expect(bad("structured.npy")).toThrow(
      /structured\.npy: \.npy 'descr' is \[\["a","<i4"\],\["b","<f4"\]\]; structured dtypes are not read, expected one of \|b1, \|u1/,
    );
  });

  it("rejects damaged headers: too short, unknown version, overlong length, unknown dtype, bad literal", () => {
    const header = (dict: string, major = 1): Uint8Array => {
      const text = new TextEncoder().encode(dict);
      const out = new Uint8Array(10 + text.length);
      out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
      new DataView(out.buffer).setUint16(8, text.length, true);
      out.set(text, 10);
      return out;
    };
    expect(() => parseNpy(new Uint8Array(4), { file: "a.npy" })).toThrow(
      /a\.npy: 4 bytes is too short for an \.npy file/,
    );
    expect(() => parseNpy(header("{}", 4), { file: "b.npy" })).toThrow(
      /b\.npy: \.npy format version 4\.0 at offset 6; expected 1\.0, 2\.0 or 3\.0/,
    );
    const long = header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }");
    expect(() => parseNpyHeader(long.subarray(0, 30), { file: "c.npy" })).toThrow(
      /c\.npy: \.npy header length 57 \(offset 10\) exceeds the 20 bytes that follow/,
    );
    expect(() =>
      parseNpy(header("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }"), { file: "d.npy" }),
    ).toThrow(/d\.npy: \.npy dtype '<c8' is not read; expected one of \|b1/);
    expect(() => parseNpy(header("{'descr': '<f4', 'shape': (1,), }"), { file: "e.npy" })).toThrow(
      /e\.npy: \.npy header has no 'fortran_order' key/,
    );
    expect(() =>
      parseNpy(header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,"), { file: "f.npy" }),
    ).toThrow(/f\.npy: \.npy header is not a valid dict literal/);
    const scalar = parseNpy(
      new Uint8Array([...header("{'descr': '<i4', 'fortran_order': False, 'shape': (), }"), 7, 0, 0, 0]),
    );
    expect(scalar.shape).toEqual([]);
    expect(Array.from(scalar.data)).toEqual([7]);
  });
});

describe("openNpy", () => {
  it("reads rows by offset, the same values as the whole file", () => {
    const whole = readNpy(join(DIR, "images_nhwc.npy"));
    const file = openNpy(join(DIR, "images_nhwc.npy"));
    expect(file.shape).toEqual([6, 5, 4, 3]);
    expect(file.rows).toBe(6);
    expect(file.dataOffset).toBe(128);
    expect(Array.from(file.readRows(2, 3))).toEqual(Array.from(whole.data.subarray(2 * 60, 5 * 60)));
    for (const written of Object.values(EXPECTED.npy)) {
      const f = openNpy(join(DIR, written.file));
      expect(asWritten(f.readRows(1, 2), written)).toEqual((written.values ?? written.bits)?.slice(4, 12));
    }
    expect(() => file.readRows(5, 2)).toThrow(/images_nhwc\.npy: readRows\(5, 2\) is outside rows 0\.\.5/);
  });

  it("checks the file length and header when opening", () => {
    expect(() => openNpy(join(DIR, "truncated.npy"))).toThrow(
      /truncated\.npy: header says <f4 shape \(4, 4\)/,
    );
    expect(() => openNpy(join(DIR, "bigendian.npy"))).toThrow(/bigendian\.npy: dtype '>f4' is big-endian/);
    expect(() => openNpy(join(DIR, "badmagic.npy"))).toThrow(/badmagic\.npy: not an \.npy file/);
  });
});
