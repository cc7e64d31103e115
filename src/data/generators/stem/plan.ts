/** The STEM generator's plan: its tasks, a figure's plan and its question, and the verifiers the tasks share. */
import type { FontRole } from '../../render.js';
import type { VerifierSpec } from '../../sample.js';

export const TASKS = ['arithmetic', 'equation', 'geometry', 'plot', 'physics'] as const;
export type Task = (typeof TASKS)[number];

export interface StemQA {
  question: string;
  answer: string;
  rationale: string;
  verifier: VerifierSpec;
}

export interface StemPlan {
  task: Task;
  kind: string;
  /** Everything the renderer needs (numbers, labels), JSON only. */
  params: Record<string, number | string | number[] | string[]>;
  qa: StemQA;
  font: FontRole;
}

/** A number as it appears in a chain of operations: negatives in parentheses. */
export const neg = (n: number) => (n < 0 ? `(${n})` : String(n));

export const MATH: VerifierSpec = { type: 'math' };
export const MATH_TOL: VerifierSpec = { type: 'math', params: { tolerance: 0.01 } };
export const physics = (unit: string): VerifierSpec => ({ type: 'physics', params: { unit } });
