// Choosing what moves: --trainable / --constant override what the importer found, --only
// restricts directions (and interpolation) to some parameters, and the files record which moved.

import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { randomDirection, restrictDirection } from "../../src/core/directions.ts";
import { readDirectionFile } from "../../src/formats/direction-file.ts";
import { readSurface } from "../../src/formats/surface-file.ts";
import { makeDirections } from "../../src/landscape/plan.ts";
import { zooModel } from "../../src/zoo/zoo.ts";
import { runCli, tempDir } from "../helpers.ts";

const { dir, cleanup } = tempDir("losscape-params-");
afterAll(cleanup);

const cli = runCli;

const MLP = ["--model", "mlp", "--input-shape", "1,28,28"];

describe("--trainable and --constant", () => {
  it("describe lists what the overrides made of each initializer", () => {
    const r = cli("describe", ...MLP, "--constant", "^fc3\\.");
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/4 parameter tensors/);
    expect(r.out).toMatch(
      /2 float initializer\(s\) kept constant:\n\s+fc3\.weight\s+\[10, 256\]\s+constant \(--constant\)/,
    );
    const t = cli("describe", ...MLP, "--constant", "^fc1\\.", "--trainable", "^fc1\\.weight$");
    expect(t.code, t.err).toBe(0);
    // --constant wins over --trainable where both match.
    expect(t.out).toMatch(/4 parameter tensors/);
    expect(t.out).toMatch(/fc1\.weight\s+\[512, 784\]\s+constant \(--constant\)/);
    // With nothing left to move, the model is refused.
    const none = cli("describe", ...MLP, "--constant", "fc");
    expect(none.code).not.toBe(0);
    expect(none.err).toMatch(/found no parameters/);
  });

  it("a pattern that matches no initializer is refused, naming the flag and listing the initializers", () => {
    for (const flag of ["--trainable", "--constant"]) {
      const r = cli("describe", ...MLP, flag, "^nothing");
      expect(r.code).not.toBe(0);
      expect(r.err).toMatch(
        new RegExp(
          `${flag} /\\^nothing/ matches no float initializer; the graph has 6: fc1\\.weight, fc1\\.bias`,
        ),
      );
    }
    const bad = cli("describe", ...MLP, "--trainable", "(");
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/--trainable expects a regular expression, got '\('/);
  });

  it("a constant initializer is left out of the parameter vector (library)", () => {
    const all = zooModel("mlp", { inputShape: [1, 28, 28] });
    const some = zooModel("mlp", { inputShape: [1, 28, 28], constant: /^fc1\./ });
    expect(some.params.map((p) => p.name)).toEqual(["fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"]);
    expect(some.size).toBe(all.size - 512 * 784 - 512);
    expect(some.initializers!.find((r) => r.name === "fc1.weight")!.kind).toBe("constant (--constant)");
  });
});

describe("--only", () => {
  const model = zooModel("resnet20", { inputShape: [3, 32, 32] });

  it("zeroes every tensor that does not match and leaves the others' draws as without it", () => {
    const full = randomDirection(model.initial, model.params, { seed: 5 });
    const only = randomDirection(model.initial, model.params, { seed: 5, only: /^layer3\./ });
    for (const p of model.params) {
      const a = full.subarray(p.offset, p.offset + p.size);
      const b = only.subarray(p.offset, p.offset + p.size);
      if (/^layer3\./.test(p.name)) expect(b).toEqual(a);
      else expect(b.every((v) => v === 0)).toBe(true);
    }
    const moved = makeDirections(model, model.initial, { dims: 2, seed: 5, only: /^layer3\./ }).file.meta;
    const names = JSON.parse(moved.moved!) as string[];
    // Filter tensors of stage 3 only: biases and BN entries are zero by default.
    expect(names.length).toBeGreaterThan(0);
    expect(
      names.every(
        (n) => /^layer3\..*(conv\d|shortcut\.0)\.weight$/.test(n) || /^layer3\.\d\.conv\d\.weight$/.test(n),
      ),
    ).toBe(true);
    expect(moved.only).toBe("^layer3\\.");
    expect(moved.moved_count).toBe(`${names.length} of ${model.params.length}`);
  });

  it("a pattern that matches no parameter is refused, naming it", () => {
    expect(() => restrictDirection(new Float32Array(model.size), model.params, /^head/, "here")).toThrow(
      /here: --only \/\^head\/ matches no parameter; the model has \d+: conv1\.weight, bn1\.weight/,
    );
  });

  it("a surface moves only the matching parameters, records them, and refuses a resume with another --only", () => {
    const out = join(dir, "only.h5");
    const args = ["surface", ...MLP, "--subset", "64", "--x", "-1:1:3", "--out", out, "--threads", "1"];
    const r = cli(...args, "--only", "^fc3\\.");
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/created direction file .* \(moves 1 of 6 tensors\)/);
    const s = readSurface(out);
    expect(s.meta.direction_only).toBe("^fc3\\.");
    expect(JSON.parse(s.meta.direction_moved!)).toEqual(["fc3.weight"]);
    const dirs = readDirectionFile(join(dir, "only.directions.h5"));
    for (const t of dirs.x) expect(t.data.some((v) => v !== 0)).toBe(t.name === "fc3.weight");
    const loss = s.values.train_loss!;
    expect(new Set(loss).size).toBe(3);

    const again = cli(...args, "--only", "^fc2\\.");
    expect(again.code).not.toBe(0);
    expect(again.err).toMatch(
      /direction file '.*only\.directions\.h5' was made with only '\^fc3\\\.', not '\^fc2\\\.'/,
    );
    const none = cli(...args, "--only", "^nothing", "--out", join(dir, "none.h5"));
    expect(none.code).not.toBe(0);
    expect(none.err).toMatch(/--only \/\^nothing\/ matches no parameter/);
  }, 120_000);

  it("interpolate --only moves the matching tensors to the second model and leaves the rest at the first", () => {
    const base = join(dir, "other");
    expect(cli("zoo", "mlp", "--input-shape", "1,28,28", "--seed", "3", "--out", base).code).toBe(0);
    const out = join(dir, "interp.h5");
    const r = cli(
      "interpolate",
      ...MLP,
      "--to",
      `${base}.safetensors`,
      "--only",
      "^fc1\\.",
      "--x",
      "0:1:2",
      "--subset",
      "32",
      "--out",
      out,
      "--threads",
      "1",
    );
    expect(r.code, r.err).toBe(0);
    const s = readSurface(out);
    expect(JSON.parse(s.meta.direction_moved!)).toEqual(["fc1.weight", "fc1.bias"]);
    const d = readDirectionFile(join(dir, "interp.directions.h5"));
    expect(d.x.filter((t) => t.data.some((v) => v !== 0)).map((t) => t.name)).toEqual([
      "fc1.weight",
      "fc1.bias",
    ]);
  }, 120_000);
});
