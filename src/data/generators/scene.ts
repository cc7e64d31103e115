/**
 * Scenes of coloured shapes: the shared world of the VQA, grounding, multi-image and video generators and of the
 * pre-training captions. Coordinates are in 0..1000 units of a square image (x right, y down), so one plan renders
 * at any size; object radii grow at small sizes so that a 56-px image still shows each shape with >= 5-px radius.
 */
import type { Rng } from '../../util/rng.js';
import {
  addNoise,
  type Box,
  type Canvas,
  COLORS,
  type ColorName,
  drawShape,
  jitterColor,
  newCanvas,
  type ShapeName,
  shapeBox,
} from '../render.js';

export interface Obj {
  shape: ShapeName;
  color: ColorName;
  big: boolean;
  /** Centre and radius in 0..1000 units. */
  x: number;
  y: number;
  r: number;
}

export interface Scene {
  objects: Obj[];
  /** Background colour (hex); white at easy levels. */
  bg: string;
  /** Pixel-noise std at render time (0 = clean). */
  noise: number;
}

export function shapesFor(difficulty: number, size: number): ShapeName[] {
  const s: ShapeName[] = ['circle', 'square', 'triangle'];
  if (difficulty >= 3) s.push('diamond', 'star');
  if (difficulty >= 5 && size >= 112) s.push('hexagon');
  return s;
}

export function colorsFor(difficulty: number): ColorName[] {
  const c: ColorName[] = ['red', 'green', 'blue', 'yellow'];
  if (difficulty >= 3) c.push('purple', 'orange');
  if (difficulty >= 4) c.push('gray', 'black');
  return c;
}

export function objectCountRange(difficulty: number, size: number): [number, number] {
  const ranges: Array<[number, number]> = [
    [1, 3],
    [2, 4],
    [3, 6],
    [4, 8],
    [5, 10],
  ];
  const [lo, hi] = ranges[difficulty - 1]!;
  const capN = size < 112 ? 6 : size < 224 ? 8 : 12;
  return [Math.min(lo, capN), Math.min(hi, capN)];
}

/** Smallest radius in units for a size: 5 px at the rendered size, never below 45 units. */
export function baseRadius(size: number): number {
  return Math.max(45, 5000 / size);
}

export interface SceneOptions {
  n: number;
  shapes: readonly ShapeName[];
  colors: readonly ColorName[];
  /** Whether objects come in two size classes (otherwise all are "big"). */
  sizes: boolean;
  difficulty: number;
  size: number;
}

/** Random non-overlapping objects; fewer than n only if the image is full. */
export function makeScene(rng: Rng, o: SceneOptions): Scene {
  const a = baseRadius(o.size);
  const objects: Obj[] = [];
  for (let i = 0; i < o.n; i++) {
    const big = o.sizes ? rng.random() < 0.5 : true;
    const r = Math.round(big ? rng.uniform(a * 1.6, a * 1.9) : rng.uniform(a, a * 1.2));
    for (let t = 0; t < 200; t++) {
      const x = Math.round(rng.uniform(r + 20, 1000 - r - 20));
      const y = Math.round(rng.uniform(r + 20, 1000 - r - 20));
      if (objects.every((p) => Math.hypot(p.x - x, p.y - y) > p.r + r + 40)) {
        objects.push({ shape: rng.pick(o.shapes), color: rng.pick(o.colors), big, x, y, r });
        break;
      }
    }
  }
  const bg = o.difficulty >= 4 ? rng.pick(['#ffffff', '#f4f1e8', '#eef3f8', '#f2f2f2']) : '#ffffff';
  const noise = o.difficulty >= 5 ? 6 : 0;
  return { objects, bg, noise };
}

/** Reading order: top-to-bottom in bands of 200 units, then left to right. */
export function readingOrder(objs: readonly Obj[]): Obj[] {
  return [...objs].sort((p, q) => Math.floor(p.y / 200) - Math.floor(q.y / 200) || p.x - q.x);
}

export function renderScene(scene: Scene, size: number, rng: Rng): Canvas {
  const { canvas, ctx } = newCanvas(size, size, scene.bg);
  const k = size / 1000;
  for (const o of scene.objects)
    drawShape(ctx, o.shape, o.x * k, o.y * k, o.r * k, jitterColor(COLORS[o.color]!, rng, 12));
  if (scene.noise > 0) addNoise(ctx, size, size, rng, scene.noise);
  return canvas;
}

/** "large red circle" / "red circle". */
export function objName(o: Obj, withSize: boolean): string {
  return `${withSize ? (o.big ? 'large ' : 'small ') : ''}${o.color} ${o.shape}`;
}

/** Pixel box of an object at a given image size. */
export function objBox(o: Obj, size: number): Box {
  const k = size / 1000;
  return shapeBox(o.shape, o.x * k, o.y * k, o.r * k);
}

/** Coarse position words, e.g. "top left". */
export function where(o: Obj): string {
  const v = o.y < 333 ? 'top' : o.y < 667 ? 'middle' : 'bottom';
  const h = o.x < 333 ? 'left' : o.x < 667 ? 'center' : 'right';
  if (v === 'middle' && h === 'center') return 'center';
  return `${v} ${h}`;
}

/** "(x 120, y 340)" rounded to 10 units: the rationale's coordinate notation. */
export function at(o: Obj): string {
  return `(${Math.round(o.x / 10) * 10}, ${Math.round(o.y / 10) * 10})`;
}

/** A coarse key for the train/held-out partition: nearby layouts of the same content share a key. */
export function sceneKey(scene: Scene): string {
  return readingOrder(scene.objects)
    .map((o) => `${o.shape}.${o.color}.${o.big ? 'L' : 'S'}.${Math.round(o.x / 100)}.${Math.round(o.y / 100)}`)
    .join(';');
}

/** Objects matching every given attribute. */
export function matching(objs: readonly Obj[], f: { shape?: string; color?: string; big?: boolean }): Obj[] {
  return objs.filter(
    (o) =>
      (f.shape === undefined || o.shape === f.shape) &&
      (f.color === undefined || o.color === f.color) &&
      (f.big === undefined || o.big === f.big),
  );
}

/** Shortest name that identifies an object uniquely in the scene, or null. */
export function uniqueName(objs: readonly Obj[], o: Obj, allowSize: boolean): string | null {
  const same = (f: Parameters<typeof matching>[1]) => matching(objs, f).length === 1;
  if (same({ shape: o.shape, color: o.color })) return `${o.color} ${o.shape}`;
  if (allowSize && same({ shape: o.shape, color: o.color, big: o.big })) return objName(o, true);
  return null;
}

/** Dense caption of a scene, in reading order. */
export function describeScene(scene: Scene, withSize: boolean): string {
  const objs = readingOrder(scene.objects);
  if (objs.length === 0) return 'An empty image.';
  const bg = scene.bg === '#ffffff' ? 'white' : 'light';
  const parts = objs.map((o) => `a ${objName(o, withSize)} at the ${where(o)} ${at(o)}`);
  return `An image with ${objs.length} object${objs.length === 1 ? '' : 's'} on a ${bg} background: ${parts.join('; ')}.`;
}
