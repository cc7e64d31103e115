/**
 * Charts: bar, grouped bar, line and pie charts with axes, gridlines, legends and year or category labels.
 * Questions read a value, compare, take differences, sums, averages and trends; unlabelled values always sit on
 * gridlines so they can be read exactly. Years appear both as labels and as answers (the chart verifier compares
 * years exactly).
 */
import type { Rng } from '../../util/rng.js';
import { COLORS, drawText, measureText, newCanvas } from '../render.js';
import type { VerifierSpec } from '../sample.js';
import { pool, titleCase } from '../words.js';
import { type Built, cap, fmt, type GenConfig, type Generator, pickTask, planUntil } from './types.js';

const TASKS = ['read', 'extreme', 'compare', 'aggregate', 'trend'] as const;
type Task = (typeof TASKS)[number];
type Kind = 'bar' | 'line' | 'pie' | 'grouped';

interface Series {
  name: string;
  values: number[];
  color: string;
}

export interface ChartPlan {
  task: Task;
  kind: Kind;
  title: string;
  labels: string[];
  series: Series[];
  showValues: boolean;
  step: number;
  yMax: number;
  qa: { question: string; answer: string; rationale: string };
}

const VERIFIER: VerifierSpec = { type: 'chart' };
const SERIES_COLORS = [COLORS.blue!, COLORS.orange!, COLORS.green!, COLORS.red!, COLORS.purple!, COLORS.brown!];
const TOPICS = ['Sales', 'Visitors', 'Revenue', 'Downloads', 'Rainfall', 'Orders', 'Members', 'Exports'];

function valueList(rng: Rng, n: number, step: number, maxSteps: number): number[] {
  return Array.from({ length: n }, () => step * rng.int(1, maxSteps));
}

function readAll(s: Series, labels: string[]): string {
  return labels.map((l, i) => `${l}: ${fmt(s.values[i]!)}`).join(', ');
}

function planChart(rng: Rng, cfg: GenConfig): ChartPlan | null {
  const d = cfg.difficulty;
  const small = cfg.size < 224;
  const kinds: Kind[] =
    d <= 1 ? ['bar'] : d === 2 ? ['bar', 'line'] : d === 3 ? ['bar', 'line', 'pie'] : ['grouped', 'line', 'pie', 'bar'];
  const kind = rng.pick(kinds);
  const n =
    kind === 'pie' ? rng.int(3, small ? 3 : 5) : small ? rng.int(3, 4) : rng.int(d <= 1 ? 3 : 4, d <= 2 ? 5 : 7);
  const useYears = kind === 'line' || (kind !== 'pie' && rng.random() < 0.5);
  let labels: string[];
  if (useYears) {
    const y0 = rng.int(1995, 2024 - n);
    labels = Array.from({ length: n }, (_, i) => String(y0 + i));
  } else {
    const p = pool(rng.pick(['fruit', 'animal', 'department'] as const), cfg.split).filter(
      (w) => w.length <= (small ? 5 : 9),
    );
    if (p.length < n) return null;
    labels = rng
      .shuffle([...p])
      .slice(0, n)
      .map(titleCase);
  }
  const topic = rng.pick(TOPICS);
  const step = rng.pick([5, 10, 20, 50, 100]);
  const maxSteps = d <= 2 ? 8 : 10;
  const nSeries = kind === 'grouped' || (kind === 'line' && d >= 4 && rng.random() < 0.6) ? 2 : 1;
  const names =
    nSeries === 2 ? rng.shuffle(['North', 'South', 'East', 'West', 'Online', 'Store']).slice(0, 2) : [topic];
  let series: Series[];
  if (kind === 'pie') {
    // Percentages in multiples of 5 that sum to 100.
    const parts = Array.from({ length: n }, () => 1);
    for (let left = 20 - n; left > 0; left--) parts[rng.int(0, n - 1)]!++;
    series = [{ name: topic, values: parts.map((v) => v * 5), color: SERIES_COLORS[0]! }];
  } else {
    series = names.map((name, i) => ({ name, values: valueList(rng, n, step, maxSteps), color: SERIES_COLORS[i]! }));
  }
  const showValues = kind === 'pie' || d <= 2 || (d === 3 && rng.random() < 0.3);
  const yMax = step * (maxSteps + 1);
  const title =
    kind === 'pie'
      ? `${topic} share by ${useYears ? 'year' : 'category'}`
      : `${topic}${nSeries === 2 ? ' by region' : ''}`;
  const task = pickTask(rng, TASKS, cfg, [2, 2, 2, d >= 3 ? 2 : 0.5, useYears ? 1 : 0.2]);
  const qa = makeQA(rng, task, kind, labels, series, d, useYears);
  if (!qa) return null;
  return { task, kind, title, labels, series, showValues, step, yMax, qa };
}

function makeQA(
  rng: Rng,
  task: Task,
  kind: Kind,
  labels: string[],
  series: Series[],
  d: number,
  years: boolean,
): ChartPlan['qa'] | null {
  const s = rng.pick(series);
  const unit = kind === 'pie' ? '%' : '';
  const sname = series.length > 1 ? ` for ${s.name}` : '';
  const lead = `Reading the chart${sname}: ${readAll(s, labels)}${unit ? ' (percent)' : ''}.`;
  const i = rng.int(0, labels.length - 1);
  const v = s.values;
  const inL = (l: string) => (years ? `in ${l}` : `for ${l}`);
  switch (task) {
    case 'read':
      return {
        question:
          series.length > 1
            ? `What is the ${s.name} value ${inL(labels[i]!)}?`
            : `What is the value ${inL(labels[i]!)}?`,
        answer: fmt(v[i]!),
        rationale: `${series.length > 1 ? `The ${s.name} series is drawn in its legend color. ` : ''}The ${kind === 'pie' ? 'slice' : kind === 'line' ? 'point' : 'bar'} for ${labels[i]} is at ${fmt(v[i]!)}${unit}. So the answer is ${fmt(v[i]!)}.`,
      };
    case 'extreme': {
      const max = rng.random() < 0.6;
      const best = max ? Math.max(...v) : Math.min(...v);
      if (v.filter((x) => x === best).length !== 1) return null;
      const at = labels[v.indexOf(best)]!;
      return {
        question: years
          ? `In which year was the value${sname} ${max ? 'highest' : 'lowest'}?`
          : `Which category has the ${max ? 'highest' : 'lowest'} value${sname}?`,
        answer: at,
        rationale: `${lead} The ${max ? 'largest' : 'smallest'} is ${fmt(best)}, at ${at}.`,
      };
    }
    case 'compare': {
      if (series.length === 2 && d >= 4) {
        const [a, b] = series as [Series, Series];
        const diff = a.values[i]! - b.values[i]!;
        return {
          question: `${cap(inL(labels[i]!))}, what is ${a.name} minus ${b.name}?`,
          answer: fmt(diff),
          rationale: `${cap(inL(labels[i]!))}, ${a.name} is ${fmt(a.values[i]!)} and ${b.name} is ${fmt(b.values[i]!)}. ${fmt(a.values[i]!)} - ${fmt(b.values[i]!)} = ${fmt(diff)}.`,
        };
      }
      let j = rng.int(0, labels.length - 1);
      if (j === i) j = (i + 1) % labels.length;
      const diff = Math.abs(v[i]! - v[j]!);
      return {
        question: `What is the difference between the values${sname} of ${labels[i]} and ${labels[j]}?`,
        answer: fmt(diff),
        rationale: `${labels[i]} is ${fmt(v[i]!)} and ${labels[j]} is ${fmt(v[j]!)}. The difference is |${fmt(v[i]!)} - ${fmt(v[j]!)}| = ${fmt(diff)}.`,
      };
    }
    case 'aggregate': {
      if (d >= 5 && series.length === 2) {
        const [a, b] = series as [Series, Series];
        const ta = a.values.reduce((x, y) => x + y, 0);
        const tb = b.values.reduce((x, y) => x + y, 0);
        return {
          question: `What is the total of ${a.name} minus the total of ${b.name}?`,
          answer: fmt(ta - tb),
          rationale: `${a.name}: ${a.values.map(fmt).join(' + ')} = ${fmt(ta)}. ${b.name}: ${b.values.map(fmt).join(' + ')} = ${fmt(tb)}. ${fmt(ta)} - ${fmt(tb)} = ${fmt(ta - tb)}.`,
        };
      }
      const total = v.reduce((x, y) => x + y, 0);
      if (d >= 4 && kind !== 'pie' && total % v.length === 0) {
        return {
          question: `What is the average value${sname} across all ${years ? 'years' : 'categories'}?`,
          answer: fmt(total / v.length),
          rationale: `${lead} Sum = ${v.map(fmt).join(' + ')} = ${fmt(total)}. Average = ${fmt(total)} / ${v.length} = ${fmt(total / v.length)}.`,
        };
      }
      let j = rng.int(0, labels.length - 1);
      if (j === i) j = (i + 1) % labels.length;
      return {
        question: `What is the sum of the values${sname} of ${labels[i]} and ${labels[j]}?`,
        answer: fmt(v[i]! + v[j]!),
        rationale: `${labels[i]} is ${fmt(v[i]!)} and ${labels[j]} is ${fmt(v[j]!)}. ${fmt(v[i]!)} + ${fmt(v[j]!)} = ${fmt(v[i]! + v[j]!)}.`,
      };
    }
    case 'trend': {
      if (!years || kind === 'pie') return null;
      if (d >= 4) {
        const inc = v.slice(1).map((x, k) => x - v[k]!);
        const best = Math.max(...inc);
        if (best <= 0 || inc.filter((x) => x === best).length !== 1) return null;
        const yr = labels[inc.indexOf(best) + 1]!;
        return {
          question: `In which year did the value${sname} increase the most compared with the previous year?`,
          answer: yr,
          rationale: `${lead} Year-over-year changes: ${inc.map((x, k) => `${labels[k + 1]}: ${x >= 0 ? '+' : ''}${fmt(x)}`).join(', ')}. The largest increase is ${fmt(best)} in ${yr}.`,
        };
      }
      const a = v[0]!;
      const b = v[v.length - 1]!;
      if (a === b) return null;
      return {
        question: `Did the value${sname} increase or decrease from ${labels[0]} to ${labels[labels.length - 1]}?`,
        answer: b > a ? 'increase' : 'decrease',
        rationale: `In ${labels[0]} it is ${fmt(a)}; in ${labels[labels.length - 1]} it is ${fmt(b)}. ${fmt(b)} ${b > a ? '>' : '<'} ${fmt(a)}, so it ${b > a ? 'increased' : 'decreased'}.`,
      };
    }
  }
}

function render(p: ChartPlan, size: number) {
  const W = size;
  const H = Math.round((size * 3) / 4 / 28) * 28 || 28;
  const { canvas, ctx } = newCanvas(W, H, '#ffffff');
  const fs = Math.max(6, W / 30);
  drawText(ctx, p.title, W / 2, fs * 0.9, fs * 1.1, '#111111', 'sans', true, 'center');
  if (p.kind === 'pie') {
    const cx = W * 0.36;
    const cy = H * 0.55;
    const r = Math.min(W * 0.3, H * 0.38);
    let a0 = -Math.PI / 2;
    const s = p.series[0]!;
    s.values.forEach((v, i) => {
      const a1 = a0 + (v / 100) * 2 * Math.PI;
      ctx.beginPath();
      ctx.moveTo(cx, cy);
      ctx.arc(cx, cy, r, a0, a1);
      ctx.closePath();
      ctx.fillStyle = SERIES_COLORS[i % SERIES_COLORS.length]!;
      ctx.fill();
      ctx.strokeStyle = '#ffffff';
      ctx.lineWidth = Math.max(1, W / 200);
      ctx.stroke();
      const am = (a0 + a1) / 2;
      if (p.showValues)
        drawText(
          ctx,
          `${v}%`,
          cx + Math.cos(am) * r * 0.62,
          cy + Math.sin(am) * r * 0.62,
          fs * 0.95,
          '#ffffff',
          'sans',
          true,
          'center',
        );
      a0 = a1;
    });
    p.labels.forEach((l, i) => {
      const y = H * 0.25 + i * fs * 1.6;
      ctx.fillStyle = SERIES_COLORS[i % SERIES_COLORS.length]!;
      ctx.fillRect(W * 0.7, y - fs * 0.45, fs * 0.9, fs * 0.9);
      drawText(ctx, l, W * 0.7 + fs * 1.3, y, fs, '#111111');
    });
    return canvas;
  }
  const left = measureText(String(p.yMax), fs).w + fs;
  const x0 = left;
  const x1 = W - fs * 0.8;
  const y0 = H - fs * 2.2;
  const y1 = fs * 2.6;
  const sy = (v: number) => y0 - (v / p.yMax) * (y0 - y1);
  ctx.lineWidth = 1;
  for (let v = 0; v <= p.yMax; v += p.step) {
    ctx.strokeStyle = v === 0 ? '#333333' : '#e0e0e0';
    ctx.beginPath();
    ctx.moveTo(x0, sy(v));
    ctx.lineTo(x1, sy(v));
    ctx.stroke();
    if ((v / p.step) % (p.yMax / p.step > 8 ? 2 : 1) === 0)
      drawText(ctx, String(v), x0 - fs * 0.3, sy(v), fs * 0.85, '#444444', 'sans', false, 'right');
  }
  const n = p.labels.length;
  const slot = (x1 - x0) / n;
  p.labels.forEach((l, i) => {
    drawText(
      ctx,
      l,
      x0 + slot * (i + 0.5),
      y0 + fs * 0.9,
      fs * (n > 5 ? 0.75 : 0.85),
      '#222222',
      'sans',
      false,
      'center',
    );
  });
  if (p.kind === 'line') {
    for (const s of p.series) {
      ctx.strokeStyle = s.color;
      ctx.lineWidth = Math.max(1.5, W / 160);
      ctx.beginPath();
      s.values.forEach((v, i) => {
        i === 0 ? ctx.moveTo(x0 + slot * (i + 0.5), sy(v)) : ctx.lineTo(x0 + slot * (i + 0.5), sy(v));
      });
      ctx.stroke();
      s.values.forEach((v, i) => {
        ctx.beginPath();
        ctx.fillStyle = s.color;
        ctx.arc(x0 + slot * (i + 0.5), sy(v), Math.max(2, W / 110), 0, 2 * Math.PI);
        ctx.fill();
        if (p.showValues)
          drawText(
            ctx,
            String(v),
            x0 + slot * (i + 0.5),
            sy(v) - fs * 0.8,
            fs * 0.8,
            '#111111',
            'sans',
            false,
            'center',
          );
      });
    }
  } else {
    const k = p.series.length;
    const bw = (slot * 0.7) / k;
    p.series.forEach((s, j) => {
      s.values.forEach((v, i) => {
        const bx = x0 + slot * i + slot * 0.15 + j * bw;
        ctx.fillStyle = s.color;
        ctx.fillRect(bx, sy(v), bw * 0.92, y0 - sy(v));
        if (p.showValues)
          drawText(ctx, String(v), bx + bw / 2, sy(v) - fs * 0.6, fs * 0.8, '#111111', 'sans', false, 'center');
      });
    });
  }
  if (p.series.length > 1) {
    p.series.forEach((s, j) => {
      const lx = x0 + fs + j * (W * 0.3);
      ctx.fillStyle = s.color;
      ctx.fillRect(lx, fs * 1.75, fs * 0.8, fs * 0.8);
      drawText(ctx, s.name, lx + fs * 1.1, fs * 2.15, fs * 0.85, '#111111');
    });
  }
  return canvas;
}

export const chart: Generator<ChartPlan> = {
  domain: 'chart',
  name: 'synth/chart',
  description:
    'bar, grouped bar, line and pie charts: read values, extremes, differences, sums, averages, trends, years',
  tasks: TASKS,
  defaultSize: 448,
  minSize: 112,
  plan(rng, cfg) {
    return planUntil(
      () => planChart(rng, cfg),
      `chart: could not plan a chart question at difficulty ${cfg.difficulty}`,
    );
  },
  key: (p) => `${p.kind}|${p.labels.join(',')}|${p.series.map((s) => s.values.join(',')).join(';')}|${p.qa.question}`,
  build(p, cfg): Built {
    return { task: p.task, ...p.qa, verifier: VERIFIER, images: [render(p, cfg.size)], meta: { kind: p.kind } };
  },
  describe(p) {
    const what = p.kind === 'pie' ? 'pie chart' : p.kind === 'grouped' ? 'grouped bar chart' : `${p.kind} chart`;
    const data = p.series
      .map(
        (s) =>
          `${p.series.length > 1 ? `${s.name}: ` : ''}${p.labels.map((l, i) => `${l} ${s.values[i]}${p.kind === 'pie' ? '%' : ''}`).join(', ')}`,
      )
      .join('; ');
    return `A ${what} titled "${p.title}". ${data}.`;
  },
};
