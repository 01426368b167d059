// Reading PyTorch ONNX exports (fixtures/torch/, made by fixtures/torch_export.py):
// state_dict names and roles survive the PRESERVE export, a folded export is
// refused with the recipe, MatMul+Add dense layers are recognised, fixed batch
// sizes are padded, and the numbers are PyTorch's.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { firstSamples } from "../../fixtures/zoo-params.ts";
import type { Dataset } from "../../src/data/dataset.ts";
import { loadEmbedded } from "../../src/data/embedded.ts";
import { createOrtEngine } from "../../src/engine/ort.ts";
import { readSafetensors, tensorToFloat32 } from "../../src/formats/safetensors.ts";
import { parseOnnx, readOnnx } from "../../src/model/import.ts";
import { isTrainable, type Model, paramView } from "../../src/model/model.ts";
import { GraphBuilder, int } from "../../src/onnx/builder.ts";
import { encodeModel } from "../../src/onnx/proto.ts";
import { expectAllClose } from "../helpers.ts";

interface TorchNumbers {
  loss: number;
  accuracy: number;
  mse: number;
  first50: { loss: number; accuracy: number; mse: number };
  logits: number[][];
}

interface Exported {
  file: string;
  opset: number;
  ops: string[];
  initializers: [string, number[]][];
  inputShape: number[];
  batch: number | null;
  stateDict: [string, number[]][];
  parameters: [string, number[]][];
  float32: TorchNumbers;
  float64: Omit<TorchNumbers, "logits">;
}

interface Expected {
  batch: { count: number; subset: number; inputSum: number; inputSumSquares: number; labels: number[] };
  models: Record<"tiny_preserve" | "tiny_folded" | "tiny_fixed16" | "seq_mlp" | "seq_mlp_preserve", Exported>;
}

const dir = new URL("../../fixtures/torch/", import.meta.url);
const pathOf = (file: string): string => new URL(file, dir).pathname;
const expected = JSON.parse(readFileSync(pathOf("expected.json"), "utf8")) as Expected;
const batch: Dataset = firstSamples(loadEmbedded("test"), expected.batch.count);

const relative = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);

/** The same samples with another sample shape (for graphs that take [16, 49]). */
function reshaped(data: Dataset, shape: number[]): Dataset {
  return { ...data, name: `${data.name} as [${shape.join(", ")}]`, shape };
}

/** Checks loss, accuracy, MSE and all logits of `model` on `data` against PyTorch's float32 numbers. */
async function expectTorchNumbers(model: Model, data: Dataset, torch: TorchNumbers): Promise<void> {
  const engine = await createOrtEngine(model, { threads: 1 });
  try {
    const ce = await engine.evaluate(model.initial, data);
    const mse = await engine.evaluate(model.initial, data, { loss: "mse-onehot" });
    expect(ce.count).toBe(expected.batch.count);
    expect(relative(ce.loss, torch.loss)).toBeLessThan(1e-5);
    expect(relative(mse.loss, torch.mse)).toBeLessThan(1e-5);
    expect(ce.accuracy).toBe(torch.accuracy);
    const logits = await engine.logits(model.initial, data, 0, expected.batch.count);
    expectAllClose(logits, torch.logits.flat(), { rtol: 1e-5, atol: 1e-5 });
  } finally {
    await engine.dispose();
  }
}

describe("PyTorch export fixtures", () => {
  it("are evaluated on the batch PyTorch saw (the first 64 embedded test images)", () => {
    expect(Array.from(batch.labels)).toEqual(expected.batch.labels);
    let sum = 0;
    let sumSq = 0;
    for (const v of batch.inputs) {
      sum += v;
      sumSq += v * v;
    }
    expect(relative(sum, expected.batch.inputSum)).toBeLessThan(1e-9);
    expect(relative(sumSq, expected.batch.inputSumSquares)).toBeLessThan(1e-9);
  });
});

describe("a TrainingMode.PRESERVE export", () => {
  const info = expected.models.tiny_preserve;

  it("keeps the state_dict names, shapes and order", async () => {
    const model = await readOnnx(pathOf(info.file));
    expect(model.name).toBe("tiny_preserve.onnx");
    expect(model.params.map((p) => [p.name, [...p.shape]])).toEqual(info.stateDict);
    expect(model.params.filter((p) => isTrainable(p.role)).map((p) => [p.name, [...p.shape]])).toEqual(
      info.parameters,
    );
    expect(model.warnings).toEqual([]);
    expect(model.input).toEqual({ name: "input", shape: [1, 28, 28], batch: null, type: "float32" });
    expect(model.output).toBe("logits");
    expect(model.classes).toBe(10);
  });

  it("gives conv and linear weights the filter role on axis 0, and BN tensors their roles", async () => {
    const model = await readOnnx(pathOf(info.file));
    const roles = Object.fromEntries(model.params.map((p) => [p.name, [p.role, p.filterAxis]]));
    expect(roles).toEqual({
      "conv1.weight": ["filter", 0],
      "bn1.weight": ["bn-scale", undefined],
      "bn1.bias": ["bn-shift", undefined],
      "bn1.running_mean": ["bn-stat", undefined],
      "bn1.running_var": ["bn-stat", undefined],
      "block.conv1.weight": ["filter", 0],
      "block.bn1.weight": ["bn-scale", undefined],
      "block.bn1.bias": ["bn-shift", undefined],
      "block.bn1.running_mean": ["bn-stat", undefined],
      "block.bn1.running_var": ["bn-stat", undefined],
      "block.conv2.weight": ["filter", 0],
      "block.bn2.weight": ["bn-scale", undefined],
      "block.bn2.bias": ["bn-shift", undefined],
      "block.bn2.running_mean": ["bn-stat", undefined],
      "block.bn2.running_var": ["bn-stat", undefined],
      "conv2.weight": ["filter", 0],
      "conv2.bias": ["bias", undefined],
      "fc.weight": ["filter", 0],
      "fc.bias": ["bias", undefined],
    });
  });

  it("holds the state_dict values under their names", async () => {
    const model = await readOnnx(pathOf(info.file));
    const state = readSafetensors(pathOf("tiny_state.safetensors")).tensors;
    expect([...state.keys()]).toEqual(model.params.map((p) => p.name));
    for (const p of model.params) {
      expect(paramView(model.initial, p), p.name).toEqual(tensorToFloat32(state.get(p.name)!));
    }
  });

  it("evaluates to PyTorch's loss, accuracy and logits", async () => {
    await expectTorchNumbers(await readOnnx(pathOf(info.file)), batch, info.float32);
  });
});

describe("a plain export with BatchNorm folded into Conv", () => {
  const info = expected.models.tiny_folded;

  it("has generated weight names and no BatchNormalization (what the fixture is about)", () => {
    expect(info.ops).not.toContain("BatchNormalization");
    expect(info.initializers.filter(([n]) => n.startsWith("onnx::Conv_")).length).toBeGreaterThanOrEqual(3);
  });

  it("is refused with the PRESERVE export recipe", async () => {
    const message =
      /tiny_folded\.onnx: this graph looks like a torch\.onnx\.export with BatchNorm folded into the Conv weights \(3 of 4 Conv weights have generated names like 'onnx::Conv_\d+'.*training=torch\.onnx\.TrainingMode\.PRESERVE, do_constant_folding=False.*allowFoldedBatchNorm/;
    await expect(readOnnx(pathOf(info.file))).rejects.toThrow(message);
    expect(() => parseOnnx(readFileSync(pathOf(info.file)))).toThrow(/TrainingMode\.PRESERVE/);
  });

  it("with allowFoldedBatchNorm, evaluates to PyTorch's numbers without BN parameters", async () => {
    const model = await readOnnx(pathOf(info.file), { allowFoldedBatchNorm: true });
    expect(model.params.some((p) => p.role.startsWith("bn-"))).toBe(false);
    expect(model.params.filter((p) => p.role === "filter").map((p) => p.filterAxis)).toEqual([0, 0, 0, 0, 0]);
    await expectTorchNumbers(model, batch, info.float32);
  });
});

describe("a Linear on a 3D input (MatMul + Add)", () => {
  const info = expected.models.seq_mlp;

  it("gives the [in, out] MatMul weight the filter role on axis 1 and the Add its bias", async () => {
    expect(info.ops).toContain("MatMul");
    const model = await readOnnx(pathOf(info.file));
    const roles = Object.fromEntries(model.params.map((p) => [p.name, [p.role, p.filterAxis, p.shape]]));
    const matmul = info.initializers.find(([n]) => n.startsWith("onnx::MatMul_"))!;
    expect(roles).toEqual({
      "fc1.bias": ["bias", undefined, [12]],
      "fc2.weight": ["filter", 0, [10, 192]],
      "fc2.bias": ["bias", undefined, [10]],
      [matmul[0]]: ["filter", 1, [49, 12]],
    });
    expect(model.input).toEqual({ name: "input", shape: [16, 49], batch: null, type: "float32" });
    expect(model.warnings).toEqual([]);
  });

  it("evaluates to PyTorch's loss, accuracy and logits", async () => {
    const model = await readOnnx(pathOf(info.file));
    await expectTorchNumbers(model, reshaped(batch, [16, 49]), info.float32);
  });

  // The PRESERVE recipe (do_constant_folding=False) keeps fc1.weight [12, 49] under its
  // state_dict name, read through a Transpose node before the MatMul.
  it("exported with the PRESERVE recipe, fc1.weight behind a Transpose is a filter", async () => {
    const model = await readOnnx(pathOf(expected.models.seq_mlp_preserve.file));
    const fc1 = model.params.find((p) => p.name === "fc1.weight");
    expect(fc1?.role).toBe("filter");
    expect(fc1?.filterAxis).toBe(0);
  });

  it("exported with the PRESERVE recipe, still evaluates to PyTorch's numbers", async () => {
    const info = expected.models.seq_mlp_preserve;
    expect(info.ops).toContain("Transpose");
    const model = await readOnnx(pathOf(info.file));
    await expectTorchNumbers(model, reshaped(batch, [16, 49]), info.float32);
  });
});

describe("a graph with a fixed batch size", () => {
  const info = expected.models.tiny_fixed16;

  it("pads the last batch of a dataset whose size is not a multiple of it", async () => {
    const model = await readOnnx(pathOf(info.file));
    expect(model.input.batch).toBe(16);
    const n = expected.batch.subset;
    expect(n % 16).not.toBe(0);
    const data = firstSamples(batch, n);
    const engine = await createOrtEngine(model, { threads: 1 });
    try {
      for (const batchSize of [undefined, 7, 256]) {
        const m = await engine.evaluate(model.initial, data, batchSize === undefined ? {} : { batchSize });
        expect(m.count).toBe(n);
        expect(relative(m.loss, info.float32.first50.loss)).toBeLessThan(1e-5);
        expect(m.accuracy).toBe(info.float32.first50.accuracy);
      }
      const mse = await engine.evaluate(model.initial, data, { loss: "mse-onehot" });
      expect(relative(mse.loss, info.float32.first50.mse)).toBeLessThan(1e-5);
      // Logits across batch boundaries, with a short last batch.
      const logits = await engine.logits(model.initial, batch, 3, 30);
      expectAllClose(logits, info.float32.logits.slice(3, 33).flat(), { rtol: 1e-5, atol: 1e-5 });
    } finally {
      await engine.dispose();
    }
  });

  it("evaluates the whole batch to PyTorch's numbers", async () => {
    await expectTorchNumbers(await readOnnx(pathOf(info.file)), batch, info.float32);
  });
});

describe("graphs with several inputs or outputs", () => {
  function twoByTwo(): Uint8Array {
    const b = new GraphBuilder("two");
    const a = b.input("a", ["N", 4]);
    const c = b.input("c", ["N", 3]);
    const w = b.initializer("w", [3, 4], new Float32Array(12).fill(0.5));
    const y = b.node("Gemm", [a, w], { transB: int(1) });
    const z = b.node("Gemm", [c, b.initializer("v", [2, 3], new Float32Array(6).fill(0.25))], {
      transB: int(1),
    });
    b.output(y, ["N", 3]);
    b.output(z, ["N", 2]);
    return encodeModel(b.build()).bytes;
  }

  it("demand an input name, listing the graph's inputs", () => {
    expect(() => parseOnnx(twoByTwo(), { name: "two" })).toThrow(
      /two: the graph has 2 inputs \(a, c\); name the samples input \(--input\)/,
    );
  });

  it("demand an output name, listing the graph's outputs", () => {
    expect(() => parseOnnx(twoByTwo(), { name: "two", input: "a" })).toThrow(
      /two: the graph has 2 outputs \(Gemm_\d+_out, Gemm_\d+_out\); name the logits output \(--output\)/,
    );
  });

  it("refuse a name the graph does not have, listing the valid ones", () => {
    expect(() => parseOnnx(twoByTwo(), { name: "two", input: "x" })).toThrow(
      /two: no graph input named 'x'; the graph's inputs are: a, c/,
    );
    expect(() => parseOnnx(twoByTwo(), { name: "two", input: "a", output: "logits" })).toThrow(
      /two: no graph output named 'logits'; the graph's outputs are: Gemm_\d+_out, Gemm_\d+_out/,
    );
  });

  it("read once both are named", () => {
    const model = parseOnnx(twoByTwo(), { name: "two", input: "c", output: "Gemm_1_out" });
    expect(model.input).toEqual({ name: "c", shape: [3], batch: null, type: "float32" });
    expect(model.output).toBe("Gemm_1_out");
    expect(model.classes).toBe(2);
  });
});

describe("bad model bytes", () => {
  const bytes = readFileSync(pathOf(expected.models.tiny_preserve.file));

  it.each([
    [
      "truncated to half",
      bytes.subarray(0, bytes.length >> 1),
      /bad\.onnx: malformed protobuf at byte \d+: field 7 says \d+ bytes but \d+ remain/,
    ],
    [
      "missing its last 100 bytes",
      bytes.subarray(0, bytes.length - 100),
      /bad\.onnx: malformed protobuf at byte \d+/,
    ],
    ["empty", new Uint8Array(0), /bad\.onnx: not an ONNX model \(no graph field found in 0 bytes\)/],
    [
      "text",
      new TextEncoder().encode("hello world, not onnx"),
      /bad\.onnx: malformed protobuf at byte \d+: unsupported wire type/,
    ],
    ["zeros", new Uint8Array(64), /bad\.onnx: malformed protobuf at byte \d+: field number 0/],
  ])("%s: fail with a clear error", (_, data, message) => {
    expect(() => parseOnnx(data, { name: "bad.onnx" })).toThrow(message);
  });

  it("a missing file names the path", async () => {
    await expect(readOnnx("/nonexistent/model.onnx")).rejects.toThrow(
      /cannot read model file '\/nonexistent\/model\.onnx'/,
    );
  });
});
