import { createHash } from "node:crypto";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { inflateSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import {
  centerCrop,
  decodeImage,
  type ImageFolder,
  readImageFolder,
  resizedSize,
  resizeImage,
  toLuma,
} from "../../src/data/images.ts";

// Made by fixtures/data_images.py with Pillow 9.4 and torchvision 0.14.
const FIXTURE = "fixtures/data/images";
const expected = JSON.parse(readFileSync("fixtures/data/images-expected.json", "utf8")) as {
  splits: Record<"train" | "val", { classes: string[]; files: string[]; labels: number[]; kinds: string[] }>;
  cases: {
    split: "train" | "val";
    resize: number | null;
    crop: number;
    channels: 1 | 3;
    shape: number[];
    pixels: string;
  }[];
};

// jpeg-js's IDCT is not libjpeg's, so JPEG pixels differ from PIL's by up to 3 levels (measured: at most
// 3, on 4-17% of the values of each image); PNG pixels match exactly.
const JPEG_MAX_DIFF = 3;
const JPEG_DIFF_FRACTION = 0.2;

const dir = mkdtempSync(join(tmpdir(), "losscape-images-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A fresh copy of the fixture folder (so caches are written there, not into fixtures/). */
function copyFixture(name: string, from = FIXTURE): string {
  const to = join(dir, name);
  cpSync(from, to, { recursive: true, filter: (src) => !src.endsWith(".losscape-cache") });
  return to;
}

/** Per image: the largest |difference| and the fraction of values that differ. */
function differences(got: Uint8Array, want: Uint8Array, count: number): { max: number; fraction: number }[] {
  expect(got.length).toBe(want.length);
  const per = want.length / count;
  const out: { max: number; fraction: number }[] = [];
  for (let i = 0; i < count; i++) {
    let max = 0;
    let differ = 0;
    for (let j = i * per; j < (i + 1) * per; j++) {
      const d = Math.abs((got[j] as number) - (want[j] as number));
      if (d > max) max = d;
      if (d !== 0) differ++;
    }
    out.push({ max, fraction: differ / per });
  }
  return out;
}

function expectLikeTorchvision(got: ImageFolder, c: (typeof expected.cases)[number]): void {
  const split = expected.splits[c.split];
  expect(got.shape).toEqual(c.shape);
  const want = inflateSync(Buffer.from(c.pixels, "base64"));
  const diffs = differences(got.pixels, want, split.files.length);
  for (const [i, kind] of split.kinds.entries()) {
    const d = diffs[i]!;
    if (kind.startsWith("jpeg")) {
      expect(d.max, `${split.files[i]} max diff`).toBeLessThanOrEqual(JPEG_MAX_DIFF);
      expect(d.fraction, `${split.files[i]} fraction differing`).toBeLessThanOrEqual(JPEG_DIFF_FRACTION);
    } else {
      expect(d, `${split.files[i]} (${kind})`).toEqual({ max: 0, fraction: 0 });
    }
  }
}

function fixtureCase(split: "train" | "val", resize: number | null, channels: 1 | 3 = 3) {
  const c = expected.cases.find((x) => x.split === split && x.resize === resize && x.channels === channels);
  if (c === undefined) throw new Error(`no fixture case ${split} ${resize} ${channels}`);
  return c;
}

function read(c: (typeof expected.cases)[number], root = FIXTURE, cache = false): ImageFolder {
  return readImageFolder(root, {
    split: c.split === "val" ? "test" : "train",
    resize: c.resize ?? undefined,
    crop: c.crop,
    channels: c.channels,
    cache,
  });
}

describe("readImageFolder layout", () => {
  it("orders classes by code point and files as torchvision's ImageFolder does", () => {
    for (const split of ["train", "val"] as const) {
      const got = read(fixtureCase(split, null));
      const want = expected.splits[split];
      expect(got.classes).toEqual(want.classes);
      expect(got.files).toEqual(want.files);
      expect(Array.from(got.labels)).toEqual(want.labels);
      expect(got.labels).toBeInstanceOf(Int32Array);
    }
    const train = read(fixtureCase("train", null));
    expect(train.classes).toEqual(["Zebra", "ant", "bee"]); // "Z" < "a"
    // os.walk roots sorted as strings: "x-y" before "x/z"; .JPG counts, notes.txt does not.
    expect(train.files.slice(7)).toEqual([
      "bee/x/b2_rgb16.png",
      "bee/x-y/b3_la.png",
      "bee/x/z/b4_gray16.png",
    ]);
    expect(train.files).toContain("ant/a2_progressive.JPG");
    expect(train.files.some((f) => f.endsWith(".txt"))).toBe(false);
  });

  it("names the dataset after the folder and split and lays pixels out NCHW", () => {
    const train = readImageFolder(FIXTURE, { crop: 20, cache: false });
    expect(train.name).toBe("images:images/train");
    expect(train.shape).toEqual([3, 20, 20]);
    expect(train.pixels.length).toBe(10 * 3 * 20 * 20);
    const test = readImageFolder(FIXTURE, { crop: 20, split: "test", cache: false });
    expect(test.name).toBe("images:images/test");
    expect(test.files.length).toBe(6);
  });

  it("reads a folder that is itself the class root as split train", () => {
    const flat = copyFixture("flat", join(FIXTURE, "train"));
    const got = readImageFolder(flat, { crop: 20, cache: false });
    expect(got.name).toBe("images:flat/train");
    expect(got.files).toEqual(expected.splits.train.files);
    expectLikeTorchvision(got, fixtureCase("train", null));
  });
});

describe("readImageFolder pixels against PIL + torchvision", () => {
  it("decodes PNG bit-exactly (alpha and tRNS dropped, 16-bit high byte) and JPEG within 3 levels", () => {
    expectLikeTorchvision(read(fixtureCase("train", null)), fixtureCase("train", null));
    expectLikeTorchvision(read(fixtureCase("val", null)), fixtureCase("val", null));
  });

  it("matches Resize(16) + CenterCrop(16) (downscaling, antialiased)", () => {
    for (const split of ["train", "val"] as const)
      expectLikeTorchvision(read(fixtureCase(split, 16)), fixtureCase(split, 16));
  });

  it("matches Resize(33) + CenterCrop(28) (upscaling; crop offsets round half to even)", () => {
    for (const split of ["train", "val"] as const)
      expectLikeTorchvision(read(fixtureCase(split, 33)), fixtureCase(split, 33));
  });

  it("matches Grayscale() + Resize(17) + CenterCrop(12) with channels 1", () => {
    for (const split of ["train", "val"] as const) {
      expectLikeTorchvision(read(fixtureCase(split, 17, 1)), fixtureCase(split, 17, 1));
    }
  });
});

describe("image helpers", () => {
  it("computes torchvision's Resize(int) output size", () => {
    expect(resizedSize(500, 375, 256)).toEqual({ width: 341, height: 256 });
    expect(resizedSize(375, 500, 256)).toEqual({ width: 256, height: 341 });
    expect(resizedSize(30, 30, 7)).toEqual({ width: 7, height: 7 });
  });

  it("centre-crops with Python's round-half-to-even offsets", () => {
    const row = { width: 7, height: 1, channels: 1 as const, data: Uint8Array.from([0, 1, 2, 3, 4, 5, 6]) };
    // (7 - 2) / 2 = 2.5 rounds to 2; (7 - 4) / 2 = 1.5 rounds to 2
    const tall = { width: 7, height: 7, channels: 1 as const, data: new Uint8Array(49).map((_, i) => i % 7) };
    expect(Array.from(centerCrop(tall, 2).data)).toEqual([2, 3, 2, 3]);
    expect(Array.from(centerCrop(tall, 4).data.subarray(0, 4))).toEqual([2, 3, 4, 5]);
    expect(() => centerCrop(row, 2, { file: "row.png" })).toThrow(
      /row\.png: image is 7x1 .* smaller than the crop 2x2/,
    );
  });

  it("keeps a constant image constant and returns the input when the size is unchanged", () => {
    const flat = { width: 9, height: 5, channels: 3 as const, data: new Uint8Array(135).fill(77) };
    expect(resizeImage(flat, 9, 5)).toBe(flat);
    for (const [w, h] of [
      [4, 3],
      [20, 11],
      [9, 2],
    ] as const) {
      const out = resizeImage(flat, w, h);
      expect([out.width, out.height]).toEqual([w, h]);
      expect(out.data.every((v) => v === 77)).toBe(true);
    }
  });

  it("converts RGB to PIL's L with 16-bit fixed-point rounding", () => {
    const rgb = {
      width: 3,
      height: 1,
      channels: 3 as const,
      data: Uint8Array.from([255, 0, 0, 0, 255, 0, 10, 20, 30]),
    };
    // (19595 R + 38470 G + 7471 B + 32768) >> 16
    expect(Array.from(toLuma(rgb).data)).toEqual([76, 150, 18]);
  });

  it("refuses a CMYK JPEG and bytes that are neither PNG nor JPEG", () => {
    const cmyk = readFileSync("fixtures/data/images-cmyk.jpg");
    expect(() => decodeImage(cmyk, { file: "c.jpg" })).toThrow(
      /c\.jpg: CMYK\/YCCK JPEG \(4 components\) is not supported; expected a grayscale or RGB/,
    );
    expect(() => decodeImage(new TextEncoder().encode("GIF89a"), { file: "g.png" })).toThrow(
      /g\.png: not a PNG or JPEG file: it starts with 47 49 46 38; expected 89 50 4e 47 \(PNG\) or ff d8 \(JPEG\)/,
    );
  });
});

describe("readImageFolder cache", () => {
  const cacheFile = (root: string) => join(root, ".losscape-cache", "train-r16-c16-ch3.bin");

  it("writes the decoded pixels once and reads them back while no file changes", () => {
    const root = copyFixture("cached");
    const first = readImageFolder(root, { resize: 16, crop: 16 });
    expect(existsSync(cacheFile(root))).toBe(true);
    expect(readdirSync(join(root, ".losscape-cache"))).toEqual(["train-r16-c16-ch3.bin"]); // no temporary left
    const second = readImageFolder(root, { resize: 16, crop: 16 });
    expect(second).toEqual(first);
    expectLikeTorchvision(second, fixtureCase("train", 16));

    // The cache is what the second read returns: a byte changed in it shows up.
    const bytes = readFileSync(cacheFile(root));
    bytes[bytes.length - 1] = (bytes[bytes.length - 1]! + 1) % 256;
    writeFileSync(cacheFile(root), bytes);
    const fromCache = readImageFolder(root, { resize: 16, crop: 16 });
    expect(fromCache.pixels.at(-1)).toBe((first.pixels.at(-1)! + 1) % 256);

    // Touching one image invalidates it: the pixels are decoded again and the cache rewritten.
    const touched = join(root, "train", "ant", "a1_gray.png");
    const later = new Date(statSync(touched).mtimeMs + 5000);
    utimesSync(touched, later, later);
    const rebuilt = readImageFolder(root, { resize: 16, crop: 16 });
    expect(rebuilt.pixels).toEqual(first.pixels);
    expect(readFileSync(cacheFile(root)).at(-1)).toBe(first.pixels.at(-1));
  });

  it("keys on the settings and the split, and a class-root folder skips its cache folder", () => {
    const root = copyFixture("flat-cached", join(FIXTURE, "train"));
    const a = readImageFolder(root, { crop: 20 });
    const b = readImageFolder(root, { crop: 20 });
    expect(b.classes).toEqual(["Zebra", "ant", "bee"]);
    expect(b.pixels).toEqual(a.pixels);
    readImageFolder(root, { crop: 20, channels: 1 });
    expect(readdirSync(join(root, ".losscape-cache")).sort()).toEqual([
      "train-rnone-c20-ch1.bin",
      "train-rnone-c20-ch3.bin",
    ]);
  });

  it("ignores and rebuilds a corrupt cache file", () => {
    const root = copyFixture("corrupt");
    const first = readImageFolder(root, { resize: 16, crop: 16 });
    for (const junk of [
      new Uint8Array(0),
      Buffer.from("LOSSCAPE-IMAGES1\xff\xff\xff\x7f{", "latin1"),
      readFileSync(cacheFile(root)).subarray(0, 100),
    ]) {
      writeFileSync(cacheFile(root), junk);
      expect(readImageFolder(root, { resize: 16, crop: 16 }).pixels).toEqual(first.pixels);
      expect(readFileSync(cacheFile(root)).length).toBeGreaterThan(10 * 3 * 16 * 16);
    }
  });

  it("falls back to os.tmpdir()/losscape-cache when the folder's cache cannot be written", () => {
    const root = copyFixture("readonly");
    writeFileSync(join(root, ".losscape-cache"), "a file where the cache folder would go");
    const name = `${createHash("sha256").update(resolve(root)).digest("hex").slice(0, 16)}-train-r16-c16-ch3.bin`;
    const fallback = join(tmpdir(), "losscape-cache", name);
    try {
      const first = readImageFolder(root, { resize: 16, crop: 16 });
      expect(existsSync(fallback)).toBe(true);
      expect(readImageFolder(root, { resize: 16, crop: 16 })).toEqual(first);
    } finally {
      rmSync(fallback, { force: true });
    }
  });

  it("writes nothing with cache: false", () => {
    const root = copyFixture("uncached");
    readImageFolder(root, { resize: 16, crop: 16, cache: false });
    expect(existsSync(join(root, ".losscape-cache"))).toBe(false);
  });
});

describe("readImageFolder errors", () => {
  function folder(name: string, files: Record<string, Uint8Array | string>): string {
    const root = join(dir, name);
    mkdirSync(root, { recursive: true });
    for (const [path, bytes] of Object.entries(files)) {
      mkdirSync(join(root, path, ".."), { recursive: true });
      writeFileSync(join(root, path), bytes);
    }
    return root;
  }
  const png = (rel: string) => readFileSync(join(FIXTURE, rel));

  it("rejects a missing path, a file, and a folder without class folders", () => {
    expect(() => readImageFolder(join(dir, "nope"))).toThrow(
      /readImageFolder\(\): 'dir' .*nope does not exist/,
    );
    const file = join(dir, "file.png");
    writeFileSync(file, "x");
    expect(() => readImageFolder(file)).toThrow(/'dir' .*file\.png is not a folder/);
    const empty = folder("empty", { "loose.png": png("train/Zebra/z1_rgb_trns.png") });
    expect(() => readImageFolder(empty)).toThrow(
      /empty has no class folders; expected one sub-folder per class/,
    );
  });

  it("rejects a class folder without images, naming it", () => {
    const root = folder("noimages", { "a/x.png": png("train/ant/a1_gray.png"), "b/readme.txt": "hi" });
    expect(() => readImageFolder(root)).toThrow(
      /class folder .*noimages\/b has no images; expected files ending in \.png, \.jpg, \.jpeg/,
    );
  });

  it("names an undecodable file and what the decoder said", () => {
    const good = png("train/ant/a1_gray.png");
    const truncated = folder("truncated", { "a/x.png": good.subarray(0, 60) });
    expect(() => readImageFolder(truncated, { cache: false })).toThrow(
      /truncated\/a\/x\.png: cannot decode PNG \(pngjs: .+\)/,
    );
    const jpeg = folder("badjpeg", {
      "a/y.jpg": Uint8Array.from([0xff, 0xd8, 0xff, 0xc4, 0, 2, 0xff, 0xd9]),
    });
    expect(() => readImageFolder(jpeg, { cache: false })).toThrow(
      /badjpeg\/a\/y\.jpg: cannot decode JPEG \(jpeg-js: .+\)/,
    );
    const text = folder("text", { "a/z.jpeg": "hello" });
    expect(() => readImageFolder(text, { cache: false })).toThrow(
      /text\/a\/z\.jpeg: not a PNG or JPEG file: it starts with 68 65 6c 6c/,
    );
    const cmyk = folder("cmyk", { "a/c.jpg": readFileSync("fixtures/data/images-cmyk.jpg") });
    expect(() => readImageFolder(cmyk, { cache: false })).toThrow(/cmyk\/a\/c\.jpg: CMYK\/YCCK JPEG/);
  });

  it("asks for --resize/--crop when sizes differ, naming the first file that differs, and writes nothing", () => {
    const root = copyFixture("sizes", join(FIXTURE, "train"));
    expect(() => readImageFolder(root)).toThrow(
      /sizes\/Zebra\/z2_baseline\.jpg is 31x27 \(width x height\) but .*z1_rgb_trns\.png is 24x30; all images must have one size: pass --resize and\/or --crop/,
    );
    expect(() => readImageFolder(root, { resize: 20 })).toThrow(
      /z2_baseline\.jpg is 22x20 \(width x height\) after --resize 20 but/,
    );
    expect(existsSync(join(root, ".losscape-cache"))).toBe(false);
  });

  it("names the image that is smaller than the crop, and rejects a crop larger than the resize", () => {
    expect(() => readImageFolder(FIXTURE, { crop: 25, cache: false })).toThrow(
      /Zebra\/z1_rgb_trns\.png: image is 24x30 \(width x height\), smaller than the crop 25x25/,
    );
    expect(() => readImageFolder(FIXTURE, { resize: 16, crop: 17 })).toThrow(
      /'crop' 17 is larger than 'resize' 16/,
    );
  });

  it("asks for --test-data when the folder has no val/ or test/ split", () => {
    const root = copyFixture("onlytrain", join(FIXTURE, "train"));
    expect(() => readImageFolder(root, { split: "test", crop: 20 })).toThrow(
      /onlytrain has no train\/ beside val\/ or test\/.*has only split "train"; .*--test-data images:DIR2/,
    );
  });

  it("rejects a test split whose classes differ from train's, listing both", () => {
    const root = copyFixture("mismatch");
    cpSync(join(root, "val"), join(root, "test"), { recursive: true });
    rmSync(join(root, "val"), { recursive: true });
    rmSync(join(root, "test", "bee"), { recursive: true });
    expect(() => readImageFolder(root, { split: "test", crop: 20 })).toThrow(
      /test has \[Zebra, ant\] but train has \[Zebra, ant, bee\]; both splits need the same class folders/,
    );
  });

  it("rejects bad options by name", () => {
    expect(() => readImageFolder(FIXTURE, { resize: 0 })).toThrow(
      /'resize' must be a positive integer number of pixels, got 0/,
    );
    expect(() => readImageFolder(FIXTURE, { crop: 2.5 })).toThrow(
      /'crop' must be a positive integer number of pixels, got 2\.5/,
    );
    expect(() => readImageFolder(FIXTURE, { channels: 2 as 1 })).toThrow(
      /'channels' must be 1 \(gray\) or 3 \(RGB\), got 2/,
    );
    expect(() => readImageFolder(FIXTURE, { split: "val" as "test" })).toThrow(
      /'split' must be "train" or "test", got "val"/,
    );
  });
});
