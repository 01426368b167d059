// Token streams for language models: a flat little-endian file of token ids (uint16 as nanoGPT's prepare.py
// scripts write train.bin / val.bin, or uint32) cut into non-overlapping windows of `context` tokens with
// next-token targets. A seeded subset picks windows before anything is read, and only those are read.

import { closeSync, existsSync, fstatSync, openSync, readSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Dataset } from "./dataset.ts";
import { type SubsetOptions, subsetIndices, subsetName } from "./transform.ts";

/**
 * Element type of a token file: 2-byte (default; vocabularies up to 65,536 such as GPT-2's 50,257) or 4-byte ids.
 *
 * @example
 * const dtype: TokenDtype = "uint32";
 */
export type TokenDtype = "uint16" | "uint32";

/**
 * How token windows are cut and checked.
 *
 * @example
 * const options: TokenOptions = { context: 128, vocab: 50257, subset: { count: 512, seed: 0 } };
 */
export interface TokenOptions {
  /** Element type of the file (default "uint16"). */
  readonly dtype?: TokenDtype;
  /** Tokens per window, T (default 256). */
  readonly context?: number;
  /**
   * Vocabulary size, the dataset's `classes`; the ids read must be below it. Default: 1 + the largest id in the
   * whole file (read through in chunks, once).
   */
  readonly vocab?: number;
  /** Keep a seeded subset of the windows, chosen before reading (see `subsetIndices`). */
  readonly subset?: SubsetOptions;
  /** The dataset's name (default the file's base name), before any subset suffix. */
  readonly name?: string;
}

/** Default tokens per window. */
export const DEFAULT_CONTEXT = 256;
/** Vocabulary of the embedded text: one token per byte value. */
export const EMBEDDED_TEXT_VOCAB = 256;

const CHUNK_TOKENS = 1 << 20;
const INT32_MAX = 2 ** 31 - 1;

/** Random access to a stream of token ids. */
interface TokenSource {
  readonly length: number;
  /** Tokens [start, start + count). */
  read(start: number, count: number): ArrayLike<number>;
}

/**
 * Number of windows a stream of `length` tokens gives with context T: floor((length - 1) / T), since window k
 * takes inputs tokens[kT, kT + T) and targets tokens[kT + 1, kT + T + 1).
 *
 * @example
 * tokenWindowCount(1025, 256); // 4
 * tokenWindowCount(1024, 256); // 3: the last window would need token 1024 as its final target
 */
export function tokenWindowCount(length: number, context: number): number {
  return Math.max(0, Math.floor((length - 1) / context));
}

/**
 * Token windows from ids in memory: window k has inputs tokens[kT, kT + T) and next-token targets
 * tokens[kT + 1, kT + T + 1), windows not overlapping. Shape [T], Int32Array inputs and labels
 * (count * T each), targetShape [T], classes = vocab.
 *
 * @example
 * const ds = tokenWindows(new Uint16Array([5, 6, 7, 8, 9]), { context: 2 });
 * // inputs [5, 6, 7, 8], labels [6, 7, 8, 9], classes 10
 */
export function tokenWindows(
  tokens: Uint8Array | Uint16Array | Uint32Array | Int32Array,
  options: TokenOptions = {},
): Dataset {
  for (let i = 0; i < tokens.length; i++)
    if ((tokens[i] as number) < 0)
      throw new Error(`tokenWindows(): token ${i} is ${tokens[i]}; ids are >= 0`);
  const source: TokenSource = {
    length: tokens.length,
    read: (start, count) => tokens.subarray(start, start + count),
  };
  return windows(source, "<tokens>", options, options.name ?? "tokens");
}

/**
 * Reads token windows from a file of little-endian ids (see `tokenWindows`), reading only the chosen windows at
 * their offsets, so a seeded `subset` of 512 windows of a 10 GB file reads 512 windows (plus, without `vocab`,
 * one pass in chunks of 2^20 tokens for the largest id). Errors name the file, its size and dtype.
 *
 * @example
 * const train = readTokens("train.bin", { context: 256, vocab: 65, subset: { count: 512, seed: 0 } });
 * train.shape; // [256]
 */
export function readTokens(path: string, options: TokenOptions = {}): Dataset {
  const { dtype = "uint16" } = options;
  if (dtype !== "uint16" && dtype !== "uint32")
    throw new Error(`readTokens(): 'dtype' must be "uint16" or "uint32", got ${JSON.stringify(dtype)}`);
  const bytes = dtype === "uint16" ? 2 : 4;
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    if (size % bytes !== 0)
      throw new Error(
        `${path}: ${size} bytes is not a whole number of ${dtype} tokens (${bytes} bytes each); is the dtype right (--dtype uint16 or uint32)?`,
      );
    const source: TokenSource = {
      length: size / bytes,
      read(start, count) {
        const buffer = Buffer.alloc(count * bytes);
        const got = readSync(fd, buffer, 0, buffer.length, start * bytes);
        if (got !== buffer.length)
          throw new Error(`${path}: expected ${buffer.length} bytes at offset ${start * bytes}, read ${got}`);
        const aligned = new Uint8Array(buffer).buffer; // a fresh copy: Buffer's pool offset may be unaligned
        const view = dtype === "uint16" ? new Uint16Array(aligned) : new Uint32Array(aligned);
        if (!LITTLE_ENDIAN_HOST) {
          const dv = new DataView(aligned);
          for (let i = 0; i < count; i++)
            view[i] = dtype === "uint16" ? dv.getUint16(2 * i, true) : dv.getUint32(4 * i, true);
        }
        return view;
      },
    };
    return windows(source, `${path} (${dtype}, ${size} bytes)`, options, options.name ?? basename(path));
  } finally {
    closeSync(fd);
  }
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function windows(source: TokenSource, where: string, options: TokenOptions, name: string): Dataset {
  const { context = DEFAULT_CONTEXT } = options;
  if (!Number.isSafeInteger(context) || context < 1)
    throw new Error(`${where}: 'context' must be a positive integer, got ${context}`);
  const total = tokenWindowCount(source.length, context);
  if (total < 1)
    throw new Error(
      `${where}: ${source.length} tokens give no window of context ${context} (a window needs ${context + 1} tokens: ${context} inputs and the next one as the last target)`,
    );
  let vocab = options.vocab;
  if (vocab !== undefined && (!Number.isSafeInteger(vocab) || vocab < 1 || vocab > 2 ** 32))
    throw new Error(`${where}: 'vocab' must be a positive integer up to 2^32, got ${vocab}`);
  if (vocab === undefined) {
    let max = 0;
    for (let start = 0; start < source.length; start += CHUNK_TOKENS) {
      const chunk = source.read(start, Math.min(CHUNK_TOKENS, source.length - start));
      for (let i = 0; i < chunk.length; i++) if ((chunk[i] as number) > max) max = chunk[i] as number;
    }
    vocab = max + 1;
  }
  const chosen = options.subset ? subsetIndices(total, options.subset) : undefined;
  const count = chosen ? chosen.length : total;
  const windowAt = (k: number): number => (chosen ? (chosen[k] as number) : k);
  const inputs = new Int32Array(count * context);
  const labels = new Int32Array(count * context);
  // Runs of consecutive windows are read together, up to about CHUNK_TOKENS tokens per read.
  const perRead = Math.max(1, Math.floor(CHUNK_TOKENS / context));
  for (let k = 0; k < count; ) {
    const first = windowAt(k);
    let run = 1;
    while (k + run < count && run < perRead && windowAt(k + run) === first + run) run++;
    const tokens = source.read(first * context, run * context + 1);
    for (let i = 0; i < tokens.length; i++) {
      const v = tokens[i] as number;
      if (v > INT32_MAX)
        throw new Error(
          `${where}: token ${first * context + i} is ${v}; token ids must fit int32 (up to ${INT32_MAX})`,
        );
      if (v >= vocab)
        throw new Error(
          `${where}: token ${first * context + i} is ${v}, outside the vocabulary 0..${vocab - 1} (--vocab ${vocab})`,
        );
    }
    for (let r = 0; r < run; r++) {
      const o = (k + r) * context;
      for (let j = 0; j < context; j++) {
        inputs[o + j] = tokens[r * context + j] as number;
        labels[o + j] = tokens[r * context + j + 1] as number;
      }
    }
    k += run;
  }
  return {
    name: options.subset ? subsetName(name, options.subset, count) : name,
    shape: [context],
    inputs,
    labels,
    targetShape: [context],
    classes: vocab,
    normalization: "token ids",
  };
}

/**
 * The folder holding the embedded token streams (data/text/: train.bin and val.bin, byte-level King James
 * Version text), found by walking up from this module.
 *
 * @example
 * embeddedTextDir(); // "/path/to/losscape/data/text"
 */
export function embeddedTextDir(): string {
  const searched: string[] = [];
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 5; up++) {
    const candidate = join(dir, "data", "text");
    if (existsSync(join(candidate, "train.bin"))) return candidate;
    searched.push(candidate);
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new Error(
    `loadEmbeddedText(): the embedded token streams (data/text/train.bin, val.bin) were not found; looked in ${searched.join(", ")}`,
  );
}

/**
 * A split of the embedded text as token windows: "train" reads data/text/train.bin, "test" val.bin; byte-level
 * tokens (uint16), vocab 256 unless `vocab` gives a larger model vocabulary. Options as `readTokens`.
 *
 * @example
 * const train = loadEmbeddedText("train", { context: 128 });
 * train.classes; // 256
 */
export function loadEmbeddedText(
  split: "train" | "test",
  options: Pick<TokenOptions, "context" | "subset" | "vocab"> = {},
): Dataset {
  if (split !== "train" && split !== "test")
    throw new Error(`loadEmbeddedText(): 'split' must be "train" or "test", got ${JSON.stringify(split)}`);
  return readTokens(join(embeddedTextDir(), split === "train" ? "train.bin" : "val.bin"), {
    ...options,
    dtype: "uint16",
    vocab: options.vocab ?? EMBEDDED_TEXT_VOCAB,
    name: `tokens-embedded/${split}`,
  });
}
