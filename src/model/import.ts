// Reads any ONNX classification model into a losscape Model: finds the
// trainable parameters and their roles from the operators that consume them,
// and rewrites the initializers as raw float32 so that new parameter values
// can be patched into the bytes without re-serializing the graph.

import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import {
  attr,
  DataType,
  decodeModel,
  encodeModel,
  type Graph,
  type ModelProto,
  type Node,
  type Tensor,
  tensorFloats,
} from "../onnx/proto.ts";
import type { Model, ParamRole, ParamSpec } from "./model.ts";

/** Options for reading an ONNX model. */
export interface ImportOptions {
  /** Name used in messages (default: file name or "model"). */
  name?: string;
  /** Graph input that takes the samples, when the graph has several. */
  input?: string;
  /** Graph output holding the logits, when the graph has several. */
  output?: string;
  /** Shape of one sample, when the graph's input shape is symbolic beyond the batch axis. */
  inputShape?: readonly number[];
  /** Accept a graph whose BatchNorm was folded into Conv weights by the exporter (see method.md). */
  allowFoldedBatchNorm?: boolean;
}

interface Found {
  role: ParamRole;
  filterAxis?: number;
  node: Node;
}

/**
 * Parses ONNX bytes into a Model.
 *
 * @example
 * const model = parseOnnx(await readFile("resnet20.onnx"), { name: "resnet20" });
 */
export function parseOnnx(bytes: Uint8Array, options: ImportOptions = {}): Model {
  const name = options.name ?? "model";
  return fromProto(decodeModel(bytes, name), { ...options, name });
}

/** Reads an ONNX file into a Model (see parseOnnx). */
export async function readOnnx(path: string, options: ImportOptions = {}): Promise<Model> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new Error(`cannot read model file '${path}': ${(e as Error).message}`);
  }
  return parseOnnx(bytes, { name: basename(path), ...options });
}

/** Builds a Model from a decoded ModelProto (used by the importer and the zoo). */
export function fromProto(proto: ModelProto, options: ImportOptions = {}): Model {
  const name = options.name ?? "model";
  const graph = proto.graph;
  const warnings: string[] = [];
  const inits = new Map<string, Tensor>(graph.initializers.map((t) => [t.name, t]));

  // Inputs that are also initializers (IR < 4 exports) are constants, not data.
  const dataInputs = graph.inputs.filter((v) => !inits.has(v.name));
  const input = pick(
    dataInputs.map((v) => v.name),
    options.input,
    "input",
    name,
  );
  const inputInfo = dataInputs.find((v) => v.name === input)!;
  const output = pick(
    graph.outputs.map((v) => v.name),
    options.output,
    "output",
    name,
  );
  const outputInfo = graph.outputs.find((v) => v.name === output)!;

  if (inputInfo.elemType !== DataType.FLOAT) {
    throw new Error(
      `${name}: input '${input}' has element type ${inputInfo.elemType}; losscape feeds float32 (1) samples`,
    );
  }
  const dims = inputInfo.shape;
  if (!dims || dims.length < 2) {
    throw new Error(
      `${name}: input '${input}' has shape ${JSON.stringify(dims)}; expected [batch, ...sample shape] with rank >= 2`,
    );
  }
  const batch = typeof dims[0] === "number" && dims[0] > 0 ? dims[0] : null;
  let sampleShape: number[];
  if (options.inputShape) sampleShape = [...options.inputShape];
  else {
    const rest = dims.slice(1);
    if (!rest.every((d): d is number => typeof d === "number" && d > 0)) {
      throw new Error(
        `${name}: input '${input}' has symbolic sample shape [${rest.join(", ")}]; give the shape of one sample (inputShape / --input-shape)`,
      );
    }
    sampleShape = rest;
  }
  const outDims = outputInfo.shape;
  const last = outDims?.[outDims.length - 1];
  const classes = typeof last === "number" && last > 0 ? last : null;

  const found = findRoles(graph, inits, name);
  checkFolded(graph, found, name, options.allowFoldedBatchNorm ?? false);

  // Float initializers that no recognised operator consumes stay fixed.
  for (const t of graph.initializers) {
    if (!found.has(t.name) && isFloat(t) && t.dims.length > 0 && t.dims.reduce((a, b) => a * b, 1) > 1) {
      const users = graph.nodes
        .filter((n) => n.inputs.includes(t.name))
        .map((n) => `${n.opType} '${n.name}'`);
      warnings.push(
        `float initializer '${t.name}' [${t.dims.join(", ")}] is used by ${users.join(", ") || "no node"}; it is kept constant (not a landscape parameter)`,
      );
    }
  }

  const params: ParamSpec[] = [];
  let offset = 0;
  for (const t of graph.initializers) {
    const f = found.get(t.name);
    if (!f) continue;
    if (t.dataType !== DataType.FLOAT) {
      throw new Error(
        `${name}: parameter '${t.name}' (${f.node.opType} '${f.node.name}') has element type ${t.dataType}; losscape runs float32 models (1)`,
      );
    }
    const size = t.dims.reduce((a, b) => a * b, 1);
    const spec: ParamSpec = {
      name: t.name,
      shape: [...t.dims],
      role: f.role,
      offset,
      size,
      ...(f.filterAxis !== undefined ? { filterAxis: f.filterAxis } : {}),
    };
    params.push(spec);
    offset += size;
  }
  if (params.length === 0) {
    throw new Error(
      `${name}: found no parameters (no Conv/Gemm/MatMul/BatchNormalization node reads a float initializer); is this a model with its weights inside?`,
    );
  }

  const initial = new Float32Array(offset);
  for (const p of params) initial.set(tensorFloats(inits.get(p.name)!), p.offset);

  // Canonical form: data inputs only, every initializer as raw bytes.
  const canonical: ModelProto = {
    ...proto,
    graph: { ...graph, inputs: dataInputs },
  };
  const { bytes, offsets } = encodeModel(canonical);
  const rawOffsets = params.map((p) => offsets.get(p.name)!);
  return {
    name,
    onnx: bytes,
    rawOffsets,
    input: { name: input, shape: sampleShape, batch },
    output,
    classes,
    params,
    size: offset,
    initial,
    warnings,
  };
}

function pick(names: string[], wanted: string | undefined, what: "input" | "output", model: string): string {
  if (wanted !== undefined) {
    if (!names.includes(wanted)) {
      throw new Error(
        `${model}: no graph ${what} named '${wanted}'; the graph's ${what}s are: ${names.join(", ") || "(none)"}`,
      );
    }
    return wanted;
  }
  if (names.length === 1) return names[0]!;
  if (names.length === 0) throw new Error(`${model}: the graph has no ${what}s`);
  throw new Error(
    `${model}: the graph has ${names.length} ${what}s (${names.join(", ")}); name the ${what === "input" ? "samples input (--input)" : "logits output (--output)"}`,
  );
}

function isFloat(t: Tensor): boolean {
  return t.dataType === DataType.FLOAT || t.dataType === DataType.DOUBLE || t.dataType === DataType.FLOAT16;
}

/** Assigns roles by looking at the operators that consume each float initializer. */
function findRoles(graph: Graph, inits: Map<string, Tensor>, model: string): Map<string, Found> {
  // A MatMul's weight followed by Add of a rank-1 initializer is a dense layer's bias.
  const producers = new Map<string, Node>();
  for (const n of graph.nodes) for (const o of n.outputs) producers.set(o, n);
  // Follow Identity chains back to the initializer they forward.
  const alias = new Map<string, string>();
  for (const n of graph.nodes) {
    const src = n.inputs[0];
    if (n.opType === "Identity" && src !== undefined && n.outputs[0] !== undefined) {
      alias.set(n.outputs[0], alias.get(src) ?? src);
    }
  }
  const initOf = (value: string | undefined): Tensor | undefined => {
    if (value === undefined || value === "") return undefined;
    const t = inits.get(alias.get(value) ?? value);
    return t && isFloat(t) ? t : undefined;
  };
  // A rank-2 initializer read through Transpose: torch.onnx.export without constant folding
  // (the PRESERVE recipe) writes a Linear on a >2-D input as MatMul(x, Transpose(weight [out, in])).
  const transposedOf = (value: string | undefined): Tensor | undefined => {
    const n = value === undefined ? undefined : producers.get(alias.get(value) ?? value);
    if (n?.opType !== "Transpose") return undefined;
    const perm = attr(n, "perm")?.ints;
    const t = initOf(n.inputs[0]);
    return t && t.dims.length === 2 && (perm === undefined || (perm[0] === 1 && perm[1] === 0))
      ? t
      : undefined;
  };
  const found = new Map<string, Found>();
  const set = (t: Tensor | undefined, node: Node, role: ParamRole, filterAxis?: number): void => {
    if (!t || found.has(t.name)) return;
    found.set(t.name, { role, node, ...(filterAxis !== undefined ? { filterAxis } : {}) });
  };

  for (const n of graph.nodes) {
    switch (n.opType) {
      case "Conv": {
        const w = initOf(n.inputs[1]);
        if (w && w.dims.length < 3)
          throw new Error(
            `${model}: Conv '${n.name}' weight '${w.name}' has rank ${w.dims.length}, expected >= 3`,
          );
        set(w, n, "filter", 0);
        set(initOf(n.inputs[2]), n, "bias");
        break;
      }
      case "ConvTranspose":
        // ConvTranspose weights are [in, out/groups, k...]: filters run along axis 1.
        set(initOf(n.inputs[1]), n, "filter", 1);
        set(initOf(n.inputs[2]), n, "bias");
        break;
      case "Gemm": {
        const transA = attr(n, "transA")?.i ?? 0;
        const transB = attr(n, "transB")?.i ?? 0;
        const a = initOf(n.inputs[0]);
        const b = initOf(n.inputs[1]);
        if (b && !a) set(b, n, "filter", transB ? 0 : 1);
        else if (a && !b) set(a, n, "filter", transA ? 1 : 0);
        set(initOf(n.inputs[2]), n, "bias");
        break;
      }
      case "MatMul": {
        const a = initOf(n.inputs[0]);
        const b = initOf(n.inputs[1]);
        if (b && !a && b.dims.length >= 2) set(b, n, "filter", b.dims.length - 1);
        else if (a && !b && a.dims.length >= 2) set(a, n, "filter", a.dims.length - 2);
        else if (!a && !b) {
          // MatMul(x, Transpose(W [out, in])): the filters are W's rows, as in nn.Linear.
          const bt = transposedOf(n.inputs[1]);
          if (bt && !transposedOf(n.inputs[0])) set(bt, n, "filter", 0);
        }
        break;
      }
      case "Add": {
        for (const [k, other] of [
          [0, 1],
          [1, 0],
        ] as const) {
          const t = initOf(n.inputs[k]);
          const prod = producers.get(n.inputs[other] ?? "");
          if (
            t &&
            prod &&
            (prod.opType === "MatMul" || prod.opType === "Conv") &&
            t.dims.filter((d) => d > 1).length <= 1
          ) {
            set(t, n, "bias");
          }
        }
        break;
      }
      case "BatchNormalization":
        set(initOf(n.inputs[1]), n, "bn-scale");
        set(initOf(n.inputs[2]), n, "bn-shift");
        set(initOf(n.inputs[3]), n, "bn-stat");
        set(initOf(n.inputs[4]), n, "bn-stat");
        break;
      case "LayerNormalization":
      case "InstanceNormalization":
      case "GroupNormalization":
        // Normalization affine parameters are treated like BN's (left out of directions by default).
        set(initOf(n.inputs[1]), n, "bn-scale");
        set(initOf(n.inputs[2]), n, "bn-shift");
        break;
      default:
        break;
    }
  }
  return found;
}

/** Refuses a graph whose exporter folded BatchNorm into Conv weights (method.md, "Importing PyTorch models"). */
function checkFolded(graph: Graph, found: Map<string, Found>, model: string, allow: boolean): void {
  if (allow) return;
  const hasBn = graph.nodes.some((n) => n.opType === "BatchNormalization");
  if (hasBn) return;
  const convs = [...found.entries()].filter(([, f]) => f.node.opType === "Conv" && f.role === "filter");
  const generated = convs.filter(([n]) => /^onnx::Conv_\d+$/.test(n));
  if (convs.length >= 2 && generated.length >= Math.ceil(convs.length / 2)) {
    throw new Error(
      `${model}: this graph looks like a torch.onnx.export with BatchNorm folded into the Conv weights (${generated.length} of ${convs.length} Conv weights have generated names like '${generated[0]![0]}' and there is no BatchNormalization node). ` +
        "Its landscape is not the paper's: filter norms are those of the folded weights. Re-export keeping BatchNorm: " +
        "torch.onnx.export(model.eval(), x, path, training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False). " +
        "To use this graph anyway, pass allowFoldedBatchNorm (--allow-folded-bn).",
    );
  }
}
