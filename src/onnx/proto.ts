// ONNX ModelProto as plain objects: decode from bytes, encode back to bytes.
// Only what losscape reads is decoded; every other field is carried through
// unchanged, so a user's model round-trips without losing metadata.

import {
  type RawField,
  readFields,
  readPackedVarints,
  utf8,
  WIRE_I32,
  WIRE_I64,
  WIRE_LEN,
  WIRE_VARINT,
  Writer,
} from "./_wire.ts";

/** ONNX TensorProto.DataType codes used by losscape. */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
} as const;

const ELEMENT_BYTES: Record<number, number> = {
  1: 4,
  2: 1,
  3: 1,
  4: 2,
  5: 2,
  6: 4,
  7: 8,
  9: 1,
  10: 2,
  11: 8,
  12: 4,
  13: 8,
  16: 2,
};

/** A constant tensor (initializer or attribute value); data is little-endian raw bytes. */
export interface Tensor {
  name: string;
  dims: number[];
  dataType: number;
  raw: Uint8Array;
  /** Fields losscape does not interpret (doc strings, string data, ...). */
  extra?: RawField[];
}

/** A node attribute; exactly the field matching `type` is set. */
export interface Attribute {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: string;
  t?: Tensor;
  g?: Graph;
  floats?: number[];
  ints?: number[];
  strings?: string[];
  extra?: RawField[];
}

/** AttributeProto.AttributeType codes. */
export const AttrType = {
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
} as const;

export interface Node {
  opType: string;
  inputs: string[];
  outputs: string[];
  name: string;
  domain: string;
  attributes: Attribute[];
  extra?: RawField[];
}

/** A graph input/output/value_info entry: element type and shape (numbers, symbolic names, or null). */
export interface ValueInfo {
  name: string;
  elemType: number;
  shape: (number | string | null)[] | null;
  raw?: Uint8Array;
}

export interface Graph {
  name: string;
  nodes: Node[];
  initializers: Tensor[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  valueInfo: ValueInfo[];
  extra?: RawField[];
}

export interface OpsetId {
  domain: string;
  version: number;
}

export interface ModelProto {
  irVersion: number;
  opsets: OpsetId[];
  producer: string;
  graph: Graph;
  /** Other ModelProto fields, written back unchanged. */
  extra?: RawField[];
}

// ---------------------------------------------------------------- decoding

const str = (f: RawField): string => utf8.decode(f.bytes);
const num = (f: RawField): number => Number(f.value);

function f32(f: RawField): number {
  return new DataView(f.bytes.buffer, f.bytes.byteOffset, 4).getFloat32(0, true);
}

function ints(f: RawField, where: string): number[] {
  return f.wire === WIRE_LEN ? readPackedVarints(f.bytes, where) : [num(f)];
}

/** Decodes an ONNX model file. */
export function decodeModel(bytes: Uint8Array, where = "model"): ModelProto {
  const model: ModelProto = {
    irVersion: 0,
    opsets: [],
    producer: "",
    graph: emptyGraph(),
    extra: [],
  };
  let sawGraph = false;
  for (const f of readFields(bytes, where)) {
    switch (f.field) {
      case 1:
        model.irVersion = num(f);
        break;
      case 2:
        model.producer = str(f);
        break;
      case 7:
        model.graph = decodeGraph(f.bytes, `${where}: graph`);
        sawGraph = true;
        break;
      case 8: {
        const op: OpsetId = { domain: "", version: 0 };
        for (const g of readFields(f.bytes, `${where}: opset_import`)) {
          if (g.field === 1) op.domain = str(g);
          else if (g.field === 2) op.version = num(g);
        }
        model.opsets.push(op);
        break;
      }
      default:
        model.extra?.push(f);
    }
  }
  if (!sawGraph)
    throw new Error(`${where}: not an ONNX model (no graph field found in ${bytes.length} bytes)`);
  return model;
}

function emptyGraph(): Graph {
  return { name: "", nodes: [], initializers: [], inputs: [], outputs: [], valueInfo: [], extra: [] };
}

export function decodeGraph(bytes: Uint8Array, where: string): Graph {
  const g = emptyGraph();
  for (const f of readFields(bytes, where)) {
    switch (f.field) {
      case 1:
        g.nodes.push(decodeNode(f.bytes, `${where} node ${g.nodes.length}`));
        break;
      case 2:
        g.name = str(f);
        break;
      case 5:
        g.initializers.push(decodeTensor(f.bytes, `${where} initializer ${g.initializers.length}`));
        break;
      case 11:
        g.inputs.push(decodeValueInfo(f.bytes, where));
        break;
      case 12:
        g.outputs.push(decodeValueInfo(f.bytes, where));
        break;
      case 13:
        g.valueInfo.push(decodeValueInfo(f.bytes, where));
        break;
      default:
        g.extra?.push(f);
    }
  }
  return g;
}

function decodeNode(bytes: Uint8Array, where: string): Node {
  const n: Node = { opType: "", inputs: [], outputs: [], name: "", domain: "", attributes: [], extra: [] };
  for (const f of readFields(bytes, where)) {
    switch (f.field) {
      case 1:
        n.inputs.push(str(f));
        break;
      case 2:
        n.outputs.push(str(f));
        break;
      case 3:
        n.name = str(f);
        break;
      case 4:
        n.opType = str(f);
        break;
      case 5:
        n.attributes.push(decodeAttribute(f.bytes, `${where} (${n.opType || "?"}) attribute`));
        break;
      case 7:
        n.domain = str(f);
        break;
      default:
        n.extra?.push(f);
    }
  }
  return n;
}

function decodeAttribute(bytes: Uint8Array, where: string): Attribute {
  const a: Attribute = { name: "", type: 0, extra: [] };
  for (const f of readFields(bytes, where)) {
    switch (f.field) {
      case 1:
        a.name = str(f);
        break;
      case 20:
        a.type = num(f);
        break;
      case 2:
        a.f = f32(f);
        break;
      case 3:
        a.i = num(f);
        break;
      case 4:
        a.s = str(f);
        break;
      case 5:
        a.t = decodeTensor(f.bytes, `${where} ${a.name}`);
        break;
      case 6:
        a.g = decodeGraph(f.bytes, `${where} ${a.name}`);
        break;
      case 7: {
        a.floats ??= [];
        if (f.wire === WIRE_LEN) {
          const dv = new DataView(f.bytes.buffer, f.bytes.byteOffset, f.bytes.length);
          for (let k = 0; k + 4 <= f.bytes.length; k += 4) a.floats.push(dv.getFloat32(k, true));
        } else a.floats.push(f32(f));
        break;
      }
      case 8:
        a.ints = [...(a.ints ?? []), ...ints(f, where)];
        break;
      case 9:
        a.strings = [...(a.strings ?? []), str(f)];
        break;
      default:
        a.extra?.push(f);
    }
  }
  return a;
}

function decodeValueInfo(bytes: Uint8Array, where: string): ValueInfo {
  const v: ValueInfo = { name: "", elemType: 0, shape: null, raw: bytes };
  for (const f of readFields(bytes, where)) {
    if (f.field === 1) v.name = str(f);
    else if (f.field === 2) {
      for (const t of readFields(f.bytes, where)) {
        if (t.field !== 1) continue; // tensor_type
        for (const tt of readFields(t.bytes, where)) {
          if (tt.field === 1) v.elemType = num(tt);
          else if (tt.field === 2) {
            v.shape = [];
            for (const d of readFields(tt.bytes, where)) {
              if (d.field !== 1) continue;
              let dim: number | string | null = null;
              for (const dd of readFields(d.bytes, where)) {
                if (dd.field === 1) dim = num(dd);
                else if (dd.field === 2) dim = str(dd);
              }
              v.shape.push(dim);
            }
          }
        }
      }
    }
  }
  return v;
}

/** Decodes a TensorProto, normalizing typed storage (float_data, int64_data, ...) into little-endian raw bytes. */
export function decodeTensor(bytes: Uint8Array, where: string): Tensor {
  const t: Tensor = { name: "", dims: [], dataType: 0, raw: new Uint8Array(0), extra: [] };
  let raw: Uint8Array | undefined;
  const floats: number[] = [];
  const i32: number[] = [];
  const i64: number[] = [];
  const f64: number[] = [];
  let external = false;
  for (const f of readFields(bytes, where)) {
    switch (f.field) {
      case 1:
        t.dims.push(...ints(f, where));
        break;
      case 2:
        t.dataType = num(f);
        break;
      case 8:
        t.name = str(f);
        break;
      case 9:
        raw = f.bytes;
        break;
      case 4:
        if (f.wire === WIRE_LEN) {
          const dv = new DataView(f.bytes.buffer, f.bytes.byteOffset, f.bytes.length);
          for (let k = 0; k + 4 <= f.bytes.length; k += 4) floats.push(dv.getFloat32(k, true));
        } else floats.push(f32(f));
        break;
      case 5:
        i32.push(...ints(f, where));
        break;
      case 7:
        i64.push(...ints(f, where));
        break;
      case 10:
        if (f.wire === WIRE_LEN) {
          const dv = new DataView(f.bytes.buffer, f.bytes.byteOffset, f.bytes.length);
          for (let k = 0; k + 8 <= f.bytes.length; k += 8) f64.push(dv.getFloat64(k, true));
        } else f64.push(new DataView(f.bytes.buffer, f.bytes.byteOffset, 8).getFloat64(0, true));
        break;
      case 14:
        external = num(f) === 1;
        t.extra?.push(f);
        break;
      default:
        t.extra?.push(f);
    }
  }
  if (external) {
    throw new Error(
      `${where} '${t.name}': tensor data is stored in an external file; losscape needs initializers inside the .onnx file (re-export without external data, e.g. onnx.save(model, path, save_as_external_data=False))`,
    );
  }
  const count = t.dims.reduce((a, b) => a * b, 1);
  if (raw) t.raw = raw.slice();
  else if (t.dataType === DataType.FLOAT) t.raw = new Uint8Array(Float32Array.from(floats).buffer);
  else if (t.dataType === DataType.DOUBLE) t.raw = new Uint8Array(Float64Array.from(f64).buffer);
  else if (t.dataType === DataType.INT64) t.raw = new Uint8Array(BigInt64Array.from(i64.map(BigInt)).buffer);
  else if (t.dataType === DataType.INT32) t.raw = new Uint8Array(Int32Array.from(i32).buffer);
  else if (t.dataType === DataType.UINT8 || t.dataType === DataType.INT8 || t.dataType === DataType.BOOL)
    t.raw = Uint8Array.from(i32);
  else if (t.dataType === DataType.FLOAT16) t.raw = new Uint8Array(Uint16Array.from(i32).buffer);
  const size = ELEMENT_BYTES[t.dataType];
  if (size !== undefined && t.dataType !== DataType.STRING && t.raw.length !== count * size) {
    throw new Error(
      `${where} '${t.name}': shape [${t.dims.join(", ")}] needs ${count * size} bytes of data but ${t.raw.length} are stored`,
    );
  }
  return t;
}

/**
 * The model's metadata_props (ModelProto field 14) as key -> value; exporters store their notes there.
 *
 * @example
 * const meta = metadataProps(decodeModel(bytes)); // Map { "losscape.parameters" => "[...]" }
 */
export function metadataProps(model: ModelProto): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of model.extra ?? []) {
    if (f.field !== 14 || f.wire !== WIRE_LEN) continue;
    let key = "";
    let value = "";
    for (const g of readFields(f.bytes, "metadata_props")) {
      if (g.field === 1) key = str(g);
      else if (g.field === 2) value = str(g);
    }
    out.set(key, value);
  }
  return out;
}

// ---------------------------------------------------------------- encoding

/** Where each initializer's raw bytes landed in an encoded model. */
export type RawOffsets = Map<string, number>;

/** Encodes a model; returns the bytes and the offset of each top-level initializer's raw data. */
export function encodeModel(model: ModelProto): { bytes: Uint8Array; offsets: RawOffsets } {
  const w = new Writer();
  w.int(1, model.irVersion);
  if (model.producer) w.string(2, model.producer);
  for (const f of model.extra ?? []) w.rawField(f);
  for (const op of model.opsets) {
    const o = new Writer();
    if (op.domain) o.string(1, op.domain);
    o.int(2, op.version);
    w.bytes(8, o.finish());
  }
  // The graph goes last so that initializer offsets are easy to shift.
  const graph = encodeGraph(model.graph);
  const start = graphHeader(w, graph.bytes.length);
  const offsets: RawOffsets = new Map();
  for (const [name, at] of graph.offsets) offsets.set(name, at + start);
  w.raw(graph.bytes);
  return { bytes: w.finish(), offsets };
}

function graphHeader(w: Writer, length: number): number {
  w.key(7, WIRE_LEN);
  w.varint(length);
  return w.length;
}

export function encodeGraph(g: Graph): { bytes: Uint8Array; offsets: RawOffsets } {
  const w = new Writer();
  const offsets: RawOffsets = new Map();
  for (const n of g.nodes) w.bytes(1, encodeNode(n));
  if (g.name) w.string(2, g.name);
  for (const t of g.initializers) {
    const enc = encodeTensor(t);
    const at = w.bytes(5, enc.bytes);
    if (enc.rawAt >= 0) offsets.set(t.name, at + enc.rawAt);
  }
  for (const v of g.inputs) w.bytes(11, encodeValueInfo(v));
  for (const v of g.outputs) w.bytes(12, encodeValueInfo(v));
  for (const v of g.valueInfo) w.bytes(13, encodeValueInfo(v));
  for (const f of g.extra ?? []) w.rawField(f);
  return { bytes: w.finish(), offsets };
}

function encodeNode(n: Node): Uint8Array {
  const w = new Writer();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name) w.string(3, n.name);
  w.string(4, n.opType);
  for (const a of n.attributes) w.bytes(5, encodeAttribute(a));
  if (n.domain) w.string(7, n.domain);
  for (const f of n.extra ?? []) w.rawField(f);
  return w.finish();
}

function encodeAttribute(a: Attribute): Uint8Array {
  const w = new Writer();
  w.string(1, a.name);
  if (a.f !== undefined) w.float(2, a.f);
  if (a.i !== undefined) w.int(3, a.i);
  if (a.s !== undefined) w.string(4, a.s);
  if (a.t !== undefined) w.bytes(5, encodeTensor(a.t).bytes);
  if (a.g !== undefined) w.bytes(6, encodeGraph(a.g).bytes);
  if (a.floats) {
    const b = new Uint8Array(Float32Array.from(a.floats).buffer);
    w.bytes(7, b);
  }
  if (a.ints) w.packedInts(8, a.ints);
  for (const s of a.strings ?? []) w.string(9, s);
  w.int(20, a.type);
  for (const f of a.extra ?? []) w.rawField(f);
  return w.finish();
}

function encodeValueInfo(v: ValueInfo): Uint8Array {
  if (v.raw) return v.raw;
  const w = new Writer();
  w.string(1, v.name);
  const shape = new Writer();
  for (const d of v.shape ?? []) {
    const dim = new Writer();
    if (typeof d === "number") dim.int(1, d);
    else if (typeof d === "string") dim.string(2, d);
    shape.bytes(1, dim.finish());
  }
  const tensorType = new Writer();
  tensorType.int(1, v.elemType);
  if (v.shape) tensorType.bytes(2, shape.finish());
  const type = new Writer();
  type.bytes(1, tensorType.finish());
  w.bytes(2, type.finish());
  return w.finish();
}

/** Encodes a tensor with raw_data; `rawAt` is the offset of the raw payload (-1 when none). */
export function encodeTensor(t: Tensor): { bytes: Uint8Array; rawAt: number } {
  const w = new Writer();
  if (t.dims.length) w.packedInts(1, t.dims);
  w.int(2, t.dataType);
  w.string(8, t.name);
  let rawAt = -1;
  if (t.dataType !== DataType.STRING) rawAt = w.bytes(9, t.raw);
  for (const f of t.extra ?? []) w.rawField(f);
  return { bytes: w.finish(), rawAt };
}

// ---------------------------------------------------------------- helpers

/** The values of a float tensor (FLOAT, DOUBLE or FLOAT16 storage) as float32. */
export function tensorFloats(t: Tensor): Float32Array {
  const n = t.dims.reduce((a, b) => a * b, 1);
  const dv = new DataView(t.raw.buffer, t.raw.byteOffset, t.raw.byteLength);
  const out = new Float32Array(n);
  if (t.dataType === DataType.FLOAT) for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
  else if (t.dataType === DataType.DOUBLE) for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true);
  else throw new Error(`tensor '${t.name}' has data type ${t.dataType}, expected float (1) or double (11)`);
  return out;
}

/** The values of an integer tensor (INT64 or INT32) as numbers. */
export function tensorInts(t: Tensor): number[] {
  const n = t.dims.reduce((a, b) => a * b, 1);
  const dv = new DataView(t.raw.buffer, t.raw.byteOffset, t.raw.byteLength);
  const out: number[] = [];
  if (t.dataType === DataType.INT64)
    for (let i = 0; i < n; i++) out.push(Number(dv.getBigInt64(i * 8, true)));
  else if (t.dataType === DataType.INT32) for (let i = 0; i < n; i++) out.push(dv.getInt32(i * 4, true));
  else throw new Error(`tensor '${t.name}' has data type ${t.dataType}, expected int64 (7) or int32 (6)`);
  return out;
}

/** A float32 tensor from values. */
export function floatTensor(name: string, dims: number[], values: Float32Array): Tensor {
  return {
    name,
    dims,
    dataType: DataType.FLOAT,
    raw: new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)),
  };
}

/** An int64 tensor from values. */
export function int64Tensor(name: string, dims: number[], values: readonly number[]): Tensor {
  return {
    name,
    dims,
    dataType: DataType.INT64,
    raw: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer),
  };
}

/** Looks up an attribute value by name. */
export function attr(node: Node, name: string): Attribute | undefined {
  return node.attributes.find((a) => a.name === name);
}

export { WIRE_I32, WIRE_I64, WIRE_VARINT };
