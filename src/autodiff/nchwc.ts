// ORT's blocked-layout convolutions: its CPU build carries NCHWc kernels (domain
// com.microsoft.nchwc) whose block size depends on the CPU (8 with AVX2, 16
// with AVX-512). ORT's own NCHWc graph transformer only rewrites convolutions
// with constant weights; gradient graphs feed the weights as inputs, so they
// emit the blocked ops themselves (Emitter.conv) with the block size asked here.

import * as ort from "onnxruntime-node";
import { GraphBuilder } from "../onnx/builder.ts";
import { encodeModel } from "../onnx/proto.ts";
import { NCHWC_DOMAIN } from "./_emit.ts";

let detected: Promise<number | undefined> | undefined;

/**
 * The NCHWc block size of this machine's ONNX Runtime, or undefined when it has no blocked
 * kernels. Found once per process by reordering a 4-channel tensor (the channels round up to
 * one block).
 *
 * @example
 * const block = await nchwcBlockSize(); // 8 on an AVX2 machine
 */
export function nchwcBlockSize(): Promise<number | undefined> {
  detected ??= detect();
  return detected;
}

async function detect(): Promise<number | undefined> {
  const b = new GraphBuilder("nchwc-block");
  b.input("x", [1, 4, 1, 1]);
  const y = b.node("ReorderInput", ["x"]);
  b.output(y, [1, "block", 1, 1]);
  const proto = b.build();
  proto.graph.nodes[0]!.domain = NCHWC_DOMAIN;
  proto.opsets.push({ domain: NCHWC_DOMAIN, version: 1 });
  try {
    const session = await ort.InferenceSession.create(encodeModel(proto).bytes, {
      intraOpNumThreads: 1,
      logSeverityLevel: 3,
    });
    try {
      const out = await session.run({ x: new ort.Tensor("float32", new Float32Array(4), [1, 4, 1, 1]) });
      const block = out[y]!.dims[1]!;
      return block >= 8 && block % 4 === 0 ? block : undefined;
    } finally {
      await session.release();
    }
  } catch {
    return undefined;
  }
}
