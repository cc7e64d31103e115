/**
 * Dynamic tape: each op that sees an input requiring grad attaches a GradNode to its output. `backward` walks the
 * nodes in reverse topological order; backward functions are written with tensor ops under noGrad (first-order only).
 */
import type { GradNode, Tensor } from './tensor-core.js';

/** What the backward pass needs from the tensor module (the ops build on this file, so it cannot import them). */
export interface BackwardOps {
  /**
   * Adds g into leaf.grad. `sole`: nothing but this pass holds g, so it may become leaf.grad as it is; returns
   * whether it did (the pass then must not dispose it).
   */
  accumulateLeaf(leaf: Tensor, g: Tensor, sole: boolean): boolean;
  add(a: Tensor, b: Tensor): Tensor;
  addInPlace(dst: Tensor, src: Tensor): void;
  zeros(shape: readonly number[], like: Tensor): Tensor;
  clone(t: Tensor): Tensor;
}

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording the tape (inference, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function enableGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = true;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Attaches a node to `out` when recording and some input requires grad. Returns out. */
export function record(
  out: Tensor,
  name: string,
  inputs: readonly Tensor[],
  backward: GradNode['backward'],
  backwardInto?: GradNode['backwardInto'],
): Tensor {
  if (!gradEnabled) return out;
  let any = false;
  for (const t of inputs) if (t.requiresGrad) any = true;
  if (!any) return out;
  out.requiresGrad = true;
  out._node = backwardInto ? { name, inputs, backward, backwardInto } : { name, inputs, backward };
  return out;
}

/** Replaces a node whose saved tensors were released, so a second backward fails loudly. */
function freedNode(name: string): GradNode {
  return {
    name,
    inputs: [],
    backward: () => {
      throw new Error(
        `backward: the graph through ${name} was already used by a previous backward() and freed; ` +
          'pass { retainGraph: true } to the first backward() to run it twice',
      );
    },
  };
}

/** Tensors reachable from root through nodes, in topological order (inputs before outputs). */
function topoSort(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: Array<[Tensor, number]> = [[root, 0]];
  seen.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const [t, i] = top;
    const inputs = t._node?.inputs ?? [];
    if (i < inputs.length) {
      top[1] = i + 1;
      const child = inputs[i]!;
      if (child.requiresGrad && !seen.has(child)) {
        seen.add(child);
        stack.push([child, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order;
}

export interface BackwardOptions {
  /** Keep the graph so backward can run again through it. */
  retainGraph?: boolean;
}

/**
 * Accumulates d(root)/d(leaf) into every leaf's `.grad` (adding to what is there: gradient accumulation).
 * Intermediate gradients are reference-counted and disposed as soon as the tensor they belong to has been
 * processed, and sums are accumulated in place into buffers the pass owns, so peak memory stays near the forward's.
 */
export function runBackward(root: Tensor, grad: Tensor, ops: BackwardOps, opts: BackwardOptions = {}): void {
  const order = topoSort(root);
  // slot: the current gradient of a tensor; owned = created by this pass for this slot only (safe to mutate).
  const slots = new Map<Tensor, { g: Tensor; owned: boolean }>();
  const refs = new Map<Tensor, number>();
  const inc = (g: Tensor) => refs.set(g, (refs.get(g) ?? 0) + 1);
  const release = (g: Tensor) => {
    const n = (refs.get(g) ?? 0) - 1;
    if (n > 0) {
      refs.set(g, n);
      return;
    }
    refs.delete(g);
    if (g !== grad) g.dispose();
  };
  /** Drops a gradient that was returned but not stored anywhere. */
  const dropIfLoose = (g: Tensor) => {
    if (!refs.has(g) && g !== grad) g.dispose();
  };
  const addTo = (inp: Tensor, gi: Tensor) => {
    const slot = slots.get(inp);
    if (!slot) {
      slots.set(inp, { g: gi, owned: false });
      inc(gi);
      return;
    }
    if (slot.owned) {
      ops.addInPlace(slot.g, gi);
      dropIfLoose(gi);
      return;
    }
    const sum = ops.add(slot.g, gi);
    release(slot.g);
    dropIfLoose(gi);
    slots.set(inp, { g: sum, owned: true });
    inc(sum);
  };
  const bufferFor = (inp: Tensor, like: Tensor): Tensor => {
    const slot = slots.get(inp);
    if (slot?.owned) return slot.g;
    const buf = slot ? ops.clone(slot.g) : ops.zeros(inp.shape, like);
    if (slot) release(slot.g);
    slots.set(inp, { g: buf, owned: true });
    inc(buf);
    return buf;
  };
  slots.set(root, { g: grad, owned: false });
  inc(grad);
  noGrad(() => {
    for (let idx = order.length - 1; idx >= 0; idx--) {
      const t = order[idx]!;
      const slot = slots.get(t);
      if (!slot) continue;
      slots.delete(t);
      const g = slot.g;
      const node = t._node;
      if (!node) {
        if (ops.accumulateLeaf(t, g, refs.get(g) === 1 && g !== grad)) refs.delete(g);
        else release(g);
        continue;
      }
      if (node.backwardInto) {
        node.backwardInto(g, (k) => bufferFor(node.inputs[k]!, g));
      } else {
        const gs = node.backward(g);
        for (let k = 0; k < node.inputs.length; k++) {
          const inp = node.inputs[k]!;
          const gi = gs[k];
          if (!gi) continue;
          if (!inp.requiresGrad) {
            dropIfLoose(gi);
            continue;
          }
          if (gi.shape.length !== inp.shape.length || gi.shape.some((d, j) => d !== inp.shape[j])) {
            throw new Error(
              `backward of ${node.name}: gradient shape [${gi.shape.join(', ')}] does not match input shape [${inp.shape.join(', ')}]`,
            );
          }
          addTo(inp, gi);
        }
      }
      release(g);
      if (!opts.retainGraph) t._node = freedNode(node.name);
    }
  });
}
