/**
 * OCR: words, names, phrases, codes, prices and multi-line text in seven fonts, with rotation, colour, noise and
 * clutter growing with difficulty. The text block (rotated) always fits inside the image; the answer is the exact
 * text, lines joined by newlines.
 */
import type { Rng } from '../../util/rng.js';
import { addClutter, addNoise, drawText, type FontRole, measureText, newCanvas } from '../render.js';
import { fullName, titleCase, word } from '../words.js';
import type { Built, GenConfig, Generator } from './types.js';

const TASKS = ['word', 'phrase', 'code', 'lines'] as const;
type Task = (typeof TASKS)[number];

export interface OcrPlan {
  task: Task;
  lines: string[];
  font: FontRole;
  px: number;
  /** Rotation in degrees. */
  rot: number;
  color: string;
  bg: string;
  noise: number;
  clutter: number;
  /** Centre of the text block in px. */
  cx: number;
  cy: number;
}

const FONT_NAMES: Record<FontRole, string> = {
  sans: 'sans-serif',
  serif: 'serif',
  mono: 'monospace',
  cabin: 'humanist sans-serif',
  comic: 'casual handwriting-style',
  courier: 'typewriter',
  script: 'cursive script',
};

function code(rng: Rng): string {
  const L = 'ABCDEFGHJKLMNPQRSTUVWXYZ';
  const D = '0123456789';
  const pick = (s: string, n: number) => Array.from({ length: n }, () => s[rng.int(0, s.length - 1)]).join('');
  switch (rng.int(0, 3)) {
    case 0:
      return `${pick(L, 2)}-${pick(D, 4)}`;
    case 1:
      return `$${rng.int(1, 999)}.${pick(D, 2)}`;
    case 2:
      return `${rng.int(1, 28)} ${rng.pick(['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'])} ${rng.int(1990, 2030)}`;
    default:
      return `${pick(L, 1)}${pick(D, 1)}${pick(L, 1)} ${pick(D, 1)}${pick(L, 1)}${pick(D, 1)}`;
  }
}

function text(rng: Rng, task: Task, d: number, cfg: GenConfig, maxLen: number): string[] {
  const s = cfg.split;
  switch (task) {
    case 'word': {
      const w = word(rng, rng.pick(['noun', 'adjective', 'verb', 'animal', 'fruit'] as const), s, maxLen);
      return [d >= 3 && rng.random() < 0.3 ? w.toUpperCase() : d >= 2 && rng.random() < 0.3 ? titleCase(w) : w];
    }
    case 'phrase':
      return [
        rng.pick([
          () => `${word(rng, 'adjective', s, 9)} ${word(rng, 'noun', s, 9)}`,
          () => fullName(rng, s),
          () => `${word(rng, 'city', s, 12)}`,
          () => `${word(rng, 'verb', s, 8)} the ${word(rng, 'noun', s, 8)}`,
        ])(),
      ];
    case 'code':
      return [code(rng)];
    case 'lines': {
      const n = d >= 5 ? rng.int(2, 3) : 2;
      return Array.from({ length: n }, () =>
        rng.pick([
          () => `${titleCase(word(rng, 'adjective', s, 8))} ${word(rng, 'noun', s, 8)}`,
          () => fullName(rng, s),
          () => code(rng),
          () => `${word(rng, 'city', s, 10)} ${rng.int(10, 999)}`,
        ])(),
      );
    }
  }
}

/** Width and height of the axis-aligned box around the rotated text block. */
function rotatedExtent(w: number, h: number, rotDeg: number): [number, number] {
  const a = (Math.abs(rotDeg) * Math.PI) / 180;
  return [w * Math.cos(a) + h * Math.sin(a), w * Math.sin(a) + h * Math.cos(a)];
}

function blockSize(lines: string[], px: number, f: FontRole): { w: number; h: number } {
  const w = Math.max(...lines.map((l) => measureText(l, px, f).w));
  return { w, h: lines.length * px * 1.35 };
}

export const ocr: Generator<OcrPlan> = {
  domain: 'ocr',
  name: 'synth/ocr',
  description: 'transcription of words, phrases, codes and multi-line text in varied fonts, sizes, rotations and noise',
  tasks: TASKS,
  defaultSize: 336,
  minSize: 56,
  plan(rng, cfg) {
    const d = cfg.difficulty;
    const size = cfg.size;
    // Tiny images hold one short word or code; longer text starts at 112 px.
    const allowed: Task[] =
      size < 112
        ? d <= 1
          ? ['word']
          : ['word', 'code']
        : d <= 1
          ? ['word']
          : d === 2
            ? ['word', 'phrase']
            : d === 3
              ? ['word', 'phrase', 'code']
              : ['phrase', 'code', 'lines'];
    // Requested tasks outside this level's set are still honoured; only what cannot fit the image is refused.
    const possible: readonly Task[] = size < 112 ? ['word', 'code'] : TASKS;
    let want = cfg.tasks ? allowed.filter((t) => cfg.tasks!.includes(t)) : allowed;
    if (want.length === 0) want = possible.filter((t) => cfg.tasks!.includes(t));
    if (want.length === 0)
      throw new Error(
        `ocr: tasks ${cfg.tasks!.join(', ')} do not fit a ${size}-px image; possible: ${possible.join(', ')}`,
      );
    const task = rng.pick(want);
    const fonts: FontRole[] =
      d <= 1
        ? ['sans']
        : d === 2
          ? ['sans', 'serif', 'mono', 'cabin']
          : d === 3
            ? ['sans', 'serif', 'mono', 'cabin', 'comic', 'courier']
            : ['sans', 'serif', 'mono', 'cabin', 'comic', 'courier', 'script'];
    const minPx = Math.max(8, size / 40);
    const maxLen = size < 112 ? 6 : size < 224 ? 9 : 14;
    for (let t = 0; t < 200; t++) {
      const lines = text(rng, task, d, cfg, maxLen);
      if (size < 112 && (lines.length > 1 || lines[0]!.length > 7)) continue;
      const f = rng.pick(fonts);
      const rot = d <= 2 ? 0 : d === 3 ? rng.uniform(-8, 8) : rng.uniform(-14, 14);
      const maxPx = Math.max(minPx, size * (d <= 1 ? 0.3 : d <= 3 ? 0.2 : 0.14));
      let px = maxPx;
      for (;;) {
        const b = blockSize(lines, px, f);
        const [ew, eh] = rotatedExtent(b.w, b.h, rot);
        if (ew <= size * 0.9 && eh <= size * 0.9) break;
        px *= 0.92;
        if (px < minPx) break;
      }
      if (px < minPx) continue;
      px = Math.round(px * (d >= 4 ? rng.uniform(0.75, 1) : 1) * 10) / 10;
      if (px < minPx) px = minPx;
      const b = blockSize(lines, px, f);
      const [ew, eh] = rotatedExtent(b.w, b.h, rot);
      const cx = rng.uniform(ew / 2 + size * 0.04, size - ew / 2 - size * 0.04);
      const cy = rng.uniform(eh / 2 + size * 0.04, size - eh / 2 - size * 0.04);
      const dark = ['#111111', '#1a237e', '#4a148c', '#b71c1c', '#1b5e20'];
      const light = ['#ffffff', '#fdf6e3', '#eef2f7', '#f3f3f3'];
      return {
        task,
        lines,
        font: f,
        px,
        rot: Math.round(rot * 10) / 10,
        color: d <= 2 ? '#111111' : rng.pick(dark),
        bg: d <= 2 ? '#ffffff' : rng.pick(light),
        noise: d >= 4 ? rng.uniform(3, d === 5 ? 14 : 8) : 0,
        clutter: d >= 5 ? rng.int(4, 12) : 0,
        cx,
        cy,
      };
    }
    throw new Error(`ocr: no text fits a ${size}-px image at difficulty ${d}`);
  },
  key: (p) => p.lines.join('\n'),
  build(p, cfg, rng): Built {
    const size = cfg.size;
    const { canvas, ctx } = newCanvas(size, size, p.bg);
    if (p.clutter) addClutter(ctx, size, size, rng, p.clutter);
    ctx.save();
    ctx.translate(p.cx, p.cy);
    ctx.rotate((p.rot * Math.PI) / 180);
    const lh = p.px * 1.35;
    p.lines.forEach((l, i) => {
      drawText(ctx, l, 0, (i - (p.lines.length - 1) / 2) * lh, p.px, p.color, p.font, false, 'center');
    });
    ctx.restore();
    if (p.noise) addNoise(ctx, size, size, rng, p.noise);
    const answer = p.lines.join('\n');
    const many = p.lines.length > 1;
    const style = `${FONT_NAMES[p.font]} font${Math.abs(p.rot) >= 1 ? `, rotated about ${Math.round(Math.abs(p.rot))} degrees ${p.rot > 0 ? 'clockwise' : 'counterclockwise'}` : ''}`;
    const reading = p.lines.map((l, i) => (many ? `Line ${i + 1}: "${l}".` : `It reads "${l}".`));
    const spell =
      !many && p.lines[0]!.length <= 8 && !p.lines[0]!.includes(' ')
        ? ` Letter by letter: ${p.lines[0]!.split('').join(' ')}.`
        : '';
    return {
      task: p.task,
      question: many
        ? 'Transcribe all lines of text in the image, from top to bottom.'
        : rng.pick(['What text is written in the image?', 'Transcribe the text in the image.']),
      answer,
      verifier: { type: 'ocr' },
      rationale: `The image has ${many ? `${p.lines.length} lines` : 'one line'} of text in a ${style}. ${reading.join(' ')}${spell}`,
      images: [canvas],
      meta: { font: p.font, rot: p.rot },
    };
  },
  describe: (p) =>
    `Text in a ${FONT_NAMES[p.font]} font${p.lines.length > 1 ? ` on ${p.lines.length} lines` : ''}: "${p.lines.join(' / ')}".`,
};
