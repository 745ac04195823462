/**
 * Reverse-mode autograd. Ops call record() after computing their outputs; backward() walks the recorded graph
 * from a scalar in reverse topological order, accumulates gradients into leaves' `.grad`, and frees the graph.
 * The tape owns a backward rule's temporaries: every tensor a rule creates and does not return is freed when the
 * rule returns, so rules only compute and return gradients.
 */
import { engine, noGrad, keep, tidy } from '../tensor/engine.ts';
import { sameShape, type GradNode, type Tensor } from '../tensor/tensor.ts';
import { binaryMapKernel, fillKernel } from '../kernels/elementwise.ts';

export type { GradNode };

export function needsGrad(inputs: readonly Tensor[]): boolean {
  return engine().gradEnabled && inputs.some((t) => t.requiresGrad);
}

/** Records an op when grad mode is on and an input requires grad. Returns the first output for chaining. */
export function record<T extends Tensor>(
  name: string,
  inputs: Tensor[],
  outputs: T | T[],
  backward: GradNode['backward'],
  saved: Tensor[] = [],
): T {
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  if (!needsGrad(inputs)) return outs[0];
  const node: GradNode = { name, inputs: [...inputs], outputs: outs, saved, backward, released: false };
  for (const t of saved) t.retain();
  for (const o of outs) {
    o.requiresGrad = true;
    o.node = node;
  }
  return outs[0];
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
