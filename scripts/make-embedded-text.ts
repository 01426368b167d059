// Builds data/text/, the byte-level token streams shipped with losscape (`--data tokens`): the opening of the
// King James Version (Genesis on), as printed by the `bible` program of Debian's bible-kjv package from the
// text in bible-kjv-text, one token per byte, stored as uint16 like nanoGPT's shakespeare_char train.bin.
// Reruns give identical bytes.
//
//   apt-get install bible-kjv-text   # also installs bible-kjv, the `bible` program
//   npx tsx scripts/make-embedded-text.ts [--out DIR] [--check]
//
// --check rebuilds in memory and exits 1 if the files in --out differ.

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** Verses printed, one per line ("Ge1:1 In the beginning ..."); the splits are cut from their start. */
const VERSES = "Genesis1:1-Leviticus27:34";
/** Bytes of text in each split, cut back to the end of the last whole line. */
const TRAIN_BYTES = 360_000;
const VAL_BYTES = 40_000;

function argument(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  const value = i >= 0 ? process.argv[i + 1] : undefined;
  if (i >= 0 && value === undefined) throw new Error(`${name} needs a value`);
  return value ?? fallback;
}

/** The longest prefix of `text` from `start` that ends with a newline and has at most `limit` bytes. */
function wholeLines(text: Uint8Array, start: number, limit: number): Uint8Array {
  const end = text.lastIndexOf(0x0a, start + limit - 1);
  if (end < start) throw new Error(`no whole line within ${limit} bytes from offset ${start}`);
  return text.subarray(start, end + 1);
}

function uint16Tokens(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 * bytes.length);
  for (let i = 0; i < bytes.length; i++) out[2 * i] = bytes[i] as number; // little-endian, high byte 0
  return out;
}

function build(): Map<string, Uint8Array> {
  const env = { ...process.env };
  delete env.COLUMNS; // -f prints each verse on one line whatever the terminal width; be sure of it
  const text = new Uint8Array(execFileSync("bible", ["-f", VERSES], { env, maxBuffer: 1 << 24 }));
  for (const [i, b] of text.entries())
    if (b >= 0x80) throw new Error(`bible output byte ${i} is 0x${b.toString(16)}; expected ASCII text`);
  const train = wholeLines(text, 0, TRAIN_BYTES);
  const val = wholeLines(text, train.length, VAL_BYTES);
  return new Map([
    ["train.bin", uint16Tokens(train)],
    ["val.bin", uint16Tokens(val)],
  ]);
}

const root = join(fileURLToPath(import.meta.url), "..", "..");
const out = argument("--out", join(root, "data", "text"));
const files = build();
if (process.argv.includes("--check")) {
  let same = true;
  for (const [name, bytes] of files) {
    const path = join(out, name);
    if (!existsSync(path) || !Buffer.from(readFileSync(path)).equals(Buffer.from(bytes))) {
      console.error(`${path} differs from a rebuild`);
      same = false;
    }
  }
  if (!same) process.exit(1);
  console.log(`${out}: up to date`);
} else {
  mkdirSync(out, { recursive: true });
  for (const [name, bytes] of files) {
    const path = join(out, name);
    writeFileSync(`${path}.tmp`, bytes);
    renameSync(`${path}.tmp`, path);
    console.log(`${path}: ${bytes.length / 2} tokens (${bytes.length} bytes)`);
  }
}
