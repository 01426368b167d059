// Protocol-buffers wire format: the few primitives needed to read and write
// ONNX ModelProto without a protobuf runtime. Internal to src/onnx.

export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;

/** One raw field of a message: number, wire type and its payload bytes / value. */
export interface RawField {
  field: number;
  wire: number;
  /** Varint value (wire 0) as bigint-free number when safe; for LEN the slice. */
  value: number | bigint;
  bytes: Uint8Array;
  /** Offset of `bytes` within the buffer the message was read from. */
  offset: number;
}

/** Reads the fields of one message. */
export function readFields(buf: Uint8Array, where: string): RawField[] {
  const fields: RawField[] = [];
  let pos = 0;
  const fail = (what: string): never => {
    throw new Error(`${where}: malformed protobuf at byte ${pos}: ${what}`);
  };
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= buf.length) fail("varint runs past the end of the message");
      const b = buf[pos++] as number;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 70n) fail("varint longer than 10 bytes");
    }
  };
  while (pos < buf.length) {
    const key = Number(varint());
    const field = key >>> 3;
    const wire = key & 7;
    if (field === 0) fail("field number 0");
    switch (wire) {
      case WIRE_VARINT: {
        const start = pos;
        const v = varint();
        fields.push({ field, wire, value: toNumber(v), bytes: buf.subarray(start, pos), offset: start });
        break;
      }
      case WIRE_I64: {
        if (pos + 8 > buf.length) fail("fixed64 runs past the end");
        fields.push({ field, wire, value: 0, bytes: buf.subarray(pos, pos + 8), offset: pos });
        pos += 8;
        break;
      }
      case WIRE_LEN: {
        const len = Number(varint());
        if (pos + len > buf.length) fail(`field ${field} says ${len} bytes but ${buf.length - pos} remain`);
        fields.push({ field, wire, value: len, bytes: buf.subarray(pos, pos + len), offset: pos });
        pos += len;
        break;
      }
      case WIRE_I32: {
        if (pos + 4 > buf.length) fail("fixed32 runs past the end");
        fields.push({ field, wire, value: 0, bytes: buf.subarray(pos, pos + 4), offset: pos });
        pos += 4;
        break;
      }
      default:
        fail(`unsupported wire type ${wire} for field ${field}`);
    }
  }
  return fields;
}

function toNumber(v: bigint): number | bigint {
  // int64 fields are two's complement in 64 bits.
  const signed = BigInt.asIntN(64, v);
  return signed >= BigInt(Number.MIN_SAFE_INTEGER) && signed <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(signed)
    : signed;
}

/** Decodes packed varints (repeated int64 in packed form). */
export function readPackedVarints(bytes: Uint8Array, where: string): number[] {
  const out: number[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= bytes.length) throw new Error(`${where}: packed varint runs past the end`);
      const b = bytes[pos++] as number;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) break;
      shift += 7n;
    }
    out.push(Number(BigInt.asIntN(64, result)));
  }
  return out;
}

export const utf8 = new TextDecoder();
const utf8enc = new TextEncoder();

/** Growable byte buffer that writes protobuf fields. */
export class Writer {
  private buf = new Uint8Array(1024);
  length = 0;

  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  varint(v: number | bigint): void {
    let x = BigInt.asUintN(64, BigInt(v));
    this.ensure(10);
    do {
      let b = Number(x & 0x7fn);
      x >>= 7n;
      if (x !== 0n) b |= 0x80;
      this.buf[this.length++] = b;
    } while (x !== 0n);
  }

  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
  }

  key(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  /** A length-delimited field; returns the offset at which its payload starts. */
  bytes(field: number, bytes: Uint8Array): number {
    this.key(field, WIRE_LEN);
    this.varint(bytes.length);
    const at = this.length;
    this.raw(bytes);
    return at;
  }

  string(field: number, s: string): void {
    this.bytes(field, utf8enc.encode(s));
  }

  int(field: number, v: number | bigint): void {
    this.key(field, WIRE_VARINT);
    this.varint(v);
  }

  float(field: number, v: number): void {
    this.key(field, WIRE_I32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.raw(b);
  }

  packedInts(field: number, values: readonly (number | bigint)[]): void {
    const w = new Writer();
    for (const v of values) w.varint(v);
    this.bytes(field, w.finish());
  }

  /** Writes a raw field read earlier, unchanged. */
  rawField(f: RawField): void {
    this.key(f.field, f.wire);
    if (f.wire === WIRE_LEN) this.varint(f.bytes.length);
    this.raw(f.bytes);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}
