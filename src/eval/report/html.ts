/**
 * The HTML report a person reads in a browser: one self-contained file (inline CSS and SVG, no scripts, no CDN)
 * with the summary table, score bars with confidence intervals, think vs no-think deltas, the per-domain table of
 * the synthetic held-out sets, per-benchmark breakdowns, data problems and examples of wrong answers.
 */
import type { BreakdownRow, EvalSummary, Mode, ModeResult, SampleRecord } from '../records.js';
import { readSamples } from '../records.js';

export function esc(s: unknown): string {
  return String(s ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const COLORS: Record<Mode, string> = { think: '#3b6fd8', nothink: '#e0892b' };
const fmt = (x: number | null | undefined, d = 1) =>
  x === null || x === undefined || Number.isNaN(x) ? '–' : x.toFixed(d);

interface Bar {
  label: string;
  values: Array<{ series: Mode; value: number; low: number; high: number }>;
}

/** A horizontal confidence interval with end caps. */
function whisker(x1: number, x2: number, y: number, cap: number): string {
  return `<path d="M${x1} ${y}H${x2}M${x1} ${y - cap}V${y + cap}M${x2} ${y - cap}V${y + cap}" class="ci"/>`;
}

/** Horizontal grouped bars on a 0–100 axis with CI whiskers. */
export function barChart(bars: Bar[], title: string): string {
  if (bars.length === 0) return '';
  const series = [...new Set(bars.flatMap((b) => b.values.map((v) => v.series)))];
  const bh = 14;
  const gap = 10;
  const left = 170;
  const width = 720;
  const plotW = width - left - 60;
  const groupH = series.length * bh + gap;
  const height = 40 + bars.length * groupH + 30;
  const x = (v: number) => left + (Math.max(0, Math.min(100, v)) / 100) * plotW;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" role="img" aria-label="${esc(title)}">`,
    `<text x="${left}" y="16" class="t">${esc(title)}</text>`,
  ];
  for (let t = 0; t <= 100; t += 20) {
    parts.push(
      `<line x1="${x(t)}" x2="${x(t)}" y1="26" y2="${height - 24}" class="grid"/>`,
      `<text x="${x(t)}" y="${height - 8}" class="ax" text-anchor="middle">${t}</text>`,
    );
  }
  bars.forEach((b, i) => {
    const y0 = 30 + i * groupH;
    parts.push(
      `<text x="${left - 8}" y="${y0 + (series.length * bh) / 2 + 4}" class="lbl" text-anchor="end">${esc(b.label)}</text>`,
    );
    for (const v of b.values) {
      const y = y0 + series.indexOf(v.series) * bh;
      parts.push(
        `<rect x="${left}" y="${y}" width="${Math.max(0, x(v.value) - left)}" height="${bh - 3}" fill="${COLORS[v.series]}"><title>${esc(
          `${b.label} [${v.series}] ${fmt(v.value, 2)} (95% CI ${fmt(v.low, 2)}–${fmt(v.high, 2)})`,
        )}</title></rect>`,
      );
      const hasCi = Number.isFinite(v.low) && Number.isFinite(v.high);
      if (hasCi) parts.push(whisker(x(v.low), x(v.high), y + (bh - 3) / 2, 3));
      // The label sits right of the bar and its whisker, so neither hides it.
      parts.push(
        `<text x="${Math.max(x(v.value), hasCi ? x(v.high) : 0) + 5}" y="${y + bh - 4}" class="val">${fmt(v.value)}</text>`,
      );
    }
  });
  parts.push('</svg>');
  return parts.join('');
}

/** Bars of think − nothink differences (percentage points) around a zero line, with CI whiskers. */
export function deltaChart(rows: Array<{ label: string; diff: number; low: number; high: number }>): string {
  if (rows.length === 0) return '';
  const left = 170;
  const width = 720;
  const plotW = width - left - 70;
  const bh = 18;
  const height = 40 + rows.length * (bh + 6) + 30;
  const span = Math.max(
    5,
    ...rows.flatMap((r) => [Math.abs(r.low), Math.abs(r.high), Math.abs(r.diff)].filter(Number.isFinite)),
  );
  const x = (v: number) => left + plotW / 2 + (v / span) * (plotW / 2);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" role="img" aria-label="think minus no-think">`,
    `<text x="${left}" y="16" class="t">Thinking minus no-thinking (percentage points, paired 95% CI)</text>`,
    `<line x1="${x(0)}" x2="${x(0)}" y1="26" y2="${height - 24}" class="zero"/>`,
    `<text x="${x(-span)}" y="${height - 8}" class="ax">${fmt(-span)}</text>`,
    `<text x="${x(0)}" y="${height - 8}" class="ax" text-anchor="middle">0</text>`,
    `<text x="${x(span)}" y="${height - 8}" class="ax" text-anchor="end">+${fmt(span)}</text>`,
  ];
  rows.forEach((r, i) => {
    const y = 30 + i * (bh + 6);
    const a = Math.min(x(0), x(r.diff));
    parts.push(
      `<text x="${left - 8}" y="${y + bh - 5}" class="lbl" text-anchor="end">${esc(r.label)}</text>`,
      `<rect x="${a}" y="${y}" width="${Math.abs(x(r.diff) - x(0))}" height="${bh}" fill="${r.diff >= 0 ? '#2e9e5b' : '#c94a4a'}"><title>${esc(
        `${r.label}: ${fmt(r.diff, 2)} (${fmt(r.low, 2)} to ${fmt(r.high, 2)})`,
      )}</title></rect>`,
      Number.isFinite(r.low) && Number.isFinite(r.high) ? whisker(x(r.low), x(r.high), y + bh / 2, 4) : '',
      `<text x="${Math.max(x(r.diff), x(0), Number.isFinite(r.high) ? x(r.high) : 0) + 5}" y="${y + bh - 5}" class="val">${r.diff >= 0 ? '+' : ''}${fmt(r.diff)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('');
}

function barsOf(results: ModeResult[], label: (r: ModeResult) => string): Bar[] {
  const by = new Map<string, Bar>();
  for (const r of results) {
    const l = label(r);
    const b = by.get(l) ?? { label: l, values: [] };
    b.values.push({ series: r.mode, value: r.score, low: r.ci.low, high: r.ci.high });
    by.set(l, b);
  }
  return [...by.values()];
}

function breakdownTable(key: string, rows: BreakdownRow[]): string {
  return `<table class="small"><caption>by ${esc(key)}</caption><tr><th>${esc(key)}</th><th>score</th><th>n</th></tr>${rows
    .map((r) => `<tr><td>${esc(r.value)}</td><td class="num">${fmt(r.score)}</td><td class="num">${r.n}</td></tr>`)
    .join('')}</table>`;
}

function examples(records: SampleRecord[], n: number): string {
  const wrong = records.filter((r) => !r.correct).slice(0, n);
  if (wrong.length === 0) return '<p class="muted">No wrong answers.</p>';
  const clip = (s: string | null, k: number) => (s === null ? '' : s.length > k ? `${s.slice(0, k)}…` : s);
  return `<table class="small ex"><tr><th>id</th><th>prompt</th><th>reference</th><th>extracted</th><th>status</th><th>reason</th></tr>${wrong
    .map(
      (r) =>
        `<tr><td>${esc(r.id)}</td><td>${esc(clip(r.prompt.text, 240))}</td><td>${esc(clip(r.reference, 80))}</td><td>${esc(
          clip(r.extracted, 80),
        )}</td><td>${esc(r.status)}</td><td>${esc(clip(r.reason, 160))}</td></tr>`,
    )
    .join('')}</table>`;
}

const CSS = `body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1100px;color:#1d2330;padding:0 16px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #dde2ea;padding-bottom:4px}h3{font-size:15px}
table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #dde2ea;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f5f9}td.num{text-align:right;font-variant-numeric:tabular-nums}table.small{font-size:12.5px}
table.ex td{max-width:320px;word-break:break-word}.muted{color:#6b7385}.warn{color:#b3261e}
svg .t{font-size:13px;font-weight:600}svg .ax{font-size:11px;fill:#6b7385}svg .lbl{font-size:12px}svg .val{font-size:11px}
svg .grid{stroke:#e8ebf1}svg .zero{stroke:#333}svg .ci{stroke:#111;stroke-width:1.2;fill:none}
.legend span{display:inline-block;margin-right:16px}.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
.flex{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}`;

/** Renders the report; `out` is where per-sample records are read from for the examples. */
export function renderHtmlReport(s: EvalSummary, out: string): string {
  const modes = [...new Set(s.results.map((r) => r.mode))] as Mode[];
  const benches = [...new Set(s.results.map((r) => r.bench))];
  const byKey = new Map(s.results.map((r) => [`${r.bench}\u0000${r.mode}`, r]));
  const refNames = [...new Set(s.results.flatMap((r) => Object.keys(r.reference)))];
  const cmp = new Map(s.comparisons.map((c) => [c.bench, c]));
  const legend = `<p class="legend">${modes.map((m) => `<span><i style="background:${COLORS[m]}"></i>${m === 'think' ? 'thinking' : 'no thinking'}</span>`).join('')}</p>`;

  const head = `<tr><th>benchmark</th><th>family</th><th>metric</th>${modes
    .map((m) => `<th>${m} (95% CI)</th>`)
    .join(
      '',
    )}${cmp.size ? '<th>Δ think − nothink</th>' : ''}${refNames.map((n) => `<th>paper: ${esc(n)}</th>`).join('')}<th>n</th><th>failed</th><th>no answer</th><th>unjudged</th><th>truncated</th></tr>`;
  const rows = benches
    .map((b) => {
      const any = modes.map((m) => byKey.get(`${b}\u0000${m}`)).find(Boolean)!;
      const cells = modes
        .map((m) => {
          const r = byKey.get(`${b}\u0000${m}`);
          return r
            ? `<td class="num">${fmt(r.score)} <span class="muted">(${fmt(r.ci.low)}–${fmt(r.ci.high)})</span></td>`
            : '<td class="num">–</td>';
        })
        .join('');
      const c = cmp.get(b);
      const dc = cmp.size
        ? `<td class="num">${c ? `${c.diff >= 0 ? '+' : ''}${fmt(c.diff)} <span class="muted">(${fmt(c.ci.low)}–${fmt(c.ci.high)})</span>` : '–'}</td>`
        : '';
      const refs = refNames.map((n) => `<td class="num">${fmt(any.reference[n])}</td>`).join('');
      const sum = (f: (r: ModeResult) => number) =>
        modes.reduce((a, m) => a + (byKey.has(`${b}\u0000${m}`) ? f(byKey.get(`${b}\u0000${m}`)!) : 0), 0);
      const failed = sum((r) => r.counts.failed);
      return `<tr><td>${esc(b)}</td><td>${esc(any.family)}</td><td>${esc(any.metric)}</td>${cells}${dc}${refs}<td class="num">${any.units}</td><td class="num${failed ? ' warn' : ''}">${failed}</td><td class="num">${sum((r) => r.counts.noAnswer)}</td><td class="num">${sum((r) => r.counts.unjudged)}</td><td class="num">${sum((r) => r.counts.truncated)}</td></tr>`;
    })
    .join('');

  const synth = s.results.filter((r) => r.family === 'Synthetic held-out');
  const domainTable = synth.length
    ? `<h2>Synthetic held-out sets, per domain</h2>${legend}${barChart(
        barsOf(synth, (r) => r.domain ?? r.bench),
        'Score per domain (0–100)',
      )}<table><tr><th>domain</th><th>benchmark</th>${modes.map((m) => `<th>${m}</th>`).join('')}</tr>${[
        ...new Set(synth.map((r) => r.bench)),
      ]
        .map((b) => {
          const r0 = synth.find((r) => r.bench === b)!;
          return `<tr><td>${esc(r0.domain)}</td><td>${esc(b)}</td>${modes
            .map((m) => {
              const r = byKey.get(`${b}\u0000${m}`);
              return `<td class="num">${r ? `${fmt(r.score)} <span class="muted">(${fmt(r.ci.low)}–${fmt(r.ci.high)})</span>` : '–'}</td>`;
            })
            .join('')}</tr>`;
        })
        .join('')}</table>`
    : '';

  const deltas = s.comparisons.length
    ? `<h2>Thinking vs no thinking</h2>${deltaChart(
        s.comparisons.map((c) => ({ label: c.bench, diff: c.diff, low: c.ci.low, high: c.ci.high })),
      )}<table><tr><th>benchmark</th><th>think</th><th>nothink</th><th>Δ</th><th>95% CI</th><th>paired units</th></tr>${s.comparisons
        .map(
          (c) =>
            `<tr><td>${esc(c.bench)}</td><td class="num">${fmt(c.think)}</td><td class="num">${fmt(c.nothink)}</td><td class="num">${c.diff >= 0 ? '+' : ''}${fmt(c.diff)}</td><td class="num">${fmt(c.ci.low)} to ${fmt(c.ci.high)}</td><td class="num">${c.pairedUnits}</td></tr>`,
        )
        .join('')}</table>`
    : '';

  const details = benches
    .map((b) => {
      const parts: string[] = [`<h3 id="${esc(b)}">${esc(b)}</h3>`];
      const d = s.data.find((x) => x.bench === b);
      if (d)
        parts.push(
          `<p class="muted">data: ${esc(d.file)} — ${d.rows} rows, ${d.items} items${d.errors ? `, <span class="warn">${d.errors} malformed rows skipped</span>` : ''}</p>`,
        );
      for (const m of modes) {
        const r = byKey.get(`${b}\u0000${m}`);
        if (!r) continue;
        const c = r.counts;
        parts.push(
          `<p><b>${m}</b>: ${fmt(r.score, 2)} (95% CI ${fmt(r.ci.low, 2)}–${fmt(r.ci.high, 2)}) over ${r.units} units${r.total !== undefined ? `, total ${fmt(r.total, 0)}` : ''}; ${c.correct}/${c.items} correct, ${c.noAnswer} without an answer, ${c.gated} gated, ${c.unjudged} unjudged, ${c.failed} failed requests (success ${fmt(r.successRate)}%${r.successRate < 95 ? ' <span class="warn">below the paper\'s 95%</span>' : ''}), ${c.truncated} truncated, ${c.forced} forced answers, ${c.cached} from cache; mean completion tokens ${fmt(r.meanCompletionTokens, 0)}, mean latency ${fmt(r.meanLatencyMs, 0)} ms.</p>`,
        );
        const bd = Object.entries(r.breakdown);
        if (bd.length) parts.push(`<div class="flex">${bd.map(([k, rows]) => breakdownTable(k, rows)).join('')}</div>`);
        parts.push(
          `<details><summary>Wrong answers (first 5)</summary>${examples(readSamples(out, b, m), 5)}</details>`,
        );
      }
      if (d?.errors)
        parts.push(
          `<details><summary class="warn">Malformed rows (first ${d.firstErrors.length} of ${d.errors})</summary><table class="small"><tr><th>row</th><th>field</th><th>problem</th></tr>${d.firstErrors
            .map((e) => `<tr><td class="num">${e.row}</td><td>${esc(e.field)}</td><td>${esc(e.detail)}</td></tr>`)
            .join('')}</table></details>`,
        );
      return parts.join('');
    })
    .join('');

  const model = Object.entries(s.model)
    .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(typeof v === 'object' ? JSON.stringify(v) : v)}</td></tr>`)
    .join('');
  const settings = Object.entries(s.settings)
    .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(typeof v === 'object' ? JSON.stringify(v) : v)}</td></tr>`)
    .join('');

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>glmv eval report</title><style>${CSS}</style></head><body>
<h1>glmv eval report</h1>
<p class="muted">created ${esc(s.created)}${s.interrupted ? ' — <span class="warn">interrupted: partial results; rerun to resume</span>' : ''}</p>
<div class="flex"><table class="small"><caption>model</caption>${model}</table><table class="small"><caption>settings</caption>${settings}</table></div>
<h2>Summary</h2>
<table>${head}${rows}</table>
${legend}${barChart(
  barsOf(
    s.results.filter((r) => r.family !== 'Synthetic held-out'),
    (r) => r.bench,
  ),
  'Score per benchmark (0–100, 95% bootstrap CI)',
)}
${deltas}
${domainTable}
<h2>Details</h2>
${details}
</body></html>
`;
}
