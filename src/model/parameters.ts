/**
 * Model parts declare their tensors once, as a layout: a tree named as the reference's modules are, whose leaves give
 * each tensor's shape and initialisation. The rest derives from it: the tensors as a typed tree
 * (`p.encoder.Conv1.conv_r.weight`), their names (the tree's paths, which are the reference's state-dict names), the
 * initialisation, the named lists the optimizer and checkpoints use, and the state dict that weights files hold.
 *
 * A `stack` holds the same subtree for `count` experts as one tensor per leaf, stacked along a first axis, so that
 * routed convolutions run only the chosen experts; in the state dict each expert's slice is named with its index after
 * the stack's name (`experts.2.conv1.weight` is slice 2 of the tensor `experts.conv1.weight`).
 */
import { Tensor, parameter } from '../tensor/tensor.ts';
import { keep } from '../tensor/engine.ts';
import type { Rng } from '../util/rng.ts';

/** The initial values of a tensor of n elements (stacked: all experts' at once). */
export type Init = (n: number, rng: Rng) => Float32Array;

/** PyTorch's default of convolution weights and biases: U(−1/√fan_in, 1/√fan_in) (kaiming_uniform with a=√5). */
export function fanInUniform(fanIn: number): Init {
  const bound = 1 / Math.sqrt(fanIn);
  return (n, rng) => rng.uniform(n, -bound, bound);
}

export const filled = (value: number): Init => (n) => new Float32Array(n).fill(value);

/** A tensor of the model. */
export class Leaf {
  constructor(
    /** 'param' is learnt; 'buffer' is state that is not (batch-norm statistics). */
    readonly kind: 'param' | 'buffer',
    readonly shape: number[],
    readonly init: Init,
    /** Used in training only: left out of inference-only files, and zero when a file holds none of them. */
    readonly trainingOnly = false,
  ) {}
}

/** A fixed entry of the reference's state dict: checked when read, written when saved, not a tensor of the engine. */
export class Constant {
  constructor(readonly values: number[]) {}
}

export class Stack<L extends Group = Group> {
  constructor(
    readonly count: number,
    readonly layout: L,
  ) {}
}

export interface Group {
  readonly [name: string]: Node;
}
export type Node = Leaf | Constant | Stack | Group;

export const param = (shape: number[], init: Init, o: { trainingOnly?: boolean } = {}): Leaf => new Leaf('param', shape, init, o.trainingOnly);
export const buffer = (shape: number[], init: Init): Leaf => new Leaf('buffer', shape, init);
export const constant = (...values: number[]): Constant => new Constant(values);
export const stack = <L extends Group>(count: number, layout: L): Stack<L> => new Stack(count, layout);

/** A convolution's weight (out, in, k, k) and bias, initialised as PyTorch's. */
export function conv(out: number, inputs: number, k: number, biasInit?: Init) {
  const init = fanInUniform(inputs * k * k);
  return { weight: param([out, inputs, k, k], init), bias: param([out], biasInit ?? init) };
}

/** A batch norm's affine parameters (γ = 1, β = 0) and running statistics (mean 0, variance 1). */
export function batchNorm(channels: number) {
  return {
    weight: param([channels], filled(1)),
    bias: param([channels], filled(0)),
    running_mean: buffer([channels], filled(0)),
    running_var: buffer([channels], filled(1)),
  };
}

/** A layout's values as a typed tree: every leaf a T (stacked leaves one T), constants left out. */
export type Bound<L, T = Tensor> = L extends Leaf
  ? T
  : L extends Stack<infer S>
    ? Bound<S, T>
    : { [K in keyof L as L[K] extends Constant ? never : K]: Bound<L[K], T> };

/** A tensor of a layout: its name (the tree's path, a stack's index left out) and shape (a stack's count first). */
export interface TensorSpec {
  name: string;
  shape: number[];
  leaf: Leaf;
}

/**
 * An entry of the reference's state dict: the slice of a tensor (one expert of a stack, or all of it) at `offset`,
 * with the tensor's value; or a constant.
 */
export type Slot<T> = { name: string; shape: number[]; offset: number; spec: TensorSpec; value: T } | { name: string; constant: Constant };

export const sizeOf = (shape: readonly number[]): number => shape.reduce((a, d) => a * d, 1);

interface Visit {
  node: Leaf | Constant;
  /** The tensor's path (without a stack's index) and the state dict's (with it). */
  path: string[];
  entry: string[];
  stack: { count: number; index: number } | null;
}

/** The leaves in the tree's order; `expand`: each stack once per expert (the state dict's order), else once. */
function* leaves(node: Node, expand: boolean, path: string[] = [], entry: string[] = [], stack: Visit['stack'] = null): Generator<Visit> {
  if (node instanceof Leaf || node instanceof Constant) yield { node, path, entry, stack };
  else if (node instanceof Stack) {
    if (stack) throw new Error(`stack ${path.join('.')} inside a stack`);
    const indices = expand ? Array.from({ length: node.count }, (_, i) => i) : [-1];
    for (const index of indices)
      yield* leaves(node.layout, expand, path, index < 0 ? entry : [...entry, String(index)], { count: node.count, index });
  } else for (const [name, child] of Object.entries(node)) yield* leaves(child, expand, [...path, name], [...entry, name], stack);
}

const specOf = (leaf: Leaf, v: Visit): TensorSpec => ({ name: v.path.join('.'), shape: v.stack ? [v.stack.count, ...leaf.shape] : [...leaf.shape], leaf });

/** Every tensor of a layout, in its order (the optimizer's, checkpoints' and initialisation's). */
export function tensorSpecs(layout: Group): TensorSpec[] {
  return [...leaves(layout, false)].flatMap((v) => (v.node instanceof Leaf ? [specOf(v.node, v)] : []));
}

/** The names of a layout's state dict, in its order. */
export function stateDictNames(layout: Group): string[] {
  return [...leaves(layout, true)].map((v) => v.entry.join('.'));
}

/** A layout bound to values: GPU tensors, or arrays in CPU memory (what the ONNX export reads). */
export class ParamTree<L extends Group, T = Tensor> {
  /** The values as the layout's typed tree. */
  readonly tree: Bound<L, T>;
  /** The values with their tensors, in the layout's order. */
  readonly entries: ReadonlyArray<{ spec: TensorSpec; value: T }>;

  /** `valueOf` is called for each tensor in the layout's order. */
  constructor(
    readonly layout: L,
    valueOf: (spec: TensorSpec, index: number) => T,
  ) {
    this.entries = tensorSpecs(layout).map((spec, i) => ({ spec, value: valueOf(spec, i) }));
    let next = 0;
    const build = (node: Node): unknown => {
      if (node instanceof Leaf) return this.entries[next++].value;
      if (node instanceof Stack) return build(node.layout);
      const group = node as Group;
      return Object.fromEntries(Object.keys(group).flatMap((k) => (group[k] instanceof Constant ? [] : [[k, build(group[k])]])));
    };
    this.tree = build(layout) as Bound<L, T>;
  }

  /** The same layout with each value mapped. */
  map<U>(f: (value: T, spec: TensorSpec, index: number) => U): ParamTree<L, U> {
    return new ParamTree(this.layout, (spec, i) => f(this.entries[i].value, spec, i));
  }

  /** The values of one kind with their names: 'param', what the optimizer updates; 'buffer', the rest of the state. */
  named(kind: Leaf['kind'] = 'param'): Array<[string, T]> {
    return this.entries.filter((e) => e.spec.leaf.kind === kind).map((e) => [e.spec.name, e.value]);
  }

  /** The reference's state dict: the tensors' slices in the tree's order (stacks expert by expert), then the constants. */
  stateDict(): Array<Slot<T>> {
    const values = new Map(this.entries.map((e) => [e.spec.name, e]));
    const slots: Array<Slot<T>> = [];
    const constants: Array<Slot<T>> = [];
    for (const v of leaves(this.layout, true)) {
      const name = v.entry.join('.');
      const e = values.get(v.path.join('.'));
      if (v.node instanceof Constant) constants.push({ name, constant: v.node });
      else if (e) slots.push({ name, shape: [...v.node.shape], offset: v.stack ? v.stack.index * sizeOf(v.node.shape) : 0, spec: e.spec, value: e.value });
    }
    return [...slots, ...constants];
  }
}

/** A GPU tensor of a layout holding `data`: a parameter (kept by autograd) or a buffer (kept out of tidy scopes). */
export function uploadTensor(data: Float32Array, spec: TensorSpec): Tensor {
  const t = Tensor.fromArray(data, spec.shape);
  return spec.leaf.kind === 'param' ? parameter(t, spec.name) : keep(t);
}

/** A layout's tensors on the GPU at their initial values, drawn from `rng` in the layout's order. */
export function initParameters<L extends Group>(layout: L, rng: Rng): ParamTree<L> {
  return new ParamTree(layout, (spec) => uploadTensor(spec.leaf.init(sizeOf(spec.shape), rng), spec));
}

/** A network: its configuration and its tensors, declared by a layout. FusionNet and Detector are built alike. */
export class Model<L extends Group, C> {
  constructor(
    readonly config: C,
    readonly params: ParamTree<L>,
  ) {}

  /** The learnt tensors with their names (what the optimizer updates and checkpoints store). */
  parameters(): Array<[string, Tensor]> {
    return this.params.named('param');
  }

  /** The state that is not learnt (batch-norm statistics), with names. */
  buffers(): Array<[string, Tensor]> {
    return this.params.named('buffer');
  }

  /** Releases every tensor on the GPU. */
  dispose(): void {
    for (const { value } of this.params.entries) if (!value.disposed) value.dispose();
  }
}
