/**
 * CAS worker (piscina): the math check with generous limits and mathjs `simplify`. Runs off the main thread so a
 * pathological input can be killed by the pool without touching the caller.
 */
import { checkMath, type MathCheck } from './math/equivalence.js';

export interface CasTask {
  pred: string;
  gold: string;
  relTol?: number;
  absTol?: number;
  percentVariants?: boolean;
}

// Larger than the in-process limits: this is where big answers go, and the hard kill bounds the cost.
const WORKER_LIMITS = { maxLength: 20_000, maxDepth: 200, maxNodes: 20_000 };

export default function casCheck(task: CasTask): MathCheck {
  const r = checkMath(task.pred, task.gold, {
    relTol: task.relTol,
    absTol: task.absTol,
    percentVariants: task.percentVariants,
    limits: WORKER_LIMITS,
    symbolic: true,
  });
  return { equal: r.equal, path: r.path, detail: r.detail, tooComplex: r.tooComplex, parseError: r.parseError };
}
