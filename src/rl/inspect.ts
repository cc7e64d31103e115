/**
 * Reading a run back: sampled responses of a step with their rewards and gate reasons, grouped by domain (the paper's
 * advice: read rollouts per domain to catch reward hacking, §5.2), per-domain learning curves, and the RLCS tier
 * populations over time — all from the run folder's JSONL files.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { stepName } from './checkpoint.js';
import { TIERS } from './rlcs.js';

export interface RolloutLine {
  step: number;
  id: string;
  domain: string;
  source: string;
  question: string;
  reference: string;
  tier: string;
  group: number;
  k: number;
  kept: boolean;
  advantage: number | null;
  text: string;
  reward: number | null;
  correct: boolean;
  status: string;
  path: string | null;
  reason: string | null;
  /** What the engine changed (e.g. a response cut before a vision placeholder). */
  note?: string | null;
  answer: string | null;
  gates: Array<{ name: string; detail: string | null }>;
  forced: boolean;
  /** What the reward lost under lengthControl (absent in runs written before it existed). */
  length_penalty?: number;
  finish: string;
  tokens: number;
  thinking_tokens: number;
  answer_tokens: number;
}

function readJsonl<T>(path: string): T[] {
  const out: T[] = [];
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (!line.trim()) return;
      try {
        out.push(JSON.parse(line) as T);
      } catch (e) {
        throw new Error(`${path}:${i + 1}: not valid JSON (${(e as Error).message})`);
      }
    });
  return out;
}

function checkRun(runDir: string): void {
  if (!existsSync(runDir)) throw new Error(`run ${runDir}: no such folder`);
  if (!existsSync(join(runDir, 'metrics.jsonl')) && !existsSync(join(runDir, 'rollouts')))
    throw new Error(`run ${runDir}: no metrics.jsonl or rollouts/ here; expected the run.dir of a glmv rl run`);
}

/** Steps with a rollout file, ascending. */
export function rolloutSteps(runDir: string): number[] {
  checkRun(runDir);
  const dir = join(runDir, 'rollouts');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((f) => /^step-(\d+)\.jsonl$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/** The rollouts of one step (`'last'` = the newest). */
export function readRollouts(runDir: string, step: number | 'last'): { step: number; rows: RolloutLine[] } {
  const steps = rolloutSteps(runDir);
  if (!steps.length)
    throw new Error(`run ${runDir}: no rollouts saved (run.saveRollouts was false, or no step has finished yet)`);
  const s = step === 'last' ? steps[steps.length - 1]! : step;
  if (!steps.includes(s)) {
    const near = steps.filter((x) => Math.abs(x - s) <= 3);
    throw new Error(
      `run ${runDir}: no rollouts for step ${s}; saved steps are ${steps[0]}..${steps[steps.length - 1]}${near.length ? ` (nearby: ${near.join(', ')})` : ''}`,
    );
  }
  return { step: s, rows: readJsonl<RolloutLine>(join(runDir, 'rollouts', `${stepName(s)}.jsonl`)) };
}

export type RolloutFilter = 'all' | 'correct' | 'wrong' | 'gated' | 'forced' | 'kept' | 'error';
export const ROLLOUT_FILTERS: readonly RolloutFilter[] = [
  'all',
  'correct',
  'wrong',
  'gated',
  'forced',
  'kept',
  'error',
];

export function filterRollouts(
  rows: readonly RolloutLine[],
  o: { domain?: string; only?: RolloutFilter },
): RolloutLine[] {
  const only = o.only ?? 'all';
  if (!ROLLOUT_FILTERS.includes(only))
    throw new Error(`--only: expected one of ${ROLLOUT_FILTERS.join(', ')}, got ${JSON.stringify(only)}`);
  return rows.filter((r) => {
    if (o.domain && r.domain !== o.domain) return false;
    switch (only) {
      case 'correct':
        return r.correct;
      case 'wrong':
        return !r.correct && r.status === 'scored';
      case 'gated':
        return r.status === 'gated';
      case 'forced':
        return r.forced;
      case 'kept':
        return r.kept;
      case 'error':
        return r.status === 'error' || r.status === 'unjudged';
      default:
        return true;
    }
  });
}

function clip(s: string, n: number): string {
  const one = s.replace(/\s+/g, ' ');
  return one.length > n ? `${one.slice(0, n - 1)}…` : one;
}

/** Human-readable listing, per domain: a summary line, then up to `limit` responses with reward and reasons. */
export function formatRollouts(
  step: number,
  rows: readonly RolloutLine[],
  o: { limit?: number; width?: number; full?: boolean } = {},
): string {
  const limit = o.limit ?? 8;
  const width = o.width ?? 160;
  const byDomain = new Map<string, RolloutLine[]>();
  for (const r of rows) byDomain.set(r.domain, [...(byDomain.get(r.domain) ?? []), r]);
  const out: string[] = [`step ${step}: ${rows.length} rollouts`];
  for (const [d, list] of [...byDomain.entries()].sort()) {
    const n = list.length;
    const pct = (k: number) => `${((100 * k) / Math.max(1, n)).toFixed(0)}%`;
    const gates = new Map<string, number>();
    for (const r of list) for (const g of r.gates) gates.set(g.name, (gates.get(g.name) ?? 0) + 1);
    const avg = (f: (r: RolloutLine) => number) => (list.reduce((a, r) => a + f(r), 0) / Math.max(1, n)).toFixed(1);
    const penalized = list.filter((r) => (r.length_penalty ?? 0) > 0).length;
    out.push(
      '',
      `== ${d}: ${n} rollouts, pass ${pct(list.filter((r) => r.correct).length)}, mean reward ${(list.reduce((a, r) => a + (r.reward ?? 0), 0) / Math.max(1, n)).toFixed(3)}, forced ${pct(list.filter((r) => r.forced).length)}, gated ${pct(list.filter((r) => r.status === 'gated').length)}` +
        (gates.size ? ` (${[...gates.entries()].map(([k, v]) => `${k}:${v}`).join(' ')})` : '') +
        `; tokens ${avg((r) => r.tokens)} (thinking ${avg((r) => r.thinking_tokens)}, answer ${avg((r) => r.answer_tokens)})` +
        (penalized ? `, length-penalized ${pct(penalized)}` : ''),
    );
    for (const r of list.slice(0, limit)) {
      const mark =
        r.status === 'gated' ? 'G' : r.status === 'error' || r.status === 'unjudged' ? 'E' : r.correct ? '✓' : '✗';
      const adv = r.advantage === null ? '' : ` adv ${r.advantage >= 0 ? '+' : ''}${r.advantage.toFixed(2)}`;
      out.push(
        `${mark} ${r.id} [${r.tier}] reward ${r.reward === null ? '-' : r.reward.toFixed(3)}${r.length_penalty ? ` − length ${r.length_penalty.toFixed(3)}` : ''}${adv}${r.forced ? ' forced' : ''} finish ${r.finish} tokens ${r.tokens} (thinking ${r.thinking_tokens}, answer ${r.answer_tokens})`,
        `    question: ${clip(r.question, width)}`,
        `    reference: ${clip(r.reference, width)}   answer: ${r.answer === null ? '(none)' : clip(r.answer, width)}`,
        `    why: ${r.path ?? '-'} — ${clip(r.reason ?? '', width)}${r.note ? ` (${r.note})` : ''}`,
        `    response: ${o.full ? r.text : clip(r.text, width)}`,
      );
    }
    if (list.length > limit) out.push(`    … ${list.length - limit} more (raise --limit)`);
  }
  return out.join('\n');
}

export interface MetricsRow {
  step?: number;
  event?: string;
  reward_mean?: number;
  pass_rate?: number;
  domains?: Record<
    string,
    {
      reward: number;
      pass: number;
      format_fail: number;
      forced: number;
      response_tokens: number;
      /** Absent in runs written before it was logged. */
      thinking_tokens?: number;
      n: number;
    }
  >;
  tiers?: Record<string, Record<string, number>>;
  [k: string]: unknown;
}

export function readMetrics(runDir: string): MetricsRow[] {
  checkRun(runDir);
  const p = join(runDir, 'metrics.jsonl');
  if (!existsSync(p)) throw new Error(`run ${runDir}: no metrics.jsonl yet`);
  return readJsonl<MetricsRow>(p).filter((r) => typeof r.step === 'number');
}

/** Evenly spaced rows (always the first and last). */
function thin<T>(rows: readonly T[], every: number): T[] {
  return rows.filter((_, i) => i % every === 0 || i === rows.length - 1);
}

function table(head: string[], body: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => x.padStart(w[i]!)).join('  ');
  return [line(head), ...body.map(line)].join('\n');
}

/** Per-domain curves: reward, pass rate, format failures, forced rate, response length per step. */
export function formatCurves(rows: readonly MetricsRow[], o: { domain?: string; every?: number } = {}): string {
  if (!rows.length) return '(no steps yet)';
  const domains = o.domain ? [o.domain] : [...new Set(rows.flatMap((r) => Object.keys(r.domains ?? {})))].sort();
  const every = o.every ?? Math.max(1, Math.ceil(rows.length / 25));
  const parts: string[] = [];
  for (const d of domains) {
    const sel = thin(
      rows.filter((r) => r.domains?.[d]),
      every,
    );
    if (!sel.length) {
      parts.push(`${d}: no steps sampled this domain`);
      continue;
    }
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
    parts.push(
      `== ${d}`,
      table(
        ['step', 'reward', 'pass', 'format✗', 'forced', 'resp tok', 'think tok', 'n'],
        sel.map((r) => {
          const v = r.domains![d]!;
          return [
            String(r.step),
            v.reward.toFixed(3),
            pct(v.pass),
            pct(v.format_fail),
            pct(v.forced),
            v.response_tokens.toFixed(1),
            v.thinking_tokens === undefined ? '-' : v.thinking_tokens.toFixed(1),
            String(v.n),
          ];
        }),
      ),
    );
  }
  return parts.join('\n');
}

/** Tier populations over time (all domains, or one). */
export function formatTiers(rows: readonly MetricsRow[], o: { domain?: string; every?: number } = {}): string {
  const key = o.domain ?? '*';
  const sel = thin(
    rows.filter((r) => r.tiers?.[key]),
    o.every ?? Math.max(1, Math.ceil(rows.length / 25)),
  );
  if (!sel.length) return `(no tier populations for ${key === '*' ? 'all domains' : key})`;
  return table(
    ['step', ...TIERS],
    sel.map((r) => [String(r.step), ...TIERS.map((t) => String(r.tiers![key]![t] ?? 0))]),
  );
}

/** What `formatCompare` reads from a step: the whole batch, or one domain of it. */
function compareValues(
  r: MetricsRow,
  domain?: string,
): { forced: number; think: number; resp: number; pass: number } | null {
  if (domain) {
    const v = r.domains?.[domain];
    if (!v) return null;
    return { forced: v.forced, think: v.thinking_tokens ?? Number.NaN, resp: v.response_tokens, pass: v.pass };
  }
  const num = (k: string) => (typeof r[k] === 'number' ? (r[k] as number) : Number.NaN);
  return {
    forced: num('forced_rate'),
    think: num('thinking_tokens_mean'),
    resp: num('response_tokens_mean'),
    pass: num('pass_rate'),
  };
}

/** The metrics of runs to compare, each named by its folder, or by the path given when two folders share a name. */
export function readRunsToCompare(paths: readonly string[]): Array<{ name: string; rows: MetricsRow[] }> {
  const base = paths.map((p) => basename(resolve(p)));
  const unique = new Set(base).size === base.length;
  return paths.map((p, i) => ({ name: unique ? base[i]! : p, rows: readMetrics(p) }));
}

/**
 * Runs side by side (e.g. one with `lengthControl` and one without): forced-answer share, thinking tokens and pass
 * rate per step, then the mean of the first and last `window` steps of each run.
 */
export function formatCompare(
  runs: ReadonlyArray<{ name: string; rows: readonly MetricsRow[] }>,
  o: { domain?: string; every?: number; window?: number } = {},
): string {
  if (runs.length < 2) throw new Error(`compare: expected at least two runs, got ${runs.length}`);
  const steps = [...new Set(runs.flatMap((r) => r.rows.map((x) => x.step!)))].sort((a, b) => a - b);
  if (!steps.length) return '(no steps yet)';
  const every = o.every ?? Math.max(1, Math.ceil(steps.length / 25));
  const byStep = runs.map((r) => new Map(r.rows.map((x) => [x.step!, compareValues(x, o.domain)])));
  const pct = (x: number) => (Number.isNaN(x) ? '-' : `${(x * 100).toFixed(1)}%`);
  const num = (x: number) => (Number.isNaN(x) ? '-' : x.toFixed(1));
  const head = ['step', ...runs.flatMap((r) => [`forced ${r.name}`, `think ${r.name}`, `pass ${r.name}`])];
  const body = thin(steps, every).map((st) => [
    String(st),
    ...byStep.flatMap((m) => {
      const v = m.get(st);
      return v ? [pct(v.forced), num(v.think), pct(v.pass)] : ['-', '-', '-'];
    }),
  ]);
  const w = o.window ?? 5;
  const meanOf = (xs: number[]) => {
    const ok = xs.filter((x) => !Number.isNaN(x));
    return ok.length ? ok.reduce((a, b) => a + b, 0) / ok.length : Number.NaN;
  };
  const summary = runs.map((r, i) => {
    const vals = r.rows.map((x) => byStep[i]!.get(x.step!)).filter((v): v is NonNullable<typeof v> => !!v);
    const part = (vs: typeof vals) => ({
      forced: meanOf(vs.map((v) => v.forced)),
      think: meanOf(vs.map((v) => v.think)),
      resp: meanOf(vs.map((v) => v.resp)),
      pass: meanOf(vs.map((v) => v.pass)),
    });
    const a = part(vals.slice(0, w));
    const b = part(vals.slice(-w));
    return [
      r.name,
      String(vals.length),
      `${pct(a.forced)} → ${pct(b.forced)}`,
      `${num(a.think)} → ${num(b.think)}`,
      `${num(a.resp)} → ${num(b.resp)}`,
      `${pct(a.pass)} → ${pct(b.pass)}`,
    ];
  });
  return [
    `${o.domain ? `== ${o.domain}` : '== all domains'}`,
    table(head, body),
    '',
    `first ${w} → last ${w} steps`,
    table(['run', 'steps', 'forced', 'think tok', 'resp tok', 'pass'], summary),
  ].join('\n');
}
