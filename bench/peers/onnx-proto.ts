/** A minimal protobuf writer for the few ONNX messages a one-op model needs (field numbers from onnx.proto). */
type Field = [number, 'varint', number] | [number, 'bytes', Uint8Array | string];

function varint(v: number): number[] {
  const out: number[] = [];
  let n = BigInt.asUintN(64, BigInt(v));
  do {
    let b = Number(n & 0x7fn);
    n >>= 7n;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

function message(fields: Field[]): Uint8Array {
  const parts: number[] = [];
  for (const [num, kind, value] of fields) {
    if (kind === 'varint') parts.push(...varint(num << 3), ...varint(value));
    else {
      const bytes = typeof value === 'string' ? new TextEncoder().encode(value) : value;
      parts.push(...varint((num << 3) | 2), ...varint(bytes.length));
      for (const b of bytes) parts.push(b);
    }
  }
  return Uint8Array.from(parts);
}

const FLOAT = 1;

function valueInfo(name: string, dims: number[]): Uint8Array {
  const shape = message(dims.map((d) => [1, 'bytes', message([[1, 'varint', d]])] as Field));
  const tensorType = message([[1, 'varint', FLOAT], [2, 'bytes', shape]]);
  return message([[1, 'bytes', name], [2, 'bytes', message([[1, 'bytes', tensorType]])]]);
}

function initializer(name: string, dims: number[], data: Float32Array): Uint8Array {
  return message([...dims.map((d) => [1, 'varint', d] as Field), [2, 'varint', FLOAT], [8, 'bytes', name], [9, 'bytes', new Uint8Array(data.buffer, data.byteOffset, data.byteLength)]]);
}

function intsAttribute(name: string, values: number[]): Uint8Array {
  return message([[1, 'bytes', name], [20, 'varint', 7], ...values.map((v) => [8, 'varint', v] as Field)]);
}

function node(op: string, inputs: string[], outputs: string[], attributes: Uint8Array[] = []): Uint8Array {
  return message([
    ...inputs.map((i) => [1, 'bytes', i] as Field),
    ...outputs.map((o) => [2, 'bytes', o] as Field),
    [4, 'bytes', op],
    ...attributes.map((a) => [5, 'bytes', a] as Field),
  ]);
}

function model(nodes: Uint8Array[], inits: Uint8Array[], inputs: Uint8Array[], outputs: Uint8Array[]): Uint8Array {
  const graph = message([
    ...nodes.map((n) => [1, 'bytes', n] as Field),
    [2, 'bytes', 'bench'],
    ...inits.map((t) => [5, 'bytes', t] as Field),
    ...inputs.map((v) => [11, 'bytes', v] as Field),
    ...outputs.map((v) => [12, 'bytes', v] as Field),
  ]);
  const opset = message([[1, 'bytes', ''], [2, 'varint', 17]]);
  return message([[1, 'varint', 8], [2, 'bytes', 'moefusion-bench'], [7, 'bytes', graph], [8, 'bytes', opset]]);
}

/** Conv (k×k, same padding) + bias + ReLU on an (n, cin, h, w) input. */
export function convModel(n: number, cin: number, cout: number, h: number, w: number, k: number, weights: Float32Array, bias: Float32Array): Uint8Array {
  const p = (k - 1) / 2;
  return model(
    [node('Conv', ['x', 'w', 'b'], ['c'], [intsAttribute('kernel_shape', [k, k]), intsAttribute('pads', [p, p, p, p])]), node('Relu', ['c'], ['y'])],
    [initializer('w', [cout, cin, k, k], weights), initializer('b', [cout], bias)],
    [valueInfo('x', [n, cin, h, w])],
    [valueInfo('y', [n, cout, h, w])],
  );
}

/** y = a · b for a (m, k) input and a (k, n) constant. */
export function matmulModel(m: number, k: number, n: number, b: Float32Array): Uint8Array {
  return model([node('MatMul', ['a', 'b'], ['y'])], [initializer('b', [k, n], b)], [valueInfo('a', [m, k])], [valueInfo('y', [m, n])]);
}
