// NumPy .npz archives: a zip file of NAME.npy members, as np.savez (members stored, ZIP_STORED) and
// np.savez_compressed (members deflated) write them, zip64 records included (numpy always forces them).
// The zip directory is read here; fflate inflates compressed members. Stored members can be read by offset.

import { closeSync, fstatSync, openSync, readFileSync, readSync } from "node:fs";
import { inflateSync } from "fflate";
import { checkDataLength, type NpyArray, type NpyFile, npyRows, parseNpy, parseNpyHeader } from "./npy.ts";

/**
 * One .npy member of an .npz archive, named by its key (the member name without ".npy"). Stored members can also
 * be opened for reading rows by offset; compressed (deflated) ones are only loaded whole.
 *
 * @example
 * const x = openNpz("data.npz").members.get("x");
 * const rows = x?.method === "stored" ? x.open().readRows(0, 64) : x?.load().data;
 */
export type NpzMember =
  | {
      readonly key: string;
      readonly method: "stored";
      /** Bytes of the member's .npy file. */
      readonly size: number;
      /** Reads and parses the whole member, checking its CRC-32. */
      load(): NpyArray;
      /** Reads the member's .npy header only; rows are read on demand at their offsets in the archive. */
      open(): NpyFile;
    }
  | {
      readonly key: string;
      readonly method: "deflate";
      readonly size: number;
      load(): NpyArray;
    };

/**
 * An .npz archive opened by its zip directory (the member data is not read until asked for).
 *
 * @example
 * const archive = openNpz("data.npz");
 * [...archive.members.keys()]; // ["x", "y", "x_test", "y_test"]
 */
export interface NpzArchive {
  readonly file: string;
  readonly members: ReadonlyMap<string, NpzMember>;
}

/** Random access to the bytes of an archive: a file by offset, or bytes in memory. */
interface Source {
  readonly size: number;
  read(offset: number, length: number): Uint8Array;
}

/** A member as the zip directory describes it. */
interface Entry {
  readonly name: string;
  readonly method: number;
  readonly flags: number;
  readonly crc: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly headerOffset: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX32 = 0xffffffff;

/**
 * Parses a whole .npz archive from its bytes into its arrays, by key ("x" for member "x.npy"). Members whose
 * names do not end in ".npy" are skipped. Checks each member's CRC-32; `file` names the source in errors.
 *
 * @example
 * const arrays = parseNpz(readFileSync("data.npz"), { file: "data.npz" });
 * arrays.get("y")?.shape; // [1000]
 */
export function parseNpz(bytes: Uint8Array, options: { file?: string } = {}): Map<string, NpyArray> {
  const file = options.file ?? "<npz bytes>";
  const source: Source = { size: bytes.length, read: (o, n) => bytes.subarray(o, o + n) };
  const out = new Map<string, NpyArray>();
  for (const member of members(source, file, undefined).values()) out.set(member.key, member.load());
  return out;
}

/**
 * Reads a whole .npz archive from disk; see `parseNpz`.
 *
 * @example
 * readNpz("data.npz").get("x")?.dtype; // "uint8"
 */
export function readNpz(path: string): Map<string, NpyArray> {
  return parseNpz(readFileSync(path), { file: path });
}

/**
 * Opens an .npz archive reading only its zip directory (from the end of the file); members are loaded, or for
 * stored ones opened by offset, on demand. Rows read by offset are not CRC-checked (that would read the whole
 * member); `load()` checks the CRC.
 *
 * @example
 * const x = openNpz("train.npz").members.get("x");
 * if (x?.method === "stored") x.open().readRows(0, 128);
 */
export function openNpz(path: string): NpzArchive {
  const fd = openSync(path, "r");
  let size: number;
  try {
    size = fstatSync(fd).size;
  } finally {
    closeSync(fd);
  }
  const source: Source = {
    size,
    read(offset, length) {
      const f = openSync(path, "r");
      try {
        const out = Buffer.alloc(Math.max(0, Math.min(length, size - offset)));
        let done = 0;
        while (done < out.length) {
          const got = readSync(f, out, done, out.length - done, offset + done);
          if (got === 0) break;
          done += got;
        }
        return new Uint8Array(out.buffer, out.byteOffset, done);
      } finally {
        closeSync(f);
      }
    },
  };
  return { file: path, members: members(source, path, path) };
}

function members(source: Source, file: string, path: string | undefined): Map<string, NpzMember> {
  const out = new Map<string, NpzMember>();
  for (const entry of directory(source, file)) {
    if (!entry.name.endsWith(".npy")) continue;
    const key = entry.name.slice(0, -4);
    const label = `${file} member '${entry.name}'`;
    if (entry.flags & 1) throw new Error(`${label} is encrypted; .npz members are read unencrypted`);
    // The data starts after the member's local header, whose name and extra field lengths may differ from
    // the central directory's copy.
    const local = source.read(entry.headerOffset, 30);
    const lv = view(local);
    if (local.length < 30 || lv.getUint32(0, true) !== LOCAL)
      throw new Error(
        `${label}: no zip local header at offset ${entry.headerOffset} (the central directory points there; the archive is damaged)`,
      );
    const dataOffset = entry.headerOffset + 30 + lv.getUint16(26, true) + lv.getUint16(28, true);
    if (dataOffset + entry.compressedSize > source.size)
      throw new Error(
        `${label}: ${entry.compressedSize} bytes from offset ${dataOffset} run past the end of the archive (${source.size} bytes; the file is truncated)`,
      );
    const raw = (): Uint8Array => source.read(dataOffset, entry.compressedSize);
    const checked = (bytes: Uint8Array): Uint8Array => {
      if (bytes.length !== entry.size)
        throw new Error(
          `${label}: ${bytes.length} bytes after decompression, the zip directory says ${entry.size}`,
        );
      const crc = crc32(bytes);
      if (crc !== entry.crc)
        throw new Error(
          `${label}: CRC-32 ${hex(crc)} of the data does not match ${hex(entry.crc)} in the zip directory (the archive is damaged)`,
        );
      return bytes;
    };
    switch (entry.method) {
      case 0: {
        if (entry.compressedSize !== entry.size)
          throw new Error(
            `${label}: stored member of ${entry.compressedSize} bytes but an uncompressed size of ${entry.size}`,
          );
        out.set(key, {
          key,
          method: "stored",
          size: entry.size,
          load: () => parseNpy(checked(raw()), { file: label }),
          open: (): NpyFile => {
            if (path === undefined) throw new Error("unreachable: in-memory members are loaded");
            const first = source.read(dataOffset, Math.min(entry.size, 12));
            const fv = view(first);
            const length =
              first.length >= 10 && first[6] === 1
                ? 10 + fv.getUint16(8, true)
                : first.length >= 12
                  ? 12 + fv.getUint32(8, true)
                  : first.length;
            const header = parseNpyHeader(source.read(dataOffset, Math.min(entry.size, length)), {
              file: label,
            });
            checkDataLength(header, entry.size - header.headerBytes, header.headerBytes, label);
            return npyRows(path, header, dataOffset + header.headerBytes, dataOffset + entry.size, label);
          },
        });
        break;
      }
      case 8:
        out.set(key, {
          key,
          method: "deflate",
          size: entry.size,
          load: () => {
            let bytes: Uint8Array;
            try {
              bytes = inflateSync(raw(), { out: new Uint8Array(entry.size) });
            } catch (error) {
              throw new Error(`${label}: corrupt deflate data (${(error as Error).message})`);
            }
            return parseNpy(checked(bytes), { file: label });
          },
        });
        break;
      default:
        throw new Error(
          `${label}: zip compression method ${entry.method}; expected 0 (stored, np.savez) or 8 (deflate, np.savez_compressed)`,
        );
    }
  }
  return out;
}

/** The central directory's entries, found through the end-of-central-directory record (zip64 when present). */
function directory(source: Source, file: string): Entry[] {
  // The end record is 22 bytes plus a comment of up to 65535 bytes, at the very end of the archive.
  const tailLength = Math.min(source.size, 22 + 65535);
  const tailStart = source.size - tailLength;
  const tail = source.read(tailStart, tailLength);
  const tv = view(tail);
  let at = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tv.getUint32(i, true) === EOCD) {
      at = i;
      break;
    }
  }
  if (at < 0) {
    const start = Array.from(source.read(0, 4), (b) => b.toString(16).padStart(2, "0")).join(" ");
    const why =
      start === "50 4b 03 04"
        ? "it starts like a zip file, so it is truncated or damaged"
        : `it starts with ${start || "nothing"}; a zip file starts with 50 4b 03 04`;
    throw new Error(
      `${file}: not a readable zip archive (.npz): no end-of-central-directory record in its last ${tailLength} bytes (${why})`,
    );
  }
  let count = tv.getUint16(at + 10, true);
  let cdSize = tv.getUint32(at + 12, true);
  let cdOffset = tv.getUint32(at + 16, true);
  if (count === 0xffff || cdSize === MAX32 || cdOffset === MAX32) {
    const locatorAt = tailStart + at - 20;
    const locator = locatorAt >= 0 ? source.read(locatorAt, 20) : new Uint8Array(0);
    if (locator.length < 20 || view(locator).getUint32(0, true) !== ZIP64_LOCATOR)
      throw new Error(`${file}: the zip end record asks for zip64 but no zip64 locator precedes it`);
    const recordAt = Number(view(locator).getBigUint64(8, true));
    const record = source.read(recordAt, 56);
    const rv = view(record);
    if (record.length < 56 || rv.getUint32(0, true) !== ZIP64_EOCD)
      throw new Error(`${file}: no zip64 end-of-central-directory record at offset ${recordAt}`);
    count = Number(rv.getBigUint64(32, true));
    cdSize = Number(rv.getBigUint64(40, true));
    cdOffset = Number(rv.getBigUint64(48, true));
  }
  if (cdOffset + cdSize > source.size)
    throw new Error(
      `${file}: the zip central directory (${cdSize} bytes at offset ${cdOffset}) runs past the end of the file (${source.size} bytes; the file is truncated)`,
    );
  const cd = source.read(cdOffset, cdSize);
  const cv = view(cd);
  const entries: Entry[] = [];
  let p = 0;
  for (let k = 0; k < count; k++) {
    if (p + 46 > cd.length || cv.getUint32(p, true) !== CENTRAL)
      throw new Error(`${file}: zip central directory entry ${k} at offset ${cdOffset + p} is damaged`);
    const nameLength = cv.getUint16(p + 28, true);
    const extraLength = cv.getUint16(p + 30, true);
    const commentLength = cv.getUint16(p + 32, true);
    const name = new TextDecoder("utf-8").decode(cd.subarray(p + 46, p + 46 + nameLength));
    let size = cv.getUint32(p + 24, true);
    let compressedSize = cv.getUint32(p + 20, true);
    let headerOffset = cv.getUint32(p + 42, true);
    // zip64 extra field (id 1): 8-byte values for exactly those of the three fields that hold 0xffffffff.
    let e = p + 46 + nameLength;
    const extraEnd = e + extraLength;
    while (e + 4 <= extraEnd) {
      const id = cv.getUint16(e, true);
      const length = cv.getUint16(e + 2, true);
      if (id === 1) {
        let q = e + 4;
        const next = (): number => {
          if (q + 8 > e + 4 + length)
            throw new Error(`${file}: zip64 extra field of member '${name}' is too short`);
          const v = Number(cv.getBigUint64(q, true));
          q += 8;
          return v;
        };
        if (size === MAX32) size = next();
        if (compressedSize === MAX32) compressedSize = next();
        if (headerOffset === MAX32) headerOffset = next();
      }
      e += 4 + length;
    }
    entries.push({
      name,
      method: cv.getUint16(p + 10, true),
      flags: cv.getUint16(p + 8, true),
      crc: cv.getUint32(p + 16, true),
      compressedSize,
      size,
      headerOffset,
    });
    p = extraEnd + commentLength;
  }
  return entries;
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function hex(v: number): string {
  return `0x${v.toString(16).padStart(8, "0")}`;
}

// CRC-32 (IEEE 802.3, reflected polynomial 0xedb88320), as zip records it.
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++)
    c = (CRC_TABLE[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
