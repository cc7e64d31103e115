/**
 * Text-only reasoning about the same worlds (shapes, charts, clocks, people): multi-step word problems, table
 * arithmetic, ordering logic, clock arithmetic. No images; used for the language side of SFT and RL.
 */
import type { Rng } from '../../util/rng.js';
import { titleCase, word } from '../words.js';
import { colorsFor, shapesFor } from './scene.js';
import { type Built, type GenConfig, type Generator, pickTask } from './types.js';

const TASKS = ['word_problem', 'table', 'ordering', 'clock'] as const;
type Task = (typeof TASKS)[number];

export interface TextPlan {
  task: Task;
  question: string;
  answer: string;
  rationale: string;
  kind: 'math' | 'vqa';
}

function wordProblem(rng: Rng, d: number): TextPlan {
  const shapes = rng.shuffle([...shapesFor(5, 1000)]);
  const colors = rng.shuffle([...colorsFor(5)]);
  const items = Array.from({ length: Math.min(2 + Math.floor(d / 2), 4) }, (_, i) => ({
    name: `${colors[i]} ${shapes[i]}s`,
    n: rng.int(1, 9 + d * 2),
  }));
  let total = items.reduce((a, b) => a + b.n, 0);
  const startText = items.map((x) => `${x.n} ${x.name}`).join(', ');
  const startOf = new Map(items.map((x) => [x.name, x.n]));
  const deltas: Array<[string, number]> = [];
  const steps = [
    `Start: ${items.map((x) => `${x.n} ${x.name}`).join(', ')}, total ${items.map((x) => x.n).join(' + ')} = ${total}.`,
  ];
  const ops: string[] = [];
  for (let k = 0; k < Math.max(1, d - 1); k++) {
    const it = rng.pick(items);
    if (rng.random() < 0.5 && it.n > 1) {
      const m = rng.int(1, it.n - 1);
      it.n -= m;
      ops.push(m === 1 ? `1 ${it.name.replace(/s$/, '')} is removed` : `${m} ${it.name} are removed`);
      deltas.push([it.name, -m]);
      steps.push(`Remove ${m}: ${total} - ${m} = ${total - m}.`);
      total -= m;
    } else {
      const m = rng.int(1, 6);
      it.n += m;
      ops.push(m === 1 ? `1 more ${it.name.replace(/s$/, '')} is added` : `${m} more ${it.name} are added`);
      deltas.push([it.name, m]);
      steps.push(`Add ${m}: ${total} + ${m} = ${total + m}.`);
      total += m;
    }
  }
  const askOne = d >= 3 && rng.random() < 0.5;
  const target = rng.pick(items);
  return {
    task: 'word_problem',
    question: `A box holds ${startText}. Then ${ops.join(', then ')}. How many ${askOne ? target.name : 'shapes'} are in the box now?`,
    answer: String(askOne ? target.n : total),
    rationale: askOne ? oneItem(target.name, startOf.get(target.name)!, deltas, target.n) : steps.join(' '),
    kind: 'math',
  };
}

/** Rationale for one item's count: its start, each change to it, and the sum. */
function oneItem(name: string, start: number, deltas: Array<[string, number]>, end: number): string {
  const mine = deltas.filter(([n]) => n === name).map(([, v]) => v);
  if (mine.length === 0) return `The ${name} start at ${start} and are never changed, so there are ${end}.`;
  const expr = `${start}${mine.map((v) => (v < 0 ? ` - ${-v}` : ` + ${v}`)).join('')}`;
  return `Only changes to the ${name} matter. They start at ${start}; the changes are ${mine.map((v) => (v < 0 ? `-${-v}` : `+${v}`)).join(', ')}. ${expr} = ${end}.`;
}

function table(rng: Rng, d: number): TextPlan {
  const y0 = rng.int(1995, 2020);
  const n = Math.min(3 + Math.floor(d / 2), 6);
  const vals = Array.from({ length: n }, () => 5 * rng.int(1, 30));
  const years = vals.map((_, i) => y0 + i);
  const list = years.map((y, i) => `${vals[i]} in ${y}`).join(', ');
  if (d <= 2) {
    const i = rng.int(0, n - 2);
    return {
      task: 'table',
      question: `Sales were ${list}. By how much did sales change from ${years[i]} to ${years[i + 1]}?`,
      answer: String(vals[i + 1]! - vals[i]!),
      rationale: `${vals[i + 1]} - ${vals[i]} = ${vals[i + 1]! - vals[i]!}.`,
      kind: 'math',
    };
  }
  const max = Math.max(...vals);
  const min = Math.min(...vals);
  if (d === 3)
    return {
      task: 'table',
      question: `Sales were ${list}. What is the difference between the highest and the lowest value?`,
      answer: String(max - min),
      rationale: `Highest ${max}, lowest ${min}. ${max} - ${min} = ${max - min}.`,
      kind: 'math',
    };
  const sum = vals.reduce((a, b) => a + b, 0);
  return {
    task: 'table',
    question: `Sales were ${list}. What were the total sales over all years?`,
    answer: String(sum),
    rationale: `${vals.join(' + ')} = ${sum}.`,
    kind: 'math',
  };
}

function ordering(rng: Rng, d: number, cfg: GenConfig): TextPlan {
  const n = Math.min(3 + Math.floor(d / 2), 5);
  const names = new Set<string>();
  while (names.size < n) names.add(titleCase(word(rng, 'firstName', cfg.split, 8)));
  const order = [...names]; // tallest first
  const facts = order.slice(0, -1).map((a, i) => `${a} is taller than ${order[i + 1]}`);
  rng.shuffle(facts);
  const ask = rng.random() < 0.5 ? 'shortest' : 'tallest';
  const ans = ask === 'tallest' ? order[0]! : order[n - 1]!;
  return {
    task: 'ordering',
    question: `${facts.join('. ')}. Who is the ${ask}?`,
    answer: ans,
    rationale: `Chaining the facts from tallest to shortest: ${order.join(' > ')}. The ${ask} is ${ans}.`,
    kind: 'vqa',
  };
}

function clockText(rng: Rng, d: number): TextPlan {
  const h = rng.int(1, 12);
  const m = 5 * rng.int(0, 11);
  const add = 5 * rng.int(1, d >= 4 ? 40 : 11);
  const tot = ((h % 12) * 60 + m + add) % 720;
  const h2 = Math.floor(tot / 60) || 12;
  const m2 = tot % 60;
  const t1 = `${h}:${String(m).padStart(2, '0')}`;
  const t2 = `${h2}:${String(m2).padStart(2, '0')}`;
  return {
    task: 'clock',
    question: `A 12-hour clock shows ${t1}. What time will it show ${add} minutes later? Answer as H:MM.`,
    answer: t2,
    rationale: `${add} minutes is ${Math.floor(add / 60)} h ${add % 60} min. ${t1} + ${Math.floor(add / 60)}:${String(add % 60).padStart(2, '0')} = ${t2} on a 12-hour clock.`,
    kind: 'vqa',
  };
}

export const text: Generator<TextPlan> = {
  domain: 'text',
  name: 'synth/text',
  description: 'text-only multi-step word problems, table arithmetic, ordering logic and clock arithmetic',
  tasks: TASKS,
  defaultSize: 56,
  minSize: 28,
  plan(rng, cfg) {
    const d = cfg.difficulty;
    const task = pickTask(rng, TASKS, cfg);
    if (task === 'word_problem') return wordProblem(rng, d);
    if (task === 'table') return table(rng, d);
    if (task === 'ordering') return ordering(rng, d, cfg);
    return clockText(rng, d);
  },
  key: (p) => p.question,
  build(p): Built {
    return {
      task: p.task,
      question: p.question,
      answer: p.answer,
      rationale: p.rationale,
      verifier: { type: p.kind },
      images: [],
    };
  },
  describe: (p) => `${p.question} ${p.rationale} The answer is ${p.answer}.`,
};
