/** STEM tasks without a figure: arithmetic chains and (systems of) equations, each with its worked solution. */
import type { Rng } from '../../../util/rng.js';
import { MATH, neg, type StemPlan } from './plan.js';

export function arithmetic(rng: Rng, d: number): Pick<StemPlan, 'kind' | 'params' | 'qa'> {
  let expr: string;
  let steps: string[];
  let value: number;
  if (d === 1) {
    const a = rng.int(1, 9);
    const b = rng.int(1, 9);
    const plus = rng.random() < 0.6 || a < b;
    expr = plus ? `${a} + ${b}` : `${a} - ${b}`;
    value = plus ? a + b : a - b;
    steps = [`${expr} = ${value}.`];
  } else if (d === 2) {
    const a = rng.int(10, 99);
    const b = rng.int(10, 99);
    const plus = rng.random() < 0.5 || a < b;
    expr = plus ? `${a} + ${b}` : `${a} - ${b}`;
    value = plus ? a + b : a - b;
    const [ta, oa] = [a - (a % 10), a % 10];
    const [tb, ob] = [b - (b % 10), b % 10];
    steps = plus
      ? [
          `Tens: ${ta} + ${tb} = ${ta + tb}.`,
          `Ones: ${oa} + ${ob} = ${oa + ob}.`,
          `Total: ${ta + tb} + ${oa + ob} = ${value}.`,
        ]
      : [`${a} - ${tb} = ${a - tb}.`, `${a - tb} - ${ob} = ${value}.`];
  } else if (d === 3) {
    const a = rng.int(2, 9);
    const b = rng.int(2, 9);
    const c = rng.int(1, 30);
    const first = rng.random() < 0.5;
    expr = first ? `${a} × ${b} + ${c}` : `${c} + ${a} × ${b}`;
    value = a * b + c;
    steps = [
      `Multiplication first: ${a} × ${b} = ${a * b}.`,
      `Then ${first ? `${a * b} + ${c}` : `${c} + ${a * b}`} = ${value}.`,
    ];
  } else if (d === 4) {
    const a = rng.int(2, 15);
    const b = rng.int(2, 15);
    const c = rng.int(2, 9);
    const e = rng.int(1, 20);
    expr = `(${a} + ${b}) × ${c} - ${e}`;
    value = (a + b) * c - e;
    steps = [
      `Parentheses: ${a} + ${b} = ${a + b}.`,
      `Multiply: ${a + b} × ${c} = ${(a + b) * c}.`,
      `Subtract: ${(a + b) * c} - ${e} = ${value}.`,
    ];
  } else {
    const e = rng.int(2, 9);
    const q = rng.int(2, 12);
    const dd = e * q;
    const b = rng.int(5, 20);
    const c = rng.int(1, b - 1);
    const a = rng.int(2, 9);
    expr = `${a} × (${b} - ${c}) + ${dd} ÷ ${e}`;
    value = a * (b - c) + q;
    steps = [
      `Parentheses: ${b} - ${c} = ${b - c}.`,
      `Multiply: ${a} × ${b - c} = ${a * (b - c)}.`,
      `Divide: ${dd} ÷ ${e} = ${q}.`,
      `Add: ${a * (b - c)} + ${q} = ${value}.`,
    ];
  }
  return {
    kind: 'expression',
    params: { text: `${expr} = ?` },
    qa: {
      question: rng.pick([
        'What is the value of the expression in the image?',
        'Compute the result shown in the image.',
      ]),
      answer: String(value),
      rationale: `The image shows ${expr}. ${steps.join(' ')} The answer is ${value}.`,
      verifier: MATH,
    },
  };
}

// ---------------------------------------------------------------- equations
export function equation(rng: Rng, d: number): Pick<StemPlan, 'kind' | 'params' | 'qa'> {
  const x = rng.int(-9, 12);
  let lines: string[];
  let steps: string[];
  let answer = x;
  let ask = 'x';
  if (d === 1) {
    const a = rng.int(1, 20);
    lines = [`x + ${a} = ${x + a}`];
    steps = [`Subtract ${a} from both sides: x = ${x + a} - ${a} = ${x}.`];
  } else if (d === 2) {
    const a = rng.int(2, 9);
    lines = [`${a}x = ${a * x}`];
    steps = [`Divide both sides by ${a}: x = ${a * x} / ${a} = ${x}.`];
  } else if (d === 3) {
    const a = rng.int(2, 9);
    const b = rng.int(1, 20);
    lines = [`${a}x + ${b} = ${a * x + b}`];
    steps = [`Subtract ${b}: ${a}x = ${a * x}.`, `Divide by ${a}: x = ${x}.`];
  } else if (d === 4) {
    const a = rng.int(3, 9);
    const c = rng.int(1, a - 1);
    const b = rng.int(-10, 10);
    const dd = (a - c) * x + b;
    const bs = b < 0 ? `- ${-b}` : `+ ${b}`;
    const ds = dd < 0 ? `- ${-dd}` : `+ ${dd}`;
    lines = [`${a}x ${bs} = ${c}x ${ds}`.replace(' + 0', '').replace(' - 0', '')];
    steps = [
      `Move x terms left: ${a}x - ${c}x = ${a - c}x.`,
      `Move constants right: ${dd} - ${neg(b)} = ${dd - b}.`,
      `So ${a - c}x = ${dd - b} and x = ${x}.`,
    ];
  } else {
    const y = rng.int(-6, 9);
    const s = x + y;
    const t = x - y;
    lines = [`x + y = ${s}`, `x - y = ${t}`];
    const which = rng.pick(['x * y', 'y']);
    ask = which === 'y' ? 'y' : 'x·y';
    answer = which === 'y' ? y : x * y;
    steps = [`Add the equations: 2x = ${s + t}, so x = ${x}.`, `Then y = ${s} - ${neg(x)} = ${y}.`];
    if (which !== 'y') steps.push(`x·y = ${x} × ${neg(y)} = ${x * y}.`);
  }
  return {
    kind: 'equation',
    params: { lines },
    qa: {
      question:
        lines.length > 1 ? `Solve the system in the image. What is ${ask}?` : 'Solve the equation in the image for x.',
      answer: String(answer),
      rationale: `The image shows ${lines.join(' and ')}. ${steps.join(' ')} The answer is ${answer}.`,
      verifier: MATH,
    },
  };
}
