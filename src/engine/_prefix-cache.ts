// The cut tensors of every batch, kept between grid points: in memory up to a limit, then in one
// temporary file up to a second limit (unlinked at once where the system allows, so a killed run
// leaves nothing behind), and beyond both recomputed at every point. Whole datasets are evicted,
// least recently used first, to make room for the one being evaluated.

import { closeSync, mkdtempSync, openSync, readSync, rmSync, unlinkSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Dataset } from "../data/dataset.ts";

/** One cut tensor of one batch. */
export interface CutTensor {
  readonly name: string;
  /** ONNX Runtime type name (float32, int64, bool, ...). */
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: ArrayBufferView;
}

/** Limits of the cache; bytes. */
export interface CacheLimits {
  /** In memory (default 1 GiB). */
  memoryBytes?: number;
  /** In the temporary file, once memory is full (default 4 GiB; 0: no file). */
  diskBytes?: number;
  /** Folder of the temporary file (default the system's temporary folder). */
  dir?: string;
}

/** What the cache holds and how it was used. */
export interface CacheStats {
  memoryBytes: number;
  diskBytes: number;
  /** Batches held (in memory or on disk). */
  batches: number;
  /** Batches that fitted in neither and are recomputed at every point. */
  uncached: number;
  /** Batches served from the cache. */
  hits: number;
}

type Stored =
  | { where: "memory"; tensors: CutTensor[] }
  | {
      where: "disk";
      meta: { name: string; type: string; dims: readonly number[]; bytes: number; ctor: ViewCtor }[];
      at: number;
      bytes: number;
    };

type ViewCtor = new (buffer: ArrayBuffer) => ArrayBufferView;

interface Entry {
  batchSize: number;
  batches: Map<number, Stored>;
  used: number;
}

export const DEFAULT_MEMORY_BYTES = 1024 * 2 ** 20;
export const DEFAULT_DISK_BYTES = 4096 * 2 ** 20;

export class PrefixCache {
  private readonly entries = new Map<Dataset, Entry>();
  private readonly memoryLimit: number;
  private readonly diskLimit: number;
  private readonly dir: string;
  private memory = 0;
  private disk = 0;
  /** Next write position in the file; reset to 0 when the file holds nothing. */
  private end = 0;
  private fd: number | undefined;
  private file: { dir: string; path: string; unlinked: boolean } | undefined;
  private clock = 0;
  private readonly counts = { uncached: 0, hits: 0 };

  constructor({
    memoryBytes = DEFAULT_MEMORY_BYTES,
    diskBytes = DEFAULT_DISK_BYTES,
    dir = tmpdir(),
  }: CacheLimits = {}) {
    for (const [name, v] of [
      ["memoryBytes", memoryBytes],
      ["diskBytes", diskBytes],
    ] as const)
      if (!(Number.isFinite(v) && v >= 0))
        throw new Error(`prefix cache: '${name}' must be a non-negative number of bytes, got ${v}`);
    this.memoryLimit = memoryBytes;
    this.diskLimit = diskBytes;
    this.dir = dir;
  }

  /** The cut tensors of the batch at `start` of `data` (evaluated in batches of `batchSize`), if held. */
  get(data: Dataset, batchSize: number, start: number): CutTensor[] | undefined {
    const e = this.entries.get(data);
    if (!e || e.batchSize !== batchSize) return undefined;
    e.used = ++this.clock;
    const s = e.batches.get(start);
    if (!s) return undefined;
    this.counts.hits++;
    if (s.where === "memory") return s.tensors;
    const out: CutTensor[] = [];
    let at = s.at;
    for (const m of s.meta) {
      const buffer = new ArrayBuffer(m.bytes);
      const view = new Uint8Array(buffer);
      for (let done = 0; done < m.bytes; ) {
        const n = readSync(this.fd!, view, done, m.bytes - done, at + done);
        if (n <= 0) throw new Error(`prefix cache: the temporary file ended early (${this.file?.path})`);
        done += n;
      }
      at += m.bytes;
      out.push({ name: m.name, type: m.type, dims: m.dims, data: new m.ctor(buffer) });
    }
    return out;
  }

  /** Keeps the batch's cut tensors when they fit (copies them: ONNX Runtime may reuse its buffers). */
  put(data: Dataset, batchSize: number, start: number, tensors: readonly CutTensor[]): void {
    let e = this.entries.get(data);
    if (e && e.batchSize !== batchSize) {
      this.evict(data);
      e = undefined;
    }
    if (!e) {
      e = { batchSize, batches: new Map(), used: ++this.clock };
      this.entries.set(data, e);
    }
    if (e.batches.has(start)) return;
    const bytes = tensors.reduce((a, t) => a + t.data.byteLength, 0);
    if (this.memory + bytes > this.memoryLimit) this.evictOthers(data, bytes, "memory");
    if (this.memory + bytes <= this.memoryLimit) {
      e.batches.set(start, {
        where: "memory",
        tensors: tensors.map((t) => ({ ...t, data: copy(t.data) })),
      });
      this.memory += bytes;
      return;
    }
    if (this.end + bytes > this.diskLimit) this.evictOthers(data, bytes, "disk");
    // The file only grows (a slot freed in its middle is not reused) until it holds nothing.
    if (this.diskLimit > 0 && this.end + bytes <= this.diskLimit) {
      const fd = this.openFile();
      const at = this.end;
      let pos = at;
      for (const t of tensors) {
        const view = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
        for (let done = 0; done < view.length; )
          done += writeSync(fd, view, done, view.length - done, pos + done);
        pos += view.length;
      }
      this.end = pos;
      this.disk += bytes;
      e.batches.set(start, {
        where: "disk",
        at,
        bytes,
        meta: tensors.map((t) => ({
          name: t.name,
          type: t.type,
          dims: t.dims,
          bytes: t.data.byteLength,
          ctor: t.data.constructor as ViewCtor,
        })),
      });
      return;
    }
    this.counts.uncached++;
  }

  /** Drops everything (the fixed parameters changed). */
  clear(): void {
    for (const d of [...this.entries.keys()]) this.evict(d);
  }

  stats(): CacheStats {
    let batches = 0;
    for (const e of this.entries.values()) batches += e.batches.size;
    return { memoryBytes: this.memory, diskBytes: this.disk, batches, ...this.counts };
  }

  /** Closes and removes the temporary file. */
  dispose(): void {
    this.clear();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    if (this.file) rmSync(this.file.dir, { recursive: true, force: true });
    this.file = undefined;
  }

  private openFile(): number {
    if (this.fd !== undefined) return this.fd;
    const dir = mkdtempSync(join(this.dir, "losscape-prefix-"));
    const path = join(dir, "cuts.bin");
    this.fd = openSync(path, "w+");
    let unlinked = false;
    try {
      unlinkSync(path); // the open descriptor keeps the data; nothing is left if the run dies
      rmSync(dir, { recursive: true, force: true });
      unlinked = true;
    } catch {
      // Systems that cannot unlink an open file: removed at dispose().
    }
    this.file = { dir, path, unlinked };
    return this.fd;
  }

  private evict(data: Dataset): void {
    const e = this.entries.get(data);
    if (!e) return;
    for (const s of e.batches.values()) {
      if (s.where === "memory") this.memory -= s.tensors.reduce((a, t) => a + t.data.byteLength, 0);
      else this.disk -= s.bytes;
    }
    this.entries.delete(data);
    if (this.disk === 0) this.end = 0;
  }

  /** Evicts least recently used datasets other than `keep` until `bytes` more fit in `where`. */
  private evictOthers(keep: Dataset, bytes: number, where: "memory" | "disk"): void {
    const limit = where === "memory" ? this.memoryLimit : this.diskLimit;
    const others = [...this.entries.entries()]
      .filter(([d]) => d !== keep)
      .sort((a, b) => a[1].used - b[1].used);
    for (const [d] of others) {
      if ((where === "memory" ? this.memory : this.end) + bytes <= limit) return;
      this.evict(d);
    }
  }
}

function copy(view: ArrayBufferView): ArrayBufferView {
  const Ctor = view.constructor as new (source: ArrayBufferView) => ArrayBufferView;
  return new Ctor(view);
}
