/**
 * The RL lab's generators: every answer recomputed by an independent solver from the question text and the drawn
 * values, graded by the reward router (right answer accepted, a near miss rejected); the difficulty level adds
 * reasoning steps and never changes what is drawn; probes ask for exactly one drawn value; a pixel reader written
 * from the layout alone (cells of a 4×4 grid, seven-segment glyphs) reads every drawn value back from the PNG.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { generateOne } from '../../src/data/generate.js';
import { GENERATORS, LAB_GENERATOR_NAMES } from '../../src/data/generators/index.js';
import { columnStep } from '../../src/data/generators/lab.js';
import { parseMix } from '../../src/data/mixture.js';
import type { Sample } from '../../src/data/sample.js';
import { parseSample } from '../../src/data/schema.js';
import { sampleMessage, sftTarget } from '../../src/data/sft.js';
import { buildPrompt } from '../../src/eval/data.js';
import { loadImage, type RgbImage } from '../../src/io/image.js';
import { RewardRouter } from '../../src/reward/index.js';

const router = new RewardRouter({}, { judge: null });
afterAll(() => router.close());

const LETTER = (l: string) => 'ABCDEF'.indexOf(l);

function gen(name: string, d: number, i: number, task: 'reason' | 'probe', split: 'train' | 'heldout' = 'train') {
  return generateOne(GENERATORS[name]!, { seed: 3, index: i, split, difficulty: d, size: 112, tasks: [task] });
}

function meta(s: Sample) {
  return s.meta as { steps: number; values: number[]; colors: string[] };
}

const toMin = (t: string) => {
  const [h, m] = t.split(':').map(Number);
  return ((h! % 12) * 60 + m!) % 720;
};
const clock = (m: number) => {
  const x = ((m % 720) + 720) % 720;
  return `${Math.floor(x / 60) || 12}:${String(x % 60).padStart(2, '0')}`;
};

/** Solves a reasoning question from its text and the drawn values alone (written apart from the generators). */
function solve(name: string, s: Sample): string {
  const { values, colors } = meta(s);
  const q = s.question;
  if (name === 'lab_arith') {
    const expr = /Compute (.*)\.$/.exec(q)![1]!.split(' ');
    let total = values[LETTER(expr[0]!)]!;
    for (let k = 1; k < expr.length; k += 2) {
      const v = values[LETTER(expr[k + 1]!)]!;
      total = expr[k] === '+' ? total + v : total - v;
    }
    return String(total);
  }
  if (name === 'lab_bars') {
    const body = /What is (.*)\?$/.exec(q)![1]!;
    const terms = body.split(/ (plus|minus) /);
    const val = (t: string) =>
      t === 'the tallest bar'
        ? Math.max(...values)
        : t === 'the shortest bar'
          ? Math.min(...values)
          : values[LETTER(/^bar ([A-D])$/.exec(t)![1]!)]!;
    let total = val(terms[0]!);
    for (let k = 1; k < terms.length; k += 2) total += (terms[k] === 'plus' ? 1 : -1) * val(terms[k + 1]!);
    return String(total);
  }
  if (name === 'lab_clock') {
    let t = values[0]!;
    const body = /go (.*)\. What time/.exec(q)![1]!;
    for (const part of body.split(', then ')) {
      const m = /^(?:(\d+) h)? ?(?:(\d+) min)? (later|earlier)$/.exec(part)!;
      const dur = 60 * Number(m[1] ?? 0) + Number(m[2] ?? 0);
      t += m[3] === 'later' ? dur : -dur;
    }
    return clock(t);
  }
  // lab_colors
  const sumOf = (color: string, gt: string | undefined) =>
    values.filter((v, i) => colors[i] === color && (gt === undefined || v > Number(gt))).reduce((a, b) => a + b, 0);
  const re = /the sum of the (red|blue) numbers(?: greater than (\d+))?/g;
  const sums = [...q.matchAll(re)].map((m) => sumOf(m[1]!, m[2]));
  let total = sums.length === 2 ? sums[0]! - sums[1]! : sums[0]!;
  if (q.includes('count of even numbers')) total += values.filter((v) => v % 2 === 0).length;
  return String(total);
}

/** Which segments a digit lights (a top, b top right, c bottom right, d bottom, e bottom left, f top left, g middle). */
const DIGITS: Record<string, string> = {
  abcdef: '0',
  bc: '1',
  abdeg: '2',
  abcdg: '3',
  bcfg: '4',
  acdfg: '5',
  acdefg: '6',
  abc: '7',
  abcdefg: '8',
  abcdfg: '9',
  '': ' ',
};
/** Where each segment is looked for, as [x0, x1, y0, y1] fractions of the glyph box. */
const REGIONS: Record<string, [number, number, number, number]> = {
  a: [0.3, 0.7, 0, 0.3],
  b: [0.6, 0.9, 0.32, 0.42],
  c: [0.6, 0.9, 0.58, 0.68],
  d: [0.3, 0.7, 0.7, 1],
  e: [0.1, 0.4, 0.58, 0.68],
  f: [0.1, 0.4, 0.32, 0.42],
  g: [0.3, 0.7, 0.45, 0.55],
};

/** Reads the glyph in the box (x, y, w, h): a segment is lit where some pixel of its region differs from the box's corner. */
function readGlyph(img: RgbImage, x: number, y: number, w: number, h: number): string {
  const at = (px: number, py: number) => {
    const i = 3 * (Math.floor(py) * img.width + Math.floor(px));
    return [img.data[i]!, img.data[i + 1]!, img.data[i + 2]!];
  };
  const bg = at(x + 1, y + 2);
  let lit = '';
  for (const [seg, [u0, u1, v0, v1]] of Object.entries(REGIONS)) {
    let ink = false;
    for (let py = Math.ceil(y + v0 * h); py < y + v1 * h && !ink; py++)
      for (let px = Math.ceil(x + u0 * w); px < x + u1 * w && !ink; px++)
        ink = at(px, py).some((c, k) => Math.abs(c - bg[k]!) > 60);
    if (ink) lit += seg;
  }
  return DIGITS[lit] ?? '?';
}

/** The values a reader sees, from the layout of each domain (a 4×4 grid of cells, 28 px at 112 px). */
function readValues(name: string, img: RgbImage): string[] {
  const cell = img.width / 4;
  const glyphs = (x: number, y: number, n: number, w: number, h: number) =>
    Array.from({ length: n }, (_, k) => readGlyph(img, x + k * w, y, w, h)).join('');
  // One value per cell, as two half-width glyphs.
  const value = (col: number, row: number) => glyphs(col * cell, row * cell, 2, cell / 2, cell).trim();
  if (name === 'lab_arith') return [0, 1, 2, 3].map((i) => value(i, 1));
  if (name === 'lab_colors') {
    // Glyphs in the top three quarters of the cell, the number's colour in a strip across the bottom quarter.
    const card = (col: number, row: number) => {
      const v = glyphs(col * cell, row * cell, 2, cell / 2, (cell * 3) / 4).trim();
      const i = 3 * (Math.floor(row * cell + cell * 0.9) * img.width + Math.floor(col * cell + cell / 2));
      const [r, b] = [img.data[i]!, img.data[i + 2]!];
      return `${v} ${r > 150 && b < 100 ? 'red' : b > 150 && r < 100 ? 'blue' : '?'}`;
    };
    return [0, 1, 2, 3, 4, 5].map((i) => card(1 + (i % 2), Math.floor(i / 2)));
  }
  if (name === 'lab_bars') return [0, 1, 2, 3].map((i) => value(i, 0));
  return [`${value(1, 1)}:${value(2, 1)}`];
}

describe('lab generators', () => {
  it('are registered, excluded from "all" and selected by "lab"', () => {
    expect(LAB_GENERATOR_NAMES).toEqual(['lab_arith', 'lab_bars', 'lab_clock', 'lab_colors']);
    expect(parseMix('lab', []).map((m) => m.name)).toEqual(LAB_GENERATOR_NAMES);
    expect(parseMix('all', ['vqa']).map((m) => m.name)).toEqual(['vqa']);
  });

  for (const name of LAB_GENERATOR_NAMES) {
    describe(name, () => {
      it('answers equal an independent solution and the reward router grades them (near misses rejected)', async () => {
        const samples = [1, 2, 3, 4, 5].flatMap((d) => [0, 1, 2, 3, 4, 5].map((i) => gen(name, d, i, 'reason').sample));
        for (const s of samples) expect(s.answer, s.question).toBe(solve(name, s));
        const right = await router.scoreBatch(
          samples.map((s) => ({ sample: s, response: sftTarget(s, { thinking: true, style: 'glm41v' }) })),
        );
        const miss = (a: string) => (a.includes(':') ? clock(toMin(a) + 5) : String(Number(a) + 1));
        const wrong = await router.scoreBatch(
          samples.map((s) => ({
            sample: s,
            response: `<think>x</think><answer><|begin_of_box|>${miss(s.answer)}<|end_of_box|></answer>`,
          })),
        );
        expect(right.map((r) => r.reward)).toEqual(samples.map(() => 1));
        expect(wrong.map((r) => r.reward)).toEqual(samples.map(() => 0));
      });

      it('adds reasoning steps with the level, not pixels', () => {
        const mean = (d: number) => {
          const st = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => meta(gen(name, d, i, 'reason').sample).steps);
          return st.reduce((a, b) => a + b, 0) / st.length;
        };
        const means = [1, 2, 3, 4, 5].map(mean);
        for (let d = 1; d < 5; d++) expect(means[d]!, `level ${d + 1} vs ${d}`).toBeGreaterThan(means[d - 1]!);
        if (name === 'lab_arith' || name === 'lab_clock') expect(means).toEqual([1, 2, 3, 4, 5]);
        // Same number of drawn values, same ranges, same image size at every level.
        const shapes = [1, 5].map((d) => {
          const g = gen(name, d, 0, 'reason');
          return { n: meta(g.sample).values.length, bytes: g.media.length };
        });
        expect(shapes[0]).toEqual(shapes[1]);
      });

      it('draw every value as aligned seven-segment glyphs that a pixel reader reads back', async () => {
        for (let i = 0; i < 8; i++) {
          const g = gen(name, 1 + (i % 5), i, i % 3 ? 'reason' : 'probe');
          const { values, colors } = meta(g.sample);
          const img = await loadImage(Buffer.from(g.media[0]!.png));
          expect(img.width).toBe(112);
          const want =
            name === 'lab_clock'
              ? [clock(values[0]!)]
              : name === 'lab_colors'
                ? values.map((v, k) => `${v} ${colors[k]}`)
                : values.map(String);
          expect(readValues(name, img), g.sample.id).toEqual(want);
        }
      });

      it('ask the question first, so the image sits right before the answer (SFT, RL and eval alike)', () => {
        const s = gen(name, 2, 0, 'reason').sample;
        expect(s.questionFirst).toBe(true);
        const content = sampleMessage(s).content as Array<{ type: string }>;
        expect(content.map((p) => p.type)).toEqual(['text', 'image']);
        const again = parseSample(JSON.parse(JSON.stringify(s)), 'samples.jsonl', 1);
        expect(again.questionFirst).toBe(true);
        expect(buildPrompt({ prompt: { template: '{question}', option: '' } } as never, s).questionFirst).toBe(true);
      });

      it('probes ask for one drawn value and read it from the right place', () => {
        for (let i = 0; i < 12; i++) {
          const s = gen(name, 1 + (i % 5), i, 'probe', i % 2 ? 'heldout' : 'train').sample;
          const { values, steps } = meta(s);
          expect(steps).toBe(0);
          let expected: string;
          if (name === 'lab_clock') expected = clock(values[0]!);
          else if (name === 'lab_colors') {
            const m = /the (left|right) number in the (top|middle|bottom) row\?/.exec(s.question)!;
            expected = String(values[2 * ['top', 'middle', 'bottom'].indexOf(m[2]!) + (m[1] === 'left' ? 0 : 1)]);
          } else expected = String(values[LETTER(/(?:card|bar) ([A-D])\?/.exec(s.question)![1]!)]);
          expect(s.answer, s.question).toBe(expected);
        }
      });
    });
  }
});

describe('column-by-column arithmetic in the rationales', () => {
  // Checks each one-digit fact by evaluating it, and that the result is the digits the facts produce: for a sum the
  // last column's full sum then the earlier columns' ones digits; for a difference the column digits, leading zeros
  // dropped. Written from the format's description, not from the generator's code.
  const check = (a: number, op: '+' | '-', b: number) => {
    const { text, value } = columnStep(a, op, b);
    expect(value).toBe(op === '+' ? a + b : a - b);
    const m = /^(\d+) ([+-]) (\d+)(?: = -\((\d+) - (\d+)\))?: (.*), so (-?\d+)\.$/.exec(text);
    expect(m, text).not.toBeNull();
    const facts = m![6]!.split(', ').map((f) => {
      const [lhs, rhs] = f.split('=');
      const terms = lhs!.split(/(?=[+-])/).map(Number);
      expect(
        terms.reduce((x, y) => x + y, 0),
        `${f} in ${text}`,
      ).toBe(Number(rhs));
      return { first: terms[0]!, rhs: Number(rhs) };
    });
    const big = Math.max(a, b);
    expect(facts.length).toBe(String(op === '-' ? big : Math.max(a, b)).length);
    const composed =
      op === '+'
        ? String(facts.at(-1)!.rhs) +
          facts
            .slice(0, -1)
            .reverse()
            .map((f) => f.rhs % 10)
            .join('')
        : String(
            Number(
              facts
                .map((f) => f.rhs)
                .reverse()
                .join(''),
            ),
          );
    expect(Number(composed) * (value < 0 ? -1 : 1), text).toBe(value);
    expect(Number(m![7])).toBe(value);
    // Every column digit of the larger operand appears in its fact (a borrow writes it as 1x).
    facts.forEach((f, i) => {
      const digit = Number([...String(op === '-' ? big : a)].reverse()[i] ?? 0);
      expect(f.first % 10, text).toBe(digit);
    });
  };

  it('works every sum and difference of the lab ranges digit by digit', () => {
    for (let a = 0; a <= 400; a += 7)
      for (let b = 0; b <= 120; b += 3) for (const op of ['+', '-'] as const) check(a, op, b);
    check(999, '+', 1);
    check(100, '-', 1);
    check(5, '-', 99);
    expect(columnStep(87, '+', 45).text).toBe('87 + 45: 7+5=12, 8+4+1=13, so 132.');
    expect(columnStep(42, '-', 67).text).toBe('42 - 67 = -(67 - 42): 7-2=5, 6-4=2, so -25.');
  });

  it('refuses what it cannot work (negative or fractional operands)', () => {
    expect(() => columnStep(-3, '+', 4)).toThrow(/non-negative integers/);
    expect(() => columnStep(2.5, '-', 1)).toThrow(/non-negative integers/);
  });
});
