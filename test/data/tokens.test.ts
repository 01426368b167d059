import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { datasetSize } from "../../src/data/dataset.ts";
import { loadDataset } from "../../src/data/load.ts";
import {
  EMBEDDED_TEXT_VOCAB,
  loadEmbeddedText,
  readTokens,
  tokenWindowCount,
  tokenWindows,
} from "../../src/data/tokens.ts";
import { subset, subsetIndices } from "../../src/data/transform.ts";
import { tempDir } from "../helpers.ts";

// Written by fixtures/data_formats.py (NumPy tofile); expected.json holds the ids.
const DIR = join(import.meta.dirname, "..", "..", "fixtures", "data", "formats");
const EXPECTED = JSON.parse(readFileSync(join(DIR, "..", "expected.json"), "utf8")) as {
  tokens: Record<"uint16" | "uint32", { file: string; values: number[]; max: number }>;
};
const { dir, cleanup } = tempDir("losscape-tokens-");
afterAll(cleanup);

/** Window k of a token list as (inputs, next-token targets). */
function window(tokens: readonly number[], k: number, t: number): [number[], number[]] {
  return [tokens.slice(k * t, k * t + t), tokens.slice(k * t + 1, k * t + t + 1)];
}

describe("tokenWindows", () => {
  it("cuts non-overlapping windows with next-token targets", () => {
    const ds = tokenWindows(new Uint16Array([5, 6, 7, 8, 9]), { context: 2 });
    expect(ds.shape).toEqual([2]);
    expect(ds.targetShape).toEqual([2]);
    expect(Array.from(ds.inputs)).toEqual([5, 6, 7, 8]);
    expect(Array.from(ds.labels)).toEqual([6, 7, 8, 9]);
    expect(ds.inputs).toBeInstanceOf(Int32Array);
    expect(ds.labels).toBeInstanceOf(Int32Array);
    expect(ds.classes).toBe(10);
    expect(ds.normalization).toBe("token ids");
    expect(datasetSize(ds)).toBe(2);
    expect(tokenWindowCount(5, 2)).toBe(2);
    expect(tokenWindowCount(4, 2)).toBe(1); // the second window would need a 5th token as its last target
    expect(tokenWindowCount(1025, 256)).toBe(4);
  });
});

describe("readTokens", () => {
  it("reads uint16 and uint32 files as NumPy wrote them; vocab defaults to 1 + the largest id", () => {
    for (const dtype of ["uint16", "uint32"] as const) {
      const { file, values, max } = EXPECTED.tokens[dtype];
      const t = 16;
      const ds = readTokens(join(DIR, file), { dtype, context: t });
      const windows = Math.floor((values.length - 1) / t);
      expect(datasetSize(ds)).toBe(windows);
      expect(ds.classes).toBe(max + 1);
      expect(ds.name).toBe(file);
      for (const k of [0, 1, windows - 1]) {
        const [x, y] = window(values, k, t);
        expect(Array.from(ds.inputs.subarray(k * t, (k + 1) * t))).toEqual(x);
        expect(Array.from(ds.labels.subarray(k * t, (k + 1) * t))).toEqual(y);
      }
      expect(readTokens(join(DIR, file), { dtype, context: t, vocab: 100000 }).classes).toBe(100000);
    }
  });

  it("takes a seeded subset of windows: the windows and name subset() gives", () => {
    const { file, values } = EXPECTED.tokens.uint16;
    const t = 8;
    const options = { count: 20, seed: 3 };
    const picked = readTokens(join(DIR, file), { context: t, subset: options });
    const after = subset(readTokens(join(DIR, file), { context: t }), options);
    expect(picked.name).toBe(after.name);
    expect(picked.name).toBe("tokens_u16.bin[subset 20 seed 3]");
    expect(Array.from(picked.inputs)).toEqual(Array.from(after.inputs));
    expect(Array.from(picked.labels)).toEqual(Array.from(after.labels));
    for (const [j, k] of subsetIndices(tokenWindowCount(values.length, t), options).entries()) {
      const [x, y] = window(values, k, t);
      expect(Array.from(picked.inputs.subarray(j * t, (j + 1) * t))).toEqual(x);
      expect(Array.from(picked.labels.subarray(j * t, (j + 1) * t))).toEqual(y);
    }
  });

  it("reads only the chosen windows: ids outside the vocabulary elsewhere in the file go unread", () => {
    const t = 4;
    const windows = 50;
    const options = { count: 5, seed: 11 };
    const chosen = subsetIndices(windows, options);
    const tokens = new Uint16Array(windows * t + 1).fill(999);
    for (const k of chosen) for (let j = 0; j <= t; j++) tokens[k * t + j] = (k + j) % 10;
    const path = join(dir, "poisoned.bin");
    writeFileSync(path, tokens);
    const ds = readTokens(path, { context: t, vocab: 10, subset: options });
    expect(datasetSize(ds)).toBe(5);
    expect(Array.from(ds.inputs.subarray(0, t))).toEqual(
      Array.from(tokens.subarray(chosen[0]! * t, chosen[0]! * t + t)),
    );
    expect(() => readTokens(path, { context: t, vocab: 10 })).toThrow(
      /poisoned\.bin \(uint16, 402 bytes\): token \d+ is 999, outside the vocabulary 0\.\.9 \(--vocab 10\)/,
    );
  });

  it("rejects sizes that are not whole tokens, too-short files and bad options, naming file, size and dtype", () => {
    expect(() => readTokens(join(DIR, "odd.bin"))).toThrow(
      /odd\.bin: 101 bytes is not a whole number of uint16 tokens \(2 bytes each\)/,
    );
    expect(() => readTokens(join(DIR, "tokens_u16.bin"), { dtype: "uint32" })).toThrow(
      /tokens_u16\.bin: 2002 bytes is not a whole number of uint32 tokens \(4 bytes each\)/,
    );
    expect(() => readTokens(join(DIR, "tokens_u16.bin"), { context: 1001 })).toThrow(
      /tokens_u16\.bin \(uint16, 2002 bytes\): 1001 tokens give no window of context 1001 \(a window needs 1002 tokens/,
    );
    expect(() => readTokens(join(DIR, "tokens_u16.bin"), { context: 0 })).toThrow(
      /'context' must be a positive integer, got 0/,
    );
    expect(() => readTokens(join(DIR, "tokens_u16.bin"), { vocab: 1.5 })).toThrow(
      /'vocab' must be a positive integer up to 2\^32, got 1\.5/,
    );
    expect(() => readTokens(join(DIR, "tokens_u16.bin"), { vocab: 10, context: 4 })).toThrow(
      /tokens_u16\.bin \(uint16, 2002 bytes\): token \d+ is \d+, outside the vocabulary 0\.\.9/,
    );
  });
});

describe("embedded text", () => {
  it("loads byte-level windows of train.bin and val.bin with vocab 256", () => {
    const train = loadDataset("tokens", "train", { context: 32 });
    expect(train.classes).toBe(EMBEDDED_TEXT_VOCAB);
    expect(train.shape).toEqual([32]);
    expect(datasetSize(train)).toBe(Math.floor((359963 - 1) / 32));
    expect(String.fromCharCode(...train.inputs.subarray(0, 32))).toBe("Ge1:1 In the beginning God creat");
    expect(String.fromCharCode(...train.labels.subarray(0, 32))).toBe("e1:1 In the beginning God create");
    const test = loadEmbeddedText("test", { context: 256, subset: { count: 4, seed: 0 } });
    expect(test.name).toBe("tokens-embedded/test[subset 4 seed 0]");
    expect(datasetSize(test)).toBe(4);
    const val = loadDataset("tokens", "test");
    expect(String.fromCharCode(...val.inputs.subarray(0, 8))).toBe("Exo35:9 ");
    expect(datasetSize(val)).toBe(Math.floor((39845 - 1) / 256));
  });
});
