/**
 * STEM: rendered arithmetic and equations, geometry figures with labelled lengths and angles, function plots
 * (intercepts, slopes, extrema, values), and physics diagrams with units. Numbers are chosen so every answer is
 * exact (integers or terminating decimals), and each rationale is the worked solution.
 */
import type { Rng } from '../../util/rng.js';
import { type Ctx, drawArrow, drawText, type FontRole, fitFont, measureText, newCanvas, roundRect } from '../render.js';
import type { VerifierSpec } from '../sample.js';
import { type Built, fmt, type GenConfig, type Generator, pickTask } from './types.js';

const TASKS = ['arithmetic', 'equation', 'geometry', 'plot', 'physics'] as const;
type Task = (typeof TASKS)[number];

interface StemQA {
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
const neg = (n: number) => (n < 0 ? `(${n})` : String(n));

const MATH: VerifierSpec = { type: 'math' };
const MATH_TOL: VerifierSpec = { type: 'math', params: { tolerance: 0.01 } };
const physics = (unit: string): VerifierSpec => ({ type: 'physics', params: { unit } });

// ---------------------------------------------------------------- arithmetic
function arithmetic(rng: Rng, d: number): Pick<StemPlan, 'kind' | 'params' | 'qa'> {
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
function equation(rng: Rng, d: number): Pick<StemPlan, 'kind' | 'params' | 'qa'> {
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

// ---------------------------------------------------------------- geometry
const TRIPLES: Array<[number, number, number]> = [
  [3, 4, 5],
  [5, 12, 13],
  [8, 15, 17],
  [7, 24, 25],
  [6, 8, 10],
  [9, 12, 15],
  [20, 21, 29],
];

function geometry(rng: Rng, d: number): Pick<StemPlan, 'kind' | 'params' | 'qa'> {
  const kinds =
    d <= 1
      ? ['rect']
      : d === 2
        ? ['rect', 'angle']
        : d === 3
          ? ['right', 'angle', 'tri_area', 'circle']
          : d === 4
            ? ['right', 'circle', 'tri_area']
            : ['lshape', 'right_leg', 'circle'];
  const kind = rng.pick(kinds);
  if (kind === 'rect') {
    const w = rng.int(2, 15);
    const h = rng.int(2, 12);
    const area = rng.random() < 0.5;
    return {
      kind,
      params: { w, h },
      qa: area
        ? {
            question: 'What is the area of the rectangle (in cm²)?',
            answer: String(w * h),
            rationale: `The sides are ${w} cm and ${h} cm. Area = ${w} × ${h} = ${w * h}.`,
            verifier: MATH,
          }
        : {
            question: 'What is the perimeter of the rectangle (in cm)?',
            answer: String(2 * (w + h)),
            rationale: `The sides are ${w} cm and ${h} cm. Perimeter = 2 × (${w} + ${h}) = ${2 * (w + h)}.`,
            verifier: MATH,
          },
    };
  }
  if (kind === 'angle') {
    const a = rng.int(25, 100);
    const b = rng.int(20, 150 - a);
    const c = 180 - a - b;
    return {
      kind,
      params: { a, b, c },
      qa: {
        question: 'What is the measure of the unknown angle x (in degrees)?',
        answer: String(c),
        rationale: `The angles of a triangle sum to 180°. x = 180 - ${a} - ${b} = ${c}.`,
        verifier: MATH,
      },
    };
  }
  if (kind === 'right' || kind === 'right_leg') {
    const [p, q, r] = rng.pick(TRIPLES);
    const k = d >= 4 ? rng.int(1, 3) : 1;
    const [a, b, c] = [p * k, q * k, r * k];
    if (kind === 'right') {
      return {
        kind,
        params: { a, b, c, hidden: 'c' },
        qa: {
          question: 'What is the length of the hypotenuse?',
          answer: String(c),
          rationale: `By Pythagoras, c² = ${a}² + ${b}² = ${a * a} + ${b * b} = ${c * c}, so c = ${c}.`,
          verifier: MATH,
        },
      };
    }
    return {
      kind,
      params: { a, b, c, hidden: 'b' },
      qa: {
        question: 'What is the length of the unknown leg x?',
        answer: String(b),
        rationale: `By Pythagoras, x² = ${c}² - ${a}² = ${c * c} - ${a * a} = ${b * b}, so x = ${b}.`,
        verifier: MATH,
      },
    };
  }
  if (kind === 'tri_area') {
    const base = rng.int(2, 16);
    const h = rng.int(2, 12);
    const area = (base * h) / 2;
    return {
      kind,
      params: { base, h },
      qa: {
        question: 'What is the area of the triangle?',
        answer: fmt(area),
        rationale: `Area = base × height / 2 = ${base} × ${h} / 2 = ${fmt(area)}.`,
        verifier: MATH,
      },
    };
  }
  if (kind === 'circle') {
    const r = rng.int(1, 12);
    const area = rng.random() < 0.5;
    const v = area ? 3.14 * r * r : 2 * 3.14 * r;
    return {
      kind,
      params: { r },
      qa: area
        ? {
            question: 'What is the area of the circle? Use π = 3.14.',
            answer: fmt(v, 2),
            rationale: `Area = π r² = 3.14 × ${r}² = 3.14 × ${r * r} = ${fmt(v, 2)}.`,
            verifier: MATH_TOL,
          }
        : {
            question: 'What is the circumference of the circle? Use π = 3.14.',
            answer: fmt(v, 2),
            rationale: `Circumference = 2 π r = 2 × 3.14 × ${r} = ${fmt(v, 2)}.`,
            verifier: MATH_TOL,
          },
    };
  }
  // L-shape: a W×H rectangle with a w×h notch cut from the top-right corner.
  const W = rng.int(6, 14);
  const H = rng.int(5, 12);
  const w = rng.int(2, W - 2);
  const h = rng.int(2, H - 2);
  const area = W * H - w * h;
  return {
    kind: 'lshape',
    params: { W, H, w, h },
    qa: {
      question: 'What is the area of the shaded L-shaped figure?',
      answer: String(area),
      rationale: `The full rectangle is ${W} × ${H} = ${W * H}. The missing corner is ${w} × ${h} = ${w * h}. Area = ${W * H} - ${w * h} = ${area}.`,
      verifier: MATH,
    },
  };
}

// ---------------------------------------------------------------- plots
function plot(rng: Rng, d: number): Pick<StemPlan, 'kind' | 'params' | 'qa'> {
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

// ---------------------------------------------------------------- physics
function physicsTask(rng: Rng, d: number): Pick<StemPlan, 'kind' | 'params' | 'qa'> {
  const kinds =
    d <= 2
      ? ['speed', 'ohm']
      : d === 3
        ? ['ohm', 'force', 'speed']
        : d === 4
          ? ['series', 'force', 'lever']
          : ['parallel', 'lever', 'series'];
  const kind = rng.pick(kinds);
  if (kind === 'speed') {
    const v = rng.int(2, 30);
    const t = rng.int(2, 12);
    return {
      kind,
      params: { dist: v * t, t },
      qa: {
        question: 'What is the average speed of the car?',
        answer: `${v} m/s`,
        rationale: `Speed = distance / time = ${v * t} m / ${t} s = ${v} m/s.`,
        verifier: physics('m/s'),
      },
    };
  }
  if (kind === 'ohm') {
    const i = rng.int(1, 6);
    const r = rng.int(2, 12);
    return {
      kind,
      params: { V: i * r, R: [r] },
      qa: {
        question: 'What current flows through the resistor?',
        answer: `${i} A`,
        rationale: `Ohm's law: I = V / R = ${i * r} V / ${r} Ω = ${i} A.`,
        verifier: physics('A'),
      },
    };
  }
  if (kind === 'series') {
    const i = rng.int(1, 5);
    const r1 = rng.int(1, 10);
    const r2 = rng.int(1, 10);
    const V = i * (r1 + r2);
    return {
      kind,
      params: { V, R: [r1, r2] },
      qa: {
        question: 'What current flows in the circuit?',
        answer: `${i} A`,
        rationale: `In series, R = ${r1} + ${r2} = ${r1 + r2} Ω. I = V / R = ${V} / ${r1 + r2} = ${i} A.`,
        verifier: physics('A'),
      },
    };
  }
  if (kind === 'parallel') {
    const pairs: Array<[number, number]> = [
      [3, 6],
      [4, 12],
      [6, 12],
      [10, 15],
      [12, 24],
      [6, 6],
      [4, 4],
      [20, 30],
    ];
    const [r1, r2] = rng.pick(pairs);
    const rt = (r1 * r2) / (r1 + r2);
    const i = rng.int(1, 4);
    const V = i * rt;
    return {
      kind,
      params: { V, R: [r1, r2] },
      qa: {
        question: 'What total current does the battery supply?',
        answer: `${i} A`,
        rationale: `In parallel, R = ${r1} × ${r2} / (${r1} + ${r2}) = ${fmt(rt)} Ω. I = V / R = ${fmt(V)} / ${fmt(rt)} = ${i} A.`,
        verifier: physics('A'),
      },
    };
  }
  if (kind === 'force') {
    const m = rng.int(1, 8);
    const a = rng.int(1, 6);
    const f2 = rng.int(0, 20);
    const f1 = m * a + f2;
    return {
      kind,
      params: { m, f1, f2 },
      qa: {
        question: 'What is the acceleration of the block (frictionless surface)?',
        answer: `${a} m/s^2`,
        rationale: `Net force = ${f1} N - ${f2} N = ${f1 - f2} N. a = F / m = ${f1 - f2} / ${m} = ${a} m/s^2.`,
        verifier: physics('m/s^2'),
      },
    };
  }
  // Lever: m1·d1 = m2·d2.
  const d2 = rng.int(2, 6);
  const m2 = rng.int(1, 12);
  const d1 = rng.int(2, 6);
  const m1x = m2 * d2;
  if (m1x % d1 !== 0) return physicsTask(rng, d);
  const m1 = m1x / d1;
  return {
    kind: 'lever',
    params: { m1, d1, d2 },
    qa: {
      question: 'What mass must hang on the right to balance the lever?',
      answer: `${m2} kg`,
      rationale: `Balance: m1 × d1 = m2 × d2, so m2 = ${m1} × ${d1} / ${d2} = ${m2} kg.`,
      verifier: physics('kg'),
    },
  };
}

// ---------------------------------------------------------------- rendering
function renderStem(p: StemPlan, size: number): Built['images'][number] {
  const W = size;
  const H = size;
  const { canvas, ctx } = newCanvas(W, H, '#ffffff');
  const s = size / 336;
  const lw = Math.max(1, 2 * s);
  // Labels sit on a white patch so that lines crossing them never hide a digit.
  const label = (t: string, x: number, y: number, px = 22) => {
    const size = Math.max(7, px * s);
    const m = measureText(t, size, p.font);
    ctx.fillStyle = 'rgba(255,255,255,0.85)';
    ctx.fillRect(x - m.w / 2 - 2, y - m.ascent - 1, m.w + 4, m.ascent + m.descent + 2);
    return drawText(ctx, t, x, y, size, '#111111', p.font, false, 'center');
  };
  ctx.strokeStyle = '#222222';
  ctx.lineWidth = lw;
  const P = p.params;
  switch (p.kind) {
    case 'expression': {
      const text = P.text as string;
      const px = fitFont(ctx, text, W * 0.9, H * 0.22, p.font);
      drawText(ctx, text, W / 2, H / 2, px, '#111111', p.font, false, 'center');
      break;
    }
    case 'equation': {
      const lines = P.lines as unknown as string[];
      const px = Math.min(...lines.map((l) => fitFont(ctx, l, W * 0.9, H * (lines.length > 1 ? 0.17 : 0.22), p.font)));
      lines.forEach((l, i) => {
        drawText(
          ctx,
          l,
          W / 2,
          H / 2 + (i - (lines.length - 1) / 2) * px * 1.5,
          px,
          '#111111',
          p.font,
          false,
          'center',
        );
      });
      break;
    }
    case 'rect': {
      const w = P.w as number;
      const h = P.h as number;
      const k = Math.min((W * 0.66) / w, (H * 0.6) / h);
      const x0 = (W - w * k) / 2;
      const y0 = (H - h * k) / 2;
      ctx.fillStyle = '#dbe9fb';
      ctx.fillRect(x0, y0, w * k, h * k);
      ctx.strokeRect(x0, y0, w * k, h * k);
      label(`${w} cm`, W / 2, y0 + h * k + 16 * s);
      label(`${h} cm`, x0 + w * k + 30 * s, H / 2);
      break;
    }
    case 'angle': {
      const pts: Array<[number, number]> = [
        [W * 0.12, H * 0.8],
        [W * 0.88, H * 0.8],
        [W * 0.42, H * 0.2],
      ];
      polygon(ctx, pts, '#fdf0d5');
      label(`${P.a}°`, pts[0][0] + 40 * s, pts[0][1] - 14 * s);
      label(`${P.b}°`, pts[1][0] - 40 * s, pts[1][1] - 14 * s);
      label('x', pts[2][0], pts[2][1] + 34 * s);
      break;
    }
    case 'right':
    case 'right_leg': {
      const a = P.a as number;
      const b = P.b as number;
      const k = Math.min((W * 0.6) / b, (H * 0.6) / a);
      const x0 = W * 0.2;
      const y0 = H * 0.82;
      const pts: Array<[number, number]> = [
        [x0, y0],
        [x0 + b * k, y0],
        [x0, y0 - a * k],
      ];
      polygon(ctx, pts, '#e3f4e1');
      const q = 12 * s;
      ctx.strokeRect(x0, y0 - q, q, q);
      label(String(a), x0 - 18 * s, y0 - (a * k) / 2);
      label(p.kind === 'right' ? String(b) : 'x', x0 + (b * k) / 2, y0 + 16 * s);
      label(p.kind === 'right' ? 'c' : String(P.c), x0 + (b * k) / 2 + 14 * s, y0 - (a * k) / 2 - 10 * s);
      break;
    }
    case 'tri_area': {
      const base = P.base as number;
      const h = P.h as number;
      const k = Math.min((W * 0.66) / base, (H * 0.6) / h);
      const x0 = (W - base * k) / 2;
      const y0 = H * 0.8;
      const apex = x0 + base * k * 0.35;
      polygon(
        ctx,
        [
          [x0, y0],
          [x0 + base * k, y0],
          [apex, y0 - h * k],
        ],
        '#f6e1ef',
      );
      ctx.setLineDash([4 * s, 4 * s]);
      ctx.beginPath();
      ctx.moveTo(apex, y0);
      ctx.lineTo(apex, y0 - h * k);
      ctx.stroke();
      ctx.setLineDash([]);
      label(String(base), x0 + (base * k) / 2, y0 + 16 * s);
      label(`h = ${h}`, apex, y0 - (h * k) / 2);
      break;
    }
    case 'circle': {
      const R = Math.min(W, H) * 0.32;
      ctx.fillStyle = '#e8e3f8';
      ctx.beginPath();
      ctx.arc(W / 2, H / 2, R, 0, 2 * Math.PI);
      ctx.fill();
      ctx.stroke();
      ctx.beginPath();
      ctx.moveTo(W / 2, H / 2);
      ctx.lineTo(W / 2 + R, H / 2);
      ctx.stroke();
      label(`r = ${P.r}`, W / 2 + R / 2, H / 2 - 14 * s);
      break;
    }
    case 'lshape': {
      const { W: BW, H: BH, w, h } = P as { W: number; H: number; w: number; h: number };
      const k = Math.min((W * 0.62) / BW, (H * 0.62) / BH);
      const x0 = (W - BW * k) / 2;
      const y0 = (H - BH * k) / 2;
      polygon(
        ctx,
        [
          [x0, y0],
          [x0 + (BW - w) * k, y0],
          [x0 + (BW - w) * k, y0 + h * k],
          [x0 + BW * k, y0 + h * k],
          [x0 + BW * k, y0 + BH * k],
          [x0, y0 + BH * k],
        ],
        '#cfe3d0',
      );
      label(String(BW), x0 + (BW * k) / 2, y0 + BH * k + 16 * s);
      label(String(BH), x0 - 16 * s, y0 + (BH * k) / 2);
      label(String(w), x0 + (BW - w / 2) * k, y0 + h * k - 12 * s);
      label(String(h), x0 + (BW - w) * k + 14 * s, y0 + (h * k) / 2);
      break;
    }
    case 'line':
    case 'parabola':
      drawPlot(ctx, W, H, p);
      break;
    case 'speed': {
      const y = H * 0.6;
      roundRect(ctx, W * 0.1, y - 30 * s, 60 * s, 26 * s, 6 * s);
      ctx.fillStyle = '#d62728';
      ctx.fill();
      for (const cx of [W * 0.1 + 14 * s, W * 0.1 + 46 * s]) {
        ctx.beginPath();
        ctx.fillStyle = '#222222';
        ctx.arc(cx, y, 7 * s, 0, 2 * Math.PI);
        ctx.fill();
      }
      drawArrow(ctx, W * 0.1, y + 30 * s, W * 0.9, y + 30 * s, '#333333', lw);
      label(`d = ${P.dist} m`, W / 2, y + 52 * s);
      label(`t = ${P.t} s`, W / 2, H * 0.25);
      break;
    }
    case 'ohm':
    case 'series':
    case 'parallel':
      drawCircuit(ctx, W, H, p, s, label);
      break;
    case 'force': {
      const bw = 70 * s;
      const x0 = W / 2 - bw / 2;
      const y0 = H * 0.62;
      ctx.beginPath();
      ctx.moveTo(W * 0.05, y0 + bw / 2);
      ctx.lineTo(W * 0.95, y0 + bw / 2);
      ctx.stroke();
      ctx.fillStyle = '#8c564b';
      ctx.fillRect(x0, y0 - bw / 2, bw, bw);
      label(`${P.m} kg`, W / 2, y0, 18);
      drawArrow(ctx, x0 + bw, y0, x0 + bw + W * 0.25, y0, '#1f5fd0', lw * 1.5);
      label(`${P.f1} N`, x0 + bw + W * 0.13, y0 - 18 * s, 18);
      if ((P.f2 as number) > 0) {
        drawArrow(ctx, x0, y0, x0 - W * 0.25, y0, '#d62728', lw * 1.5);
        label(`${P.f2} N`, x0 - W * 0.13, y0 - 18 * s, 18);
      }
      break;
    }
    case 'lever': {
      const y = H * 0.55;
      ctx.beginPath();
      ctx.moveTo(W * 0.08, y);
      ctx.lineTo(W * 0.92, y);
      ctx.lineWidth = lw * 2;
      ctx.stroke();
      ctx.lineWidth = lw;
      polygon(
        ctx,
        [
          [W / 2, y],
          [W / 2 - 16 * s, y + 28 * s],
          [W / 2 + 16 * s, y + 28 * s],
        ],
        '#999999',
      );
      const unit = (W * 0.4) / 6;
      const xl = W / 2 - (P.d1 as number) * unit;
      const xr = W / 2 + (P.d2 as number) * unit;
      ctx.fillStyle = '#1f5fd0';
      ctx.fillRect(xl - 14 * s, y - 30 * s, 28 * s, 26 * s);
      label(`${P.m1} kg`, xl, y - 44 * s, 16);
      ctx.fillStyle = '#cccccc';
      ctx.fillRect(xr - 14 * s, y - 30 * s, 28 * s, 26 * s);
      label('?', xr, y - 17 * s, 16);
      label(`${P.d1} m`, (xl + W / 2) / 2, y + 42 * s, 15);
      label(`${P.d2} m`, (xr + W / 2) / 2, y + 42 * s, 15);
      break;
    }
    default:
      throw new Error(`stem: unknown figure kind ${p.kind}`);
  }
  return canvas;
}

function polygon(ctx: Ctx, pts: Array<[number, number]>, fill: string) {
  ctx.beginPath();
  ctx.moveTo(pts[0]![0], pts[0]![1]);
  for (const [x, y] of pts.slice(1)) ctx.lineTo(x, y);
  ctx.closePath();
  ctx.fillStyle = fill;
  ctx.fill();
  ctx.stroke();
}

function drawPlot(ctx: Ctx, W: number, H: number, p: StemPlan) {
  const R = 6;
  const m = Math.min(W, H) * 0.08;
  const sx = (x: number) => m + ((x + R) / (2 * R)) * (W - 2 * m);
  const sy = (y: number) => H - m - ((y + R) / (2 * R)) * (H - 2 * m);
  ctx.lineWidth = 1;
  ctx.strokeStyle = '#dddddd';
  for (let v = -R; v <= R; v++) {
    ctx.beginPath();
    ctx.moveTo(sx(v), sy(-R));
    ctx.lineTo(sx(v), sy(R));
    ctx.moveTo(sx(-R), sy(v));
    ctx.lineTo(sx(R), sy(v));
    ctx.stroke();
  }
  ctx.strokeStyle = '#333333';
  ctx.lineWidth = Math.max(1, W / 300);
  ctx.beginPath();
  ctx.moveTo(sx(-R), sy(0));
  ctx.lineTo(sx(R), sy(0));
  ctx.moveTo(sx(0), sy(-R));
  ctx.lineTo(sx(0), sy(R));
  ctx.stroke();
  const px = Math.max(6, W / 26);
  for (let v = -R + 1; v < R; v++) {
    if (v === 0 || v % 2 !== 0) continue;
    drawText(ctx, String(v), sx(v), sy(0) + px * 0.9, px, '#444444', 'sans', false, 'center');
    drawText(ctx, String(v), sx(0) - px * 0.9, sy(v), px, '#444444', 'sans', false, 'center');
  }
  const P = p.params as Record<string, number>;
  const f = p.kind === 'line' ? (x: number) => P.m! * x + P.b! : (x: number) => P.a! * (x - P.h!) ** 2 + P.k!;
  ctx.save();
  ctx.beginPath();
  ctx.rect(sx(-R), sy(R), sx(R) - sx(-R), sy(-R) - sy(R));
  ctx.clip();
  ctx.strokeStyle = '#1f5fd0';
  ctx.lineWidth = Math.max(1.5, W / 150);
  ctx.beginPath();
  for (let i = 0; i <= 240; i++) {
    const x = -R + (2 * R * i) / 240;
    if (i === 0) ctx.moveTo(sx(x), sy(f(x)));
    else ctx.lineTo(sx(x), sy(f(x)));
  }
  ctx.stroke();
  ctx.restore();
}

function drawCircuit(
  ctx: Ctx,
  W: number,
  H: number,
  p: StemPlan,
  s: number,
  label: (t: string, x: number, y: number, px?: number) => unknown,
) {
  const R = p.params.R as number[];
  const x0 = W * 0.15;
  const x1 = W * 0.85;
  const y0 = H * 0.25;
  const y1 = H * 0.75;
  ctx.strokeStyle = '#222222';
  ctx.beginPath();
  ctx.rect(x0, y0, x1 - x0, y1 - y0);
  ctx.stroke();
  // Battery on the left side.
  const by = (y0 + y1) / 2;
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(x0 - 12 * s, by - 10 * s, 24 * s, 20 * s);
  ctx.lineWidth = Math.max(1, 3 * s);
  ctx.beginPath();
  ctx.moveTo(x0 - 14 * s, by - 5 * s);
  ctx.lineTo(x0 + 14 * s, by - 5 * s);
  ctx.stroke();
  ctx.lineWidth = Math.max(1, 1.5 * s);
  ctx.beginPath();
  ctx.moveTo(x0 - 8 * s, by + 5 * s);
  ctx.lineTo(x0 + 8 * s, by + 5 * s);
  ctx.stroke();
  label(`${fmt(p.params.V as number)} V`, x0 + 36 * s, by, 18);
  const resistor = (cx: number, cy: number, r: number) => {
    ctx.fillStyle = '#fff3c4';
    ctx.fillRect(cx - 26 * s, cy - 9 * s, 52 * s, 18 * s);
    ctx.strokeRect(cx - 26 * s, cy - 9 * s, 52 * s, 18 * s);
    label(`${r} Ω`, cx, cy - 22 * s, 17);
  };
  if (p.kind === 'parallel') {
    const xm = (x0 + x1) / 2 + 20 * s;
    ctx.beginPath();
    ctx.moveTo(xm, y0);
    ctx.lineTo(xm, y1);
    ctx.stroke();
    resistor(xm, (y0 + y1) / 2 + 10 * s, R[0]!);
    ctx.fillStyle = '#ffffff';
    resistor(x1, (y0 + y1) / 2 + 10 * s, R[1]!);
  } else {
    for (const [i, r] of R.entries()) resistor(x0 + ((x1 - x0) * (i + 1)) / (R.length + 1), y0, r);
  }
  ctx.lineWidth = Math.max(1, 2 * s);
}

export const stem: Generator<StemPlan> = {
  domain: 'stem',
  name: 'synth/stem',
  description:
    'arithmetic, equations, geometry (area, perimeter, Pythagoras, angles), function plots, physics with units',
  tasks: TASKS,
  defaultSize: 336,
  minSize: 56,
  plan(rng: Rng, cfg: GenConfig): StemPlan {
    const d = cfg.difficulty;
    // Below 112 px, physics diagrams and plot tick labels are unreadable: those tasks only when asked for.
    const task = pickTask(
      rng,
      TASKS,
      cfg.size < 112 && !cfg.tasks ? { ...cfg, tasks: ['arithmetic', 'equation', 'geometry'] } : cfg,
    );
    const make = { arithmetic, equation, geometry, plot, physics: physicsTask }[task];
    const part = make(rng, d);
    const fonts: FontRole[] = d <= 2 ? ['sans'] : ['sans', 'serif', 'mono'];
    return { task, ...part, font: rng.pick(fonts) };
  },
  key: (p) => `${p.kind}|${JSON.stringify(p.params)}|${p.qa.question}`,
  build(p, cfg): Built {
    return { task: p.task, ...p.qa, images: [renderStem(p, cfg.size)], meta: { kind: p.kind } };
  },
  describe(p) {
    const P = p.params;
    switch (p.kind) {
      case 'expression':
        return `The expression ${P.text} written on a white background.`;
      case 'equation':
        return `The equation${(P.lines as unknown as string[]).length > 1 ? 's' : ''} ${(P.lines as unknown as string[]).join(' and ')}.`;
      case 'rect':
        return `A rectangle with width ${P.w} cm and height ${P.h} cm.`;
      case 'angle':
        return `A triangle with angles ${P.a}° and ${P.b}° labelled, and the third angle marked x.`;
      case 'right':
        return `A right triangle with legs ${P.a} and ${P.b}; the hypotenuse is marked c.`;
      case 'right_leg':
        return `A right triangle with leg ${P.a}, hypotenuse ${P.c}, and the other leg marked x.`;
      case 'tri_area':
        return `A triangle with base ${P.base} and a dashed height h = ${P.h}.`;
      case 'circle':
        return `A circle with radius r = ${P.r}.`;
      case 'lshape':
        return `An L-shaped figure: a ${P.W} by ${P.H} rectangle with a ${P.w} by ${P.h} corner removed.`;
      case 'line':
        return `A coordinate grid from -6 to 6 with the line y = ${P.m}x ${(P.b as number) < 0 ? '-' : '+'} ${Math.abs(P.b as number)}.`;
      case 'parabola':
        return `A coordinate grid with a parabola opening ${(P.a as number) < 0 ? 'down' : 'up'} with vertex (${P.h}, ${P.k}).`;
      case 'speed':
        return `A car with an arrow labelled d = ${P.dist} m and the time t = ${P.t} s.`;
      case 'ohm':
      case 'series':
      case 'parallel':
        return `A circuit with a ${fmt(P.V as number)} V battery and ${(P.R as number[]).map((r) => `${r} Ω`).join(' and ')} resistor${(P.R as number[]).length > 1 ? `s in ${p.kind}` : ''}.`;
      case 'force':
        return `A ${P.m} kg block on a flat surface pushed right by ${P.f1} N${(P.f2 as number) > 0 ? ` and left by ${P.f2} N` : ''}.`;
      case 'lever':
        return `A lever on a pivot with ${P.m1} kg at ${P.d1} m on the left and an unknown mass at ${P.d2} m on the right.`;
      default:
        return 'A STEM figure.';
    }
  },
};
