/**
 * The pipeline's report: one static, self-contained HTML page (inline SVG charts, images as data URLs) that opens in
 * any browser — loss curves per stage, per-domain reward and pass-rate curves during RL, RLCS tier populations and
 * the expansion ratio, the SFT difficulty filter, the per-domain accuracy table after each stage (think and
 * /nothink), and sample responses with their images (grounding boxes drawn).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { meanSd } from '../eval/metrics.js';
import { parseBoxes } from '../io/answer/geometry.js';
import { readMetricsFile } from '../util/progress.js';
import type { EvalExample, StageEval } from './evaluate.js';
import {
  type HeadroomSummary,
  type PipelineState,
  readState,
  runPaths,
  type SeedRun,
  type SeedScore,
  STAGES,
  type StageRecord,
} from './state.js';

function esc(s: unknown): string {
  return String(s ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

const PALETTE = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#ff7f0e',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
  '#393b79',
  '#637939',
];

export interface Series {
  name: string;
  points: Array<[number, number]>;
}

/** A line chart as inline SVG. */
export function lineChart(
  series: Series[],
  o: {
    title: string;
    xLabel?: string;
    yLabel?: string;
    width?: number;
    height?: number;
    yMin?: number;
    yMax?: number;
    logY?: boolean;
  },
): string {
  const W = o.width ?? 560;
  const H = o.height ?? 260;
  const m = { l: 52, r: 12, t: 26, b: 34 };
  const all = series
    .flatMap((s) => s.points)
    .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!o.logY || y > 0));
  if (all.length === 0) return `<div class="empty">${esc(o.title)}: no data</div>`;
  const tr = (y: number) => (o.logY ? Math.log10(y) : y);
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => tr(p[1]));
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs) === x0 ? x0 + 1 : Math.max(...xs);
  let y0 = o.yMin !== undefined ? tr(o.yMin) : Math.min(...ys);
  let y1 = o.yMax !== undefined ? tr(o.yMax) : Math.max(...ys);
  if (y1 === y0) {
    y0 -= 0.5;
    y1 += 0.5;
  }
  const X = (x: number) => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const Y = (y: number) => H - m.b - ((tr(y) - y0) / (y1 - y0)) * (H - m.t - m.b);
  const ticks = (lo: number, hi: number, n: number) =>
    Array.from({ length: n + 1 }, (_, i) => lo + ((hi - lo) * i) / n);
  let svg = `<svg class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(o.title)}">`;
  svg += `<text x="${W / 2}" y="16" text-anchor="middle" class="title">${esc(o.title)}</text>`;
  // Enough digits that neighbouring tick labels differ.
  const span = o.logY ? 10 ** y1 - 10 ** y0 : y1 - y0;
  const digits = Math.max(0, Math.min(6, Math.ceil(-Math.log10(span / 4)) + 1));
  for (const v of ticks(y0, y1, 4)) {
    const yy = H - m.b - ((v - y0) / (y1 - y0)) * (H - m.t - m.b);
    const label = (o.logY ? 10 ** v : v).toFixed(digits);
    svg += `<line x1="${m.l}" x2="${W - m.r}" y1="${yy}" y2="${yy}" class="grid"/><text x="${m.l - 4}" y="${yy + 4}" text-anchor="end" class="tick">${esc(label)}</text>`;
  }
  const xt = [...new Set(ticks(x0, x1, 5).map((v) => Math.round(v)))];
  for (const v of xt) {
    svg += `<text x="${X(v)}" y="${H - m.b + 14}" text-anchor="middle" class="tick">${esc(v)}</text>`;
  }
  if (o.xLabel) svg += `<text x="${W / 2}" y="${H - 4}" text-anchor="middle" class="axis">${esc(o.xLabel)}</text>`;
  if (o.yLabel)
    svg += `<text x="12" y="${H / 2}" transform="rotate(-90 12 ${H / 2})" text-anchor="middle" class="axis">${esc(o.yLabel)}</text>`;
  series.forEach((s, i) => {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!o.logY || y > 0));
    if (!pts.length) return;
    const color = PALETTE[i % PALETTE.length];
    svg += `<polyline fill="none" stroke="${color}" stroke-width="1.6" points="${pts.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' ')}"><title>${esc(s.name)}</title></polyline>`;
    // Short series (e.g. one held-out evaluation) would be invisible as lines: mark their points.
    if (pts.length <= 12)
      for (const [x, y] of pts)
        svg += `<circle cx="${X(x).toFixed(1)}" cy="${Y(y).toFixed(1)}" r="3" fill="${color}"/>`;
  });
  svg += '</svg>';
  const legend =
    series.length > 1
      ? `<div class="legend">${series.map((s, i) => `<span><i style="background:${PALETTE[i % PALETTE.length]}"></i>${esc(s.name)}</span>`).join('')}</div>`
      : '';
  return `<figure>${svg}${legend}</figure>`;
}

/**
 * Trailing mean over a window that grows with the curve (1/25 of its length): smooths noisy per-step losses of long
 * stages without the lag a fixed-rate EMA shows on short ones (a 20-step stage).
 */
function smooth(points: Array<[number, number]>, minWindow = 1): Array<[number, number]> {
  const w = Math.max(minWindow, Math.min(25, Math.round(points.length / 25)));
  let sum = 0;
  return points.map(([x, y], i) => {
    sum += y - (i >= w ? points[i - w]![1] : 0);
    return [x, sum / Math.min(i + 1, w)];
  });
}

function pct(v: number | undefined): string {
  return v === undefined || !Number.isFinite(v) ? '–' : `${(100 * v).toFixed(1)}`;
}

function imageDataUrl(path: string): string | null {
  try {
    const buf = readFileSync(path);
    const type = path.endsWith('.jpg') || path.endsWith('.jpeg') ? 'image/jpeg' : 'image/png';
    return `data:${type};base64,${buf.toString('base64')}`;
  } catch {
    return null;
  }
}

/** An image with the predicted (red) and reference (green) grounding boxes drawn over it. */
function exampleImage(path: string, ex: EvalExample): string {
  const url = imageDataUrl(path);
  if (!url) return `<div class="missing">image not found: ${esc(path)}</div>`;
  const size = 168;
  let boxes = '';
  if (ex.domain === 'grounding' || ex.domain === 'gui') {
    const system = ex.domain === 'gui' ? 'gui' : 'grounding';
    const max = system === 'gui' ? 999 : 1000;
    const draw = (text: string | null, color: string) => {
      if (!text) return;
      for (const b of parseBoxes(text, { system })) {
        const [x1, y1, x2, y2] = b.box;
        boxes += `<rect x="${(x1 / max) * size}" y="${(y1 / max) * size}" width="${((x2 - x1) / max) * size}" height="${((y2 - y1) / max) * size}" fill="none" stroke="${color}" stroke-width="2"/>`;
      }
    };
    draw(ex.reference, '#2ca02c');
    draw(ex.extracted, '#d62728');
  }
  return `<svg width="${size}" height="${size}" viewBox="0 0 ${size} ${size}"><image href="${url}" width="${size}" height="${size}" preserveAspectRatio="none"/>${boxes}</svg>`;
}

function accuracyTable(state: PipelineState): string {
  const cols: Array<{ label: string; ev: StageEval }> = [];
  for (const stage of ['eval-pretrain', 'eval-sft', 'eval-rl'] as const) {
    const rec = state.stages[stage];
    const modes = (rec?.summary.modes ?? {}) as Record<string, StageEval>;
    for (const [mode, ev] of Object.entries(modes)) cols.push({ label: `${stage.replace('eval-', '')} · ${mode}`, ev });
  }
  if (!cols.length) return '<p class="empty">No evaluation yet.</p>';
  const domains = [...new Set(cols.flatMap((c) => Object.keys(c.ev.perDomain)))].sort();
  let h = '<table class="acc"><thead><tr><th>domain</th>';
  h += cols.map((c) => `<th>${esc(c.label)}</th>`).join('');
  h += '</tr></thead><tbody>';
  for (const d of domains) {
    h += `<tr><td>${esc(d)}</td>${cols.map((c) => `<td>${pct(c.ev.perDomain[d]?.accuracy)}</td>`).join('')}</tr>`;
  }
  h += `<tr class="total"><td>all (accuracy %)</td>${cols.map((c) => `<td>${pct(c.ev.accuracy)}</td>`).join('')}</tr>`;
  h += `<tr><td>mean reward</td>${cols.map((c) => `<td>${c.ev.meanReward.toFixed(3)}</td>`).join('')}</tr>`;
  h += `<tr><td>format (%)</td>${cols.map((c) => `<td>${pct(c.ev.formatRate)}</td>`).join('')}</tr>`;
  h += `<tr><td>forced answer (%)</td>${cols.map((c) => `<td>${pct(c.ev.forcedRate)}</td>`).join('')}</tr>`;
  h += `<tr><td>samples</td>${cols.map((c) => `<td>${c.ev.n}</td>`).join('')}</tr>`;
  h += '</tbody></table>';
  return h;
}

/** pass@1 against pass@k of the SFT model on RL prompts, per domain, and what the RL stage made of it. */
function headroomSection(state: PipelineState): string {
  const rec = state.stages.headroom;
  if (rec?.status !== 'done')
    return `<p class="empty">No headroom check${rec ? ` (${esc(rec.summary.reason)})` : ''}.</p>`;
  const h = rec.summary as unknown as HeadroomSummary;
  let t = `<table><thead><tr><th>domain</th><th>prompts</th><th>pass@1</th><th>pass@${h.k}</th><th>gap (points)</th></tr></thead><tbody>`;
  for (const [d, v] of Object.entries(h.perDomain).sort())
    t += `<tr><td>${esc(d)}</td><td>${v.prompts}</td><td>${pct(v.pass1)}</td><td>${pct(v.passk)}</td><td>${pct(v.passk - v.pass1)}</td></tr>`;
  t += `<tr class="total"><td>all</td><td>${h.prompts}</td><td>${pct(h.pass1)}</td><td>${pct(h.passk)}</td><td>${pct(h.gap)}</td></tr></tbody></table>`;
  const rl = state.stages.rl;
  const verdict =
    rl?.status === 'skipped'
      ? `RL was skipped: ${esc(rl.summary.reason)}.`
      : `The gap is ${pct(h.gap)} points (RL runs from ${pct(h.minGap)}).`;
  return `<p class="note">The SFT model sampled ${h.k} times per prompt like an RL rollout (temperature and limits of the RL config); pass@1 is the mean share correct, pass@${h.k} the share of prompts solved at least once. ${verdict}</p>${t}`;
}

type SeedStat = ReturnType<typeof meanSd>;

/** RL from the same SFT model over several seeds: totals per seed, then per-domain means against SFT. */
function seedsSection(state: PipelineState): string {
  const rec = state.stages['rl-seeds'];
  if (rec?.status !== 'done') return '<p class="empty">One RL seed (set rlSeeds to measure more).</p>';
  const { seeds, sft, mean } = rec.summary as {
    seeds: SeedRun[];
    sft: Record<string, SeedScore>;
    mean: Record<string, Record<string, SeedStat>>;
  };
  const modes = Object.keys(seeds[0]?.modes ?? {});
  const signed = (v: number) => `${v >= 0 ? '+' : ''}${(100 * v).toFixed(1)}`;
  const points = (v: number) => (100 * v).toFixed(1);
  let h = '<table><thead><tr><th>seed</th>';
  for (const m of modes)
    h += `<th>${esc(m)} accuracy</th><th>${esc(m)} mean reward</th><th>Δ reward vs SFT (points)</th><th>${esc(m)} format</th>`;
  h += '</tr></thead><tbody>';
  const row = (label: string, cells: (m: string) => string[]) =>
    `<tr><td>${esc(label)}</td>${modes.flatMap((m) => cells(m).map((x) => `<td>${x}</td>`)).join('')}</tr>`;
  if (modes.every((m) => sft[m]))
    h += row('SFT (start)', (m) => [pct(sft[m]!.accuracy), sft[m]!.meanReward.toFixed(3), '', pct(sft[m]!.formatRate)]);
  for (const s of seeds)
    h += row(`RL seed ${s.seed}`, (m) => {
      const x = s.modes[m]!;
      return [
        pct(x.accuracy),
        x.meanReward.toFixed(3),
        sft[m] ? signed(x.meanReward - sft[m]!.meanReward) : '–',
        pct(x.formatRate),
      ];
    });
  // The stage already reduced the seeds to mean ± sd per mode.
  const fmt = (x: SeedStat | undefined, f: (v: number) => string, fsd: (v: number) => string = points) =>
    x ? `${f(x.mean)} ± ${fsd(x.sd)}` : '–';
  h += row(`RL mean ± sd (${seeds.length})`, (m) => {
    const x = mean[m] ?? {};
    return [
      fmt(x.accuracy, points),
      fmt(
        x.meanReward,
        (v) => v.toFixed(3),
        (v) => v.toFixed(3),
      ),
      fmt(x.rewardGain, signed),
      fmt(x.formatRate, points),
    ];
  }).replace('<tr>', '<tr class="total">');
  h += '</tbody></table>';
  // Per domain (first mode): does any domain get worse after RL by more than the seeds' spread?
  const m0 = modes[0];
  if (m0 && sft[m0]) {
    const domains = Object.keys(sft[m0]!.perDomain).sort();
    h += `<p class="note">Per domain, ${esc(m0)}: accuracy (%) of the SFT model and of RL over ${seeds.length} seeds.</p><table><thead><tr><th>domain</th><th>SFT</th>${seeds.map((s) => `<th>seed ${s.seed}</th>`).join('')}<th>RL mean ± sd</th><th>Δ</th></tr></thead><tbody>`;
    for (const d of domains) {
      const xs = seeds.map((s) => s.modes[m0]!.perDomain[d] ?? 0);
      const stat = meanSd(xs);
      h += `<tr><td>${esc(d)}</td><td>${pct(sft[m0]!.perDomain[d])}</td>${xs.map((x) => `<td>${pct(x)}</td>`).join('')}<td>${fmt(stat, points)}</td><td>${signed(stat.mean - (sft[m0]!.perDomain[d] ?? 0))}</td></tr>`;
    }
    h += '</tbody></table>';
  }
  return h;
}

function stageTimes(state: PipelineState): string {
  // Seeds reused from an earlier invocation took their time then: show what they cost, not the moment to reuse them.
  const minutes = (r: StageRecord) => Math.max(r.seconds, Number(r.summary.computeSeconds ?? 0)) / 60;
  const recs = STAGES.map((s) => state.stages[s]).filter((r): r is StageRecord => !!r);
  const rows = recs.map(
    (r) => `<tr><td>${esc(r.stage)}</td><td>${esc(r.status)}</td><td>${minutes(r).toFixed(1)}</td></tr>`,
  );
  const total = recs.reduce((a, r) => a + minutes(r), 0);
  return `<table><thead><tr><th>stage</th><th>status</th><th>minutes</th></tr></thead><tbody>${rows.join('')}<tr class="total"><td>total</td><td></td><td>${total.toFixed(1)}</td></tr></tbody></table>`;
}

function trainingCurves(out: string): string {
  const p = runPaths(out);
  let h = '';
  for (const stage of ['pretrain', 'longctx', 'sft'] as const) {
    const rows = readMetricsFile(join(p.stage(stage), 'metrics.jsonl'));
    const train = rows.filter((r) => r.event === 'train' && typeof r.loss === 'number');
    if (!train.length) continue;
    const pts = train.map((r) => [r.step as number, r.loss as number] as [number, number]);
    const evals = rows.filter((r) => r.event === 'eval' && typeof r.heldout_loss === 'number');
    const series: Series[] = [
      { name: 'loss (per step)', points: pts },
      { name: 'loss (trailing mean)', points: smooth(pts) },
    ];
    if (evals.length)
      series.push({ name: 'held-out loss', points: evals.map((r) => [r.step as number, r.heldout_loss as number]) });
    const tps = train.map((r) => r.tokens_per_s as number).filter(Number.isFinite);
    const meanTps = tps.length ? tps.reduce((a, b) => a + b, 0) / tps.length : 0;
    h += `<div class="card">${lineChart(series, { title: `${stage}: loss`, xLabel: 'step', yLabel: 'loss', logY: true })}<p class="note">${train.length} steps, mean ${meanTps.toFixed(0)} tokens/s</p></div>`;
  }
  return h || '<p class="empty">No training metrics yet.</p>';
}

function filterSection(state: PipelineState): string {
  const f = (state.stages.sft?.summary.filter ?? null) as {
    perDomain?: Record<string, Record<string, number>>;
    kept?: number;
    candidates?: number;
  } | null;
  if (!f?.perDomain) return '<p class="empty">No difficulty filter report.</p>';
  const keys = [...new Set(Object.values(f.perDomain).flatMap((d) => Object.keys(d)))];
  let h = `<table><thead><tr><th>domain</th>${keys.map((k) => `<th>${esc(k)}</th>`).join('')}</tr></thead><tbody>`;
  for (const [d, v] of Object.entries(f.perDomain))
    h += `<tr><td>${esc(d)}</td>${keys.map((k) => `<td>${esc(v[k] ?? '')}</td>`).join('')}</tr>`;
  return `${h}</tbody></table>`;
}

function rlSection(out: string): string {
  const rows = readMetricsFile(join(runPaths(out).stage('rl'), 'metrics.jsonl')).filter(
    (r) => typeof r.step === 'number' && r.reward_mean !== undefined,
  );
  if (!rows.length) return '<p class="empty">No RL metrics.</p>';
  const domains = [...new Set(rows.flatMap((r) => Object.keys((r.domains ?? {}) as object)))].sort();
  const per = (key: 'reward' | 'pass') =>
    domains.map((d) => ({
      name: d,
      points: smooth(
        rows
          .filter((r) => (r.domains as Record<string, Record<string, number>>)?.[d])
          .map(
            (r) =>
              [r.step as number, (r.domains as Record<string, Record<string, number>>)[d]![key]!] as [number, number],
          ),
        3, // per-domain rates of a few prompts per step are noisy even on short runs
      ),
    }));
  // tiers: { '*': { tier: prompts }, <domain>: {…} } — the '*' entry is the whole curriculum.
  const tierTotals = (r: Record<string, unknown>): Record<string, number> => {
    const all = (r.tiers ?? {}) as Record<string, Record<string, number>>;
    return all['*'] ?? {};
  };
  const tiers = [...new Set(rows.flatMap((r) => Object.keys(tierTotals(r))))];
  const tierSeries = tiers.map((t) => ({
    name: t,
    points: rows.map((r) => [r.step as number, tierTotals(r)[t] ?? 0] as [number, number]),
  }));
  const overall: Series[] = [
    { name: 'reward (mean)', points: rows.map((r) => [r.step as number, r.reward_mean as number]) },
    { name: 'pass rate', points: rows.map((r) => [r.step as number, r.pass_rate as number]) },
  ];
  const expansion: Series[] = [
    { name: 'expansion ratio', points: rows.map((r) => [r.step as number, r.expansion_ratio as number]) },
    { name: 'EMA', points: rows.map((r) => [r.step as number, r.expansion_ema as number]) },
  ];
  return [
    `<div class="card">${lineChart(overall, { title: 'RL: reward and pass rate', xLabel: 'step', yMin: 0, yMax: 1 })}</div>`,
    `<div class="card">${lineChart(per('reward'), { title: 'RL: reward per domain (smoothed)', xLabel: 'step', yMin: 0, yMax: 1 })}</div>`,
    `<div class="card">${lineChart(per('pass'), { title: 'RL: pass rate per domain (smoothed)', xLabel: 'step', yMin: 0, yMax: 1 })}</div>`,
    `<div class="card">${lineChart(tierSeries, { title: 'RLCS: prompts per difficulty tier', xLabel: 'step', yLabel: 'prompts' })}</div>`,
    `<div class="card">${lineChart(expansion, { title: 'dynamic sampling: expansion ratio', xLabel: 'step' })}</div>`,
  ].join('');
}

function examplesSection(state: PipelineState): string {
  const finalStage = state.stages['eval-rl']?.status === 'done' ? 'eval-rl' : 'eval-sft';
  const modes = (state.stages[finalStage]?.summary.modes ?? {}) as Record<string, StageEval>;
  const ev = modes.think ?? Object.values(modes)[0];
  if (!ev?.examples?.length) return '<p class="empty">No sample responses.</p>';
  return `<p class="note">From the ${esc(finalStage.replace('eval-', ''))} model, thinking on; green = reference box, red = predicted.</p><div class="examples">${ev.examples
    .map(
      (x) => `<div class="ex ${x.correct ? 'ok' : 'bad'}">
  <div class="imgs">${x.images.map((p) => exampleImage(p, x)).join('')}</div>
  <div class="txt"><div class="dom">${esc(x.domain)} · ${x.correct ? '✓ correct' : '✗ wrong'} · reward ${x.reward.toFixed(2)}</div>
  <div class="q"><b>Q:</b> ${esc(x.question)}</div>
  <div class="think">${esc(x.reasoning) || '<i>(no thinking)</i>'}</div>
  <div class="a"><b>A:</b> ${esc(x.content)}</div>
  <div class="ref"><b>reference:</b> ${esc(x.reference)} · <b>extracted:</b> ${esc(x.extracted ?? '(none)')}</div></div>
</div>`,
    )
    .join('')}</div>`;
}

const CSS = `body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1200px;color:#222;padding:0 16px}
h1{font-size:22px}figure{margin:0}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
tr.total td{font-weight:600;background:#f6f6f6}.cards{display:flex;flex-wrap:wrap;gap:12px}.card{border:1px solid #eee;padding:6px}
.chart .title{font-size:13px;font-weight:600}.chart .tick{font-size:10px;fill:#555}.chart .axis{font-size:11px;fill:#333}.chart .grid{stroke:#eee}
.legend{font-size:11px;display:flex;flex-wrap:wrap;gap:8px;max-width:560px}.legend i{display:inline-block;width:10px;height:10px;margin-right:3px}
.note{color:#666;font-size:12px}.empty{color:#999}.examples{display:grid;grid-template-columns:1fr 1fr;gap:10px}
.ex{display:flex;gap:8px;border:1px solid #ddd;padding:6px}.ex.ok{border-left:4px solid #2ca02c}.ex.bad{border-left:4px solid #d62728}
.think{color:#777;font-size:12px;white-space:pre-wrap;max-height:140px;overflow:auto;margin:4px 0}.dom{font-size:12px;color:#555}.imgs{display:flex;flex-direction:column;gap:4px}`;

/** Writes RUN/report.html from what the run folder holds now (any stage may be missing). */
export function writeReport(out: string): string {
  const state = readState(out);
  if (!state) throw new Error(`report: ${out} has no pipeline.json; is it a pipeline run folder?`);
  const c = state.config;
  const params = (state.stages.pretrain?.summary.parameters as number | undefined) ?? null;
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>glmv pipeline report</title><style>${CSS}</style></head><body>
<h1>glmv pipeline report</h1>
<p>Preset <b>${esc(c.preset)}</b>, seed ${c.seed}${params ? `, ${(params / 1e6).toFixed(2)}M parameters` : ''}; images ${c.data.imageSize} px; started ${esc(state.startedAt)}.
Held-out evaluation: ${c.eval.n} samples over all domains, greedy, scored by the reward verifiers (strict box extraction).</p>
<h2>Stages</h2>${stageTimes(state)}
<h2>Accuracy per domain after each stage (%)</h2>${accuracyTable(state)}
<h2>RL over seeds (same SFT model)</h2>${seedsSection(state)}
<h2>Training curves</h2><div class="cards">${trainingCurves(out)}</div>
<h2>SFT difficulty filter (pass@k of the long-context model)</h2>${filterSection(state)}
<h2>RL headroom: pass@1 vs pass@k of the SFT model (%)</h2>${headroomSection(state)}
<h2>Reinforcement learning</h2><div class="cards">${rlSection(out)}</div>
<h2>Sample responses</h2>${examplesSection(state)}
</body></html>`;
  const file = runPaths(out).report;
  writeFileSync(file, html);
  return file;
}
