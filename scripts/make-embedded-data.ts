// Builds data/fashion-mnist/, the small Fashion-MNIST subset shipped with
// losscape, from the full dataset (Debian package dataset-fashion-mnist).
// Reruns give identical bytes: a seeded class-balanced choice, gzip level 9, mtime 0.
//
//   npx tsx scripts/make-embedded-data.ts [--source DIR] [--out DIR] [--check]
//
// --check rebuilds in memory and exits 1 if the files in --out differ.

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { Random } from "../src/core/random.ts";
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, parseIdx } from "../src/data/idx.ts";

const SEED = 20170825; // Fashion-MNIST's release date
const SPLITS = [
  { prefix: "train", perClass: 1000 },
  { prefix: "t10k", perClass: 200 },
] as const;
const CLASSES = 10;

function argument(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  const value = i >= 0 ? process.argv[i + 1] : undefined;
  if (i >= 0 && value === undefined) throw new Error(`${name} needs a value`);
  return value ?? fallback;
}

/**
 * Indices of the first `perClass` samples of each class in the order of
 * `new Random(seed).permutation(n)`, sorted ascending.
 */
function balancedIndices(labels: Uint8Array, perClass: number, seed: number): Uint32Array {
  const taken = new Array<number>(CLASSES).fill(0);
  const chosen: number[] = [];
  for (const i of new Random(seed).permutation(labels.length)) {
    const c = labels[i] as number;
    if ((taken[c] as number) < perClass) {
      taken[c] = (taken[c] as number) + 1;
      chosen.push(i);
      if (chosen.length === perClass * CLASSES) break;
    }
  }
  if (chosen.length !== perClass * CLASSES) {
    throw new Error(
      `only ${chosen.length} samples found for ${perClass} per class; counts ${taken.join(", ")}`,
    );
  }
  return Uint32Array.from(chosen).sort();
}

function idxBytes(magic: number, dims: readonly number[], body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, magic, false);
  for (const [d, size] of dims.entries()) view.setUint32(4 + 4 * d, size, false);
  out.set(body, 4 + 4 * dims.length);
  return out;
}

// zlib already writes mtime 0; the OS byte is pinned to 3 (Unix) so the bytes do not depend on the platform.
function gzip(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(gzipSync(payload, { level: 9 }));
  out.fill(0, 4, 8);
  out[9] = 3;
  return out;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function build(source: string): Map<string, { payload: Uint8Array; gz: Uint8Array }> {
  const files = new Map<string, { payload: Uint8Array; gz: Uint8Array }>();
  for (const { prefix, perClass } of SPLITS) {
    const imagesFile = join(source, `${prefix}-images-idx3-ubyte.gz`);
    const labelsFile = join(source, `${prefix}-labels-idx1-ubyte.gz`);
    const images = parseIdx(readFileSync(imagesFile), { file: imagesFile });
    const labels = parseIdx(readFileSync(labelsFile), { file: labelsFile });
    if (images.magic !== IDX_IMAGES_MAGIC || labels.magic !== IDX_LABELS_MAGIC) {
      throw new Error(`${source}: ${prefix} files are not uint8 IDX images and labels`);
    }
    const [n, rows, cols] = images.dims as [number, number, number];
    const pixels = images.data as Uint8Array;
    const labelData = labels.data as Uint8Array;
    if (labelData.length !== n)
      throw new Error(`${source}: ${n} ${prefix} images but ${labelData.length} labels`);
    const chosen = balancedIndices(labelData, perClass, SEED);
    const plane = rows * cols;
    const outImages = new Uint8Array(chosen.length * plane);
    const outLabels = new Uint8Array(chosen.length);
    for (const [k, i] of chosen.entries()) {
      outImages.set(pixels.subarray(i * plane, (i + 1) * plane), k * plane);
      outLabels[k] = labelData[i] as number;
    }
    const imagePayload = idxBytes(IDX_IMAGES_MAGIC, [chosen.length, rows, cols], outImages);
    const labelPayload = idxBytes(IDX_LABELS_MAGIC, [chosen.length], outLabels);
    files.set(`${prefix}-images-idx3-ubyte.gz`, { payload: imagePayload, gz: gzip(imagePayload) });
    files.set(`${prefix}-labels-idx1-ubyte.gz`, { payload: labelPayload, gz: gzip(labelPayload) });
  }
  return files;
}

function main(): number {
  const source = argument("--source", "/usr/share/datasets/fashion-mnist");
  const out = argument("--out", fileURLToPath(new URL("../data/fashion-mnist/", import.meta.url)));
  const check = process.argv.includes("--check");
  const files = build(source);
  let differ = 0;
  if (!check) mkdirSync(out, { recursive: true });
  for (const [name, { payload, gz }] of files) {
    const path = join(out, name);
    if (check) {
      const same = existsSync(path) && sha256(readFileSync(path)) === sha256(gz);
      if (!same) differ++;
      console.log(`${same ? "same" : "DIFFERS"}  ${name}`);
      continue;
    }
    const temporary = `${path}.tmp-${process.pid}`;
    writeFileSync(temporary, gz);
    renameSync(temporary, path);
    console.log(
      `${name}  ${gz.length} bytes  sha256 ${sha256(gz)}  (uncompressed sha256 ${sha256(payload)})`,
    );
  }
  return differ === 0 ? 0 : 1;
}

process.exitCode = main();
