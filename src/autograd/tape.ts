/**
 * Reverse-mode autograd. Ops call record() after computing their outputs; backward() walks the recorded graph
 * from a scalar in reverse topological order, accumulates gradients into leaves' `.grad`, and frees the graph.
 * A rule (`Rule`) declares the tensors it reads and one gradient function per input; the tape runs only the
 * functions of inputs that need a gradient and owns their temporaries: every tensor they create and do not return
 * is freed when the node's backward returns, so rules only compute and return gradients.
 */
import { engine, noGrad, keep, tidy } from '../tensor/engine.ts';
import { sameShape, type GradNode, type Tensor } from '../tensor/tensor.ts';
import { binaryMapKernel, fillKernel } from '../kernels/elementwise.ts';

export type { GradNode };

export function needsGrad(inputs: readonly Tensor[]): boolean {
  return engine().gradEnabled && inputs.some((t) => t.requiresGrad);
}

/** The tensors a backward rule reads, by name (null: none this time): the tape keeps them alive and hands them back. */
export type Saved = Record<string, Tensor | null>;

/** The gradient of one input, from the incoming gradient (or what `shared` made of it) and the saved tensors. */
export type GradFn<P, S extends Saved> = (dy: P, saved: S) => Tensor;

/**
 * A backward rule (in the manner of TF.js's gradient functions): the tensors it reads and one gradient function
 * per input, in the inputs' order. The tape calls only the functions of inputs that need a gradient (they require
 * grad: a leaf that does, or the output of a recorded op, which reaches one); tensors the functions create and do
 * not return are freed by the tape. A function reads tensors from `saved` only, never from its closure: inputs are
 * not kept alive otherwise.
 */
export interface Rule<D, S extends Saved, P> {
  saved?: S;
  /**
   * Work the gradient functions share (a masked incoming gradient, one kernel that yields several gradients: wrap
   * it in `once`), run once per backward pass through the op, before them and only when one of them runs. Without
   * it the functions receive the incoming gradient itself.
   */
  shared?: (dy: D, saved: S) => P;
  grads: readonly GradFn<P, S>[];
}

/** A value made at its first use and then reused: a kernel that yields gradients of several inputs. */
export function once<T>(make: () => T): () => T {
  let made: { value: T } | null = null;
  return () => (made ??= { value: make() }).value;
}

/**
 * Records an op of one output when grad mode is on and an input requires grad; its rule's functions receive that
 * output's gradient. Returns the output for chaining.
 */
export function record<T extends Tensor, S extends Saved = Record<never, never>, P = Tensor>(
  name: string,
  inputs: readonly Tensor[],
  output: T,
  rule: Rule<Tensor, S, P>,
): T {
  // The tape runs a node only when a gradient reached one of its outputs: with one output, that one.
  return recordNode(name, inputs, [output], rule, ([dy]) => dy ?? null)[0];
}

/** record for an op of several outputs: its rule's functions receive their gradients, null where none reached. */
export function recordOutputs<T extends Tensor, S extends Saved = Record<never, never>, P = (Tensor | null)[]>(
  name: string,
  inputs: readonly Tensor[],
  outputs: T[],
  rule: Rule<(Tensor | null)[], S, P>,
): T[] {
  return recordNode(name, inputs, outputs, rule, (dys) => dys);
}

function recordNode<T extends Tensor, D, S extends Saved, P>(
  name: string,
  inputs: readonly Tensor[],
  outputs: T[],
  rule: Rule<D, S, P>,
  incoming: (grads: (Tensor | null)[]) => D | null,
): T[] {
  if (rule.grads.length !== inputs.length)
    throw new Error(`record('${name}'): ${rule.grads.length} gradient functions for ${inputs.length} inputs`);
  if (!needsGrad(inputs)) return outputs;
  const saved = rule.saved ?? ({} as S); // S is the empty record when no tensors are saved
  const backward: GradNode['backward'] = (grads, needs) => {
    const dy = incoming(grads);
    if (dy === null || !needs.some(Boolean)) return needs.map(() => null);
    // Without `shared`, P is D (its default): the functions receive the incoming gradient.
    const p = rule.shared ? rule.shared(dy, saved) : (dy as unknown as P);
    return rule.grads.map((grad, i) => (needs[i] ? grad(p, saved) : null));
  };
  const node: GradNode = { name, inputs: [...inputs], outputs, saved: Object.values(saved).filter((t): t is Tensor => t !== null), backward, released: false };
  for (const t of node.saved) t.retain();
  for (const o of outputs) {
    o.requiresGrad = true;
    o.node = node;
  }
  return outputs;
}

function topoOrder(root: Tensor): GradNode[] {
  const order: GradNode[] = [];
  const seen = new Set<GradNode>();
  // Iterative DFS: graphs of deep models overflow recursion.
  const stack: Array<[GradNode, number]> = [];
  if (root.node) stack.push([root.node, 0]);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [node, i] = top;
    if (i === 0 && seen.has(node)) {
      stack.pop();
      continue;
    }
    seen.add(node);
    if (i < node.inputs.length) {
      top[1]++;
      const child = node.inputs[i].node;
      if (child && !seen.has(child) && !child.released) stack.push([child, 0]);
    } else {
      stack.pop();
      order.push(node);
    }
  }
  return order; // children before parents
}

function releaseNode(node: GradNode): void {
  if (node.released) return;
  node.released = true;
  for (const t of node.saved) t.release();
  for (const o of node.outputs) if (o.node === node) o.node = null;
}

const add = (a: Tensor, b: Tensor): Tensor => binaryMapKernel('a + b', a, b, 0, 'add');

/**
 * Computes d(root)/d(leaf) for every leaf that requires grad, adding into leaf.grad.
 * root must be a scalar unless `seed` (its gradient) is given. The graph is freed afterwards unless retainGraph.
 */
export function backward(root: Tensor, seed?: Tensor, opts: { retainGraph?: boolean } = {}): void {
  if (!root.requiresGrad) throw new Error('backward(): the tensor does not require grad (no parameter reached it)');
  if (!seed && root.size !== 1) throw new Error(`backward(): needs a scalar, got shape [${root.shape.join(', ')}]`);
  if (seed && !sameShape(seed.shape, root.shape)) throw new Error('backward(): seed shape differs from the root');
  const order = topoOrder(root);
  const grads = new Map<Tensor, Tensor>();
  noGrad(() => {
    const s = seed ? seed.alias() : fillKernel(root.shape, 1);
    keep(s);
    grads.set(root, s);
    const accumulate = (t: Tensor, g: Tensor): void => {
      if (!sameShape(g.shape, t.shape))
        throw new Error(`backward: gradient of shape [${g.shape}] for a tensor of shape [${t.shape}]`);
      if (!t.node) {
        // A leaf: accumulate into .grad (kept across backward calls).
        if (!t.requiresGrad) {
          g.dispose();
          return;
        }
        if (t.grad) {
          const sum = keep(add(t.grad, g));
          t.grad.dispose();
          g.dispose();
          t.grad = sum;
        } else t.grad = g;
        return;
      }
      const prev = grads.get(t);
      if (prev) {
        grads.set(t, keep(add(prev, g)));
        prev.dispose();
        g.dispose();
      } else grads.set(t, g);
    };
    for (let k = order.length - 1; k >= 0; k--) {
      const node = order[k];
      const outGrads = node.outputs.map((o) => grads.get(o) ?? null);
      if (outGrads.every((g) => g === null)) continue;
      // tidy frees what the rule created and did not return; the returned gradients leave the scope.
      const inGrads = tidy(() => node.backward(outGrads, node.inputs.map((t) => t.requiresGrad)));
      for (const o of node.outputs) {
        grads.get(o)?.dispose();
        grads.delete(o);
      }
      node.inputs.forEach((t, i) => {
        const g = inGrads[i];
        if (!g) return;
        keep(g);
        if (t.requiresGrad) accumulate(t, g);
        else g.dispose();
      });
      if (!opts.retainGraph) releaseNode(node);
    }
    for (const g of grads.values()) g.dispose();
  });
}
