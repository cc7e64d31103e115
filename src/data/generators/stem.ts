/**
 * STEM: rendered arithmetic and equations, geometry figures with labelled lengths and angles, function plots
 * (intercepts, slopes, extrema, values), and physics diagrams with units. Numbers are chosen so every answer is
 * exact (integers or terminating decimals), and each rationale is the worked solution.
 *
 * The tasks live in ./stem/ (algebra, geometry, plot, physics: each draws a plan and its question), the drawing in
 * ./stem/render.ts; this file is the generator that picks a task and ties them together.
 */
import type { Rng } from '../../util/rng.js';
import type { FontRole } from '../render.js';
import { arithmetic, equation } from './stem/algebra.js';
import { geometry } from './stem/geometry.js';
import { physicsTask } from './stem/physics.js';
import { type StemPlan, TASKS } from './stem/plan.js';
import { plot } from './stem/plot.js';
import { renderStem } from './stem/render.js';
import { type Built, fmt, type GenConfig, type Generator, pickTask } from './types.js';

export type { StemPlan };

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
