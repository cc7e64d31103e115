/** Draws a STEM plan: expressions and equations, geometry figures, plots on a grid, physics diagrams. */
import { type Ctx, drawArrow, drawText, fitFont, measureText, newCanvas, roundRect } from '../../render.js';
import { type Built, fmt } from '../types.js';
import type { StemPlan } from './plan.js';

export function renderStem(p: StemPlan, size: number): Built['images'][number] {
  const W = size;
  const H = size;
  const { canvas, ctx } = newCanvas(W, H, '#ffffff');
  const s = size / 336;
  const lw = Math.max(1, 2 * s);
  // Labels sit on a white patch so that lines crossing them never hide a digit.
  const label = (t: string, x: number, y: number, px = 22) => {
    const size = Math.max(7, px * s);
    const m = measureText(t, size, p.font);
    ctx.fillStyle = 'rgba(255,255,255,0.85)';
    ctx.fillRect(x - m.w / 2 - 2, y - m.ascent - 1, m.w + 4, m.ascent + m.descent + 2);
    return drawText(ctx, t, x, y, size, '#111111', p.font, false, 'center');
  };
  ctx.strokeStyle = '#222222';
  ctx.lineWidth = lw;
  const P = p.params;
  switch (p.kind) {
    case 'expression': {
      const text = P.text as string;
      const px = fitFont(ctx, text, W * 0.9, H * 0.22, p.font);
      drawText(ctx, text, W / 2, H / 2, px, '#111111', p.font, false, 'center');
      break;
    }
    case 'equation': {
      const lines = P.lines as unknown as string[];
      const px = Math.min(...lines.map((l) => fitFont(ctx, l, W * 0.9, H * (lines.length > 1 ? 0.17 : 0.22), p.font)));
      lines.forEach((l, i) => {
        drawText(
          ctx,
          l,
          W / 2,
          H / 2 + (i - (lines.length - 1) / 2) * px * 1.5,
          px,
          '#111111',
          p.font,
          false,
          'center',
        );
      });
      break;
    }
    case 'rect': {
      const w = P.w as number;
      const h = P.h as number;
      const k = Math.min((W * 0.66) / w, (H * 0.6) / h);
      const x0 = (W - w * k) / 2;
      const y0 = (H - h * k) / 2;
      ctx.fillStyle = '#dbe9fb';
      ctx.fillRect(x0, y0, w * k, h * k);
      ctx.strokeRect(x0, y0, w * k, h * k);
      label(`${w} cm`, W / 2, y0 + h * k + 16 * s);
      label(`${h} cm`, x0 + w * k + 30 * s, H / 2);
      break;
    }
    case 'angle': {
      const pts: Array<[number, number]> = [
        [W * 0.12, H * 0.8],
        [W * 0.88, H * 0.8],
        [W * 0.42, H * 0.2],
      ];
      polygon(ctx, pts, '#fdf0d5');
      label(`${P.a}°`, pts[0][0] + 40 * s, pts[0][1] - 14 * s);
      label(`${P.b}°`, pts[1][0] - 40 * s, pts[1][1] - 14 * s);
      label('x', pts[2][0], pts[2][1] + 34 * s);
      break;
    }
    case 'right':
    case 'right_leg': {
      const a = P.a as number;
      const b = P.b as number;
      const k = Math.min((W * 0.6) / b, (H * 0.6) / a);
      const x0 = W * 0.2;
      const y0 = H * 0.82;
      const pts: Array<[number, number]> = [
        [x0, y0],
        [x0 + b * k, y0],
        [x0, y0 - a * k],
      ];
      polygon(ctx, pts, '#e3f4e1');
      const q = 12 * s;
      ctx.strokeRect(x0, y0 - q, q, q);
      label(String(a), x0 - 18 * s, y0 - (a * k) / 2);
      label(p.kind === 'right' ? String(b) : 'x', x0 + (b * k) / 2, y0 + 16 * s);
      label(p.kind === 'right' ? 'c' : String(P.c), x0 + (b * k) / 2 + 14 * s, y0 - (a * k) / 2 - 10 * s);
      break;
    }
    case 'tri_area': {
      const base = P.base as number;
      const h = P.h as number;
      const k = Math.min((W * 0.66) / base, (H * 0.6) / h);
      const x0 = (W - base * k) / 2;
      const y0 = H * 0.8;
      const apex = x0 + base * k * 0.35;
      polygon(
        ctx,
        [
          [x0, y0],
          [x0 + base * k, y0],
          [apex, y0 - h * k],
        ],
        '#f6e1ef',
      );
      ctx.setLineDash([4 * s, 4 * s]);
      ctx.beginPath();
      ctx.moveTo(apex, y0);
      ctx.lineTo(apex, y0 - h * k);
      ctx.stroke();
      ctx.setLineDash([]);
      label(String(base), x0 + (base * k) / 2, y0 + 16 * s);
      label(`h = ${h}`, apex, y0 - (h * k) / 2);
      break;
    }
    case 'circle': {
      const R = Math.min(W, H) * 0.32;
      ctx.fillStyle = '#e8e3f8';
      ctx.beginPath();
      ctx.arc(W / 2, H / 2, R, 0, 2 * Math.PI);
      ctx.fill();
      ctx.stroke();
      ctx.beginPath();
      ctx.moveTo(W / 2, H / 2);
      ctx.lineTo(W / 2 + R, H / 2);
      ctx.stroke();
      label(`r = ${P.r}`, W / 2 + R / 2, H / 2 - 14 * s);
      break;
    }
    case 'lshape': {
      const { W: BW, H: BH, w, h } = P as { W: number; H: number; w: number; h: number };
      const k = Math.min((W * 0.62) / BW, (H * 0.62) / BH);
      const x0 = (W - BW * k) / 2;
      const y0 = (H - BH * k) / 2;
      polygon(
        ctx,
        [
          [x0, y0],
          [x0 + (BW - w) * k, y0],
          [x0 + (BW - w) * k, y0 + h * k],
          [x0 + BW * k, y0 + h * k],
          [x0 + BW * k, y0 + BH * k],
          [x0, y0 + BH * k],
        ],
        '#cfe3d0',
      );
      label(String(BW), x0 + (BW * k) / 2, y0 + BH * k + 16 * s);
      label(String(BH), x0 - 16 * s, y0 + (BH * k) / 2);
      label(String(w), x0 + (BW - w / 2) * k, y0 + h * k - 12 * s);
      label(String(h), x0 + (BW - w) * k + 14 * s, y0 + (h * k) / 2);
      break;
    }
    case 'line':
    case 'parabola':
      drawPlot(ctx, W, H, p);
      break;
    case 'speed': {
      const y = H * 0.6;
      roundRect(ctx, W * 0.1, y - 30 * s, 60 * s, 26 * s, 6 * s);
      ctx.fillStyle = '#d62728';
      ctx.fill();
      for (const cx of [W * 0.1 + 14 * s, W * 0.1 + 46 * s]) {
        ctx.beginPath();
        ctx.fillStyle = '#222222';
        ctx.arc(cx, y, 7 * s, 0, 2 * Math.PI);
        ctx.fill();
      }
      drawArrow(ctx, W * 0.1, y + 30 * s, W * 0.9, y + 30 * s, '#333333', lw);
      label(`d = ${P.dist} m`, W / 2, y + 52 * s);
      label(`t = ${P.t} s`, W / 2, H * 0.25);
      break;
    }
    case 'ohm':
    case 'series':
    case 'parallel':
      drawCircuit(ctx, W, H, p, s, label);
      break;
    case 'force': {
      const bw = 70 * s;
      const x0 = W / 2 - bw / 2;
      const y0 = H * 0.62;
      ctx.beginPath();
      ctx.moveTo(W * 0.05, y0 + bw / 2);
      ctx.lineTo(W * 0.95, y0 + bw / 2);
      ctx.stroke();
      ctx.fillStyle = '#8c564b';
      ctx.fillRect(x0, y0 - bw / 2, bw, bw);
      label(`${P.m} kg`, W / 2, y0, 18);
      drawArrow(ctx, x0 + bw, y0, x0 + bw + W * 0.25, y0, '#1f5fd0', lw * 1.5);
      label(`${P.f1} N`, x0 + bw + W * 0.13, y0 - 18 * s, 18);
      if ((P.f2 as number) > 0) {
        drawArrow(ctx, x0, y0, x0 - W * 0.25, y0, '#d62728', lw * 1.5);
        label(`${P.f2} N`, x0 - W * 0.13, y0 - 18 * s, 18);
      }
      break;
    }
    case 'lever': {
      const y = H * 0.55;
      ctx.beginPath();
      ctx.moveTo(W * 0.08, y);
      ctx.lineTo(W * 0.92, y);
      ctx.lineWidth = lw * 2;
      ctx.stroke();
      ctx.lineWidth = lw;
      polygon(
        ctx,
        [
          [W / 2, y],
          [W / 2 - 16 * s, y + 28 * s],
          [W / 2 + 16 * s, y + 28 * s],
        ],
        '#999999',
      );
      const unit = (W * 0.4) / 6;
      const xl = W / 2 - (P.d1 as number) * unit;
      const xr = W / 2 + (P.d2 as number) * unit;
      ctx.fillStyle = '#1f5fd0';
      ctx.fillRect(xl - 14 * s, y - 30 * s, 28 * s, 26 * s);
      label(`${P.m1} kg`, xl, y - 44 * s, 16);
      ctx.fillStyle = '#cccccc';
      ctx.fillRect(xr - 14 * s, y - 30 * s, 28 * s, 26 * s);
      label('?', xr, y - 17 * s, 16);
      label(`${P.d1} m`, (xl + W / 2) / 2, y + 42 * s, 15);
      label(`${P.d2} m`, (xr + W / 2) / 2, y + 42 * s, 15);
      break;
    }
    default:
      throw new Error(`stem: unknown figure kind ${p.kind}`);
  }
  return canvas;
}

function polygon(ctx: Ctx, pts: Array<[number, number]>, fill: string) {
  ctx.beginPath();
  ctx.moveTo(pts[0]![0], pts[0]![1]);
  for (const [x, y] of pts.slice(1)) ctx.lineTo(x, y);
  ctx.closePath();
  ctx.fillStyle = fill;
  ctx.fill();
  ctx.stroke();
}

function drawPlot(ctx: Ctx, W: number, H: number, p: StemPlan) {
  const R = 6;
  const m = Math.min(W, H) * 0.08;
  const sx = (x: number) => m + ((x + R) / (2 * R)) * (W - 2 * m);
  const sy = (y: number) => H - m - ((y + R) / (2 * R)) * (H - 2 * m);
  ctx.lineWidth = 1;
  ctx.strokeStyle = '#dddddd';
  for (let v = -R; v <= R; v++) {
    ctx.beginPath();
    ctx.moveTo(sx(v), sy(-R));
    ctx.lineTo(sx(v), sy(R));
    ctx.moveTo(sx(-R), sy(v));
    ctx.lineTo(sx(R), sy(v));
    ctx.stroke();
  }
  ctx.strokeStyle = '#333333';
  ctx.lineWidth = Math.max(1, W / 300);
  ctx.beginPath();
  ctx.moveTo(sx(-R), sy(0));
  ctx.lineTo(sx(R), sy(0));
  ctx.moveTo(sx(0), sy(-R));
  ctx.lineTo(sx(0), sy(R));
  ctx.stroke();
  const px = Math.max(6, W / 26);
  for (let v = -R + 1; v < R; v++) {
    if (v === 0 || v % 2 !== 0) continue;
    drawText(ctx, String(v), sx(v), sy(0) + px * 0.9, px, '#444444', 'sans', false, 'center');
    drawText(ctx, String(v), sx(0) - px * 0.9, sy(v), px, '#444444', 'sans', false, 'center');
  }
  const P = p.params as Record<string, number>;
  const f = p.kind === 'line' ? (x: number) => P.m! * x + P.b! : (x: number) => P.a! * (x - P.h!) ** 2 + P.k!;
  ctx.save();
  ctx.beginPath();
  ctx.rect(sx(-R), sy(R), sx(R) - sx(-R), sy(-R) - sy(R));
  ctx.clip();
  ctx.strokeStyle = '#1f5fd0';
  ctx.lineWidth = Math.max(1.5, W / 150);
  ctx.beginPath();
  for (let i = 0; i <= 240; i++) {
    const x = -R + (2 * R * i) / 240;
    if (i === 0) ctx.moveTo(sx(x), sy(f(x)));
    else ctx.lineTo(sx(x), sy(f(x)));
  }
  ctx.stroke();
  ctx.restore();
}

function drawCircuit(
  ctx: Ctx,
  W: number,
  H: number,
  p: StemPlan,
  s: number,
  label: (t: string, x: number, y: number, px?: number) => unknown,
) {
  const R = p.params.R as number[];
  const x0 = W * 0.15;
  const x1 = W * 0.85;
  const y0 = H * 0.25;
  const y1 = H * 0.75;
  ctx.strokeStyle = '#222222';
  ctx.beginPath();
  ctx.rect(x0, y0, x1 - x0, y1 - y0);
  ctx.stroke();
  // Battery on the left side.
  const by = (y0 + y1) / 2;
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(x0 - 12 * s, by - 10 * s, 24 * s, 20 * s);
  ctx.lineWidth = Math.max(1, 3 * s);
  ctx.beginPath();
  ctx.moveTo(x0 - 14 * s, by - 5 * s);
  ctx.lineTo(x0 + 14 * s, by - 5 * s);
  ctx.stroke();
  ctx.lineWidth = Math.max(1, 1.5 * s);
  ctx.beginPath();
  ctx.moveTo(x0 - 8 * s, by + 5 * s);
  ctx.lineTo(x0 + 8 * s, by + 5 * s);
  ctx.stroke();
  label(`${fmt(p.params.V as number)} V`, x0 + 36 * s, by, 18);
  const resistor = (cx: number, cy: number, r: number) => {
    ctx.fillStyle = '#fff3c4';
    ctx.fillRect(cx - 26 * s, cy - 9 * s, 52 * s, 18 * s);
    ctx.strokeRect(cx - 26 * s, cy - 9 * s, 52 * s, 18 * s);
    label(`${r} Ω`, cx, cy - 22 * s, 17);
  };
  if (p.kind === 'parallel') {
    const xm = (x0 + x1) / 2 + 20 * s;
    ctx.beginPath();
    ctx.moveTo(xm, y0);
    ctx.lineTo(xm, y1);
    ctx.stroke();
    resistor(xm, (y0 + y1) / 2 + 10 * s, R[0]!);
    ctx.fillStyle = '#ffffff';
    resistor(x1, (y0 + y1) / 2 + 10 * s, R[1]!);
  } else {
    for (const [i, r] of R.entries()) resistor(x0 + ((x1 - x0) * (i + 1)) / (R.length + 1), y0, r);
  }
  ctx.lineWidth = Math.max(1, 2 * s);
}
