// Parameter discovery on small hand-built graphs: initializers the exporter merged are split again,
// shared ones reported, genuine constants kept constant with their reason, and the exporter's
// metadata decides what is a parameter.

import { describe, expect, it } from "vitest";
import { fromProto } from "../../src/model/import.ts";
import { GraphBuilder, int, ints } from "../../src/onnx/builder.ts";
import type { ModelProto } from "../../src/onnx/proto.ts";

const values = (n: number, k = 1) =>
  Float32Array.from({ length: n }, (_, i) => ((i * 7 + k) % 11) / 11 - 0.5);

/** x [N, 4] -> Gemm(W1) -> Gemm(W2 or W1 again) -> logits [N, 4]. */
function twoLayers(second: (b: GraphBuilder, w1: string) => string): ModelProto {
  const b = new GraphBuilder("two");
  const x = b.input("input", ["N", 4]);
  const w1 = b.initializer("fc1.weight", [4, 4], values(16));
  const h = b.node("Relu", [b.node("Gemm", [x, w1], { transB: int(1) })]);
  const y = b.node("Gemm", [h, second(b, w1)], { transB: int(1) });
  b.output(b.rename(y, "logits"), ["N", 4]);
  return b.build(14);
}

/** A metadata_props entry (ModelProto field 14: key 1, value 2) as the exporter appends it. */
function metadataField(key: string, value: string) {
  const enc = new TextEncoder();
  const part = (tag: number, s: string) => {
    const bytes = enc.encode(s);
    return [tag, ...varint(bytes.length), ...bytes];
  };
  const bytes = Uint8Array.from([...part(0x0a, key), ...part(0x12, value)]);
  return { field: 14, wire: 2, value: bytes.length, bytes, offset: 0 };
}
function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

describe("parameter discovery", () => {
  it("splits an initializer the exporter merged (Identity of another) into its own parameter, with a warning", () => {
    const proto = twoLayers((b, w1) => b.node("Identity", [w1], {}, "fc2.weight"));
    // What torch.onnx's deduplication writes: the second name is an Identity output.
    proto.graph.nodes = proto.graph.nodes.map((n) =>
      n.opType === "Identity" ? { ...n, outputs: ["fc2.weight"] } : n,
    );
    for (const n of proto.graph.nodes)
      n.inputs = n.inputs.map((i) => (i === "fc2.weight_out" ? "fc2.weight" : i));
    const model = fromProto(proto, { name: "merged" });
    expect(model.params.map((p) => p.name)).toEqual(["fc1.weight", "fc2.weight"]);
    expect(model.initializers!.find((r) => r.name === "fc2.weight")!.restoredFrom).toBe("fc1.weight");
    expect(model.warnings.join("\n")).toMatch(
      /merged 1 initializer\(s\) with equal values .*'fc2\.weight' into 'fc1\.weight'/,
    );
    // Two tensors: moving one leaves the other.
    expect(model.size).toBe(32);
  });

  it("reports a tensor read by several compute ops as one shared parameter", () => {
    const model = fromProto(
      twoLayers((_, w1) => w1),
      { name: "tied" },
    );
    expect(model.params.map((p) => p.name)).toEqual(["fc1.weight"]);
    const r = model.initializers!.find((i) => i.name === "fc1.weight")!;
    expect(r.shared).toBe(true);
    expect(r.users).toHaveLength(2);
    expect(model.warnings.join("\n")).toMatch(
      /parameter 'fc1\.weight' is read by several ops .*one tensor, moved once/,
    );
  });

  it("keeps scalars, masks and divisors constant, each with its reason", () => {
    const b = new GraphBuilder("consts");
    const x = b.input("input", ["N", 4]);
    const w = b.initializer("fc.weight", [4, 4], values(16));
    const scale = b.initializer("scale", [], Float32Array.of(0.125));
    const mask = b.initializer("mask", [1, 4], Float32Array.of(1, 0, 1, 1));
    const div = b.initializer("temperature", [4], Float32Array.of(2, 2, 2, 2));
    const h = b.node("Mul", [b.node("Gemm", [x, w], { transB: int(1) }), scale]);
    const cond = b.node("Equal", [mask, b.initializer("zero", [], Float32Array.of(0))]);
    const masked = b.node("Where", [cond, b.initializer("fill", [], Float32Array.of(-1e9)), h]);
    const y = b.node("Div", [masked, div]);
    b.output(b.rename(y, "logits"), ["N", 4]);
    const model = fromProto(b.build(14), { name: "consts" });
    expect(model.params.map((p) => p.name)).toEqual(["fc.weight"]);
    const kind = (n: string) => model.initializers!.find((r) => r.name === n)!;
    expect(kind("scale")).toMatchObject({ status: "constant", kind: "a scalar" });
    expect(kind("mask").status).toBe("constant");
    expect(kind("mask").kind).toMatch(/mask/);
    expect(kind("temperature")).toMatchObject({ status: "constant", kind: "divisor" });
  });

  it("with the exporter's metadata, exactly the listed tensors are parameters; a wrong shape is refused", () => {
    const b = new GraphBuilder("meta");
    const x = b.input("input", ["N", 4]);
    const w = b.initializer("fc.weight", [4, 4], values(16));
    // A learned temperature PyTorch trains (nn.Parameter), read only by a Div.
    const t = b.initializer("temperature", [4], values(4, 3));
    const y = b.node("Div", [b.node("Gemm", [x, w], { transB: int(1) }), t]);
    b.output(b.rename(y, "logits"), ["N", 4]);
    const proto = b.build(14);
    expect(fromProto(proto, { name: "meta" }).params.map((p) => p.name)).toEqual(["fc.weight"]);
    const listed = (list: unknown) => ({
      ...proto,
      extra: [metadataField("losscape.parameters", JSON.stringify(list))],
    });
    const withMeta = fromProto(
      listed([
        { name: "fc.weight", shape: [4, 4], trainable: true },
        { name: "temperature", shape: [4], trainable: true },
      ]),
      { name: "meta" },
    );
    expect(withMeta.params.map((p) => [p.name, p.role])).toEqual([
      ["fc.weight", "filter"],
      ["temperature", "bias"],
    ]);
    expect(withMeta.initializers!.find((r) => r.name === "temperature")!.kind).toBe(
      "parameter (export metadata)",
    );
    expect(() => fromProto(listed([{ name: "fc.weight", shape: [4, 3] }]), { name: "meta" })).toThrow(
      /metadata 'losscape\.parameters' gives 'fc\.weight' the shape \[4, 3\] but its initializer is \[4, 4\]/,
    );
    expect(() =>
      fromProto({ ...proto, extra: [metadataField("losscape.parameters", "{")] }, { name: "meta" }),
    ).toThrow(/metadata 'losscape\.parameters' is not a JSON list/);
  });

  it("follows a weight through plumbing ops and maps its filter axis back (Transpose of [out, in])", () => {
    const b = new GraphBuilder("plumbing");
    const x = b.input("input", ["N", 3]);
    const w = b.initializer("proj.weight", [5, 3], values(15));
    const wt = b.node("Transpose", [b.node("Identity", [w])], { perm: ints([1, 0]) });
    const y = b.node("MatMul", [x, wt]);
    b.output(b.rename(y, "logits"), ["N", 5]);
    const model = fromProto(b.build(14), { name: "plumbing" });
    expect(model.params.map((p) => [p.name, p.role, p.filterAxis])).toEqual([["proj.weight", "filter", 0]]);
  });
});
