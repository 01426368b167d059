import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { datasetSize } from "../../src/data/dataset.ts";
import { parseIdx, parseMnist, readIdx, readMnist } from "../../src/data/idx.ts";
import { channelStats } from "../../src/data/transform.ts";

const dir = mkdtempSync(join(tmpdir(), "losscape-idx-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function idx(magic: number, dims: number[], body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, magic, false);
  for (const [d, size] of dims.entries()) view.setUint32(4 + 4 * d, size, false);
  out.set(body, 4 + 4 * dims.length);
  return out;
}

/** n images of rows x cols with pixel value (sample*7 + position) mod 256, labels sample mod 10. */
function mnist(n: number, rows: number, cols: number): { images: Uint8Array; labels: Uint8Array } {
  const pixels = new Uint8Array(n * rows * cols).map((_, i) => (Math.floor(i / (rows * cols)) * 7 + i) % 256);
  const labels = new Uint8Array(n).map((_, i) => i % 10);
  return { images: idx(0x803, [n, rows, cols], pixels), labels: idx(0x801, [n], labels) };
}

function write(name: string, bytes: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

describe("parseIdx", () => {
  it("decodes a uint8 image file's dimensions and pixels", () => {
    const { images } = mnist(3, 4, 5);
    const parsed = parseIdx(images);
    expect(parsed.magic).toBe(0x803);
    expect(parsed.type).toBe("uint8");
    expect(parsed.dims).toEqual([3, 4, 5]);
    expect(parsed.data).toBeInstanceOf(Uint8Array);
    expect(Array.from(parsed.data.subarray(0, 4))).toEqual([0, 1, 2, 3]);
    expect(parsed.data[20]).toBe(27); // sample 1, position 20: 7 + 20
  });

  it("reads gzip and plain files to the same array", () => {
    const { labels } = mnist(12, 2, 2);
    const plain = readIdx(write("labels-plain", labels));
    const gz = readIdx(write("labels.gz", gzipSync(labels)));
    expect(gz.dims).toEqual([12]);
    expect(Array.from(gz.data)).toEqual(Array.from(plain.data));
    expect(Array.from(gz.data)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
  });

  it("decodes big-endian int16, int32, float32 and float64 elements", () => {
    const body = new Uint8Array(16);
    const view = new DataView(body.buffer);
    view.setInt16(0, -2, false);
    view.setInt16(2, 300, false);
    expect(Array.from(parseIdx(idx(0x0b01, [2], body.subarray(0, 4))).data)).toEqual([-2, 300]);
    view.setInt32(0, -70000, false);
    expect(Array.from(parseIdx(idx(0x0c01, [1], body.subarray(0, 4))).data)).toEqual([-70000]);
    view.setFloat32(0, 1.5, false);
    expect(Array.from(parseIdx(idx(0x0d01, [1], body.subarray(0, 4))).data)).toEqual([1.5]);
    view.setFloat64(0, -0.125, false);
    expect(Array.from(parseIdx(idx(0x0e01, [1], body.subarray(0, 8))).data)).toEqual([-0.125]);
    const signed = parseIdx(idx(0x0901, [2], new Uint8Array([255, 1])));
    expect(signed.type).toBe("int8");
    expect(Array.from(signed.data)).toEqual([-1, 1]);
  });

  it("returns a copy that does not alias the input bytes", () => {
    const { labels } = mnist(4, 1, 1);
    const parsed = parseIdx(labels);
    labels[8] = 99;
    expect(parsed.data[0]).toBe(0);
  });

  it("rejects a wrong magic number, naming the file and the magic found", () => {
    const bytes = idx(0x803, [1, 1, 1], new Uint8Array(1));
    bytes[0] = 0x12;
    expect(() => parseIdx(bytes, { file: "x.idx" })).toThrow(
      /^x\.idx: not an IDX file: magic number at offset 0 is 0x12000803 \(the first two bytes must be zero\); expected 0x00000803 for images or 0x00000801 for labels/,
    );
    expect(() => parseIdx(idx(0x0701, [1], new Uint8Array(1)), { file: "y" })).toThrow(
      /y: not an IDX file: .*type byte 0x07 is not one of 0x08 \(uint8\)/,
    );
    expect(() => parseIdx(new Uint8Array([0, 0, 8]), { file: "z" })).toThrow(
      /z: 3 bytes is too short for an IDX file \(a 4-byte magic number is expected at offset 0\)/,
    );
  });

  it("rejects a header cut inside the dimensions", () => {
    const bytes = idx(0x803, [10, 28, 28], new Uint8Array(0)).subarray(0, 10);
    expect(() => parseIdx(bytes, { file: "h.idx" })).toThrow(
      /h\.idx: IDX header declares 3 dimensions \(16 header bytes\) but the file has only 10 bytes/,
    );
  });

  it("rejects truncated data with the count, size and offset", () => {
    const bytes = idx(0x803, [10000, 28, 28], new Uint8Array(1200));
    expect(() => parseIdx(bytes, { file: "t10k-images-idx3-ubyte" })).toThrow(
      /^t10k-images-idx3-ubyte: header says 10000 images of 28x28 \(7840000 bytes\) but only 1200 bytes follow at offset 16$/,
    );
    expect(() => parseIdx(idx(0x801, [5], new Uint8Array(3)), { file: "l" })).toThrow(
      /l: header says 5 labels \(5 bytes\) but only 3 bytes follow at offset 8/,
    );
  });

  it("rejects bytes after the data", () => {
    expect(() => parseIdx(idx(0x801, [2], new Uint8Array(5)), { file: "l" })).toThrow(
      /l: header says 2 labels \(2 bytes\) but 5 bytes follow at offset 8: 3 unexpected bytes from offset 10/,
    );
  });

  it("rejects a truncated gzip file, saying how far the IDX data got", () => {
    const { images } = mnist(50, 28, 28);
    const gz = gzipSync(images, { level: 0 }); // stored blocks: the payload survives truncation byte for byte
    const cut = gz.subarray(0, 2000);
    const path = write("t10k-images-idx3-ubyte.gz", cut);
    expect(() => readIdx(path)).toThrow(
      /t10k-images-idx3-ubyte\.gz: header says 50 images of 28x28 \(39200 bytes\) but only \d+ bytes follow at offset 16 of the decompressed data \(the gzip stream is cut short after 2000 compressed bytes\)/,
    );
  });

  it("rejects a gzip file that lost only its trailer", () => {
    const { labels } = mnist(20, 1, 1);
    const gz = gzipSync(labels);
    expect(() => parseIdx(gz.subarray(0, gz.length - 4), { file: "l.gz" })).toThrow(
      /l\.gz: the gzip stream is cut short after \d+ compressed bytes \(its end-of-stream trailer is missing\)/,
    );
  });

  it("rejects corrupt gzip data", () => {
    const { labels } = mnist(20, 1, 1);
    const gz = new Uint8Array(gzipSync(labels));
    gz[gz.length - 6] = (gz[gz.length - 6] as number) ^ 0xff; // damage the CRC
    expect(() => parseIdx(gz, { file: "c.gz" })).toThrow(
      /^c\.gz: corrupt gzip data \(incorrect data check\)/,
    );
  });
});

describe("readMnist", () => {
  it("builds a [1, rows, cols] dataset scaled to [0, 1] when not normalized", () => {
    const { images, labels } = mnist(6, 3, 2);
    const ds = readMnist(write("a-images.gz", gzipSync(images)), write("a-labels", labels), {
      normalize: "none",
    });
    expect(ds.name).toBe("a-images.gz");
    expect(ds.shape).toEqual([1, 3, 2]);
    expect(ds.classes).toBe(10);
    expect(datasetSize(ds)).toBe(6);
    expect(ds.inputs.length).toBe(36);
    expect(ds.inputs[7]).toBeCloseTo(14 / 255, 7); // sample 1, position 1: 7 + 7
    expect(Array.from(ds.labels)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("normalizes with the data's own statistics by default", () => {
    const { images, labels } = mnist(20, 4, 4);
    const stats = channelStats(parseMnist(images, labels));
    expect(stats.mean[0]).toBeCloseTo(0, 6);
    expect(stats.std[0]).toBeCloseTo(1, 5);
  });

  it("normalizes with given statistics", () => {
    const { images, labels } = mnist(2, 2, 2);
    const ds = parseMnist(images, labels, { normalize: { mean: [0.5], std: [0.25] } });
    expect(ds.inputs[0]).toBeCloseTo((0 - 0.5) / 0.25, 6);
    expect(ds.inputs[3]).toBeCloseTo((3 / 255 - 0.5) / 0.25, 6);
  });

  it("rejects images and labels of different counts, naming both files", () => {
    const a = mnist(10, 2, 2);
    const b = mnist(12, 2, 2);
    const images = write("m-images", a.images);
    const labels = write("m-labels", b.labels);
    expect(() => readMnist(images, labels)).toThrow(
      /MNIST images and labels disagree: .*m-images has 10 images but .*m-labels has 12 labels/,
    );
  });

  it("rejects a label file given as the image file", () => {
    const { labels } = mnist(3, 1, 1);
    expect(() => parseMnist(labels, labels, { imagesFile: "labels-as-images" })).toThrow(
      /labels-as-images: expected IDX images \(magic 0x00000803: uint8, 3 dimensions \[n, rows, cols\]\) but magic 0x00000801 says uint8 with 1 dimension \[3\]/,
    );
  });

  it("rejects labels outside the classes, naming sample and offset", () => {
    const { images } = mnist(3, 1, 1);
    const labels = idx(0x801, [3], new Uint8Array([1, 12, 0]));
    expect(() => parseMnist(images, labels, { labelsFile: "bad-labels" })).toThrow(
      /bad-labels: label 12 of sample 1 \(offset 9\) is outside the 10 classes 0\.\.9/,
    );
  });
});
