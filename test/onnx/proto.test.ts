import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { GraphBuilder, int } from "../../src/onnx/builder.ts";
import { decodeModel, encodeModel, tensorFloats } from "../../src/onnx/proto.ts";
import { zooProto } from "../../src/zoo/zoo.ts";

describe("ONNX codec", () => {
  it("round-trips a zoo graph: decode(encode(m)) encodes to the same bytes", () => {
    const proto = zooProto("resnet20", { inputShape: [3, 32, 32] });
    const first = encodeModel(proto).bytes;
    const again = encodeModel(decodeModel(first)).bytes;
    expect(Buffer.compare(Buffer.from(first), Buffer.from(again))).toBe(0);
  });

  it("reports where each initializer's raw float data sits in the encoded bytes", () => {
    const proto = zooProto("mlp", { inputShape: [4], hidden: [3], classes: 2, seed: 1 });
    const { bytes, offsets } = encodeModel(proto);
    for (const t of proto.graph.initializers) {
      const at = offsets.get(t.name)!;
      const values = tensorFloats(t);
      const stored = new Float32Array(bytes.slice(at, at + values.byteLength).buffer);
      expect(Array.from(stored)).toEqual(Array.from(values));
    }
  });

  it("keeps fields it does not interpret (a user's model round-trips)", () => {
    const bytes = readFileSync(new URL("../../fixtures/torch/tiny_preserve.onnx", import.meta.url));
    const model = decodeModel(bytes);
    expect(model.producer).toBe("pytorch");
    const again = decodeModel(encodeModel(model).bytes);
    expect(again.graph.nodes.map((n) => n.opType)).toEqual(model.graph.nodes.map((n) => n.opType));
    expect(again.opsets).toEqual(model.opsets);
  });

  it("names the problem in truncated or foreign bytes", () => {
    const b = new GraphBuilder("g");
    b.output(b.node("Flatten", [b.input("x", ["N", 2])], { axis: int(1) }), ["N", 2]);
    const bytes = encodeModel(b.build()).bytes;
    expect(() => decodeModel(bytes.subarray(0, bytes.length - 3), "cut.onnx")).toThrow(
      /cut.onnx.*malformed protobuf at byte \d+/,
    );
    expect(() => decodeModel(new TextEncoder().encode("hello world, not a model"), "text.onnx")).toThrow(
      /text.onnx/,
    );
    expect(() => decodeModel(new Uint8Array([8, 7]), "tiny.onnx")).toThrow(
      /tiny.onnx: not an ONNX model \(no graph field/,
    );
  });
});
