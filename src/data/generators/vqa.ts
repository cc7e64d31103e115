/**
 * General VQA over shape scenes: counting (with colour, size and spatial conditions at higher levels), attributes,
 * spatial relations, comparisons, and multiple-choice versions. Every answer and rationale comes from the scene graph.
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
import { type Built, cap, type GenConfig, type Generator, makeOptions, pickTask, planUntil, plural } from './types.js';

export interface QA {
  task: string;
  question: string;
  answer: string;
  options?: string[];
  verifier: VerifierSpec;
  rationale: string;
  blank?: { answer: string; verifier: VerifierSpec };
}

export interface VqaPlan {
  scene: Scene;
  qa: QA;
}

const TASKS = ['count', 'attribute', 'spatial', 'compare', 'choice'] as const;
const COUNTING: VerifierSpec = { type: 'counting' };
const VQA: VerifierSpec = { type: 'vqa' };

/** A spatial relation, with a margin so that no question is ambiguous. */
type Rel = 'left of' | 'right of' | 'above' | 'below';
const MARGIN = 60;
function relHolds(o: Obj, ref: Obj, rel: Rel): boolean | null {
  const d =
    rel === 'left of' ? ref.x - o.x : rel === 'right of' ? o.x - ref.x : rel === 'above' ? ref.y - o.y : o.y - ref.y;
  if (Math.abs(d) < MARGIN) return null;
  return d > 0;
}
const axisOf = (rel: Rel) => (rel === 'left of' || rel === 'right of' ? 'x' : 'y');

function listObjs(objs: readonly Obj[], withSize: boolean): string {
  return objs.length === 0
    ? 'none'
    : readingOrder(objs)
        .map((o) => `${objName(o, withSize)} ${at(o)}`)
        .join(', ');
}

function pluralShape(shape: string): string {
  return `${shape}s`;
}

/** A category phrase for counting: by shape, colour, or both, with optional size. */
interface Cat {
  shape?: string;
  color?: string;
  big?: boolean;
}
function catPhrase(c: Cat, pluralForm = true): string {
  const size = c.big === undefined ? '' : c.big ? 'large ' : 'small ';
  const noun = c.shape ? (pluralForm ? pluralShape(c.shape) : c.shape) : pluralForm ? 'objects' : 'object';
  return `${size}${c.color ? `${c.color} ` : ''}${noun}`;
}

function randomCat(rng: Rng, scene: Scene, d: number): Cat {
  const o = rng.pick(scene.objects);
  const kind = d <= 2 ? rng.int(0, 1) : rng.int(0, 3);
  const c: Cat = kind === 0 ? { shape: o.shape } : kind === 1 ? { color: o.color } : { shape: o.shape, color: o.color };
  if (d >= 4 && kind === 3) c.big = o.big;
  return c;
}

function countQA(rng: Rng, scene: Scene, d: number): QA | null {
  const objs = scene.objects;
  const withSize = d >= 3;
  if (d <= 3) {
    const c = randomCat(rng, scene, d);
    const m = matching(objs, c);
    const q = rng.pick([`How many ${catPhrase(c)} are there?`, `Count the ${catPhrase(c)} in the image.`]);
    return {
      task: 'count',
      question: q,
      answer: String(m.length),
      verifier: COUNTING,
      rationale: `I look for ${catPhrase(c)}. Matching: ${listObjs(m, withSize)}. That is ${plural(m.length, 'object')}, so the answer is ${m.length}.`,
    };
  }
  // Levels 4-5: a spatial condition relative to a uniquely named reference object.
  const ref = rng.pick(objs);
  const refName = uniqueName(objs, ref, true);
  if (!refName) return null;
  const rel = rng.pick<Rel>(['left of', 'right of', 'above', 'below']);
  const others = objs.filter((o) => o !== ref);
  if (others.length < 2) return null;
  const c = randomCat(rng, { ...scene, objects: others }, d);
  const cands = matching(others, c);
  if (cands.length < 2) return null;
  const verdicts = cands.map((o) => relHolds(o, ref, rel));
  if (verdicts.some((v) => v === null)) return null;
  const hits = cands.filter((_, i) => verdicts[i]);
  const ax = axisOf(rel);
  const refPos = ax === 'x' ? ref.x : ref.y;
  const steps = [
    `The ${refName} is at ${at(ref)}, so "${rel}" means ${ax} ${rel === 'left of' || rel === 'above' ? '<' : '>'} ${Math.round(refPos / 10) * 10}.`,
    `Candidate ${catPhrase(c)}: ${listObjs(cands, withSize)}.`,
    `Of these, ${rel} the ${refName}: ${listObjs(hits, withSize)}.`,
  ];
  if (d === 5 && rng.random() < 0.5) {
    // Subtract: how many more on one side than the other.
    const other = cands.filter((_, i) => !verdicts[i]);
    if (hits.length === other.length) return null;
    const first = hits.length > other.length;
    const [more, less] = first ? [hits, other] : [other, hits];
    const question = first
      ? `How many more ${catPhrase(c)} are ${rel} the ${refName} than not ${rel} it?`
      : `How many more ${catPhrase(c)} are not ${rel} the ${refName} than ${rel} it?`;
    return {
      task: 'count',
      question,
      answer: String(more.length - less.length),
      verifier: COUNTING,
      rationale: `${steps.join(' ')} Not ${rel} it: ${listObjs(other, withSize)}. ${more.length} - ${less.length} = ${more.length - less.length}.`,
    };
  }
  return {
    task: 'count',
    question: `How many ${catPhrase(c)} are ${rel} the ${refName}?`,
    answer: String(hits.length),
    verifier: COUNTING,
    rationale: `${steps.join(' ')} The count is ${hits.length}.`,
  };
}

function attributeQA(rng: Rng, scene: Scene, d: number): QA | null {
  const objs = scene.objects;
  const mode = d <= 2 ? rng.int(0, 1) : rng.int(0, 3);
  if (mode <= 1) {
    const o = rng.pick(objs);
    if (mode === 0) {
      if (matching(objs, { shape: o.shape }).length !== 1) return null;
      return {
        task: 'attribute',
        question: `What color is the ${o.shape}?`,
        answer: o.color,
        verifier: VQA,
        rationale: `There is one ${o.shape}, at ${at(o)}. It is ${o.color}.`,
      };
    }
    if (matching(objs, { color: o.color }).length !== 1) return null;
    return {
      task: 'attribute',
      question: `What shape is the ${o.color} object?`,
      answer: o.shape,
      verifier: VQA,
      rationale: `There is one ${o.color} object, at ${at(o)}. It is a ${o.shape}.`,
    };
  }
  if (mode === 2) {
    // Extremes: leftmost / rightmost / topmost / bottommost, with a clear margin to the runner-up.
    const which = rng.pick(['leftmost', 'rightmost', 'topmost', 'bottommost'] as const);
    const val = (o: Obj) =>
      which === 'leftmost' ? o.x : which === 'rightmost' ? -o.x : which === 'topmost' ? o.y : -o.y;
    const sorted = [...objs].sort((p, q) => val(p) - val(q));
    if (sorted.length < 2 || val(sorted[1]!) - val(sorted[0]!) < MARGIN) return null;
    const o = sorted[0]!;
    const attr = rng.random() < 0.5 ? 'color' : 'shape';
    const ax = which === 'leftmost' || which === 'rightmost' ? 'x' : 'y';
    return {
      task: 'attribute',
      question: `What ${attr} is the ${which} object?`,
      answer: attr === 'color' ? o.color : o.shape,
      verifier: VQA,
      rationale: `Objects by ${ax}: ${sorted.map((p) => `${objName(p, false)} ${at(p)}`).join(', ')}. The ${which} is the ${objName(o, false)}, so its ${attr} is ${attr === 'color' ? o.color : o.shape}.`,
    };
  }
  // Nearest object to a uniquely named reference.
  const ref = rng.pick(objs);
  const refName = uniqueName(objs, ref, true);
  if (!refName || objs.length < 3) return null;
  const others = objs
    .filter((o) => o !== ref)
    .map((o) => ({ o, dist: Math.hypot(o.x - ref.x, o.y - ref.y) }))
    .sort((p, q) => p.dist - q.dist);
  if (others[1]!.dist - others[0]!.dist < MARGIN) return null;
  const near = others[0]!.o;
  return {
    task: 'attribute',
    question: `What color is the object closest to the ${refName}?`,
    answer: near.color,
    verifier: VQA,
    rationale: `The ${refName} is at ${at(ref)}. Distances: ${others.map((e) => `${objName(e.o, false)} ${Math.round(e.dist)}`).join(', ')}. The closest is the ${objName(near, false)}, which is ${near.color}.`,
  };
}

function spatialQA(rng: Rng, scene: Scene, d: number): QA | null {
  const objs = scene.objects;
  if (objs.length < 2) return null;
  const [a, b] = rng.shuffle([...objs]).slice(0, 2) as [Obj, Obj];
  const an = uniqueName(objs, a, d >= 3);
  const bn = uniqueName(objs, b, d >= 3);
  if (!an || !bn) return null;
  if (d <= 3) {
    const rel =
      d <= 2 ? rng.pick<Rel>(['left of', 'right of']) : rng.pick<Rel>(['left of', 'right of', 'above', 'below']);
    const v = relHolds(a, b, rel);
    if (v === null) return null;
    const ax = axisOf(rel);
    return {
      task: 'spatial',
      question: `Is the ${an} ${rel} the ${bn}?`,
      answer: v ? 'yes' : 'no',
      verifier: VQA,
      rationale: `The ${an} is at ${at(a)} and the ${bn} is at ${at(b)}. Comparing ${ax}: ${Math.round((ax === 'x' ? a.x : a.y) / 10) * 10} vs ${Math.round((ax === 'x' ? b.x : b.y) / 10) * 10}, so the answer is ${v ? 'yes' : 'no'}.`,
    };
  }
  // Which of two objects is closer to a third.
  const c = objs.find((o) => o !== a && o !== b);
  if (!c) return null;
  const cn = uniqueName(objs, c, true);
  if (!cn) return null;
  const da = Math.hypot(a.x - c.x, a.y - c.y);
  const db = Math.hypot(b.x - c.x, b.y - c.y);
  if (Math.abs(da - db) < MARGIN) return null;
  const win = da < db ? an : bn;
  return {
    task: 'spatial',
    question: `Which is closer to the ${cn}: the ${an} or the ${bn}?`,
    answer: win,
    verifier: VQA,
    rationale: `The ${cn} is at ${at(c)}. The ${an} at ${at(a)} is ${Math.round(da)} away; the ${bn} at ${at(b)} is ${Math.round(db)} away. The closer one is the ${win}.`,
  };
}

function compareQA(rng: Rng, scene: Scene, d: number): QA | null {
  const objs = scene.objects;
  const byColor = rng.random() < 0.5;
  const values = [...new Set(objs.map((o) => (byColor ? o.color : o.shape)))] as string[];
  const pool = byColor ? colorsFor(d) : shapesFor(d, 1000);
  const x = rng.pick(values);
  const y = rng.pick((pool as string[]).filter((v) => v !== x));
  const cx: Cat = byColor ? { color: x } : { shape: x };
  const cy: Cat = byColor ? { color: y } : { shape: y };
  const nx = matching(objs, cx).length;
  const ny = matching(objs, cy).length;
  const lead = `${cap(catPhrase(cx))}: ${nx}. ${cap(catPhrase(cy))}: ${ny}.`;
  if (d >= 3 && nx > ny && rng.random() < 0.6) {
    return {
      task: 'compare',
      question: `How many more ${catPhrase(cx)} than ${catPhrase(cy)} are there?`,
      answer: String(nx - ny),
      verifier: COUNTING,
      rationale: `${lead} ${nx} - ${ny} = ${nx - ny}.`,
    };
  }
  return {
    task: 'compare',
    question: `Are there more ${catPhrase(cx)} than ${catPhrase(cy)}?`,
    answer: nx > ny ? 'yes' : 'no',
    verifier: VQA,
    rationale: `${lead} ${nx} ${nx > ny ? '>' : '<='} ${ny}, so the answer is ${nx > ny ? 'yes' : 'no'}.`,
  };
}

/** Multiple-choice wrapper around a colour/shape/count question. */
function choiceQA(rng: Rng, scene: Scene, d: number): QA | null {
  const base = rng.random() < 0.5 ? attributeQA(rng, scene, d) : countQA(rng, scene, Math.min(d, 3));
  if (!base) return null;
  const n = Number(base.answer);
  let distractors: string[];
  if (Number.isInteger(n)) distractors = [n + 1, n + 2, n - 1, n + 3].filter((v) => v >= 0).map(String);
  else if ((colorsFor(5) as string[]).includes(base.answer)) distractors = colorsFor(5) as string[];
  else distractors = shapesFor(5, 1000) as string[];
  const { options, letter } = makeOptions(rng, base.answer, distractors);
  return {
    task: 'choice',
    question: base.question,
    answer: letter,
    options,
    verifier: { type: 'multiple_choice' },
    rationale: `${base.rationale} That is option ${letter}.`,
    blank: { answer: base.answer, verifier: base.verifier },
  };
}

export const vqa: Generator<VqaPlan> = {
  domain: 'vqa',
  name: 'synth/vqa',
  description: 'shape scenes: counting with conditions, attributes, spatial relations, comparisons, multiple choice',
  tasks: TASKS,
  defaultSize: 336,
  minSize: 56,
  plan(rng: Rng, cfg: GenConfig): VqaPlan {
    const d = cfg.difficulty;
    return planUntil(() => {
      const task = pickTask(rng, TASKS, cfg, [3, 2, 2, 1.5, 1]);
      const [lo, hi] = objectCountRange(d, cfg.size);
      const scene = makeScene(rng, {
        n: rng.int(Math.max(lo, task === 'spatial' ? 2 : 1), Math.max(hi, task === 'spatial' ? 2 : 1)),
        shapes: shapesFor(d, cfg.size),
        colors: colorsFor(d),
        sizes: d >= 3,
        difficulty: d,
        size: cfg.size,
      });
      if (scene.objects.length === 0) return null;
      const make = { count: countQA, attribute: attributeQA, spatial: spatialQA, compare: compareQA, choice: choiceQA }[
        task
      ];
      const qa = make(rng, scene, d);
      return qa ? { scene, qa } : null;
    }, `vqa: could not plan an unambiguous question at difficulty ${d}, size ${cfg.size}`);
  },
  key: (p) => `${sceneKey(p.scene)}|${p.qa.question}`,
  build(p: VqaPlan, cfg: GenConfig, rng: Rng): Built {
    return {
      ...p.qa,
      images: [renderScene(p.scene, cfg.size, rng)],
      meta: { objects: p.scene.objects.map((o) => ({ name: objName(o, true), box: objBox(o, cfg.size) })) },
    };
  },
  describe: (p, cfg) => describeScene(p.scene, cfg.difficulty >= 3),
  regions: (p, cfg) =>
    p.scene.objects.map((o) => ({ label: objName(o, cfg.difficulty >= 3), box: objBox(o, cfg.size) })),
};
