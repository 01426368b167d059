import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { type NpyArray, readNpy } from "../../src/data/npy.ts";
import { openNpz, parseNpz, readNpz } from "../../src/data/npz.ts";
import { tempDir } from "../helpers.ts";

// Written by fixtures/data_formats.py (np.savez, np.savez_compressed); expected.json holds what it wrote.
const DIR = join(import.meta.dirname, "..", "..", "fixtures", "data", "formats");
interface Written {
  descr: string;
  shape: number[];
  values?: number[];
  bits?: string[];
}
const EXPECTED = JSON.parse(readFileSync(join(DIR, "..", "expected.json"), "utf8")) as {
  npz: { images: Record<string, Written>; regression: Record<string, Written> };
};
const { dir, cleanup } = tempDir("losscape-npz-");
afterAll(cleanup);

function expectWritten(a: NpyArray, written: Written): void {
  expect(a.descr).toBe(written.descr);
  expect(a.shape).toEqual(written.shape);
  if (written.values) expect(Array.from(a.data, Number)).toEqual(written.values);
  else {
    const hex = (v: number | bigint, digits: number) => `0x${v.toString(16).padStart(digits, "0")}`;
    const bits =
      a.dtype === "float64"
        ? Array.from(new BigUint64Array(Float64Array.from(a.data).buffer), (v) => hex(v, 16))
        : Array.from(new Uint32Array(Float32Array.from(a.data).buffer), (v) => hex(v, 8));
    expect(bits).toEqual(written.bits);
  }
}

/**
 * A zip of stored members whose central directory uses zip64 records for every size and offset (as a writer
 * does past 4 GiB), followed by a zip64 end record and locator.
 */
function zip64(members: [string, Uint8Array][]): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const [name, data] of members) {
    const nameBytes = new TextEncoder().encode(name);
    const local = new Uint8Array(30 + nameBytes.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 45, true);
    lv.setUint32(14, crc32(data), true);
    lv.setUint32(18, data.length, true);
    lv.setUint32(22, data.length, true);
    lv.setUint16(26, nameBytes.length, true);
    local.set(nameBytes, 30);
    const entry = new Uint8Array(46 + nameBytes.length + 28);
    const cv = new DataView(entry.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(6, 45, true);
    cv.setUint32(16, crc32(data), true);
    cv.setUint32(20, 0xffffffff, true);
    cv.setUint32(24, 0xffffffff, true);
    cv.setUint16(28, nameBytes.length, true);
    cv.setUint16(30, 28, true);
    cv.setUint32(42, 0xffffffff, true);
    entry.set(nameBytes, 46);
    const e = 46 + nameBytes.length;
    cv.setUint16(e, 1, true);
    cv.setUint16(e + 2, 24, true);
    cv.setBigUint64(e + 4, BigInt(data.length), true); // uncompressed
    cv.setBigUint64(e + 12, BigInt(data.length), true); // compressed
    cv.setBigUint64(e + 20, BigInt(offset), true); // local header offset
    parts.push(local, data);
    central.push(entry);
    offset += local.length + data.length;
  }
  const cdOffset = offset;
  const cdSize = central.reduce((a, c) => a + c.length, 0);
  const end = new Uint8Array(56 + 20 + 22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06064b50, true);
  ev.setBigUint64(4, 44n, true);
  ev.setBigUint64(24, BigInt(members.length), true);
  ev.setBigUint64(32, BigInt(members.length), true);
  ev.setBigUint64(40, BigInt(cdSize), true);
  ev.setBigUint64(48, BigInt(cdOffset), true);
  ev.setUint32(56, 0x07064b50, true);
  ev.setBigUint64(64, BigInt(cdOffset + cdSize), true);
  ev.setUint32(72, 1, true);
  ev.setUint32(76, 0x06054b50, true);
  ev.setUint16(86, 0xffff, true);
  ev.setUint16(88, 0xffff, true);
  ev.setUint32(90, 0xffffffff, true);
  ev.setUint32(94, 0xffffffff, true);
  const out = new Uint8Array(offset + cdSize + end.length);
  let at = 0;
  for (const p of [...parts, ...central, end]) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describe("readNpz", () => {
  it("reads np.savez (stored) and np.savez_compressed (deflated) archives bit for bit", () => {
    for (const name of ["images.npz", "images_compressed.npz"]) {
      const arrays = readNpz(join(DIR, name));
      expect([...arrays.keys()]).toEqual(["x", "y", "x_test", "y_test"]);
      for (const [key, written] of Object.entries(EXPECTED.npz.images))
        expectWritten(arrays.get(key)!, written);
    }
    const regression = readNpz(join(DIR, "regression.npz"));
    expectWritten(regression.get("x")!, EXPECTED.npz.regression.x!);
    expectWritten(regression.get("y")!, EXPECTED.npz.regression.y!);
  });

  it("reads zip64 central directories and end records, and skips members that are not .npy", () => {
    const x = readFileSync(join(DIR, "dtype_int32.npy"));
    const bytes = zip64([
      ["readme.txt", new TextEncoder().encode("not an array")],
      ["x.npy", x],
    ]);
    const arrays = parseNpz(bytes, { file: "big.npz" });
    expect([...arrays.keys()]).toEqual(["x"]);
    expect(Array.from(arrays.get("x")!.data)).toEqual(Array.from(readNpy(join(DIR, "dtype_int32.npy")).data));
    writeFileSync(join(dir, "big.npz"), bytes);
    const member = openNpz(join(dir, "big.npz")).members.get("x");
    expect(member?.method).toBe("stored");
    if (member?.method === "stored")
      expect(Array.from(member.open().readRows(1, 1))).toEqual(
        Array.from(arrays.get("x")!.data.subarray(4, 8)),
      );
  });

  it("rejects truncated archives, other files and damaged members by name", () => {
    expect(() => readNpz(join(DIR, "truncated.npz"))).toThrow(
      /truncated\.npz: not a readable zip archive \(\.npz\): no end-of-central-directory record in its last 954 bytes \(it starts like a zip file, so it is truncated or damaged\)/,
    );
    expect(() => readNpz(join(DIR, "dtype_uint8.npy"))).toThrow(
      /dtype_uint8\.npy: not a readable zip archive \(\.npz\): .*it starts with 93 4e 55 4d; a zip file starts with 50 4b 03 04/,
    );
    expect(() => readNpz(join(DIR, "crc_bad.npz"))).toThrow(
      /crc_bad\.npz member 'x\.npy': CRC-32 0x[0-9a-f]{8} of the data does not match 0x[0-9a-f]{8} in the zip directory/,
    );
    const cut = readFileSync(join(DIR, "images.npz"));
    // The central directory kept, but the member data cut to 200 bytes.
    const eocd = cut.subarray(cut.length - 22);
    const cdOffset = eocd.readUInt32LE(16);
    const shortened = Buffer.concat([cut.subarray(0, 200), cut.subarray(cdOffset)]);
    new DataView(shortened.buffer, shortened.byteOffset).setUint32(shortened.length - 6, 200, true);
    expect(() => parseNpz(shortened, { file: "short.npz" })).toThrow(
      /short\.npz member 'x\.npy': 488 bytes from offset 55 run past the end of the archive \(436 bytes; the file is truncated\)/,
    );
  });
});

describe("openNpz", () => {
  it("opens stored members for reading rows by offset and loads compressed ones whole", () => {
    const stored = openNpz(join(DIR, "images.npz"));
    const compressed = openNpz(join(DIR, "images_compressed.npz"));
    expect([...stored.members.values()].map((m) => m.method)).toEqual([
      "stored",
      "stored",
      "stored",
      "stored",
    ]);
    expect([...compressed.members.values()].map((m) => m.method)).toEqual([
      "deflate",
      "deflate",
      "deflate",
      "deflate",
    ]);
    const x = stored.members.get("x");
    if (x?.method !== "stored") throw new Error("x should be stored");
    const file = x.open();
    expect(file.shape).toEqual([6, 5, 4, 3]);
    const whole = compressed.members.get("x")!.load().data;
    expect(Array.from(file.readRows(1, 4))).toEqual(Array.from(whole.subarray(60, 300)));
    expect(Array.from(x.load().data)).toEqual(Array.from(whole));
    expect("open" in compressed.members.get("x")!).toBe(false);
    // Rows read by offset are not CRC-checked (that would read the whole member); load() is.
    const bad = openNpz(join(DIR, "crc_bad.npz")).members.get("x");
    if (bad?.method !== "stored") throw new Error("x should be stored");
    expect(bad.open().readRows(0, 1).length).toBe(60);
    expect(() => bad.load()).toThrow(/crc_bad\.npz member 'x\.npy': CRC-32/);
  });
});
