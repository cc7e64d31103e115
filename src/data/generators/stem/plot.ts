/** STEM function plots: intercepts, slopes, extrema and values read from a line or a parabola on a grid. */
import type { Rng } from '../../../util/rng.js';
import { fmt } from '../types.js';
import { MATH, type StemPlan, type StemQA } from './plan.js';

export function plot(rng: Rng, d: number): Pick<StemPlan, 'kind' | 'params' | 'qa'> {
  if (d <= 3 || rng.random() < 0.5) {
    let m = rng.pick([-3, -2, -1, 1, 2, 3]);
    if (d <= 2) m = rng.pick([1, 2, -1]);
    const ask = d <= 2 ? 'intercept' : d === 3 ? 'slope' : d === 4 ? 'root' : 'sum';
    let b = rng.int(-4, 4);
    if (ask === 'root') {
      const root = rng.int(-3, 3);
      b = -m * root;
    }
    const f = (x: number) => m * x + b;
    const eq = `y = ${m}x ${b < 0 ? '-' : '+'} ${Math.abs(b)}`;
    const pts = `(0, ${b}) and (1, ${f(1)})`;
    let qa: StemQA;
    if (ask === 'intercept')
      qa = {
        question: 'What is the y-intercept of the line?',
        answer: String(b),
        rationale: `The line passes through (0, ${b}), where it crosses the y-axis, so the y-intercept is ${b}.`,
        verifier: MATH,
      };
    else if (ask === 'slope')
      qa = {
        question: 'What is the slope of the line?',
        answer: String(m),
        rationale: `The line passes through ${pts}. Slope = (${f(1)} - ${b}) / (1 - 0) = ${m}.`,
        verifier: MATH,
      };
    else if (ask === 'root')
      qa = {
        question: 'At what x does the line cross the x-axis?',
        answer: fmt(-b / m),
        rationale: `The line passes through ${pts}, so ${eq}. Setting y = 0: x = ${-b} / ${m} = ${fmt(-b / m)}.`,
        verifier: MATH,
      };
    else {
      const [p, q] = [rng.int(-3, 0), rng.int(1, 3)];
      qa = {
        question: `What is f(${p}) + f(${q}) for the plotted line y = f(x)?`,
        answer: String(f(p) + f(q)),
        rationale: `The line passes through ${pts}, so f(x) = ${m}x ${b < 0 ? '-' : '+'} ${Math.abs(b)}. f(${p}) = ${f(p)}, f(${q}) = ${f(q)}. Sum = ${f(p) + f(q)}.`,
        verifier: MATH,
      };
    }
    return { kind: 'line', params: { m, b }, qa };
  }
  const a = rng.pick([-1, 1]);
  const h = rng.int(-3, 3);
  const k = rng.int(-4, 4);
  const ext = a < 0 ? 'maximum' : 'minimum';
  const ask = rng.random() < 0.5 ? 'value' : 'x';
  return {
    kind: 'parabola',
    params: { a, h, k },
    qa:
      ask === 'value'
        ? {
            question: `What is the ${ext} value of the plotted function?`,
            answer: String(k),
            rationale: `The parabola opens ${a < 0 ? 'down' : 'up'}, so its vertex is the ${ext}. The vertex is at (${h}, ${k}), so the ${ext} value is ${k}.`,
            verifier: MATH,
          }
        : {
            question: `At what x does the plotted function reach its ${ext}?`,
            answer: String(h),
            rationale: `The parabola opens ${a < 0 ? 'down' : 'up'}; its vertex, the ${ext}, is at (${h}, ${k}). So x = ${h}.`,
            verifier: MATH,
          },
  };
}
