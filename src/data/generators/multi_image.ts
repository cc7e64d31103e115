/**
 * Multi-image: two or three shape scenes that differ by controlled edits (an object removed, added, recoloured,
 * moved). Questions: which object is missing, what changed colour, how many differences, which image is the odd
 * one out, which image has more of something.
 */
import type { Rng } from '../../util/rng.js';
import type { VerifierSpec } from '../sample.js';
import {
  at,
  colorsFor,
  describeScene,
  makeScene,
  matching,
  type Obj,
  objectCountRange,
  renderScene,
  type Scene,
  sceneKey,
  shapesFor,
} from './scene.js';
import { type Built, type GenConfig, type Generator, pickTask, planUntil } from './types.js';

const TASKS = ['missing', 'recolor', 'differences', 'odd_one', 'more'] as const;
type Task = (typeof TASKS)[number];

export interface MultiPlan {
  task: Task;
  scenes: Scene[];
  qa: { question: string; answer: string; rationale: string; verifier: VerifierSpec };
}

const nm = (o: Obj) => `${o.color} ${o.shape}`;

function baseScene(rng: Rng, cfg: GenConfig, minN: number): Scene {
  const d = cfg.difficulty;
  const [lo, hi] = objectCountRange(Math.max(2, d), cfg.size);
  return makeScene(rng, {
    n: rng.int(Math.max(lo, minN), Math.max(hi, minN)),
    shapes: shapesFor(d, cfg.size),
    colors: colorsFor(d),
    sizes: false,
    difficulty: Math.min(d, 3),
    size: cfg.size,
  });
}

function copy(s: Scene): Scene {
  return { ...s, objects: s.objects.map((o) => ({ ...o })) };
}

type Edit = { kind: 'remove' | 'add' | 'recolor' | 'move'; text: string };

/** Applies one random edit to `s` in place; returns a description, or null if none applies. */
function edit(rng: Rng, s: Scene, cfg: GenConfig, kinds: Edit['kind'][]): Edit | null {
  const kind = rng.pick(kinds);
  const objs = s.objects;
  if (kind === 'remove' && objs.length > 1) {
    const i = rng.int(0, objs.length - 1);
    const o = objs[i]!;
    objs.splice(i, 1);
    return { kind, text: `the ${nm(o)} at ${at(o)} is removed` };
  }
  if (kind === 'recolor') {
    const o = rng.pick(objs);
    const to = rng.pick(colorsFor(cfg.difficulty).filter((c) => c !== o.color));
    const text = `the ${nm(o)} at ${at(o)} turns ${to}`;
    o.color = to;
    return { kind, text };
  }
  if (kind === 'add') {
    const extra = makeScene(rng, {
      n: 1,
      shapes: shapesFor(cfg.difficulty, cfg.size),
      colors: colorsFor(cfg.difficulty),
      sizes: false,
      difficulty: 1,
      size: cfg.size,
    }).objects[0];
    if (!extra || objs.some((p) => Math.hypot(p.x - extra.x, p.y - extra.y) < p.r + extra.r + 40)) return null;
    objs.push(extra);
    return { kind, text: `a ${nm(extra)} is added at ${at(extra)}` };
  }
  if (kind === 'move') {
    const o = rng.pick(objs);
    const nx = Math.round(rng.uniform(o.r + 20, 1000 - o.r - 20));
    const ny = Math.round(rng.uniform(o.r + 20, 1000 - o.r - 20));
    if (
      Math.hypot(nx - o.x, ny - o.y) < 250 ||
      objs.some((p) => p !== o && Math.hypot(p.x - nx, p.y - ny) < p.r + o.r + 40)
    )
      return null;
    const text = `the ${nm(o)} moves from ${at(o)} to (${Math.round(nx / 10) * 10}, ${Math.round(ny / 10) * 10})`;
    o.x = nx;
    o.y = ny;
    return { kind, text };
  }
  return null;
}

function planMulti(rng: Rng, cfg: GenConfig): MultiPlan | null {
  const d = cfg.difficulty;
  const task = pickTask(rng, TASKS, cfg, [2, d >= 2 ? 2 : 0.3, d >= 3 ? 2 : 0.3, d >= 4 ? 2 : 0.2, 1]);
  const a = baseScene(rng, cfg, 2);
  // Names must be unique so that "the red circle" refers to one object.
  if (new Set(a.objects.map(nm)).size !== a.objects.length) return null;
  if (task === 'missing') {
    const b = copy(a);
    const e = edit(rng, b, cfg, ['remove']);
    if (!e) return null;
    const gone = a.objects.find((o) => !b.objects.some((p) => p.x === o.x && p.y === o.y))!;
    return {
      task,
      scenes: [a, b],
      qa: {
        question: 'Which object is in the first image but not in the second? Answer with its color and shape.',
        answer: nm(gone),
        rationale: `Image 1 has ${a.objects.length} objects, image 2 has ${b.objects.length}. Comparing them, ${e.text}. So the missing object is the ${nm(gone)}.`,
        verifier: { type: 'vqa' },
      },
    };
  }
  if (task === 'recolor') {
    const b = copy(a);
    const i = rng.int(0, a.objects.length - 1);
    // A colour that keeps every object's name unique; none left (a crowded scene) means another plan.
    const choices = colorsFor(d).filter(
      (c) => c !== a.objects[i]!.color && !a.objects.some((o) => o.shape === a.objects[i]!.shape && o.color === c),
    );
    if (choices.length === 0) return null;
    const to = rng.pick(choices);
    b.objects[i]!.color = to;
    const o = a.objects[i]!;
    return {
      task,
      scenes: [a, b],
      qa: {
        question:
          `In the second image, one object has a different color. What color is the ${o.shape} at ${at(o)} in the second image?`.replace(
            ` at ${at(o)}`,
            matching(a.objects, { shape: o.shape }).length === 1 ? '' : ` that changed`,
          ),
        answer: to,
        rationale: `Comparing object by object, the ${nm(o)} at ${at(o)} in image 1 is ${to} in image 2; everything else is the same. So the answer is ${to}.`,
        verifier: { type: 'vqa' },
      },
    };
  }
  if (task === 'differences') {
    const b = copy(a);
    const k = rng.int(1, Math.min(3, d >= 4 ? 3 : 2));
    const edits: Edit[] = [];
    for (let t = 0; t < 20 && edits.length < k; t++) {
      const e = edit(rng, b, cfg, ['remove', 'add', 'recolor', 'move']);
      if (e) edits.push(e);
    }
    if (edits.length !== k) return null;
    return {
      task,
      scenes: [a, b],
      qa: {
        question:
          'How many differences are there between the two images? Each added, removed, recolored or moved object counts once.',
        answer: String(k),
        rationale: `Comparing the images: ${edits.map((e) => e.text).join('; ')}. That is ${k} difference${k === 1 ? '' : 's'}.`,
        verifier: { type: 'counting' },
      },
    };
  }
  if (task === 'odd_one') {
    const b = copy(a);
    const c = copy(a);
    // Images 1-3: two identical, one edited.
    const odd = rng.int(0, 2);
    const scenes = [copy(a), b, c];
    const e = edit(rng, scenes[odd]!, cfg, ['remove', 'recolor', 'add']);
    if (!e) return null;
    return {
      task,
      scenes,
      qa: {
        question: 'Two of the three images are identical. Which image (1, 2 or 3) is different?',
        answer: String(odd + 1),
        rationale: `Comparing the images, in image ${odd + 1} ${e.text}, while the other two match. So image ${odd + 1} is different.`,
        verifier: { type: 'vqa' },
      },
    };
  }
  // more: which image has more objects of a colour.
  const b = baseScene(rng, cfg, 2);
  const col = rng.pick([...new Set([...a.objects, ...b.objects].map((o) => o.color))]);
  const na = matching(a.objects, { color: col }).length;
  const nb = matching(b.objects, { color: col }).length;
  if (na === nb) return null;
  return {
    task,
    scenes: [a, b],
    qa: {
      question: `Which image has more ${col} objects, 1 or 2?`,
      answer: na > nb ? '1' : '2',
      rationale: `Image 1 has ${na} ${col} object${na === 1 ? '' : 's'} and image 2 has ${nb}. So image ${na > nb ? 1 : 2} has more.`,
      verifier: { type: 'vqa' },
    },
  };
}

export const multiImage: Generator<MultiPlan> = {
  domain: 'multi_image',
  name: 'synth/multi_image',
  description:
    'two or three related scenes: missing object, recolouring, number of differences, odd one out, comparisons',
  tasks: TASKS,
  defaultSize: 224,
  minSize: 56,
  plan(rng, cfg) {
    return planUntil(() => planMulti(rng, cfg), `multi_image: could not plan at difficulty ${cfg.difficulty}`);
  },
  key: (p) => `${p.scenes.map(sceneKey).join('||')}|${p.qa.question}`,
  build(p, cfg, rng): Built {
    return { task: p.task, ...p.qa, images: p.scenes.map((s) => renderScene(s, cfg.size, rng)) };
  },
  describe: (p) => p.scenes.map((s, i) => `Image ${i + 1}: ${describeScene(s, false)}`).join(' '),
};
