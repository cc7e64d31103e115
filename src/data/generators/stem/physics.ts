/** STEM physics diagrams with units: speed, circuits (Ohm, series, parallel), forces and levers. */
import type { Rng } from '../../../util/rng.js';
import { fmt } from '../types.js';
import { physics, type StemPlan } from './plan.js';

export function physicsTask(rng: Rng, d: number): Pick<StemPlan, 'kind' | 'params' | 'qa'> {
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
