// Atomic writes leave no temporary behind, also of a writer killed mid-write.

import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { writeFileAtomic } from "../../src/formats/atomic.ts";

describe("writeFileAtomic", () => {
  it("removes the temporaries of dead writers of the same file and keeps those of live ones", () => {
    const dir = mkdtempSync(join(tmpdir(), "losscape-atomic-"));
    const path = join(dir, "surface.h5");
    const dead = spawnSync(process.execPath, [
      "-e",
      "process.stdout.write(String(process.pid))",
    ]).stdout.toString();
    writeFileSync(`${path}.tmp-${dead}`, "half a file");
    writeFileSync(`${path}.tmp-${process.ppid}`, "a live writer's file");
    writeFileSync(join(dir, `other.h5.tmp-${dead}`), "another file's");
    writeFileAtomic(path, "done");
    expect(readFileSync(path, "utf8")).toBe("done");
    expect(existsSync(`${path}.tmp-${dead}`)).toBe(false);
    expect(existsSync(`${path}.tmp-${process.ppid}`)).toBe(true);
    expect(existsSync(join(dir, `other.h5.tmp-${dead}`))).toBe(true);
  });
});
