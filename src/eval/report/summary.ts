/** The summary as CSV: one row per benchmark × mode, plus one `delta` row per think vs no-think comparison. */
import type { EvalSummary } from '../records.js';

const HEADER = [
  'bench',
  'family',
  'domain',
  'metric',
  'mode',
  'score',
  'ci_low',
  'ci_high',
  'units',
  'items',
  'correct',
  'no_answer',
  'gated',
  'unjudged',
  'score_errors',
  'failed',
  'cached',
  'truncated',
  'forced_answer',
  'success_rate',
  'mean_completion_tokens',
  'mean_latency_ms',
  'total',
];

/** RFC 4180 field: quoted when it holds a comma, quote or line break. */
export function csvField(v: unknown): string {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function summaryCsv(s: EvalSummary): string {
  const rows: unknown[][] = [HEADER];
  for (const r of s.results) {
    const c = r.counts;
    rows.push([
      r.bench,
      r.family,
      r.domain,
      r.metric,
      r.mode,
      r.score,
      r.ci.low,
      r.ci.high,
      r.units,
      c.items,
      c.correct,
      c.noAnswer,
      c.gated,
      c.unjudged,
      c.scoreErrors,
      c.failed,
      c.cached,
      c.truncated,
      c.forced,
      r.successRate,
      r.meanCompletionTokens,
      r.meanLatencyMs,
      r.total ?? '',
    ]);
  }
  for (const d of s.comparisons) {
    const r = s.results.find((x) => x.bench === d.bench);
    rows.push([d.bench, r?.family, r?.domain, r?.metric, 'delta', d.diff, d.ci.low, d.ci.high, d.pairedUnits]);
  }
  for (const row of rows) while (row.length < HEADER.length) row.push('');
  return `${rows.map((row) => row.map(csvField).join(',')).join('\n')}\n`;
}
