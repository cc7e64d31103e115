/**
 * Video: short clips (4–16 frames at 2 fps) of shapes that move, appear and disappear. Questions ask for the
 * direction of motion, the order of events, counts over time, and "at what second" an event happens. Events
 * happen on even frames so that the processor's integer-second timestamps (one per pair of frames) name them
 * exactly.
 */
import type { Rng } from '../../util/rng.js';
import { COLORS, type ColorName, drawShape, jitterColor, newCanvas, type ShapeName } from '../render.js';
import type { VerifierSpec } from '../sample.js';
import { colorsFor, shapesFor } from './scene.js';
import { type Built, type GenConfig, type Generator, pickTask, planUntil } from './types.js';

const TASKS = ['direction', 'order', 'count', 'when'] as const;
type Task = (typeof TASKS)[number];
const FPS = 2;

interface Actor {
  shape: ShapeName;
  color: ColorName;
  /** Start centre and per-frame velocity in 0..1000 units. */
  x: number;
  y: number;
  vx: number;
  vy: number;
  r: number;
  /** First and last visible frame (inclusive). */
  from: number;
  to: number;
}

export interface VideoPlan {
  task: Task;
  frames: number;
  actors: Actor[];
  qa: { question: string; answer: string; rationale: string };
}

const VIDEO: VerifierSpec = { type: 'video' };
const name = (a: Actor) => `${a.color} ${a.shape}`;
const sec = (frame: number) => Math.floor(frame / FPS);

function planVideo(rng: Rng, cfg: GenConfig): VideoPlan | null {
  const d = cfg.difficulty;
  const T = [4, 6, 8, 12, 16][d - 1]!;
  const task = pickTask(rng, TASKS, cfg);
  const shapes = shapesFor(Math.min(d, 3), cfg.size);
  const colors = colorsFor(Math.min(d, 3));
  const n = task === 'direction' ? (d <= 2 ? 1 : rng.int(2, 3)) : rng.int(2, Math.min(2 + d, 5));
  const r = Math.max(60, 6000 / cfg.size);
  const actors: Actor[] = [];
  const used = new Set<string>();
  for (let i = 0; i < n; i++) {
    let shape: ShapeName;
    let color: ColorName;
    let t = 0;
    do {
      shape = rng.pick(shapes);
      color = rng.pick(colors);
    } while (used.has(`${color} ${shape}`) && ++t < 50);
    if (used.has(`${color} ${shape}`)) return null;
    used.add(`${color} ${shape}`);
    const appearing = task !== 'direction' && (task === 'when' || task === 'order' || task === 'count');
    const from = appearing ? 2 * rng.int(0, T / 2 - 1) : 0;
    const to = d >= 5 && task === 'count' && rng.random() < 0.4 ? Math.min(T - 1, from + 2 * rng.int(1, 3)) : T - 1;
    actors.push({
      shape,
      color,
      x: rng.uniform(r + 40, 1000 - r - 40),
      y: rng.uniform(r + 40, 1000 - r - 40),
      vx: 0,
      vy: 0,
      r,
      from,
      to,
    });
  }
  if (task === 'direction') {
    const a = actors[0]!;
    const dir = rng.pick(['left', 'right', 'up', 'down'] as const);
    const span = 1000 - 2 * (r + 40);
    const speed = (span * rng.uniform(0.5, 0.9)) / (T - 1);
    const horiz = dir === 'left' || dir === 'right';
    const start = dir === 'right' || dir === 'down' ? r + 40 : 1000 - r - 40;
    if (horiz) a.x = start;
    else a.y = start;
    a.vx = horiz ? (dir === 'right' ? speed : -speed) : 0;
    a.vy = horiz ? 0 : dir === 'down' ? speed : -speed;
    const end = (v: number, dv: number) => Math.round(v + dv * (T - 1));
    return {
      task,
      frames: T,
      actors,
      qa: {
        question: `In which direction does the ${name(a)} move? Answer left, right, up or down.`,
        answer: dir,
        rationale: `In the first frame the ${name(a)} is at (${Math.round(a.x)}, ${Math.round(a.y)}); in the last frame it is at (${end(a.x, a.vx)}, ${end(a.y, a.vy)}). ${horiz ? 'x' : 'y'} ${(horiz ? a.vx : a.vy) > 0 ? 'increases' : 'decreases'}, so it moves ${dir}.`,
      },
    };
  }
  // Gentle drift for the others, so frames differ even without events.
  for (const a of actors) {
    a.vx = rng.uniform(-8, 8);
    a.vy = rng.uniform(-8, 8);
  }
  const timeline = [...actors].sort((p, q) => p.from - q.from);
  const events = timeline.map((a) => `the ${name(a)} appears at ${sec(a.from)} s`).join(', ');
  if (task === 'order') {
    const [a, b] = rng.shuffle([...actors]).slice(0, 2) as [Actor, Actor];
    if (a.from === b.from) return null;
    const first = a.from < b.from ? a : b;
    return {
      task,
      frames: T,
      actors,
      qa: {
        question: `Which appears first in the video: the ${name(a)} or the ${name(b)}?`,
        answer: name(first),
        rationale: `The ${name(a)} first appears at ${sec(a.from)} s and the ${name(b)} at ${sec(b.from)} s. So the ${name(first)} appears first.`,
      },
    };
  }
  if (task === 'count') {
    if (d >= 5 && actors.some((a) => a.to < T - 1)) {
      const last = actors.filter((a) => a.to === T - 1);
      return {
        task,
        frames: T,
        actors,
        qa: {
          question: 'How many objects are visible at the end of the video?',
          answer: String(last.length),
          rationale: `Events: ${events}; ${actors
            .filter((a) => a.to < T - 1)
            .map((a) => `the ${name(a)} disappears after ${sec(a.to)} s`)
            .join(', ')}. At the end, visible: ${last.map(name).join(', ') || 'none'}. That is ${last.length}.`,
        },
      };
    }
    return {
      task,
      frames: T,
      actors,
      qa: {
        question: 'How many different objects appear during the video?',
        answer: String(actors.length),
        rationale: `Events: ${events}. Distinct objects: ${actors.map(name).join(', ')}. That is ${actors.length}.`,
      },
    };
  }
  const late = actors.filter((a) => a.from > 0);
  if (late.length === 0) return null;
  const a = rng.pick(late);
  if (d >= 5) {
    const b = actors.find((x) => x !== a && x.from < a.from);
    if (b) {
      return {
        task,
        frames: T,
        actors,
        qa: {
          question: `How many seconds after the ${name(b)} appears does the ${name(a)} appear?`,
          answer: String(sec(a.from) - sec(b.from)),
          rationale: `The ${name(b)} appears at ${sec(b.from)} s and the ${name(a)} at ${sec(a.from)} s. ${sec(a.from)} - ${sec(b.from)} = ${sec(a.from) - sec(b.from)}.`,
        },
      };
    }
  }
  return {
    task,
    frames: T,
    actors,
    qa: {
      question: `At what second does the ${name(a)} first appear?`,
      answer: String(sec(a.from)),
      rationale: `Frames come at ${FPS} per second. The ${name(a)} is absent before frame ${a.from + 1} and present from frame ${a.from + 1}, whose timestamp is ${sec(a.from)} s. So it appears at second ${sec(a.from)}.`,
    },
  };
}

function renderFrame(p: VideoPlan, t: number, size: number, rng: Rng) {
  const { canvas, ctx } = newCanvas(size, size, '#ffffff');
  const k = size / 1000;
  for (const a of p.actors) {
    if (t < a.from || t > a.to) continue;
    const x = Math.min(1000 - a.r, Math.max(a.r, a.x + a.vx * t));
    const y = Math.min(1000 - a.r, Math.max(a.r, a.y + a.vy * t));
    drawShape(ctx, a.shape, x * k, y * k, a.r * k, jitterColor(COLORS[a.color]!, rng, 6));
  }
  return canvas;
}

export const video: Generator<VideoPlan> = {
  domain: 'video',
  name: 'synth/video',
  description: 'clips of 4-16 frames at 2 fps: motion direction, order of appearance, counts over time, timestamps',
  tasks: TASKS,
  defaultSize: 224,
  minSize: 56,
  plan(rng, cfg) {
    return planUntil(() => planVideo(rng, cfg), `video: could not plan a clip at difficulty ${cfg.difficulty}`);
  },
  key: (p) =>
    `${p.frames}|${p.actors.map((a) => `${a.color} ${a.shape} ${a.from}-${a.to} ${Math.round(a.x / 100)},${Math.round(a.y / 100)} ${Math.sign(Math.round(a.vx))},${Math.sign(Math.round(a.vy))}`).join(';')}|${p.qa.question}`,
  build(p, cfg, rng): Built {
    const frames = Array.from({ length: p.frames }, (_, t) => renderFrame(p, t, cfg.size, rng));
    return { task: p.task, ...p.qa, verifier: VIDEO, images: [], video: { frames, fps: FPS } };
  },
  describe(p) {
    const parts = p.actors.map((a) => {
      const moving = Math.abs(a.vx) > 20 || Math.abs(a.vy) > 20;
      const dir = !moving
        ? ''
        : Math.abs(a.vx) > Math.abs(a.vy)
          ? a.vx > 0
            ? ' and moves right'
            : ' and moves left'
          : a.vy > 0
            ? ' and moves down'
            : ' and moves up';
      const gone = a.to < p.frames - 1 ? `, disappearing after ${sec(a.to)} s` : '';
      return `a ${name(a)} appears at ${sec(a.from)} s${dir}${gone}`;
    });
    return `A ${p.frames / FPS}-second clip at ${FPS} frames per second: ${parts.join('; ')}.`;
  },
};
