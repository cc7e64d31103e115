/**
 * Dynamic tape: each op that sees an input requiring grad attaches a GradNode to its output. `backward` walks the
 * nodes in reverse topological order; backward functions are written with tensor ops under noGrad (first-order only).
 */
import type { Tensor } from './tensor.js';

export interface GradNode {
  readonly name: string;
  readonly inputs: readonly Tensor[];
  /** Gradients for each input (null where none flows), given the output's gradient. */
  readonly backward: (grad: Tensor) => ReadonlyArray<Tensor | null | undefined>;
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
export function record(out: Tensor, name: string, inputs: readonly Tensor[], backward: GradNode['backward']): Tensor {
  if (!gradEnabled) return out;
  let any = false;
  for (const t of inputs) if (t.requiresGrad) any = true;
  if (!any) return out;
  out.requiresGrad = true;
  out._node = { name, inputs, backward };
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
 * `accumulate(leaf, g)` is supplied by the tensor module so this file stays free of kernels.
 */
export function runBackward(
  root: Tensor,
  grad: Tensor,
  accumulate: (leaf: Tensor, g: Tensor) => void,
  add: (a: Tensor, b: Tensor) => Tensor,
  opts: BackwardOptions = {},
): void {
  const order = topoSort(root);
  const grads = new Map<Tensor, Tensor>();
  grads.set(root, grad);
  noGrad(() => {
    for (let idx = order.length - 1; idx >= 0; idx--) {
      const t = order[idx]!;
      const g = grads.get(t);
      if (!g) continue;
      grads.delete(t);
      const node = t._node;
      if (!node) {
        accumulate(t, g);
        continue;
      }
      const gs = node.backward(g);
      for (let k = 0; k < node.inputs.length; k++) {
        const inp = node.inputs[k]!;
        const gi = gs[k];
        if (!gi || !inp.requiresGrad) continue;
        if (gi.shape.length !== inp.shape.length || gi.shape.some((d, j) => d !== inp.shape[j])) {
          throw new Error(
            `backward of ${node.name}: gradient shape [${gi.shape.join(', ')}] does not match input shape [${inp.shape.join(', ')}]`,
          );
        }
        const prev = grads.get(inp);
        grads.set(inp, prev ? add(prev, gi) : gi);
      }
      if (!opts.retainGraph) t._node = freedNode(node.name);
    }
  });
}
