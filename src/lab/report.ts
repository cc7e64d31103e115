/**
 * The lab's HTML report, rendered from its results alone (every number there was measured by `glmv lab`): the
 * start model's checks, one section per experiment with curves and tables (spreads where there are seeds), the
 * trainer's per-step curves of every run, and sample rollouts before and after RL.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { esc } from '../eval/report/html.js';
import { lineChart, type Series } from '../pipeline/report.js';
import type { Experiment } from './config.js';
import type { LabExample } from './eval.js';
import type { LabResults } from './results.js';
import type { RunResult } from './runs.js';

const pct = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? (100 * v).toFixed(1) : '–');
const pm = (s: unknown) => {
  const x = s as { mean?: number; sd?: number; n?: number } | undefined;
  if (!x || x.mean === undefined || !x.n) return '–';
  return `${x.mean >= 0 ? '' : ''}${(100 * x.mean).toFixed(1)} ± ${(100 * (x.sd ?? 0)).toFixed(1)} (n=${x.n})`;
};
const signed = (v: number) => `${v >= 0 ? '+' : ''}${(100 * v).toFixed(1)}`;

function table(head: string[], rows: Array<Array<string | number>>): string {
  return `<table><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`)
    .join('')}</table>`;
}

/** An example's image embedded as a data URL; relative paths are relative to the lab folder `root`. */
function image(path: string | null, root: string): string {
  if (!path) return '';
  try {
    const buf = readFileSync(isAbsolute(path) ? path : join(root, path));
    return `<img width="112" height="112" src="data:image/png;base64,${buf.toString('base64')}" alt="">`;
  } catch {
    return `<div class="note">image not found: ${esc(path)}</div>`;
  }
}

function examples(list: readonly LabExample[], root: string): string {
  if (!list.length) return '<p class="note">none</p>';
  return `<div class="examples">${list
    .map(
      (
        e,
      ) => `<div class="ex ${e.correct ? 'ok' : 'bad'}">${image(e.image, root)}<div><div class="dom">${esc(e.domain)} · reference <b>${esc(e.reference)}</b> · extracted <b>${esc(e.extracted ?? '∅')}</b></div>
<div>${esc(e.question)}</div><pre class="think">${esc(e.response)}</pre></div></div>`,
    )
    .join('')}</div>`;
}

const series = (r: RunResult, field: string): Array<[number, number]> =>
  r.series.filter((s) => typeof s[field] === 'number').map((s) => [s.step as number, s[field] as number]);

function runsOf(res: LabResults, e: Experiment): RunResult[] {
  const x = res.experiments[e];
  return ((x?.runs as string[]) ?? []).map((n) => res.runs[n]!).filter(Boolean);
}

function curveChart(runs: RunResult[], x: 'step' | 'rollouts', title: string): string {
  return lineChart(
    runs.map((r) => ({ name: r.name, points: r.curve.map((p) => [p[x], 100 * p.accuracy] as [number, number]) })),
    { title, xLabel: x === 'step' ? 'RL step' : 'rollouts consumed', yLabel: 'held-out accuracy %', width: 520 },
  );
}

function stepChart(runs: RunResult[], field: string, title: string, scale = 1): string {
  const s: Series[] = runs.map((r) => ({ name: r.name, points: series(r, field).map(([a, b]) => [a, b * scale]) }));
  return lineChart(s, { title, xLabel: 'RL step', width: 520 });
}

function finalTable(res: LabResults, runs: RunResult[]): string {
  const st = res.start;
  return table(
    ['run', 'what', 'steps', 'held-out %', 'Δ vs start', `level ${res.config.data.hardLevel} %`, 'Δ vs start'],
    runs.map((r) => [
      r.name,
      r.what,
      r.steps,
      pct(r.heldout.accuracy),
      signed(r.heldout.accuracy - st.heldout.accuracy),
      pct(r.hard.accuracy),
      signed(r.hard.accuracy - st.hard.accuracy),
    ]),
  );
}

/** The cold-start stage in words (empty when it was off). */
function coldStartText(res: LabResults): string {
  const k = res.coldStart as { steps?: number; loss?: number; directShare?: number; skipped?: boolean } | null;
  if (!k || k.skipped) return '';
  const frozen = res.config.coldStart?.freezeVision ? ', vision tower frozen' : '';
  return ` Then a cold start (the paper's long-CoT SFT after pre-training): ${k.steps} more SFT steps from that model on the same samples with ${pct(k.directShare ?? 0)} % of the reasoning targets direct (lr ${res.config.coldStart?.lr}${frozen}), final loss ${k.loss?.toFixed(3) ?? '?'}.`;
}

function startSection(res: LabResults): string {
  const s = res.start;
  if (!s) return '<p class="note">not measured yet</p>';
  const domains = Object.keys(s.heldout.perDomain);
  const sft = res.sft as { steps?: number; loss?: number; parameters?: number } | null;
  const ok = (b: boolean) => (b ? '✓ met' : '✗ not met');
  return `<p>Reached by SFT from scratch on ${res.config.data.sftSamples} lab samples (levels ${esc(res.config.data.sftLevels)}, probes one in four; ${pct(res.config.data.directShare)} % of the reasoning targets answer right after the reading, without the working): ${sft?.steps ?? '?'} steps, final loss ${sft?.loss?.toFixed(3) ?? '?'}, ${((sft?.parameters ?? 0) / 1e6).toFixed(2)}M parameters.${coldStartText(res)} Probe and greedy accuracy are measured on held-out items; pass@1 / pass@${s.k} on ${s.prompts} held-out reasoning prompts sampled like RL rollouts.</p>
${table(
  ['', 'all', ...domains],
  [
    ['probes (reading one value) %', pct(s.probe.accuracy), ...domains.map((d) => pct(s.probe.perDomain[d]?.accuracy))],
    ['reasoning, greedy %', pct(s.heldout.accuracy), ...domains.map((d) => pct(s.heldout.perDomain[d]?.accuracy))],
    [
      `level ${res.config.data.hardLevel}, greedy %`,
      pct(s.hard.accuracy),
      ...domains.map((d) => pct(s.hard.perDomain[d]?.accuracy)),
    ],
    ['pass@1 (sampled) %', pct(s.pass1), ...domains.map((d) => pct(s.passPerDomain[d]?.pass1))],
    [`pass@${s.k} %`, pct(s.passk), ...domains.map((d) => pct(s.passPerDomain[d]?.passk))],
  ],
)}
${table(
  ['requirement', 'measured', 'status'],
  [
    ['probes ≥ 90 %', pct(s.probe.accuracy), ok(s.checks.probe90)],
    ['pass@1 in 20–50 %', pct(s.pass1), ok(s.checks.pass1MidRange)],
    [
      `pass@${s.k} ≥ pass@1 + 25 points`,
      `${pct(s.passk)} − ${pct(s.pass1)} = ${((s.passk - s.pass1) * 100).toFixed(1)}`,
      ok(s.checks.gap25),
    ],
  ],
)}`;
}

function gainSection(res: LabResults): string {
  const x = res.experiments.gain;
  if (!x) return '';
  const runs = runsOf(res, 'gain');
  return `<h2>1. RL gain over seeds</h2>
<p>Held-out gain ${pm(x.heldoutGain)} points; level ${res.config.data.hardLevel} (above the training range) ${pm(x.hardGain)} points; probes after RL ${pm(x.probeAfter)} %.</p>
${finalTable(res, runs)}<div class="cards">${curveChart(runs, 'step', 'curve-set accuracy per seed')}${stepChart(runs, 'reward_mean', 'training reward')}${shortcutChart(res, runs)}</div>`;
}

/** Share of rollouts that answered without working (the SFT set's shortcut), per step: what RL changed. */
function shortcutChart(res: LabResults, runs: RunResult[]): string {
  const s: Series[] = runs
    .map((r) => ({
      name: r.name,
      points: (res.shortcut?.[r.name] ?? []).map((p) => [p.step, 100 * p.share] as [number, number]),
    }))
    .filter((x) => x.points.length);
  return s.length ? lineChart(s, { title: 'rollouts answering without working %', xLabel: 'RL step', width: 520 }) : '';
}

function efficiencySection(res: LabResults, e: 'rlcs' | 'expansion'): string {
  const x = res.experiments[e];
  if (!x) return '';
  const runs = runsOf(res, e);
  const to = (x.rolloutsToReference ?? {}) as Record<string, number | null>;
  const z = x.zeroAdvantageShare as Record<string, unknown>;
  const title = e === 'rlcs' ? '2. RLCS vs uniform vs offline filter only' : '3. Expansion on/off';
  return `<h2>${title}</h2>${x.referenceNote ? `<p class="note">Rollouts to the reference's accuracy: not measurable, ${esc(x.referenceNote)}.</p>` : ''}
${table(
  [
    'run',
    'rollouts consumed',
    'final held-out %',
    `rollouts to reach ${esc(x.reference)}'s final curve accuracy`,
    'zero-advantage share per step %',
  ],
  runs.map((r) => [
    r.name,
    r.curve.at(-1)?.rollouts ?? 0,
    pct(r.heldout.accuracy),
    x.rolloutsToReference ? (to[r.name] ?? 'not reached') : '–',
    pm(z[r.name]),
  ]),
)}
<div class="cards">${curveChart(runs, 'rollouts', 'accuracy against rollouts consumed')}${stepChart(runs, 'invalid_share', 'zero-advantage (all-same) group share', 100)}${
    e === 'rlcs' ? tierChart(runs[0]) : stepChart(runs, 'expansion_ema', 'expansion EMA')
  }</div>`;
}

function tierChart(r: RunResult | undefined): string {
  if (!r) return '';
  const names = new Set<string>();
  for (const s of r.series) for (const k of Object.keys((s.tiers as Record<string, number>) ?? {})) names.add(k);
  return lineChart(
    [...names].map((t) => ({
      name: t,
      points: r.series.map(
        (s) => [s.step as number, (s.tiers as Record<string, number> | undefined)?.[t] ?? 0] as [number, number],
      ),
    })),
    { title: `RLCS tier populations (${r.name})`, xLabel: 'RL step', width: 520 },
  );
}

function transferSection(res: LabResults): string {
  const x = res.experiments.transfer;
  if (!x) return '';
  const per = x.perDomain as Record<string, Record<string, number>>;
  const domains = Object.keys(per.start ?? {});
  return `<h2>4. Cross-domain transfer</h2><p>Held-out accuracy per lab domain (%): RL on the mix against RL on ${esc(res.config.transferDomain)} alone.</p>
${table(
  ['model', ...domains],
  Object.entries(per).map(([n, v]) => [n, ...domains.map((d) => pct(v[d]))]),
)}<div class="cards">${shortcutChart(res, runsOf(res, 'transfer'))}</div>`;
}

function hackingSection(res: LabResults): string {
  const x = res.experiments.hacking;
  if (!x) return '';
  const runs = runsOf(res, 'hacking');
  const h = runs.find((r) => r.hack)?.hack;
  const start = x.start as { heldout: number; hedgeRate: number | null; share?: number } | undefined;
  const hedgeShare = (x.hedgeShare ?? {}) as Record<string, Array<{ step: number; share: number }>>;
  const curve = x.hackableCurve as { peakStep: number; peak: number; end: number } | undefined;
  return `<h2>5. Reward hacking: hackable vs strict verifier</h2>
<p>Both runs start from the hedging model: the start model after a short SFT in which ${pct(start?.share)} % of the reasoning targets box a range around the answer (held-out ${pct(start?.heldout)} %, hedging in ${pct(start?.hedgeRate ?? undefined)} % of its answers). Training reward comes from each run's verifier; every accuracy here is the strict verifier's, which never pays a range. ${h?.perStep.length ? `The rollouts paid only by the hack (a reward only the hackable verifier gives): ${pct(h.perStep[0]!.share)} % at step ${h.perStep[0]!.step}, ${pct(h.perStep.at(-1)!.share)} % at step ${h.perStep.at(-1)!.step}; ${typeof x.hackAppearsAtStep === 'number' ? `the hack takes hold at step ${x.hackAppearsAtStep}` : `the hack never takes hold in ${h.perStep.length - 1} steps`} (from there its share stays at least twice its step-0 share, and at least 10 %, for 3 steps or to the end). ` : ''}${curve ? `The hackable run's strict-graded curve peaked at ${pct(curve.peak)} % at step ${curve.peakStep} and ended at ${pct(curve.end)} %.` : ''}</p>
${table(
  [
    'run',
    'what',
    'steps',
    'strict held-out %',
    'Δ vs hedging model',
    'answers hedged after RL %',
    'last step training pass %',
  ],
  runs.map((r) => [
    r.name,
    r.what,
    r.steps,
    pct(r.heldout.accuracy),
    start ? signed(r.heldout.accuracy - start.heldout) : '–',
    pct(r.heldout.hedgeRate),
    pct(r.series.at(-1)?.pass_rate as number | undefined),
  ]),
)}
<div class="cards">${curveChart(runs, 'step', 'strict held-out accuracy')}${stepChart(runs, 'pass_rate', 'training pass rate (own verifier)', 100)}${lineChart(
    runs.map((r) => ({
      name: r.name,
      points: (hedgeShare[r.name] ?? []).map((p) => [p.step, 100 * p.share] as [number, number]),
    })),
    { title: 'rollouts that box a range %', xLabel: 'RL step', width: 520 },
  )}${
    h
      ? lineChart([{ name: 'hacked share', points: h.perStep.map((p) => [p.step, 100 * p.share]) }], {
          title: 'rollouts rewarded only by the hack %',
          xLabel: 'RL step',
          width: 520,
        })
      : ''
  }</div>
${h?.samples.length ? `<h3>Hacked rollouts</h3>${h.samples.map((s) => `<div class="ex bad"><div><div class="dom">step ${esc(s.step)} · reference <b>${esc(s.reference)}</b> · boxed <b>${esc(s.answer ?? '∅')}</b></div><div>${esc(s.question)}</div><pre class="think">${esc(s.text)}</pre></div></div>`).join('')}` : ''}`;
}

function forceSection(res: LabResults): string {
  const x = res.experiments.force;
  if (!x) return '';
  const runs = runsOf(res, 'force');
  const tr = x.truncated as Record<string, unknown>;
  const start = x.start as { force: number; noforce: number } | undefined;
  return `<h2>6. Force answering at a tight thinking budget (${res.config.tightBudget} tokens)</h2>
<p>Start model at this budget: ${pct(start?.force)} % with force answering, ${pct(start?.noforce)} % without.</p>
${table(
  ['run', 'truncated rollouts per step %', 'held-out % (same budget)', 'forced at eval %'],
  runs.map((r) => [r.name, pm(tr[r.name]), pct(r.heldout.accuracy), pct(r.heldout.forcedRate)]),
)}<div class="cards">${stepChart(runs, 'truncated_rate', 'truncated share', 100)}${curveChart(runs, 'step', 'held-out accuracy')}</div>`;
}

function runCurves(res: LabResults): string {
  const runs = Object.values(res.runs);
  if (!runs.length) return '';
  return `<h2>Every run, per step</h2><div class="cards">${stepChart(runs, 'reward_mean', 'reward')}${stepChart(runs, 'response_tokens_mean', 'response length (tokens)')}${stepChart(runs, 'entropy', 'policy entropy')}${stepChart(runs, 'truncated_rate', 'truncated share', 100)}</div>`;
}

const CSS = `body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1200px;color:#222;padding:0 16px}
h1{font-size:22px}figure{margin:0}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
.cards{display:flex;flex-wrap:wrap;gap:12px}.chart .title{font-size:13px;font-weight:600}.chart .tick{font-size:10px;fill:#555}
.chart .axis{font-size:11px;fill:#333}.chart .grid{stroke:#eee}.legend{font-size:11px;display:flex;flex-wrap:wrap;gap:8px;max-width:520px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:3px}.note{color:#666;font-size:12px}.empty{color:#999}
.examples{display:grid;grid-template-columns:1fr 1fr;gap:10px}.ex{display:flex;gap:8px;border:1px solid #ddd;padding:6px;margin:4px 0}
.ex.ok{border-left:4px solid #2ca02c}.ex.bad{border-left:4px solid #d62728}.think{color:#555;font-size:12px;white-space:pre-wrap;max-height:160px;overflow:auto;margin:4px 0}.dom{font-size:12px;color:#555}`;

export function renderLabReport(res: LabResults, root: string): string {
  const ran = new Set(Object.keys(res.experiments));
  const notRun = res.allExperiments.filter((e) => !ran.has(e));
  const after = res.runs['paper-s0']?.examples ?? [];
  const skipped = Object.entries(res.skipped);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>glmv RL lab</title><style>${CSS}</style></head><body>
<h1>glmv RL lab</h1>
<p>Preset <b>${esc(res.preset)}</b>, seed ${res.config.seed}; ${esc(res.machine.cpu)} (${res.machine.cores} cores), Node ${esc(res.machine.node)}; ${(res.seconds / 60).toFixed(1)} min of compute; started ${esc(res.startedAt)}.
Held-out: ${res.config.data.heldoutPerDomain} reasoning questions per domain at levels ${esc(res.config.data.trainLevels)}, ${res.config.data.hardPerDomain} at level ${res.config.data.hardLevel}, ${res.config.data.probePerDomain} probes; greedy, strict verifier. RL: ${esc(JSON.stringify(res.config.rl))}.</p>
${notRun.length ? `<p class="note">Experiments not run in this lab: ${esc(notRun.join(', '))}.</p>` : ''}
${skipped.length ? `<p class="note">Runs skipped: ${skipped.map(([k, v]) => `${esc(k)} (${esc(v)})`).join('; ')}.</p>` : ''}
<h2>The start model</h2>${startSection(res)}
${gainSection(res)}${efficiencySection(res, 'rlcs')}${efficiencySection(res, 'expansion')}${transferSection(res)}${hackingSection(res)}${forceSection(res)}
${runCurves(res)}
<h2>Sample rollouts before RL (start model)</h2>${examples(res.start?.examples ?? [], root)}
<h2>Sample rollouts after RL (paper-s0)</h2>${examples(after, root)}
</body></html>`;
}

/** Writes the report; example images are read from `out` (the lab folder) and embedded. */
export function writeLabReport(path: string, res: LabResults, out: string): void {
  writeFileSync(path, renderLabReport(res, out));
}
