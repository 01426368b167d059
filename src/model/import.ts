// Reads any ONNX classification model into a losscape Model: finds the
// trainable parameters and their roles from the operators that consume them,
// and rewrites the initializers as raw float32 so that new parameter values
// can be patched into the bytes without re-serializing the graph.

import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import {
  DataType,
  decodeModel,
  encodeModel,
  type Graph,
  type ModelProto,
  metadataProps,
  type Tensor,
  tensorFloats,
} from "../onnx/proto.ts";
import { discoverParameters, type InitializerReport, restoreMerged } from "./_discover.ts";
import { type InputType, type Model, type ModelLoss, type ParamSpec, shapeSize } from "./model.ts";

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
  /** Graph output holding the model's own scalar loss (--loss-output); its targets are another graph input. */
  lossOutput?: string;
  /** Graph input taking the targets of `lossOutput` (default: the one data input that is not the samples). */
  targetsInput?: string;
  /** Accept a graph whose BatchNorm was folded into Conv weights by the exporter (see method.md). */
  allowFoldedBatchNorm?: boolean;
  /** Float initializers whose names match are parameters, whatever reads them (--trainable). */
  trainable?: RegExp;
  /** Float initializers whose names match stay constant (--constant). */
  constant?: RegExp;
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
  // Exporters that merge equal initializers (torch.onnx) leave Identity(other) in their place: undo that first.
  const graph: Graph = {
    ...proto.graph,
    nodes: [...proto.graph.nodes],
    initializers: [...proto.graph.initializers],
  };
  const restored = restoreMerged(graph);
  const warnings: string[] = [];
  const inits = new Map<string, Tensor>(graph.initializers.map((t) => [t.name, t]));

  // Inputs that are also initializers (IR < 4 exports) are constants, not data.
  const dataInputs = graph.inputs.filter((v) => !inits.has(v.name));
  const loss = options.lossOutput === undefined ? undefined : modelLoss(graph, dataInputs, options, name);
  const input = pick(
    dataInputs.map((v) => v.name).filter((v) => v !== loss?.targets),
    options.input,
    "input",
    name,
  );
  const inputInfo = dataInputs.find((v) => v.name === input)!;
  const outputs = graph.outputs.map((v) => v.name).filter((v) => v !== loss?.output);
  const output =
    loss && options.output === undefined && outputs.length !== 1
      ? loss.output
      : pick(outputs, options.output, "output", name);
  const outputInfo = graph.outputs.find((v) => v.name === output)!;

  const inputType = INPUT_TYPES.get(inputInfo.elemType);
  if (inputType === undefined) {
    throw new Error(
      `${name}: input '${input}' has element type ${inputInfo.elemType}; losscape feeds float32 (1) samples or int64 (7) / int32 (6) token ids`,
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

  const { found, report } = discoverParameters(
    graph,
    {
      ...exportMetadata(proto, graph, name, warnings),
      ...(options.trainable ? { forceTrainable: options.trainable } : {}),
      ...(options.constant ? { forceConstant: options.constant } : {}),
    },
    restored,
  );
  checkFolded(graph, found, name, options.allowFoldedBatchNorm ?? false);

  if (restored.size > 0) {
    warnings.push(
      `the exporter had merged ${restored.size} initializer(s) with equal values into others (e.g. '${[...restored.keys()][0]}' into '${[...restored.values()][0]}'); each is its own parameter again`,
    );
  }
  for (const r of report) {
    const size = shapeSize(r.shape);
    if (r.status === "constant" && size > 1 && r.kind.startsWith("read by"))
      warnings.push(
        `float initializer '${r.name}' [${r.shape.join(", ")}] is ${r.kind}; it is kept constant (not a landscape parameter; --trainable makes it one)`,
      );
    if (r.status === "parameter" && r.shared)
      warnings.push(
        `parameter '${r.name}' is read by several ops (${r.users.join(", ")}): one tensor, moved once`,
      );
  }

  const params: ParamSpec[] = [];
  let offset = 0;
  for (const t of graph.initializers) {
    const f = found.get(t.name);
    if (!f) continue;
    if (t.dataType !== DataType.FLOAT) {
      throw new Error(
        `${name}: parameter '${t.name}' (${f.users.join(", ")}) has element type ${t.dataType}; losscape runs float32 models (1)`,
      );
    }
    const size = shapeSize(t.dims);
    const spec: ParamSpec = {
      name: t.name,
      shape: [...t.dims],
      role: f.role!,
      offset,
      size,
      kind: f.kind,
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
    input: { name: input, shape: sampleShape, batch, type: inputType },
    output,
    ...(loss ? { loss: { ...loss, logits: output !== loss.output } } : {}),
    classes: output === loss?.output ? null : classes,
    params,
    size: offset,
    initial,
    warnings,
    initializers: report,
  };
}

const INPUT_TYPES = new Map<number, InputType>([
  [DataType.FLOAT, "float32"],
  [DataType.INT64, "int64"],
  [DataType.INT32, "int32"],
]);

/** The --loss-output of a graph and the input its targets go to, checked. */
function modelLoss(
  graph: Graph,
  dataInputs: Graph["inputs"],
  options: ImportOptions,
  model: string,
): Omit<ModelLoss, "logits"> {
  const output = options.lossOutput!;
  const out = graph.outputs.find((v) => v.name === output);
  if (!out)
    throw new Error(
      `${model}: --loss-output '${output}' is not a graph output; the graph's outputs are: ${graph.outputs.map((v) => v.name).join(", ")}`,
    );
  if (out.shape && shapeSize(out.shape.map((d) => (typeof d === "number" ? d : 2))) !== 1)
    throw new Error(
      `${model}: --loss-output '${output}' has shape [${out.shape.join(", ")}]; expected a scalar loss (the mean over the batch)`,
    );
  const names = dataInputs.map((v) => v.name);
  const ask = `name the targets input with --targets-input (the graph's inputs: ${names.join(", ")})`;
  let targets = options.targetsInput;
  if (targets === undefined) {
    // The one input besides the samples; with neither named, the one called like targets.
    const others = names.filter((v) => v !== options.input);
    const candidates =
      options.input !== undefined ? others : others.filter((v) => /target|label|^y$/i.test(v));
    if (candidates.length !== 1 || names.length !== 2)
      throw new Error(`${model}: --loss-output needs a samples input and a targets input; ${ask}`);
    targets = candidates[0]!;
  }
  const info = dataInputs.find((v) => v.name === targets);
  if (!info)
    throw new Error(
      `${model}: --targets-input '${targets}' is not a graph input; the graph's inputs are: ${dataInputs.map((v) => v.name).join(", ")}`,
    );
  const targetsType = INPUT_TYPES.get(info.elemType);
  if (targetsType === undefined)
    throw new Error(
      `${model}: targets input '${targets}' has element type ${info.elemType}; expected float32 (1), int64 (7) or int32 (6)`,
    );
  return { output, targets, targetsType };
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

/** Refuses a graph whose exporter folded BatchNorm into Conv weights (method.md, "Importing PyTorch models"). */
function checkFolded(
  graph: Graph,
  found: Map<string, InitializerReport>,
  model: string,
  allow: boolean,
): void {
  if (allow) return;
  const hasBn = graph.nodes.some((n) => n.opType === "BatchNormalization");
  if (hasBn) return;
  const convs = [...found.entries()].filter(([, f]) => f.kind === "Conv weight");
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

/**
 * The trainable parameters and buffers that losscape's PyTorch exporter (python/losscape_export.py)
 * lists in the model's metadata, or {} for other exports. Listed tensors missing from the graph
 * (modules the forward pass never uses) are named in a warning.
 */
function exportMetadata(
  proto: ModelProto,
  graph: Graph,
  model: string,
  warnings: string[],
): { trainable?: Set<string>; buffers?: Set<string> } {
  const meta = metadataProps(proto);
  const params = meta.get("losscape.parameters");
  if (params === undefined) return {};
  const read = (key: string, text: string): { name: string; shape: number[] }[] => {
    try {
      const v = JSON.parse(text) as unknown;
      if (!Array.isArray(v)) throw new Error("not a list");
      return v as { name: string; shape: number[] }[];
    } catch (e) {
      throw new Error(
        `${model}: metadata '${key}' is not a JSON list of {name, shape}: ${(e as Error).message}`,
      );
    }
  };
  const inits = new Map(graph.initializers.map((t) => [t.name, t]));
  const check = (key: string, list: { name: string; shape: number[] }[]): Set<string> => {
    const missing: string[] = [];
    for (const p of list) {
      const t = inits.get(p.name);
      if (!t) missing.push(p.name);
      else if (t.dims.join() !== p.shape.join())
        throw new Error(
          `${model}: metadata '${key}' gives '${p.name}' the shape [${p.shape.join(", ")}] but its initializer is [${t.dims.join(", ")}]`,
        );
    }
    if (missing.length > 0)
      warnings.push(
        `${missing.length} tensor(s) of '${key}' are not in the graph (unused by the exported forward pass): ${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ", ..." : ""}`,
      );
    return new Set(list.map((p) => p.name));
  };
  return {
    trainable: check("losscape.parameters", read("losscape.parameters", params)),
    buffers: check("losscape.buffers", read("losscape.buffers", meta.get("losscape.buffers") ?? "[]")),
  };
}
