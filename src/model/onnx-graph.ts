/**
 * A small builder of ONNX models on onnx-proto (protobufjs with ONNX's schema): float32 and int64 constants, nodes
 * with integer and string attributes, typed graph inputs and outputs with named (dynamic) dimensions, and the
 * model's bytes. The project's one way to write ONNX: the network export and the kernel benchmark's one-op models.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/** A dimension: a size, or a name for a size chosen at run time. */
export type Dim = number | string;

/** Attribute values: integers, lists of integers, strings. */
export type Attribute = number | readonly number[] | string;

/**
 * The ONNX IR version of each opset (ONNX's release table), written with it so that a runtime of that generation
 * accepts the file.
 */
const IR_VERSION: Record<number, number> = { 13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10, 22: 10 };
export const MIN_OPSET = 13;
export const MAX_OPSET = 22;

/** A protobuf message may not exceed 2 GiB, so neither may a model without external data. */
export const MAX_MODEL_BYTES = 2 ** 31 - 1;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** ONNX's raw_data is little-endian whatever the host. */
function rawBytes(values: Float32Array | BigInt64Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new DataView(new ArrayBuffer(values.byteLength));
  values.forEach((v: number | bigint, i: number) =>
    typeof v === 'bigint' ? out.setBigInt64(i * 8, v, true) : out.setFloat32(i * 4, v, true),
  );
  return new Uint8Array(out.buffer);
}

function valueInfo(name: string, elemType: number, dims: readonly Dim[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

function attribute(name: string, value: Attribute) {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'string') return onnx.AttributeProto.create({ name, type: T.STRING, s: new TextEncoder().encode(value) });
  const ints = typeof value === 'number' ? [value] : value;
  if (!ints.every(Number.isInteger)) throw new Error(`ONNX attribute ${name}: ${String(value)} is not an integer`);
  return typeof value === 'number'
    ? onnx.AttributeProto.create({ name, type: T.INT, i: value })
    : onnx.AttributeProto.create({ name, type: T.INTS, ints: [...ints] });
}

export class OnnxGraph {
  private readonly nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  private readonly initializers: InstanceType<typeof onnx.TensorProto>[] = [];
  private readonly inputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly outputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly used = new Set<string>();
  private readonly intConstants = new Map<string, string>();
  private initializerBytes = 0;

  constructor(
    readonly name: string,
    readonly opset: number,
  ) {
    if (!Number.isInteger(opset) || !(opset in IR_VERSION)) throw new RangeError(`ONNX opset ${opset} is not supported: use ${MIN_OPSET} to ${MAX_OPSET}`);
  }

  /** A unique value name: `base`, or `base_2`, `base_3`… */
  private fresh(base: string): string {
    let name = base;
    for (let n = 2; this.used.has(name); n++) name = `${base}_${n}`;
    this.used.add(name);
    return name;
  }

  /** A float32 graph input. */
  input(name: string, dims: readonly Dim[]): string {
    const unique = this.fresh(name);
    this.inputs.push(valueInfo(unique, onnx.TensorProto.DataType.FLOAT, dims));
    return unique;
  }

  /** Names `value` (which a node made) a float32 graph output under `name`. */
  output(value: string, name: string, dims: readonly Dim[]): void {
    const out = this.op('Identity', [value], {}, name);
    this.outputs.push(valueInfo(out, onnx.TensorProto.DataType.FLOAT, dims));
  }

  /** A float32 constant. */
  floats(name: string, data: Float32Array, dims: readonly number[]): string {
    return this.constant(name, onnx.TensorProto.DataType.FLOAT, rawBytes(data), dims);
  }

  /** An int64 constant (shapes, axes, sizes, indices); `dims` default: a vector. Asked again, the same one. */
  ints(name: string, values: readonly number[], dims: readonly number[] = [values.length]): string {
    const key = `${name}|${values}|${dims}`;
    let value = this.intConstants.get(key);
    if (!value) {
      value = this.constant(name, onnx.TensorProto.DataType.INT64, rawBytes(BigInt64Array.from(values, BigInt)), dims);
      this.intConstants.set(key, value);
    }
    return value;
  }

  private constant(name: string, dataType: number, rawData: Uint8Array, dims: readonly number[]): string {
    const unique = this.fresh(name);
    this.initializers.push(onnx.TensorProto.create({ name: unique, dataType, dims: [...dims], rawData }));
    this.initializerBytes += rawData.byteLength;
    return unique;
  }

  /** Bytes of the constants so far (the bulk of the model). */
  get constantBytes(): number {
    return this.initializerBytes;
  }

  /** A node with one output, named after `name` (default: the op); '' in `inputs` leaves an optional input out. */
  op(opType: string, inputs: readonly string[], attributes: Record<string, Attribute> = {}, name = opType): string {
    return this.node(opType, inputs, attributes, 1, name)[0];
  }

  /** A node with `outputs` outputs. */
  node(opType: string, inputs: readonly string[], attributes: Record<string, Attribute>, outputs: number, name = opType): string[] {
    const node = this.fresh(name);
    const out = Array.from({ length: outputs }, (_, i) => (outputs === 1 ? node : this.fresh(`${node}:${i}`)));
    this.nodes.push(
      onnx.NodeProto.create({
        name: node,
        opType,
        input: [...inputs],
        output: out,
        attribute: Object.entries(attributes).map(([k, v]) => attribute(k, v)),
      }),
    );
    return out;
  }

  /** The model's bytes (the protobuf encoding of ModelProto). */
  encode(meta: { producer: string; doc?: string; metadata?: Record<string, string> } = { producer: 'moefusion' }): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION[this.opset],
      producerName: meta.producer,
      docString: meta.doc ?? '',
      opsetImport: [{ domain: '', version: this.opset }],
      metadataProps: Object.entries(meta.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}
