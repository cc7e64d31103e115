/**
 * Grounding boxes and points in answers, and their geometry: parsing in any bracket style, validation against the
 * coordinate system, normalised ↔ pixel coordinates, IoU and point-in-box.
 */

/** An axis-aligned box `[x1, y1, x2, y2]`: top-left then bottom-right. */
export type Box = [number, number, number, number];
/** A point `[x, y]`. */
export type Point = [number, number];

/**
 * Coordinate systems of GLM-V outputs: `grounding` boxes are normalised to 0–1000 (docs/design.md D.5); `gui` boxes
 * (AndroidWorld `box_2d`) are integer thousandths 0–999. Both map pixel ↔ norm with a factor of 1000; they differ in
 * the valid range.
 */
export type CoordSystem = 'grounding' | 'gui';

export const COORD_MAX: Record<CoordSystem, number> = { grounding: 1000, gui: 999 };

export type BoxProblem = 'out_of_range' | 'inverted' | 'degenerate' | 'not_finite';

export interface ParsedBox {
  box: Box;
  /** The matched source text, e.g. `[10, 20, 30, 40]`. */
  raw: string;
  /** Why the box is unusable for scoring; absent when valid. */
  problem?: BoxProblem;
}

export interface BoxParseOptions {
  /** Range to validate against; default `grounding` (0–1000). */
  system?: CoordSystem;
}

const NUM = '[-+]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][-+]?\\d+)?';
// Four numbers inside one matching bracket pair: [] () <> or {}; separators are commas and/or spaces.
const BOX_RE = new RegExp(
  `\\[\\s*(${NUM})\\s*[,\\s]\\s*(${NUM})\\s*[,\\s]\\s*(${NUM})\\s*[,\\s]\\s*(${NUM})\\s*\\]` +
    `|\\(\\s*(${NUM})\\s*[,\\s]\\s*(${NUM})\\s*[,\\s]\\s*(${NUM})\\s*[,\\s]\\s*(${NUM})\\s*\\)` +
    `|<\\s*(${NUM})\\s*[,\\s]\\s*(${NUM})\\s*[,\\s]\\s*(${NUM})\\s*[,\\s]\\s*(${NUM})\\s*>`,
  'g',
);
const POINT_RE = new RegExp(
  `\\[\\s*(${NUM})\\s*[,\\s]\\s*(${NUM})\\s*\\]|\\(\\s*(${NUM})\\s*[,\\s]\\s*(${NUM})\\s*\\)|<\\s*(${NUM})\\s*[,\\s]\\s*(${NUM})\\s*>`,
  'g',
);

/** Validates a normalised box against a coordinate system. */
export function boxProblem(box: Box, system: CoordSystem = 'grounding'): BoxProblem | undefined {
  if (!box.every(Number.isFinite)) return 'not_finite';
  const max = COORD_MAX[system];
  if (box.some((v) => v < 0 || v > max)) return 'out_of_range';
  if (box[0] > box[2] || box[1] > box[3]) return 'inverted';
  if (box[0] === box[2] || box[1] === box[3]) return 'degenerate';
  return undefined;
}

/**
 * All boxes in `text`, in any bracket style: `[x1,y1,x2,y2]`, `[[…],[…]]`, `(…)`, `<…>`, separated by commas or
 * spaces. Each comes with its validation problem (out of range, inverted, degenerate) instead of being dropped, so
 * the caller decides and can report why.
 */
export function parseBoxes(text: string, opts: BoxParseOptions = {}): ParsedBox[] {
  const out: ParsedBox[] = [];
  BOX_RE.lastIndex = 0;
  for (let m = BOX_RE.exec(text); m !== null; m = BOX_RE.exec(text)) {
    const g = m[1] !== undefined ? 1 : m[5] !== undefined ? 5 : 9;
    const box: Box = [Number(m[g]), Number(m[g + 1]), Number(m[g + 2]), Number(m[g + 3])];
    const problem = boxProblem(box, opts.system);
    out.push(problem ? { box, raw: m[0], problem } : { box, raw: m[0] });
  }
  return out;
}

/** All points `[x,y]` / `(x,y)` / `<x,y>` in `text` (GUI clicks, OSWorld `start_box='[x,y]'`). */
export function parsePoints(text: string): Point[] {
  const out: Point[] = [];
  POINT_RE.lastIndex = 0;
  for (let m = POINT_RE.exec(text); m !== null; m = POINT_RE.exec(text)) {
    const g = m[1] !== undefined ? 1 : m[3] !== undefined ? 3 : 5;
    out.push([Number(m[g]), Number(m[g + 1])]);
  }
  return out;
}

export interface ImageSize {
  width: number;
  height: number;
}

function checkSize(size: ImageSize, what: string): void {
  if (!(Number.isFinite(size.width) && size.width > 0 && Number.isFinite(size.height) && size.height > 0))
    throw new Error(`${what}: image size must have positive finite width and height, got ${JSON.stringify(size)}`);
}

/** Normalised (0–1000 / 0–999) box → pixel box of the original image (floating point, not rounded). */
export function normToPixel(box: Box, size: ImageSize): Box {
  checkSize(size, 'normToPixel');
  return [
    (box[0] * size.width) / 1000,
    (box[1] * size.height) / 1000,
    (box[2] * size.width) / 1000,
    (box[3] * size.height) / 1000,
  ];
}

/**
 * Pixel box of the original image → normalised integers, rounded, clamped to the system's range (GLM emits
 * integers; clamping keeps a box touching the right/bottom edge valid in the 0–999 GUI system).
 */
export function pixelToNorm(box: Box, size: ImageSize, system: CoordSystem = 'grounding'): Box {
  checkSize(size, 'pixelToNorm');
  const max = COORD_MAX[system];
  const n = (v: number, s: number) => Math.min(max, Math.max(0, Math.round((v / s) * 1000)));
  return [n(box[0], size.width), n(box[1], size.height), n(box[2], size.width), n(box[3], size.height)];
}

export function normPointToPixel(p: Point, size: ImageSize): Point {
  checkSize(size, 'normPointToPixel');
  return [(p[0] * size.width) / 1000, (p[1] * size.height) / 1000];
}

export function pixelPointToNorm(p: Point, size: ImageSize, system: CoordSystem = 'grounding'): Point {
  checkSize(size, 'pixelPointToNorm');
  const max = COORD_MAX[system];
  const n = (v: number, s: number) => Math.min(max, Math.max(0, Math.round((v / s) * 1000)));
  return [n(p[0], size.width), n(p[1], size.height)];
}

/** Intersection over union of two boxes (any consistent coordinate system); 0 for empty or invalid boxes. */
export function iou(a: Box, b: Box): number {
  const areaA = Math.max(0, a[2] - a[0]) * Math.max(0, a[3] - a[1]);
  const areaB = Math.max(0, b[2] - b[0]) * Math.max(0, b[3] - b[1]);
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const union = areaA + areaB - inter;
  return union > 0 ? inter / union : 0;
}

export function boxCenter(b: Box): Point {
  return [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2];
}

/** The point lies inside the box, edges included (ScreenSpot's point-in-box, the GUI reward's center match). */
export function pointInBox(p: Point, b: Box): boolean {
  return p[0] >= b[0] && p[0] <= b[2] && p[1] >= b[1] && p[1] <= b[3];
}
