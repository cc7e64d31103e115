/**
 * Grounding: referring expressions → boxes `[x1,y1,x2,y2]` normalised to 0–1000 (several targets:
 * `[[…],[…]]` in reading order). Targets are shape-scene objects (attributes, size, extremes, relations) or
 * words placed on the image. Prompts are the paper's two grounding templates (App. B.3).
 */
import { pixelToNorm } from '../../io/answer/geometry.js';
import type { Rng } from '../../util/rng.js';
import { type Box, drawText, type FontRole, measureText, newCanvas } from '../render.js';
import type { VerifierSpec } from '../sample.js';
import { word } from '../words.js';
import {
  colorsFor,
  describeScene,
  makeScene,
  matching,
  type Obj,
  objBox,
  objectCountRange,
  objName,
  readingOrder,
  renderScene,
  type Scene,
  sceneKey,
  shapesFor,
  uniqueName,
} from './scene.js';
import { type Built, type GenConfig, type Generator, pickTask, planUntil } from './types.js';

const TASKS = ['single', 'multi', 'relation', 'text'] as const;
type Task = (typeof TASKS)[number];

interface Word {
  text: string;
  x: number;
  cy: number;
  px: number;
  font: FontRole;
  color: string;
  /** Ink box in pixels at the planned size. */
  box: Box;
}

export interface GroundingPlan {
  task: Task;
  scene?: Scene;
  words?: Word[];
  expr: string;
  /** Indices of the targets (objects or words). */
  targets: number[];
  why: string;
  prompt: 0 | 1;
}

const VERIFIER: VerifierSpec = { type: 'grounding', params: { iouThreshold: 0.5 } };

export function boxText(b: readonly number[]): string {
  return `[${b.join(',')}]`;
}

/** The answer string: one box, or a list of boxes for several targets. */
export function boxesAnswer(boxes: number[][]): string {
  return boxes.length === 1 ? boxText(boxes[0]!) : `[${boxes.map(boxText).join(',')}]`;
}

function norm(b: Box, size: number): number[] {
  return pixelToNorm([b.x1, b.y1, b.x2, b.y2], { width: size, height: size });
}

function planScene(rng: Rng, cfg: GenConfig, minN: number): Scene {
  const d = cfg.difficulty;
  const [lo, hi] = objectCountRange(d, cfg.size);
  return makeScene(rng, {
    n: rng.int(Math.max(lo, minN), Math.max(hi, minN)),
    shapes: shapesFor(d, cfg.size),
    colors: colorsFor(d),
    sizes: d >= 3,
    difficulty: d,
    size: cfg.size,
  });
}

function planObjects(rng: Rng, cfg: GenConfig, task: Task): GroundingPlan | null {
  const d = cfg.difficulty;
  const scene = planScene(rng, cfg, task === 'single' ? 1 : 3);
  const objs = scene.objects;
  if (objs.length === 0) return null;
  if (task === 'single') {
    const o = rng.pick(objs);
    const name = uniqueName(objs, o, d >= 3);
    if (!name) return null;
    return {
      task,
      scene,
      expr: `the ${name}`,
      targets: [objs.indexOf(o)],
      why: `There is exactly one ${name}.`,
      prompt: rng.int(0, 1) as 0 | 1,
    };
  }
  if (task === 'multi') {
    const o = rng.pick(objs);
    const f = rng.random() < 0.5 ? { color: o.color } : { shape: o.shape };
    const m = matching(objs, f);
    if (m.length < 2) return null;
    const noun = 'color' in f ? `${f.color} objects` : `${f.shape}s`;
    return {
      task,
      scene,
      expr: `all ${noun}`,
      targets: readingOrder(m).map((x) => objs.indexOf(x)),
      why: `There are ${m.length} ${noun}.`,
      prompt: rng.int(0, 1) as 0 | 1,
    };
  }
  // relation: extremes among a shape, or the object of a shape nearest to a named reference.
  if (d <= 3 || rng.random() < 0.5) {
    const shape = rng.pick(objs).shape;
    const group = matching(objs, { shape });
    if (group.length < 2) return null;
    const which = rng.pick(['leftmost', 'rightmost', 'topmost', 'bottommost'] as const);
    const val = (p: Obj) =>
      which === 'leftmost' ? p.x : which === 'rightmost' ? -p.x : which === 'topmost' ? p.y : -p.y;
    const sorted = [...group].sort((p, q) => val(p) - val(q));
    if (val(sorted[1]!) - val(sorted[0]!) < 60) return null;
    return {
      task,
      scene,
      expr: `the ${which} ${shape}`,
      targets: [objs.indexOf(sorted[0]!)],
      why: `There are ${group.length} ${shape}s; the ${which} is the ${objName(sorted[0]!, false)}.`,
      prompt: rng.int(0, 1) as 0 | 1,
    };
  }
  const ref = rng.pick(objs);
  const refName = uniqueName(objs, ref, true);
  if (!refName) return null;
  const shape = rng.pick(objs.filter((p) => p !== ref)).shape;
  const group = matching(objs, { shape }).filter((p) => p !== ref);
  const ds = group.map((p) => Math.hypot(p.x - ref.x, p.y - ref.y)).sort((a, b) => a - b);
  if (group.length < 2 || ds[1]! - ds[0]! < 80) return null;
  const near = group.find((p) => Math.hypot(p.x - ref.x, p.y - ref.y) === ds[0])!;
  return {
    task,
    scene,
    expr: `the ${shape} closest to the ${refName}`,
    targets: [objs.indexOf(near)],
    why: `The ${refName} is at the reference point; of the ${group.length} ${shape}s the nearest is the ${objName(near, false)}.`,
    prompt: rng.int(0, 1) as 0 | 1,
  };
}

function planWords(rng: Rng, cfg: GenConfig): GroundingPlan | null {
  const d = cfg.difficulty;
  const size = cfg.size;
  const n = Math.min(rng.int(d + 1, d + 3), size < 112 ? 2 : size < 224 ? 4 : 8);
  const fonts: FontRole[] = d <= 2 ? ['sans'] : ['sans', 'serif', 'mono', 'cabin', 'comic', 'courier'];
  const words: Word[] = [];
  const maxLen = size < 112 ? 4 : size < 224 ? 6 : 10;
  for (let i = 0; i < n * 30 && words.length < n; i++) {
    const text = word(rng, rng.pick(['noun', 'fruit', 'animal', 'city'] as const), cfg.split, maxLen).toLowerCase();
    if (words.some((w) => w.text === text)) continue;
    const px = Math.max(9, (size / 1000) * rng.uniform(d <= 2 ? 110 : 70, d <= 2 ? 160 : 120));
    const f = rng.pick(fonts);
    const m = measureText(text, px, f);
    if (m.w > size * 0.9) continue;
    const x = rng.uniform(size * 0.03, size * 0.97 - m.w);
    const cy = rng.uniform(size * 0.05 + m.ascent, size * 0.95 - m.descent);
    const box = { x1: x - m.left, y1: cy - m.ascent, x2: x + m.right, y2: cy + m.descent };
    const pad = size * 0.02;
    if (
      words.some(
        (w) =>
          !(box.x2 + pad < w.box.x1 || w.box.x2 + pad < box.x1 || box.y2 + pad < w.box.y1 || w.box.y2 + pad < box.y1),
      )
    )
      continue;
    words.push({ text, x, cy, px, font: f, color: rng.pick(['#111111', '#1f3f8f', '#8f1f1f', '#205f20']), box });
  }
  if (words.length === 0) return null;
  const t = rng.int(0, words.length - 1);
  return {
    task: 'text',
    words,
    expr: `the word "${words[t]!.text}"`,
    targets: [t],
    why: `The word "${words[t]!.text}" is written once.`,
    prompt: rng.int(0, 1) as 0 | 1,
  };
}

function targetBoxes(p: GroundingPlan, size: number): Box[] {
  if (p.words) return p.targets.map((i) => p.words![i]!.box);
  return p.targets.map((i) => objBox(p.scene!.objects[i]!, size));
}

export const grounding: Generator<GroundingPlan> = {
  domain: 'grounding',
  name: 'synth/grounding',
  description:
    'referring expressions to 0-1000 boxes: unique objects, all objects of a kind, extremes and relations, words',
  tasks: TASKS,
  defaultSize: 336,
  minSize: 56,
  plan(rng, cfg) {
    return planUntil(() => {
      const task = pickTask(rng, TASKS, cfg, [3, 2, cfg.difficulty >= 3 ? 2 : 1, 1]);
      return task === 'text' ? planWords(rng, cfg) : planObjects(rng, cfg, task);
    }, `grounding: could not plan an unambiguous expression at difficulty ${cfg.difficulty}, size ${cfg.size}`);
  },
  key: (p) => `${p.scene ? sceneKey(p.scene) : p.words!.map((w) => w.text).join(',')}|${p.expr}`,
  build(p, cfg, rng): Built {
    const size = cfg.size;
    let image: ReturnType<typeof renderScene>;
    if (p.scene) image = renderScene(p.scene, size, rng);
    else {
      const { canvas, ctx } = newCanvas(size, size, cfg.difficulty >= 4 ? '#f6f3ea' : '#ffffff');
      for (const w of p.words!) drawText(ctx, w.text, w.x, w.cy, w.px, w.color, w.font);
      image = canvas;
    }
    const boxes = targetBoxes(p, size).map((b) => norm(b, size));
    const answer = boxesAnswer(boxes);
    const question =
      p.prompt === 0
        ? `Help me to locate ${p.expr} in the image and give me its bounding box${boxes.length > 1 ? 'es' : ''}.`
        : `Please pinpoint the bounding box [[x1,y1,x2,y2], …] in the image as per the given description. ${p.expr.charAt(0).toUpperCase()}${p.expr.slice(1)}`;
    const spans = boxes.map((b) => `x ${b[0]}-${b[2]}, y ${b[1]}-${b[3]}`);
    const rationale = `${p.why} ${boxes.length === 1 ? `It spans ${spans[0]}` : `They span ${spans.join('; ')}`} (0-1000 coordinates). So the answer is ${answer}.`;
    return {
      task: p.task,
      question,
      answer,
      verifier: VERIFIER,
      rationale,
      images: [image],
      meta: { boxesPx: targetBoxes(p, size) },
    };
  },
  describe(p, cfg) {
    if (p.scene) return describeScene(p.scene, cfg.difficulty >= 3);
    return `An image with the words ${p.words!.map((w) => `"${w.text}"`).join(', ')}.`;
  },
  regions(p, cfg) {
    if (p.scene)
      return p.scene.objects.map((o) => ({ label: objName(o, cfg.difficulty >= 3), box: objBox(o, cfg.size) }));
    return p.words!.map((w) => ({ label: `the word "${w.text}"`, box: w.box }));
  },
};
