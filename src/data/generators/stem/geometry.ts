/** STEM geometry tasks: areas, perimeters, Pythagoras and angles of labelled figures, with worked solutions. */
import type { Rng } from '../../../util/rng.js';
import { fmt } from '../types.js';
import { MATH, MATH_TOL, type StemPlan } from './plan.js';

const TRIPLES: Array<[number, number, number]> = [
  [3, 4, 5],
  [5, 12, 13],
  [8, 15, 17],
  [7, 24, 25],
  [6, 8, 10],
  [9, 12, 15],
  [20, 21, 29],
];

export function geometry(rng: Rng, d: number): Pick<StemPlan, 'kind' | 'params' | 'qa'> {
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
