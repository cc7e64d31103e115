/**
 * Canvas helpers shared by every generator: fonts shipped in assets/fonts (never system fonts, so a PNG is
 * byte-identical on every machine), colours, shapes, text fitting, noise and PNG encoding.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Canvas, createCanvas, GlobalFonts, type SKRSContext2D } from '@napi-rs/canvas';
import type { Rng } from '../util/rng.js';

export type Ctx = SKRSContext2D;
export type { Canvas };

/** Font families by role; each maps to one alias registered from assets/fonts. */
export const FONT_FAMILIES = {
  sans: 'GLMV Sans',
  serif: 'GLMV Serif',
  mono: 'GLMV Mono',
  cabin: 'GLMV Cabin',
  comic: 'GLMV Comic',
  courier: 'GLMV Courier',
  script: 'GLMV Script',
} as const;
export type FontRole = keyof typeof FONT_FAMILIES;

/** Families whose glyphs cover only printable ASCII: generators must not send them anything else. */
export const ASCII_ONLY_FONTS: ReadonlySet<FontRole> = new Set(['cabin', 'comic', 'courier', 'script']);

const FONT_FILES: Array<[file: string, role: FontRole]> = [
  ['DejaVuSans.ttf', 'sans'],
  ['DejaVuSans-Bold.ttf', 'sans'],
  ['DejaVuSerif.ttf', 'serif'],
  ['DejaVuSansMono.ttf', 'mono'],
  ['Cabin-Regular.otf', 'cabin'],
  ['ComicNeue-Regular.otf', 'comic'],
  ['CourierPrime-Regular.otf', 'courier'],
  ['DancingScript-Regular.otf', 'script'],
];

let fontsReady = false;

/** Folder holding the shipped fonts: `<repo>/assets/fonts`, found from this file in src/ or dist/. */
export function fontDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'assets', 'fonts');
    if (existsSync(join(candidate, 'DejaVuSans.ttf'))) return candidate;
    dir = dirname(dir);
  }
  throw new Error(
    `render: cannot find assets/fonts/DejaVuSans.ttf above ${fileURLToPath(import.meta.url)}; the font assets ship with the repository`,
  );
}

/** Registers the shipped fonts once per process. */
export function ensureFonts(): void {
  if (fontsReady) return;
  const dir = fontDir();
  for (const [file, role] of FONT_FILES) {
    const path = join(dir, file);
    if (!existsSync(path)) throw new Error(`render: font file ${path} is missing (expected in assets/fonts)`);
    const key = GlobalFonts.registerFromPath(path, FONT_FAMILIES[role]);
    if (!key) throw new Error(`render: could not load font ${path}`);
  }
  fontsReady = true;
}

/** CSS font string for a role, e.g. `font(12, 'serif', true)`. */
export function font(px: number, role: FontRole = 'sans', bold = false): string {
  return `${bold ? 'bold ' : ''}${Math.max(1, Math.round(px * 10) / 10)}px "${FONT_FAMILIES[role]}"`;
}

/** Rounds a side length to the processor's 28-px grid (at least 28). */
export function to28(px: number): number {
  return Math.max(28, Math.round(px / 28) * 28);
}

/** Width and height on the 28-px grid for a long side `size` and aspect ratio w/h. */
export function dims(size: number, aspect = 1): { w: number; h: number } {
  if (aspect >= 1) return { w: to28(size), h: to28(size / aspect) };
  return { w: to28(size * aspect), h: to28(size) };
}

export function newCanvas(w: number, h: number, background = '#ffffff'): { canvas: Canvas; ctx: Ctx } {
  if (!(Number.isInteger(w) && Number.isInteger(h) && w > 0 && h > 0 && w <= 8192 && h <= 8192)) {
    throw new Error(`render: canvas size must be integers in 1..8192, got ${w}x${h}`);
  }
  ensureFonts();
  const canvas = createCanvas(w, h);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = background;
  ctx.fillRect(0, 0, w, h);
  ctx.textBaseline = 'alphabetic';
  return { canvas, ctx };
}

export function toPng(canvas: Canvas): Buffer {
  return canvas.toBuffer('image/png');
}

/** The named colours of the synthetic worlds (names are what questions and answers use). */
export const COLORS: Record<string, string> = {
  red: '#d62728',
  green: '#2ca02c',
  blue: '#1f5fd0',
  yellow: '#e6c300',
  purple: '#8e44ad',
  orange: '#ff7f0e',
  gray: '#7f7f7f',
  brown: '#8c564b',
  pink: '#e377c2',
  cyan: '#17becf',
  black: '#222222',
};
export type ColorName = keyof typeof COLORS;

/** A colour with small seeded jitter in each channel so the model learns colour categories, not exact RGB. */
export function jitterColor(hex: string, rng: Rng, amount = 18): string {
  const n = Number.parseInt(hex.slice(1), 16);
  const ch = [(n >> 16) & 255, (n >> 8) & 255, n & 255].map((c) =>
    Math.max(0, Math.min(255, c + Math.round(rng.uniform(-amount, amount)))),
  );
  return `#${ch.map((c) => c.toString(16).padStart(2, '0')).join('')}`;
}

export const SHAPES = ['circle', 'square', 'triangle', 'diamond', 'star', 'hexagon'] as const;
export type ShapeName = (typeof SHAPES)[number];

/** Vertices of a regular-ish polygon shape centred at (cx, cy) with "radius" r; null for circles. */
export function shapePolygon(
  shape: ShapeName,
  cx: number,
  cy: number,
  r: number,
  rot = 0,
): Array<[number, number]> | null {
  const pts: Array<[number, number]> = [];
  const poly = (n: number, start: number, radius = (_: number) => r) => {
    for (let i = 0; i < n; i++) {
      const a = start + rot + (i * 2 * Math.PI) / n;
      pts.push([cx + radius(i) * Math.cos(a), cy + radius(i) * Math.sin(a)]);
    }
  };
  switch (shape) {
    case 'circle':
      return null;
    case 'square':
      poly(4, -Math.PI / 4, () => r * Math.SQRT2 * 0.9);
      break;
    case 'triangle':
      poly(3, -Math.PI / 2, () => r * 1.1);
      break;
    case 'diamond':
      poly(4, -Math.PI / 2, () => r * 1.05);
      break;
    case 'star':
      poly(10, -Math.PI / 2, (i) => (i % 2 === 0 ? r * 1.1 : r * 0.48));
      break;
    case 'hexagon':
      poly(6, 0, () => r);
      break;
  }
  return pts;
}

/** Pixel bounding box of a drawn shape (before anti-aliasing). */
export function shapeBox(shape: ShapeName, cx: number, cy: number, r: number): Box {
  const pts = shapePolygon(shape, cx, cy, r);
  if (!pts) return { x1: cx - r, y1: cy - r, x2: cx + r, y2: cy + r };
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  return { x1: Math.min(...xs), y1: Math.min(...ys), x2: Math.max(...xs), y2: Math.max(...ys) };
}

export function drawShape(
  ctx: Ctx,
  shape: ShapeName,
  cx: number,
  cy: number,
  r: number,
  fill: string,
  outline?: string,
) {
  ctx.beginPath();
  const pts = shapePolygon(shape, cx, cy, r);
  if (!pts) ctx.arc(cx, cy, r, 0, 2 * Math.PI);
  else {
    ctx.moveTo(pts[0]![0], pts[0]![1]);
    for (const [x, y] of pts.slice(1)) ctx.lineTo(x, y);
    ctx.closePath();
  }
  ctx.fillStyle = fill;
  ctx.fill();
  if (outline) {
    ctx.strokeStyle = outline;
    ctx.lineWidth = Math.max(1, r / 10);
    ctx.stroke();
  }
}

export interface Box {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

/** Box in pixels → integer box normalised to 0..scale (1000 for grounding, 999 for GUI), clamped. */
export function normBox(b: Box, w: number, h: number, scale = 1000): [number, number, number, number] {
  const c = (v: number, d: number) => Math.max(0, Math.min(scale, Math.round((v / d) * scale)));
  return [c(b.x1, w), c(b.y1, h), c(b.x2, w), c(b.y2, h)];
}

/** Text width in px for a font string. */
export function textWidth(ctx: Ctx, text: string, fontStr: string): number {
  ctx.font = fontStr;
  return ctx.measureText(text).width;
}

/** Largest font size <= maxPx (down to minPx) at which `text` fits into maxWidth. */
export function fitFont(
  ctx: Ctx,
  text: string,
  maxWidth: number,
  maxPx: number,
  role: FontRole = 'sans',
  bold = false,
  minPx = 4,
): number {
  let px = maxPx;
  while (px > minPx && textWidth(ctx, text, font(px, role, bold)) > maxWidth) px = Math.max(minPx, px * 0.9);
  return px;
}

/** Draws text with its left edge at x and its vertical centre at cy; returns the drawn box (measured ink). */
export function drawText(
  ctx: Ctx,
  text: string,
  x: number,
  cy: number,
  px: number,
  color = '#111111',
  role: FontRole = 'sans',
  bold = false,
  align: 'left' | 'center' | 'right' = 'left',
): Box {
  ctx.font = font(px, role, bold);
  ctx.fillStyle = color;
  ctx.textAlign = align;
  ctx.textBaseline = 'middle';
  ctx.fillText(text, x, cy);
  const m = ctx.measureText(text);
  ctx.textAlign = 'left';
  ctx.textBaseline = 'alphabetic';
  return {
    x1: x - m.actualBoundingBoxLeft,
    y1: cy - m.actualBoundingBoxAscent,
    x2: x + m.actualBoundingBoxRight,
    y2: cy + m.actualBoundingBoxDescent,
  };
}

/** Word-wraps text to lines no wider than maxWidth. */
export function wrapText(ctx: Ctx, text: string, maxWidth: number, fontStr: string): string[] {
  ctx.font = fontStr;
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const cand = line ? `${line} ${word}` : word;
    if (ctx.measureText(cand).width <= maxWidth || !line) line = cand;
    else {
      lines.push(line);
      line = word;
    }
  }
  if (line) lines.push(line);
  return lines;
}

/** Adds seeded Gaussian pixel noise (std in 0..255 units) over the whole canvas. */
export function addNoise(ctx: Ctx, w: number, h: number, rng: Rng, std: number): void {
  if (std <= 0) return;
  const img = ctx.getImageData(0, 0, w, h);
  const d = img.data;
  for (let i = 0; i < d.length; i += 4) {
    const n = rng.normal(0, std);
    d[i] = clamp255(d[i]! + n);
    d[i + 1] = clamp255(d[i + 1]! + n);
    d[i + 2] = clamp255(d[i + 2]! + n);
  }
  ctx.putImageData(img, 0, 0);
}

/** Scatters short random strokes (clutter) that never hide answer-relevant marks when drawn first. */
export function addClutter(ctx: Ctx, w: number, h: number, rng: Rng, count: number, alpha = 0.25): void {
  ctx.save();
  ctx.globalAlpha = alpha;
  for (let i = 0; i < count; i++) {
    ctx.strokeStyle = rng.pick(['#999999', '#bbbbbb', '#88aacc', '#ccaa88']);
    ctx.lineWidth = Math.max(1, rng.uniform(0.5, 2) * (w / 200));
    ctx.beginPath();
    const x = rng.uniform(0, w);
    const y = rng.uniform(0, h);
    ctx.moveTo(x, y);
    ctx.lineTo(x + rng.uniform(-w / 8, w / 8), y + rng.uniform(-h / 8, h / 8));
    ctx.stroke();
  }
  ctx.restore();
}

function clamp255(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
}

/** Draws an arrow from (x1,y1) to (x2,y2). */
export function drawArrow(ctx: Ctx, x1: number, y1: number, x2: number, y2: number, color: string, width: number) {
  const a = Math.atan2(y2 - y1, x2 - x1);
  const head = Math.max(3, width * 3);
  ctx.strokeStyle = color;
  ctx.fillStyle = color;
  ctx.lineWidth = width;
  ctx.beginPath();
  ctx.moveTo(x1, y1);
  ctx.lineTo(x2 - head * 0.8 * Math.cos(a), y2 - head * 0.8 * Math.sin(a));
  ctx.stroke();
  ctx.beginPath();
  ctx.moveTo(x2, y2);
  ctx.lineTo(x2 - head * Math.cos(a - 0.45), y2 - head * Math.sin(a - 0.45));
  ctx.lineTo(x2 - head * Math.cos(a + 0.45), y2 - head * Math.sin(a + 0.45));
  ctx.closePath();
  ctx.fill();
}

/** Rounded rectangle path (filled and/or stroked by the caller). */
export function roundRect(ctx: Ctx, x: number, y: number, w: number, h: number, r: number) {
  r = Math.max(0, Math.min(r, w / 2, h / 2));
  ctx.beginPath();
  ctx.moveTo(x + r, y);
  ctx.lineTo(x + w - r, y);
  ctx.quadraticCurveTo(x + w, y, x + w, y + r);
  ctx.lineTo(x + w, y + h - r);
  ctx.quadraticCurveTo(x + w, y + h, x + w - r, y + h);
  ctx.lineTo(x + r, y + h);
  ctx.quadraticCurveTo(x, y + h, x, y + h - r);
  ctx.lineTo(x, y + r);
  ctx.quadraticCurveTo(x, y, x + r, y);
  ctx.closePath();
}

let scratch: Ctx | null = null;
/** A shared context for measuring text while planning (before any image exists). */
export function measureCtx(): Ctx {
  if (!scratch) scratch = newCanvas(8, 8).ctx;
  return scratch;
}

/** Ink extent of text drawn with `drawText` at (x, cy): same numbers as the returned box, without drawing. */
export function measureText(
  text: string,
  px: number,
  role: FontRole = 'sans',
  bold = false,
): { w: number; ascent: number; descent: number; left: number; right: number } {
  const ctx = measureCtx();
  ctx.font = font(px, role, bold);
  ctx.textBaseline = 'middle';
  const m = ctx.measureText(text);
  ctx.textBaseline = 'alphabetic';
  return {
    w: m.width,
    ascent: m.actualBoundingBoxAscent,
    descent: m.actualBoundingBoxDescent,
    left: m.actualBoundingBoxLeft,
    right: m.actualBoundingBoxRight,
  };
}
