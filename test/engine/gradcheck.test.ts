/** Finite-difference gradient checks for every differentiable op, in float64 on the reference backend. */
import { describe, expect, it } from 'vitest';
import { fromArray, isGradEnabled, noGrad, type Tensor, withBackend } from '../../src/engine/index.js';
import { Rng } from '../../src/util/rng.js';
import { CASES } from './cases.js';

/** Σ f(x)·R for fixed random R, so every output element matters with a distinct weight. */
function scalarize(y: Tensor, rng: Rng): { loss: Tensor; weights: Float64Array } {
  const w = new Float64Array(y.size);
  for (let i = 0; i < w.length; i++) w[i] = rng.uniform(-1, 1);
  const R = fromArray(w, y.shape, 'float64');
  return { loss: y.to('float64').mul(R).sum(), weights: w };
}

describe('finite-difference gradients (float64, ref backend)', () => {
  for (const c of CASES) {
    if (c.noGradCheck) continue;
    it(c.name, () => {
      withBackend('ref', () => {
        const inputs = c.inputs('float64', new Rng(7));
        const gradIdx = c.grad ?? inputs.map((_, i) => i).filter((i) => inputs[i]!.dtype === 'float64');
        for (const i of gradIdx) inputs[i]!.requireGrad();
        const wrng = new Rng(99);
        const { loss } = scalarize(c.fn(inputs), wrng);
        loss.backward();
        expect(isGradEnabled()).toBe(true);
        for (const i of gradIdx) {
          const x = inputs[i]!;
          const analytic = x.grad!.toFloat64();
          const data = x.buf() as Float64Array;
          const pick = new Rng(3);
          const idxs =
            data.length <= 40 ? [...data.keys()] : Array.from({ length: 40 }, () => pick.int(0, data.length - 1));
          for (const j of idxs) {
            const orig = data[j]!;
            const h = 1e-6 * Math.max(1, Math.abs(orig));
            const f = () => noGrad(() => scalarize(c.fn(inputs), new Rng(99)).loss.item());
            data[j] = orig + h;
            const fp = f();
            data[j] = orig - h;
            const fm = f();
            data[j] = orig;
            const numeric = (fp - fm) / (2 * h);
            const a = analytic[j]!;
            const err = Math.abs(a - numeric) / Math.max(1, Math.abs(numeric));
            if (err > 1e-6)
              throw new Error(
                `${c.name}: input ${i}[${j}] analytic ${a} vs numeric ${numeric} (rel err ${err.toExponential(2)})`,
              );
          }
        }
      });
    });
  }
});
