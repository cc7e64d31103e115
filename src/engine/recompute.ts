/**
 * Activation checkpointing: run fn without keeping its intermediate activations and recompute them during
 * backward. Trades one extra forward of fn for the memory of everything inside it (long sequences).
 */
import { enableGrad, isGradEnabled, noGrad, runBackward } from './autograd.js';
import { BACKWARD_OPS, type Tensor } from './tensor.js';

export function checkpoint(fn: (...inputs: Tensor[]) => Tensor, ...inputs: Tensor[]): Tensor {
  if (!isGradEnabled()) return fn(...inputs);
  const out = noGrad(() => fn(...inputs));
  // Parameters used inside fn require grad even when no input does, so the node is always attached.
  out.requiresGrad = true;
  out._node = {
    name: 'checkpoint',
    inputs,
    backward: (g) => {
      const detached = inputs.map((t) => {
        const d = t.detach();
        if (t.requiresGrad) d.requiresGrad = true;
        return d;
      });
      const again = enableGrad(() => fn(...detached));
      if (!again.requiresGrad) return inputs.map(() => null);
      runBackward(again, g, BACKWARD_OPS);
      return detached.map((d) => d.grad);
    },
  };
  return out;
}
