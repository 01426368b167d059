import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";

// Every example in examples/ runs as it is.
const folder = new URL("../examples/", import.meta.url).pathname;
const examples = readdirSync(folder).filter((f) => f.endsWith(".ts"));

describe("examples", () => {
  it("has examples to run", () => {
    expect(examples.length).toBeGreaterThanOrEqual(2);
  });
  for (const file of examples) {
    it(`${file} runs and exits 0`, () => {
      const r = spawnSync(process.execPath, ["--import", "tsx", `${folder}${file}`], { encoding: "utf8" });
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/loss \d+\.\d+/);
    });
  }
});
