import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  parseSafetensors,
  readSafetensors,
  type SafetensorsTensor,
  serializeSafetensors,
  tensorToFloat32,
  writeSafetensors,
} from "../../src/formats/safetensors.ts";

const dir = mkdtempSync(join(tmpdir(), "losscape-safetensors-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A file from a header (object or raw text) and data bytes; `length` overrides the declared header length. */
function file(header: unknown, data: ArrayLike<number> = [], length?: number): Uint8Array {
  const json = new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(length ?? json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function values(tensor: SafetensorsTensor | undefined): unknown[] {
  return tensor === undefined ? [] : Array.from(tensor.data as ArrayLike<unknown>);
}

function le16(values: number[]): number[] {
  return values.flatMap((v) => [v & 0xff, v >> 8]);
}

describe("safetensors round trip", () => {
  it("writes and reads back tensors, shapes, dtypes and metadata in the given order", () => {
    const path = join(dir, "model.safetensors");
    const w = new Float32Array([1.5, -2, 3.25, 0, 1e-8, 7]);
    const b = new Float32Array([0.1, 0.2]);
    const steps = new BigInt64Array([-1n, 2n ** 40n]);
    writeSafetensors(
      path,
      [
        { name: "zeta.weight", shape: [2, 3], data: w },
        { name: "alpha.bias", shape: [2], data: b },
        { name: "steps", shape: [2], data: steps },
        { name: "empty", shape: [0, 4], data: new Float32Array(0) },
      ],
      { format: "pt", seed: "42" },
    );
    const read = readSafetensors(path);
    expect([...read.tensors.keys()]).toEqual(["zeta.weight", "alpha.bias", "steps", "empty"]);
    expect(read.metadata).toEqual({ format: "pt", seed: "42" });
    const zeta = read.tensors.get("zeta.weight");
    expect(zeta?.dtype).toBe("F32");
    expect(zeta?.shape).toEqual([2, 3]);
    expect(values(zeta)).toEqual(Array.from(w));
    expect(values(read.tensors.get("alpha.bias"))).toEqual(Array.from(b));
    const stepTensor = read.tensors.get("steps");
    expect(stepTensor?.dtype).toBe("I64");
    expect(values(stepTensor)).toEqual([-1n, 2n ** 40n]);
    expect(read.tensors.get("empty")?.shape).toEqual([0, 4]);
    expect(readdirSync(dir).filter((f) => f.includes(".tmp-"))).toEqual([]);
  });

  it("pads the header with spaces so the data starts 8-byte aligned", () => {
    for (const name of ["a", "ab", "abc", "abcd", "long.tensor.name.x"]) {
      const bytes = serializeSafetensors([{ name, shape: [1], data: new Float32Array([1]) }]);
      const length = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      expect(length % 8).toBe(0);
      const header = new TextDecoder().decode(bytes.subarray(8, 8 + length));
      expect(header).toMatch(/^\{.*\} *$/);
      expect(JSON.parse(header)[name]).toEqual({ dtype: "F32", shape: [1], data_offsets: [0, 4] });
      expect(bytes.length).toBe(8 + length + 4);
    }
  });

  it("omits __metadata__ when there is none and reads it back as an empty object", () => {
    const bytes = serializeSafetensors([{ name: "x", shape: [], data: new Float32Array([3]) }]);
    expect(new TextDecoder().decode(bytes)).not.toContain("__metadata__");
    const parsed = parseSafetensors(bytes);
    expect(parsed.metadata).toEqual({});
    expect(parsed.tensors.get("x")?.shape).toEqual([]);
  });

  it("reads a tensor from an unaligned view of the file's bytes", () => {
    const bytes = serializeSafetensors([{ name: "x", shape: [3], data: new Float32Array([1, 2, 3]) }]);
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    expect(values(parseSafetensors(shifted.subarray(1)).tensors.get("x"))).toEqual([1, 2, 3]);
  });

  it("replaces an existing file in one step", () => {
    const path = join(dir, "replace.safetensors");
    writeSafetensors(path, [{ name: "x", shape: [1], data: new Float32Array([1]) }]);
    writeSafetensors(path, [{ name: "y", shape: [1], data: new Float32Array([2]) }]);
    expect([...readSafetensors(path).tensors.keys()]).toEqual(["y"]);
  });
});

describe("safetensors dtypes", () => {
  it("widens F16 to float32, including subnormals, infinities and NaN", () => {
    const halves = [0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x7c00, 0xfc00, 0x7e00, 0x8000];
    const bytes = file({ h: { dtype: "F16", shape: [9], data_offsets: [0, 18] } }, le16(halves));
    const t = parseSafetensors(bytes).tensors.get("h");
    expect(t?.dtype).toBe("F16");
    expect(t?.data).toBeInstanceOf(Float32Array);
    expect(values(t)).toEqual([1, -2, 0.5, 65504, 2 ** -24, Infinity, -Infinity, Number.NaN, -0]);
  });

  it("widens BF16 to float32", () => {
    const bytes = file(
      { b: { dtype: "BF16", shape: [3], data_offsets: [0, 6] } },
      le16([0x3f80, 0xc020, 0x4049]),
    );
    const t = parseSafetensors(bytes).tensors.get("b");
    expect(t?.data).toBeInstanceOf(Float32Array);
    expect(values(t)).toEqual([1, -2.5, 3.140625]);
  });

  it("reads F64, I32, I64, U8 and BOOL into their own typed arrays", () => {
    const f64 = new Uint8Array(new Float64Array([Math.PI, -1]).buffer);
    const i32 = new Uint8Array(new Int32Array([-5, 70000]).buffer);
    const i64 = new Uint8Array(new BigInt64Array([-3n, 9007199254740993n]).buffer);
    const data = [...f64, ...i32, ...i64, 7, 255, 1, 0];
    const bytes = file(
      {
        d: { dtype: "F64", shape: [2], data_offsets: [0, 16] },
        i: { dtype: "I32", shape: [2, 1], data_offsets: [16, 24] },
        l: { dtype: "I64", shape: [2], data_offsets: [24, 40] },
        u: { dtype: "U8", shape: [2], data_offsets: [40, 42] },
        m: { dtype: "BOOL", shape: [2], data_offsets: [42, 44] },
      },
      data,
    );
    const { tensors } = parseSafetensors(bytes);
    expect(tensors.get("d")?.data).toEqual(new Float64Array([Math.PI, -1]));
    expect(tensors.get("i")?.data).toEqual(new Int32Array([-5, 70000]));
    expect(tensors.get("l")?.data).toEqual(new BigInt64Array([-3n, 9007199254740993n]));
    expect(tensors.get("u")?.data).toEqual(new Uint8Array([7, 255]));
    expect(tensors.get("m")?.data).toEqual(new Uint8Array([1, 0]));
    const asFloat = tensorToFloat32(tensors.get("l") as NonNullable<ReturnType<typeof tensors.get>>);
    expect(Array.from(asFloat)).toEqual([-3, 9007199254740992]);
  });

  it("writes the dtype that matches the typed array", () => {
    const bytes = serializeSafetensors([
      { name: "a", shape: [1], data: new Float64Array([0.5]) },
      { name: "b", shape: [1], data: new Int32Array([-4]) },
      { name: "c", shape: [2], data: new Uint8Array([1, 2]) },
    ]);
    const { tensors } = parseSafetensors(bytes);
    expect([...tensors.values()].map((t) => t.dtype)).toEqual(["F64", "I32", "U8"]);
    expect(tensors.get("b")?.data).toEqual(new Int32Array([-4]));
  });
});

describe("safetensors bad input", () => {
  it("rejects a header length beyond the file size", () => {
    const bytes = new Uint8Array(400);
    new DataView(bytes.buffer).setBigUint64(0, 912n, true);
    expect(() => parseSafetensors(bytes, { file: "w.safetensors" })).toThrow(
      /^w\.safetensors: safetensors header length 912 exceeds file size 400/,
    );
    expect(() => parseSafetensors(new Uint8Array(5), { file: "tiny" })).toThrow(
      /tiny: file is 5 bytes, too short for the 8-byte safetensors header length/,
    );
  });

  it("rejects a header that is not JSON, not UTF-8 or not an object", () => {
    expect(() => parseSafetensors(file("{not json"), { file: "j" })).toThrow(
      /^j: safetensors header \(9 bytes at offset 8\) is not valid JSON: /,
    );
    const latin = file("{}");
    latin[9] = 0xff;
    expect(() => parseSafetensors(latin, { file: "u" })).toThrow(
      /u: safetensors header .* is not valid UTF-8/,
    );
    expect(() => parseSafetensors(file([1, 2]), { file: "a" })).toThrow(
      /a: safetensors header must be a JSON object, got \[1,2\]/,
    );
  });

  it("rejects an unknown dtype, naming the tensor and the supported ones", () => {
    const bytes = file({ w: { dtype: "F8_E5M2", shape: [2], data_offsets: [0, 2] } }, [0, 0]);
    expect(() => parseSafetensors(bytes, { file: "f" })).toThrow(
      /f: tensor 'w': unsupported dtype "F8_E5M2"; expected one of F64, F32, F16, BF16, I64/,
    );
    const proto = file({ w: { dtype: "toString", shape: [1], data_offsets: [0, 1] } }, [0]);
    expect(() => parseSafetensors(proto)).toThrow(/tensor 'w': unsupported dtype "toString"/);
  });

  it("rejects malformed shapes and offsets", () => {
    const shape = file({ w: { dtype: "F32", shape: [2, -1], data_offsets: [0, 8] } }, new Array(8).fill(0));
    expect(() => parseSafetensors(shape, { file: "s" })).toThrow(
      /s: tensor 'w': 'shape' must be an array of non-negative integers, got \[2,-1\]/,
    );
    const offsets = file({ w: { dtype: "F32", shape: [1], data_offsets: [4, 0] } }, new Array(4).fill(0));
    expect(() => parseSafetensors(offsets, { file: "o" })).toThrow(
      /o: tensor 'w': 'data_offsets' must be \[begin, end\] with 0 <= begin <= end, got \[4,0\]/,
    );
    expect(() => parseSafetensors(file({ w: 3 }), { file: "e" })).toThrow(
      /e: tensor 'w': expected \{dtype, shape, data_offsets\}, got 3/,
    );
  });

  it("rejects offsets that do not match shape times dtype size", () => {
    const bytes = file({ w: { dtype: "F32", shape: [3, 4], data_offsets: [0, 40] } }, new Array(40).fill(0));
    expect(() => parseSafetensors(bytes, { file: "m" })).toThrow(
      /m: tensor 'w': shape \[3, 4\] of F32 needs 48 bytes but data_offsets \[0, 40\] cover 40/,
    );
  });

  it("rejects offsets past the end of a truncated file", () => {
    const full = serializeSafetensors([{ name: "w", shape: [4], data: new Float32Array(4) }]);
    const cut = full.subarray(0, full.length - 6);
    expect(() => parseSafetensors(cut, { file: "cut.safetensors" })).toThrow(
      /cut\.safetensors: tensor 'w': data_offsets \[0, 16\] run past the end of the data section \(10 bytes from offset \d+\); is the file truncated\?/,
    );
  });

  it("rejects overlapping tensors, gaps and trailing bytes", () => {
    const overlap = file(
      {
        a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
        b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
      },
      new Array(12).fill(0),
    );
    expect(() => parseSafetensors(overlap, { file: "ov" })).toThrow(
      /ov: tensors 'a' \(data_offsets \[0, 8\]\) and 'b' \(\[4, 12\]\) overlap/,
    );
    const gap = file(
      {
        a: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
        b: { dtype: "F32", shape: [1], data_offsets: [8, 12] },
      },
      new Array(12).fill(0),
    );
    expect(() => parseSafetensors(gap, { file: "gap" })).toThrow(
      /gap: tensor 'b' starts at data offset 8, leaving 4 unused bytes after tensor 'a' \(ends at 4\)/,
    );
    const trailing = file({ a: { dtype: "U8", shape: [1], data_offsets: [0, 1] } }, [1, 2, 3]);
    expect(() => parseSafetensors(trailing, { file: "tr" })).toThrow(
      /tr: the data section has 3 bytes .* but the tensors cover only 1: 2 trailing bytes/,
    );
  });

  it("rejects non-string metadata", () => {
    const bytes = file({ __metadata__: { epoch: 3 } });
    expect(() => parseSafetensors(bytes, { file: "meta" })).toThrow(
      /meta: "__metadata__" value of 'epoch' must be a string, got 3/,
    );
  });

  it("refuses to write bad tensors and leaves the existing file untouched", () => {
    const path = join(dir, "keep.safetensors");
    writeSafetensors(path, [{ name: "w", shape: [2], data: new Float32Array([1, 2]) }]);
    const before = readFileSync(path);
    expect(() => writeSafetensors(path, [{ name: "w", shape: [3], data: new Float32Array([1, 2]) }])).toThrow(
      /serializeSafetensors\(\): tensor 0 \('w'\): shape \[3\] has 3 values but 'data' has 2/,
    );
    expect(() =>
      writeSafetensors(path, [
        { name: "w", shape: [1], data: new Float32Array(1) },
        { name: "w", shape: [1], data: new Float32Array(1) },
      ]),
    ).toThrow(/tensor 1 \('w'\): the name 'w' is already used by an earlier tensor/);
    expect(() =>
      writeSafetensors(path, [{ name: "__metadata__", shape: [1], data: new Float32Array(1) }]),
    ).toThrow(/'name' must be a non-empty string other than "__metadata__"/);
    expect(() =>
      writeSafetensors(path, [{ name: "w", shape: [1], data: new Float32Array(1) }], {
        epoch: 3 as unknown as string,
      }),
    ).toThrow(/metadata 'epoch' must be a string, got 3/);
    expect(readFileSync(path)).toEqual(before);
    expect(readdirSync(dir).filter((f) => f.includes(".tmp-"))).toEqual([]);
  });

  it("cleans up the temporary file when the rename fails", () => {
    // A non-empty directory at the target path makes the rename fail.
    const target = join(dir, "is-a-directory");
    const blocker = join(target, "child");
    mkdirSync(blocker, { recursive: true });
    expect(() => writeSafetensors(target, [{ name: "w", shape: [1], data: new Float32Array(1) }])).toThrow();
    expect(existsSync(`${target}.tmp-${process.pid}`)).toBe(false);
    expect(existsSync(blocker)).toBe(true);
  });
});
