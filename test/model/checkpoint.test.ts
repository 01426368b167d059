import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { writeSafetensors } from "../../src/formats/safetensors.ts";
import { loadParams, saveModel } from "../../src/model/checkpoint.ts";
import { parseOnnx } from "../../src/model/import.ts";
import { openModel } from "../../src/model/open.ts";
import { zooModel } from "../../src/zoo/zoo.ts";
import { tempDir } from "../helpers.ts";

let cleanup = () => {};
afterEach(() => cleanup());

describe("model files", () => {
  it("saves .onnx and .safetensors that both read back to the same parameters", async () => {
    const t = tempDir();
    cleanup = t.cleanup;
    const model = zooModel("cnn", { seed: 3 });
    const values = model.initial.map((v, i) => v + (i % 7) * 1e-3);
    const files = saveModel(model, values, join(t.dir, "cnn"), { epoch: "2" });
    const reread = parseOnnx(readFileSync(files.onnx), { name: "cnn" });
    expect(Array.from(reread.initial)).toEqual(Array.from(values));
    expect(Array.from(loadParams(model, files.safetensors))).toEqual(Array.from(values));
    const opened = await openModel(files.onnx, { params: files.safetensors });
    expect(opened.model.params.map((p) => p.name)).toEqual(model.params.map((p) => p.name));
    expect(readdirSync(t.dir).sort()).toEqual(["cnn.onnx", "cnn.safetensors"]);
  });

  it("accepts a PyTorch state_dict with num_batches_tracked and refuses missing, misshaped or foreign tensors", () => {
    const t = tempDir();
    cleanup = t.cleanup;
    const model = zooModel("mlp", { inputShape: [4], hidden: [3], classes: 2 });
    const tensors = model.params.map((p) => ({
      name: p.name,
      shape: p.shape,
      data: model.initial.subarray(p.offset, p.offset + p.size),
    }));
    const path = join(t.dir, "p.safetensors");
    writeSafetensors(path, [
      ...tensors,
      { name: "bn.num_batches_tracked", shape: [], data: new BigInt64Array([5n]) },
    ]);
    expect(loadParams(model, path).length).toBe(model.size);
    writeSafetensors(path, tensors.slice(1));
    expect(() => loadParams(model, path)).toThrow(/1 of model 'mlp''s 4 parameters are missing: fc1.weight/);
    writeSafetensors(path, [{ ...tensors[0]!, shape: [12] }, ...tensors.slice(1)]);
    expect(() => loadParams(model, path)).toThrow(
      /tensor 'fc1.weight' has shape \[12\] but model 'mlp' expects \[3, 4\]/,
    );
    writeSafetensors(path, [...tensors, { name: "head.weight", shape: [1], data: new Float32Array(1) }]);
    expect(() => loadParams(model, path)).toThrow(
      /has 1 tensors that model 'mlp' does not have: head.weight/,
    );
    expect(() => loadParams(model, join(t.dir, "nope.safetensors"))).toThrow(
      /parameter file '.*nope.safetensors' does not exist/,
    );
  });

  it("opens zoo names and refuses a missing .onnx path", async () => {
    const { model, params } = await openModel("resnet20", { inputShape: [3, 32, 32] });
    expect(params).toBe(model.initial);
    await expect(openModel("missing/model.onnx")).rejects.toThrow(
      /model file 'missing\/model.onnx' does not exist/,
    );
    expect(existsSync("missing")).toBe(false);
  });
});
