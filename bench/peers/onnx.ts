/**
 * A tiny ONNX model writer: just the protobuf fields a single-op (or few-op) f32 graph needs, so the
 * onnxruntime-web peer can run MatMul, Softmax and LayerNormalization without a protobuf library.
 * Field numbers are onnx.proto3's (ModelProto, GraphProto, NodeProto, AttributeProto,
 * ValueInfoProto, TypeProto, TensorShapeProto, OperatorSetIdProto).
 */

class Writer {
  private readonly parts: number[] = [];
  varint(v: number | bigint): this {
    let x = BigInt(v);
    if (x < 0n) x += 1n << 64n; // int64 two's complement
    do {
      let b = Number(x & 0x7fn);
      x >>= 7n;
      if (x !== 0n) b |= 0x80;
      this.parts.push(b);
    } while (x !== 0n);
    return this;
  }
  private key(field: number, wire: number): this {
    return this.varint((field << 3) | wire);
  }
  int(field: number, v: number | bigint): this {
    return this.key(field, 0).varint(v);
  }
  float(field: number, v: number): this {
    this.key(field, 5);
    const b = new Uint8Array(new Float32Array([v]).buffer);
    this.parts.push(...b);
    return this;
  }
  bytes(field: number, data: Uint8Array): this {
    this.key(field, 2).varint(data.length);
    for (const b of data) this.parts.push(b);
    return this;
  }
  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  message(field: number, m: Writer): this {
    return this.bytes(field, m.finish());
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

const FLOAT = 1;
const ATTR_FLOAT = 1;
const ATTR_INT = 2;

export type OnnxAttr = { readonly name: string } & ({ readonly f: number } | { readonly i: number });

export interface OnnxNode {
  readonly op: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attrs?: readonly OnnxAttr[];
}

export interface OnnxValue {
  readonly name: string;
  readonly shape: readonly number[];
}

function valueInfo(v: OnnxValue): Writer {
  const shape = new Writer();
  for (const d of v.shape) shape.message(1, new Writer().int(1, d));
  const tensorType = new Writer().int(1, FLOAT).message(2, shape);
  return new Writer().string(1, v.name).message(2, new Writer().message(1, tensorType));
}

/** The bytes of an f32 ONNX model (IR 8, default opset `opset`) with the given inputs, nodes and outputs. */
export function onnxModel(spec: { readonly name: string; readonly inputs: readonly OnnxValue[]; readonly outputs: readonly OnnxValue[]; readonly nodes: readonly OnnxNode[]; readonly opset?: number }): Uint8Array {
  const graph = new Writer();
  spec.nodes.forEach((n, i) => {
    const node = new Writer();
    for (const x of n.inputs) node.string(1, x);
    for (const y of n.outputs) node.string(2, y);
    node.string(3, `${n.op.toLowerCase()}_${i}`).string(4, n.op);
    for (const a of n.attrs ?? []) {
      const attr = new Writer().string(1, a.name);
      if ('f' in a) attr.float(2, a.f).int(20, ATTR_FLOAT);
      else attr.int(3, a.i).int(20, ATTR_INT);
      node.message(5, attr);
    }
    graph.message(1, node);
  });
  graph.string(2, spec.name);
  for (const v of spec.inputs) graph.message(11, valueInfo(v));
  for (const v of spec.outputs) graph.message(12, valueInfo(v));
  const opset = new Writer().string(1, '').int(2, spec.opset ?? 17);
  return new Writer().int(1, 8).string(2, 'tessera-bench').message(7, graph).message(8, opset).finish();
}
