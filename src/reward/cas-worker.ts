/**
 * CAS worker (piscina): the math check with generous limits and mathjs `simplify`. Runs off the main thread so a
 * pathological input can be killed by the pool without touching the caller.
 */
import { checkMath, type MathCheck, type MathCheckOptions } from './math/equivalence.js';

/** One check: both sides and the checker's options (tolerances, equivalence switches). */
export interface CasTask extends Omit<MathCheckOptions, 'limits' | 'goldCache' | 'symbolic'> {
  pred: string;
  gold: string;
}

// Larger than the in-process limits: this is where big answers go, and the hard kill bounds the cost.
const WORKER_LIMITS = { maxLength: 20_000, maxDepth: 200, maxNodes: 20_000 };

export default function casCheck(task: CasTask): MathCheck {
  const { pred, gold, ...opts } = task;
  const r = checkMath(pred, gold, {
    ...opts,
    limits: WORKER_LIMITS,
    symbolic: true,
  });
  return { equal: r.equal, path: r.path, detail: r.detail, tooComplex: r.tooComplex, parseError: r.parseError };
}
