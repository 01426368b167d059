import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cifarDataset, parseCifarBatch, readCifar } from "../../src/data/cifar.ts";
import { datasetSize } from "../../src/data/dataset.ts";
import { channelStats } from "../../src/data/transform.ts";

const dir = mkdtempSync(join(tmpdir(), "losscape-cifar-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PIXELS = 3072;

/** Records whose pixel p of record k is (k + p) mod 256 with channel c's plane offset, labels given. */
function batch(labelRows: number[][]): Uint8Array {
  const labelBytes = labelRows[0]?.length ?? 1;
  const record = labelBytes + PIXELS;
  const out = new Uint8Array(labelRows.length * record);
  for (const [k, labels] of labelRows.entries()) {
    out.set(labels, k * record);
    for (let p = 0; p < PIXELS; p++) out[k * record + labelBytes + p] = (k + p) % 256;
  }
  return out;
}

function write(name: string, bytes: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

describe("CIFAR-10", () => {
  it("decodes labels and channel-planar pixels of each record", () => {
    const parsed = parseCifarBatch(batch([[3], [9]]));
    expect(parsed.count).toBe(2);
    expect(parsed.classes).toBe(10);
    expect(Array.from(parsed.labels)).toEqual([3, 9]);
    expect(parsed.pixels[0]).toBe(0);
    expect(parsed.pixels[1024]).toBe(0); // first green pixel: (0 + 1024) mod 256
    expect(parsed.pixels[PIXELS + 5]).toBe(6); // record 1, pixel 5
  });

  it("concatenates several batch files in order into a [3, 32, 32] dataset", () => {
    const a = write("data_batch_1.bin", batch([[0], [1], [2]]));
    const b = write("data_batch_2.bin", batch([[7], [8]]));
    const ds = readCifar([a, b], { normalize: "none" });
    expect(ds.shape).toEqual([3, 32, 32]);
    expect(ds.classes).toBe(10);
    expect(datasetSize(ds)).toBe(5);
    expect(Array.from(ds.labels)).toEqual([0, 1, 2, 7, 8]);
    expect(ds.inputs.length).toBe(5 * PIXELS);
    expect(ds.inputs[3 * PIXELS + 10]).toBeCloseTo(10 / 255, 7); // first record of the second file
    expect(ds.inputs[PIXELS + 255]).toBeCloseTo(0, 7); // record 1, pixel 255: (1 + 255) mod 256
  });

  it("normalizes each channel with its own statistics by default", () => {
    const ds = readCifar(write("n.bin", batch([[0], [1], [2], [3]])));
    const stats = channelStats(ds);
    for (let c = 0; c < 3; c++) {
      expect(stats.mean[c]).toBeCloseTo(0, 5);
      expect(stats.std[c]).toBeCloseTo(1, 4);
    }
  });

  it("rejects a truncated record, naming the file, record and offset", () => {
    const bytes = batch([[1], [2], [3]]).subarray(0, 2 * 3073 + 100);
    const path = write("short.bin", bytes);
    expect(() => readCifar(path)).toThrow(
      /short\.bin: CIFAR-10 record 2 at offset 6146 is truncated: 100 of 3073 bytes \(1 label byte \+ 3072 pixel bytes\)/,
    );
  });

  it("suggests CIFAR-100 when the size fits its records", () => {
    const bytes = batch([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    expect(() => parseCifarBatch(bytes, { file: "train.bin" })).toThrow(
      /train\.bin: CIFAR-10 record 3 at offset 9219 is truncated: 3 of 3073 bytes .*3074-byte CIFAR-100 records: pass variant "cifar100"/,
    );
  });

  it("rejects a label outside 0..9, naming record and offset", () => {
    expect(() => parseCifarBatch(batch([[1], [42]]), { file: "b.bin" })).toThrow(
      /b\.bin: label 42 of record 1 \(offset 3073\) is outside the CIFAR-10 classes 0\.\.9/,
    );
  });

  it("rejects an empty file and an empty list of files", () => {
    expect(() => readCifar(write("empty.bin", new Uint8Array(0)))).toThrow(
      /empty\.bin: no CIFAR-10 records \(the file is empty\)/,
    );
    expect(() => readCifar([])).toThrow(/readCifar\(\): 'paths' is empty/);
  });
});

describe("CIFAR-100", () => {
  const bytes = batch([
    [4, 30],
    [19, 99],
  ]);

  it("keeps the fine label by default and the coarse label on request", () => {
    const fine = readCifar(write("train100.bin", bytes), { variant: "cifar100", normalize: "none" });
    expect(fine.classes).toBe(100);
    expect(Array.from(fine.labels)).toEqual([30, 99]);
    expect(fine.inputs[PIXELS + 1]).toBeCloseTo(2 / 255, 7);
    const coarse = parseCifarBatch(bytes, { variant: "cifar100", label: "coarse" });
    expect(coarse.classes).toBe(20);
    expect(Array.from(coarse.labels)).toEqual([4, 19]);
  });

  it("rejects a coarse label outside 0..19", () => {
    const bad = batch([[25, 1]]);
    expect(() => parseCifarBatch(bad, { file: "c.bin", variant: "cifar100", label: "coarse" })).toThrow(
      /c\.bin: coarse label 25 of record 0 \(offset 0\) is outside the CIFAR-100 classes 0\.\.19/,
    );
  });

  it("rejects a coarse label for CIFAR-10 and mixing label kinds", () => {
    expect(() => parseCifarBatch(batch([[1]]), { label: "coarse" })).toThrow(
      /"coarse" applies only to variant "cifar100"/,
    );
    const fine = parseCifarBatch(bytes, { variant: "cifar100" });
    const coarse = parseCifarBatch(bytes, { variant: "cifar100", label: "coarse" });
    expect(() => cifarDataset([fine, coarse])).toThrow(/batch 1 has 20 classes but batch 0 has 100/);
  });
});
