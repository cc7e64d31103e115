/**
 * The RL lab's tasks (`glmv lab`): easy to see, hard to reason about. Each image holds a few two-digit values drawn as
 * seven-segment glyphs, one value per 28 px cell at 112 px, so every merged image token of the vision tower (2×2
 * patches of 14 px) holds exactly one value at a fixed place; each digit's glyph sits on a block of its own colour (a
 * fixed ten-colour code), so a patch's mean colour already names its digit. Reading is then a lookup of one image
 * token, not optical character recognition: a from-scratch 2-block vision tower did not learn thin glyph strokes in
 * 500 SFT steps, with the same values drawn in black. The question needs several steps over what
 * was read, and the answer space is large (sums, differences, times), so guessing does not pay. The difficulty level
 * adds reasoning steps, never pixels: the scene of a domain has the same layout and value ranges at every level.
 * Every domain also has a `probe` task that reads one value, which measures perception apart from reasoning.
 *
 * `meta.steps` is the number of reasoning steps of the rationale (each selection or operation after the reading);
 * `meta.values` is what a perfect reader sees.
 */
import type { Rng } from '../../util/rng.js';
import { COLORS, type Ctx, newCanvas } from '../render.js';
import type { Domain, VerifierSpec } from '../sample.js';
import { type Built, type GenConfig, type Generator, pickTask } from './types.js';

export const LAB_TASKS = ['reason', 'probe'] as const;
type LabTask = (typeof LAB_TASKS)[number];
/** Reasoning questions three times as often as probes. */
const TASK_WEIGHTS = [3, 1];

export interface LabPlan {
  task: LabTask;
  /** The values drawn, in reading order (numbers, or minutes since 12:00 for the clock). */
  values: number[];
  /** Per value: its colour name (lab_colors) — empty elsewhere. */
  colors: string[];
  question: string;
  answer: string;
  /** The rationale's first part: what was read (the working follows it). */
  reading: string;
  rationale: string;
  steps: number;
}

const LETTERS = ['A', 'B', 'C', 'D', 'E', 'F'];
const BAR_NAMES = 'Bars A, B, C, D are read left to right.';
const MATH: VerifierSpec = { type: 'math' };

/** `n` distinct integers in [lo, hi]. */
function distinct(rng: Rng, n: number, lo: number, hi: number): number[] {
  const set = new Set<number>();
  while (set.size < n) set.add(rng.int(lo, hi));
  return [...set];
}

/**
 * One addition or subtraction worked column by column, ones first, each column a one-digit fact ("7+5=12", a carry
 * as "+1", a borrow as a leading 1 and "-1"), then the result: `87 + 45: 7+5=12, 8+4+1=13, so 132.` A small model
 * cannot learn two-digit sums as a lookup over number tokens (the lab measured 2 % with GLM-4's three-digit number
 * tokens); a chain of one-digit facts it can, and each fact is a step where a sampled rollout can go wrong, which is
 * what RL has to make reliable. A negative difference is worked as the larger minus the smaller.
 */
export function columnStep(a: number, op: '+' | '-', b: number): { text: string; value: number } {
  if (!Number.isInteger(a) || !Number.isInteger(b) || a < 0 || b < 0)
    throw new Error(`columnStep: expected non-negative integers, found ${a} ${op} ${b}`);
  const value = op === '+' ? a + b : a - b;
  if (op === '-' && a < b) {
    const inner = columnFacts(b, '-', a);
    return { text: `${a} - ${b} = -(${b} - ${a}): ${inner}, so ${value}.`, value };
  }
  return { text: `${a} ${op} ${b}: ${columnFacts(a, op, b)}, so ${value}.`, value };
}

/** The column facts of `a op b` (a ≥ b for '-'), ones column first; a column past b's digits uses 0. */
function columnFacts(a: number, op: '+' | '-', b: number): string {
  const da = [...String(a)].reverse().map(Number);
  const db = [...String(b)].reverse().map(Number);
  const facts: string[] = [];
  let carry = 0;
  for (let i = 0; i < Math.max(da.length, db.length); i++) {
    const x = da[i] ?? 0;
    const y = db[i] ?? 0;
    if (op === '+') {
      const s = x + y + carry;
      facts.push(`${x}+${y}${carry ? '+1' : ''}=${s}`);
      carry = s >= 10 ? 1 : 0;
    } else {
      const borrow = x - carry - y < 0 ? 1 : 0;
      const v = x + 10 * borrow - carry - y;
      facts.push(`${borrow ? '1' : ''}${x}${carry ? '-1' : ''}-${y}=${v}`);
      carry = borrow;
    }
  }
  // Sums grow a column only through the last carry, already written in the last fact ("8+8=16").
  return facts.join(', ');
}

/** A chain `v0 op v1 op …` whose running total stays ≥ 0; returns the op signs and one worked step per op. */
function chain(rng: Rng, operands: number[]): { ops: Array<'+' | '-'>; steps: string[]; total: number } {
  let total = operands[0]!;
  const ops: Array<'+' | '-'> = [];
  const steps: string[] = [];
  for (const v of operands.slice(1)) {
    const op = total - v >= 0 && rng.random() < 0.5 ? '-' : '+';
    const step = columnStep(total, op, v);
    steps.push(step.text);
    ops.push(op);
    total = step.value;
  }
  return { ops, steps, total };
}

/** The worked steps of summing `values` left to right (none for a single value). */
function sumSteps(values: readonly number[]): string[] {
  const out: string[] = [];
  let total = values[0] ?? 0;
  for (const v of values.slice(1)) {
    const step = columnStep(total, '+', v);
    out.push(step.text);
    total = step.value;
  }
  return out;
}

/** Lit segments per digit (a top, b top right, c bottom right, d bottom, e bottom left, f top left, g middle). */
const SEGMENTS: Record<string, string> = {
  '0': 'abcdef',
  '1': 'bc',
  '2': 'abdeg',
  '3': 'abcdg',
  '4': 'bcfg',
  '5': 'acdfg',
  '6': 'acdefg',
  '7': 'abc',
  '8': 'abcdefg',
  '9': 'abcdfg',
};

/** The colour code of the digits 0–9: the block each digit's glyph is drawn on. */
export const DIGIT_COLORS = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
] as const;

/**
 * Draws `text` as seven-segment glyphs, one per box of `w`×`h` from (x, y), on whole pixels (no anti-aliasing, no
 * font: the same pixels on every machine). With `coded`, each digit's box is first filled with its DIGIT_COLORS
 * block. A space leaves its box empty; ':' draws two dots.
 */
export function drawSegments(
  ctx: Ctx,
  text: string,
  x: number,
  y: number,
  w: number,
  h: number,
  color: string,
  coded = false,
): void {
  const m = Math.max(1, Math.round(w * 0.15));
  const t = Math.max(2, Math.round(Math.min(w, h) * 0.14));
  const half = Math.round(h / 2);
  ctx.fillStyle = color;
  [...text].forEach((ch, k) => {
    const x0 = Math.round(x + k * w);
    const y0 = Math.round(y);
    const W = Math.round(w);
    const H = Math.round(h);
    if (ch === ':') {
      const d = Math.max(2, Math.round(w * 0.07));
      ctx.fillRect(x0 + Math.round((W - d) / 2), y0 + Math.round(H * 0.3), d, d);
      ctx.fillRect(x0 + Math.round((W - d) / 2), y0 + Math.round(H * 0.65), d, d);
      return;
    }
    const segs = SEGMENTS[ch];
    if (segs === undefined) return;
    if (coded) {
      ctx.fillStyle = DIGIT_COLORS[Number(ch)]!;
      ctx.fillRect(x0, y0, W, H);
      ctx.fillStyle = color;
    }
    const rect: Record<string, [number, number, number, number]> = {
      a: [x0 + m, y0 + m, W - 2 * m, t],
      b: [x0 + W - m - t, y0 + m, t, half - m],
      c: [x0 + W - m - t, y0 + half, t, H - half - m],
      d: [x0 + m, y0 + H - m - t, W - 2 * m, t],
      e: [x0 + m, y0 + half, t, H - half - m],
      f: [x0 + m, y0 + m, t, half - m],
      g: [x0 + m, y0 + half - Math.floor(t / 2), W - 2 * m, t],
    };
    for (const sname of segs) ctx.fillRect(...rect[sname]!);
  });
}

/** A number right-aligned in two glyph boxes (a leading space for one digit). */
const pad = (v: number) => String(v).padStart(2, ' ');

function labGenerator(o: {
  key: string;
  domain: Domain;
  description: string;
  verifier: VerifierSpec;
  plan(rng: Rng, d: number, task: LabTask): LabPlan;
  draw(ctx: Ctx, p: LabPlan, size: number, rng: Rng): void;
  describe(p: LabPlan): string;
}): Generator<LabPlan> {
  return {
    domain: o.domain,
    name: `lab/${o.key}`,
    description: o.description,
    tasks: LAB_TASKS,
    defaultSize: 112,
    minSize: 112,
    plan(rng: Rng, cfg: GenConfig): LabPlan {
      const task = pickTask(rng, LAB_TASKS, cfg, TASK_WEIGHTS);
      return o.plan(rng, cfg.difficulty, task);
    },
    key: (p) => `${p.values.join(',')}|${p.colors.join(',')}|${p.question}`,
    build(p: LabPlan, cfg: GenConfig, rng: Rng): Built {
      const { canvas, ctx } = newCanvas(cfg.size, cfg.size, '#ffffff');
      o.draw(ctx, p, cfg.size, rng);
      return {
        task: p.task,
        question: p.question,
        answer: p.answer,
        verifier: o.verifier,
        rationale: p.rationale,
        images: [canvas],
        // The image right before the answer: reading value k is then a fixed step back from the k-th reading token.
        questionFirst: true,
        meta: { steps: p.steps, values: p.values, colors: p.colors, reading: p.reading, difficulty: cfg.difficulty },
      };
    },
    describe: (p) => o.describe(p),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// lab_arith: four number cards; a +/− chain over them, one operation more per level.

const CARD_NAMES = 'Cards A, B, C, D are read left to right.';

/**
 * Number cards of one cell each, filling `cols` columns from (col0, row0) row by row: the value as two colour-coded
 * half-width glyphs, so one merged image token holds one value. Where `colors` has a colour (lab_colors), the glyphs
 * take the top three quarters of the cell and a strip of that colour fills the bottom quarter, so the same image token
 * holds the value and its colour at a place no digit block ever covers. (A mark in the next cell was read at chance
 * level by every lab model: naming a number's colour then needs a second token found by its position.)
 */
function drawCards(
  ctx: Ctx,
  values: readonly number[],
  colors: readonly string[],
  at: { col0: number; row0: number; cols: number },
  size: number,
): void {
  const cell = size / 4;
  values.forEach((v, i) => {
    const x = (at.col0 + (i % at.cols)) * cell;
    const y = (at.row0 + Math.floor(i / at.cols)) * cell;
    const mark = colors[i];
    const h = mark ? Math.round((cell * 3) / 4) : cell;
    drawSegments(ctx, pad(v), x, y, cell / 2, h, '#ffffff', true);
    if (mark) {
      ctx.fillStyle = COLORS[mark] ?? '#222222';
      ctx.fillRect(Math.round(x), Math.round(y) + h, Math.round(cell), Math.round(cell) - h);
    }
  });
}

export const labArith = labGenerator({
  key: 'arith',
  domain: 'stem',
  description: 'lab: four printed number cards; a chain of + and − over them with one more operation per level',
  verifier: MATH,
  plan(rng, d, task) {
    const values = distinct(rng, 4, 10, 99);
    const reading = `Reading the cards: ${values.map((v, i) => `${LETTERS[i]} = ${v}`).join(', ')}.`;
    if (task === 'probe') {
      const i = rng.int(0, 3);
      return {
        task,
        values,
        colors: [],
        question: `${CARD_NAMES} What number is on card ${LETTERS[i]}?`,
        answer: String(values[i]),
        reading,
        rationale: `${reading} Card ${LETTERS[i]} shows ${values[i]}.`,
        steps: 0,
      };
    }
    const idx = Array.from({ length: d + 1 }, (_, k) => (k < 4 ? k : rng.int(0, 3)));
    rng.shuffle(idx);
    const c = chain(
      rng,
      idx.map((i) => values[i]!),
    );
    const expr = idx.map((i, k) => (k === 0 ? LETTERS[i] : `${c.ops[k - 1]} ${LETTERS[i]}`)).join(' ');
    return {
      task,
      values,
      colors: [],
      question: `${CARD_NAMES} Compute ${expr}.`,
      answer: String(c.total),
      reading,
      rationale: `${reading} ${c.steps.join(' ')}`,
      steps: c.steps.length,
    };
  },
  draw: (ctx, p, size) => drawCards(ctx, p.values, p.colors, { col0: 0, row0: 1, cols: 4 }, size),
  describe: (p) => `Four number cards: ${p.values.join(', ')}.`,
});

// ---------------------------------------------------------------------------------------------------------------
// lab_bars: a bar chart with printed values; differences and sums, with "the tallest/shortest bar" selections.

export const labBars = labGenerator({
  key: 'bars',
  domain: 'chart',
  description: 'lab: a four-bar chart with printed values; sums and differences of bars, tallest/shortest selections',
  verifier: MATH,
  plan(rng, d, task) {
    const values = distinct(rng, 4, 10, 99);
    const reading = `Reading the bars: ${values.map((v, i) => `${LETTERS[i]} = ${v}`).join(', ')}.`;
    if (task === 'probe') {
      const i = rng.int(0, 3);
      return {
        task,
        values,
        colors: [],
        question: `${BAR_NAMES} What is the value of bar ${LETTERS[i]}?`,
        answer: String(values[i]),
        reading,
        rationale: `${reading} Bar ${LETTERS[i]} is ${values[i]}.`,
        steps: 0,
      };
    }
    // Operands: d + 1 bars named by letter; from level 3 one (level 5: two) is named by rank instead, which costs a
    // selection step.
    const idx = Array.from({ length: d + 1 }, (_, k) => (k < 4 ? k : rng.int(0, 3)));
    rng.shuffle(idx);
    const byRank = d >= 5 ? 2 : d >= 3 ? 1 : 0;
    const max = values.indexOf(Math.max(...values));
    const min = values.indexOf(Math.min(...values));
    const names = idx.map((i) => `bar ${LETTERS[i]}`);
    const selections: string[] = [];
    const ranked = new Set<number>();
    for (let r = 0; r < byRank; r++) {
      const which = r === 0 ? max : min;
      const k = idx.findIndex((i, j) => i === which && !ranked.has(j));
      const word = which === max ? 'tallest' : 'shortest';
      if (k < 0) continue;
      ranked.add(k);
      names[k] = `the ${word} bar`;
      selections.push(`The ${word} bar is ${LETTERS[which]} (${values[which]}).`);
    }
    const c = chain(
      rng,
      idx.map((i) => values[i]!),
    );
    const expr = names.map((n, k) => (k === 0 ? n : `${c.ops[k - 1] === '+' ? 'plus' : 'minus'} ${n}`)).join(' ');
    return {
      task,
      values,
      colors: [],
      question: `${BAR_NAMES} What is ${expr}?`,
      answer: String(c.total),
      reading,
      rationale: `${reading} ${[...selections, ...c.steps].join(' ')}`,
      steps: selections.length + c.steps.length,
    };
  },
  draw(ctx, p, size) {
    // One column of cells per bar: its value in the top cell (two half-width glyphs), the bar below it.
    const cell = size / 4;
    const bw = Math.round(cell * 0.6);
    p.values.forEach((v, i) => {
      const h = Math.round((3 * cell * v) / 100);
      ctx.fillStyle = COLORS.blue!;
      ctx.fillRect(Math.round(i * cell + (cell - bw) / 2), Math.round(size - h), bw, h);
      drawSegments(ctx, pad(v), i * cell, 0, cell / 2, cell, '#ffffff', true);
    });
  },
  describe: (p) => `A bar chart of four bars: ${p.values.map((v, i) => `${LETTERS[i]} ${v}`).join(', ')}.`,
});

// ---------------------------------------------------------------------------------------------------------------
// lab_clock: a digital 12-hour clock; the time after one duration per level (later or earlier).

function clockText(minutes: number): string {
  const m = ((minutes % 720) + 720) % 720;
  return `${Math.floor(m / 60) || 12}:${String(m % 60).padStart(2, '0')}`;
}

function durationText(min: number): string {
  const h = Math.floor(min / 60);
  const m = min % 60;
  return h === 0 ? `${m} min` : m === 0 ? `${h} h` : `${h} h ${m} min`;
}

export const labClock = labGenerator({
  key: 'clock',
  domain: 'spatial',
  description: 'lab: a digital 12-hour clock; the time after a sequence of later/earlier shifts, one per level',
  verifier: { type: 'vqa' },
  plan(rng, d, task) {
    const t0 = 5 * rng.int(0, 143);
    const shown = clockText(t0);
    if (task === 'probe') {
      return {
        task,
        values: [t0],
        colors: [],
        question: 'What time does the clock show? Answer as H:MM.',
        answer: shown,
        reading: `The clock shows ${shown}.`,
        rationale: `The clock shows ${shown}.`,
        steps: 0,
      };
    }
    let t = t0;
    const parts: string[] = [];
    const steps: string[] = [];
    for (let k = 0; k < d; k++) {
      const dur = 5 * rng.int(1, 35);
      const later = k === 0 || rng.random() < 0.6;
      const next = later ? t + dur : t - dur;
      parts.push(`${durationText(dur)} ${later ? 'later' : 'earlier'}`);
      steps.push(`${clockText(t)} ${later ? '+' : '-'} ${durationText(dur)} = ${clockText(next)}.`);
      t = next;
    }
    return {
      task,
      values: [t0],
      colors: [],
      question: `Start from the time on the clock and go ${parts.join(', then ')}. What time is it? Answer as H:MM.`,
      answer: clockText(t),
      reading: `The clock shows ${shown}.`,
      rationale: `The clock shows ${shown}. ${steps.join(' ')}`,
      steps: steps.length,
    };
  },
  draw(ctx, p, size) {
    // The hours and the minutes each in one cell of the second row (two half-width glyphs), the colon on the border.
    const cell = size / 4;
    const [h, m] = clockText(p.values[0]!).split(':');
    ctx.fillStyle = '#1f2a36';
    ctx.fillRect(0, Math.round(cell), size, Math.round(cell));
    drawSegments(ctx, h!.padStart(2, ' '), cell, cell, cell / 2, cell, '#ffffff', true);
    drawSegments(ctx, m!, 2 * cell, cell, cell / 2, cell, '#ffffff', true);
    drawSegments(ctx, ':', 1.5 * cell, cell, cell, cell, '#7CFC9A');
  },
  describe: (p) => `A digital clock showing ${clockText(p.values[0]!)}.`,
});

// ---------------------------------------------------------------------------------------------------------------
// lab_colors: six numbers, each red or blue; conditional sums (colour, then colour and threshold) and differences.

const COLOR_PAIR = ['red', 'blue'] as const;

export const labColors = labGenerator({
  key: 'colors',
  domain: 'vqa',
  description:
    'lab: six numbers in three rows of two, each marked red or blue; sums over a colour and a threshold, and differences of such sums',
  verifier: MATH,
  plan(rng, d, task) {
    const values = distinct(rng, 6, 10, 99);
    // Both colours present at least twice, so every condition selects something.
    const reds = rng.int(2, 4);
    const colors = rng.shuffle(Array.from({ length: 6 }, (_, i) => (i < reds ? 'red' : 'blue')));
    const reading = `Reading the numbers: ${values.map((v, i) => `${v} ${colors[i]}`).join(', ')}.`;
    if (task === 'probe') {
      const i = rng.int(0, 5);
      const pos = `${['left', 'right'][i % 2]} number in the ${['top', 'middle', 'bottom'][Math.floor(i / 2)]} row`;
      return {
        task,
        values,
        colors,
        question: `The numbers form three rows of two. What is the ${pos}?`,
        answer: String(values[i]),
        reading,
        rationale: `${reading} The ${pos} is ${values[i]}.`,
        steps: 0,
      };
    }
    const steps: string[] = [];
    // Logical steps (a selection, a threshold, a sum, a difference, a count), however many column steps each takes.
    let count = 0;
    // Level 1: the sum of one colour; 2: minus the other colour's sum; 3 and 4: a threshold on the first, then the
    // second selection; 5: plus the count of even numbers. Each level adds one rationale step.
    const select = (color: string, threshold: number | null): { sum: number; text: string } => {
      const ofColor = values.filter((_, i) => colors[i] === color);
      steps.push(`The ${color} numbers: ${ofColor.join(', ')}.`);
      count += threshold === null ? 2 : 3;
      const picked = threshold === null ? ofColor : ofColor.filter((v) => v > threshold);
      if (threshold !== null) steps.push(`Of those, greater than ${threshold}: ${picked.join(', ') || 'none'}.`);
      const sum = picked.reduce((a, b) => a + b, 0);
      steps.push(...(picked.length > 1 ? sumSteps(picked) : [`Their sum is ${sum}.`]));
      return { sum, text: `the sum of the ${color} numbers${threshold === null ? '' : ` greater than ${threshold}`}` };
    };
    const threshold = () => 5 * rng.int(4, 16);
    const first = rng.pick(COLOR_PAIR);
    const a = select(first, d >= 3 ? threshold() : null);
    let answer = a.sum;
    let question = a.text;
    if (d >= 2) {
      const b = select(first === 'red' ? 'blue' : 'red', d >= 4 ? threshold() : null);
      steps.push(columnStep(a.sum, '-', b.sum).text);
      count++;
      answer = a.sum - b.sum;
      question += ` minus ${b.text}`;
    }
    if (d >= 5) {
      const evens = values.filter((v) => v % 2 === 0).length;
      steps.push(
        `Even numbers: ${evens}.`,
        answer >= 0 ? columnStep(answer, '+', evens).text : `${answer} + ${evens} = ${answer + evens}.`,
      );
      count++;
      answer += evens;
      question += ', plus the count of even numbers';
    }
    return {
      task,
      values,
      colors,
      question: `What is ${question}?`,
      answer: String(answer),
      reading,
      rationale: `${reading} ${steps.join(' ')}`,
      steps: count,
    };
  },
  draw: (ctx, p, size) => drawCards(ctx, p.values, p.colors, { col0: 1, row0: 0, cols: 2 }, size),
  describe: (p) => `Six numbers in three rows of two: ${p.values.map((v, i) => `${v} in ${p.colors[i]}`).join(', ')}.`,
});

/** The lab's generators by registry name. */
export const LAB_GENERATORS = {
  lab_arith: labArith,
  lab_bars: labBars,
  lab_clock: labClock,
  lab_colors: labColors,
} as const;
