/**
 * `npm run bench:reward` — the reward library's speed and robustness on one core.
 *
 * 1. Rule-path math equivalence (`checkMath`, in process) over a mixed set of equal and unequal pairs: numbers,
 *    fractions, percent, scientific notation, LaTeX, intervals, sets, tuples, matrices, equations, symbolic
 *    expressions. Checks per second, p50 / p99 latency. Target: ≥ 20,000 checks/s.
 * 2. Peers measured in the same run on the plain-syntax pairs: mathjs `compile` + evaluation at a few points (the
 *    direct library approach), and mathjs `simplify(a − b) = 0` (the symbolic approach).
 * 3. Full router (`score`: parse, gates, routing, verifier) over a mixed-domain set of responses.
 * 4. Pathological set through the router with the CAS worker pool: every case must return within its hard limit
 *    (zero hangs); reports the slowest.
 *
 * 5. Agreement with the hand-written equivalence corpus (test/fixtures/reward/math-equivalence.yaml) by family, and
 *    the throughput of those checks (worked solutions, prose extraction, structures). Target: no family below 95 %.
 *
 * Prints the CPU model and ISA flags. Options: --seconds <n> per timed phase (default 3), --metrics <file>
 * (default runs/bench-reward.jsonl).
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { compile, simplify } from 'mathjs';
import type { Sample } from '../src/data/sample.js';
import { CasPool } from '../src/reward/cas.js';
import { checkMath } from '../src/reward/math/equivalence.js';
import { RewardRouter } from '../src/reward/router.js';
import { MetricsWriter, Progress } from '../src/util/progress.js';
import { loadCorpus } from '../test/reward/math/corpus.js';
import { benchProgram, positiveNumber } from './cli.js';

const opts = benchProgram({
  name: 'reward',
  description:
    'the reward library on one core: math equivalence checks/s and p50 / p99 latency (mathjs peers in the same ' +
    'run), the full router on mixed domains, the pathological set through the CAS pool (zero hangs), and ' +
    'agreement with the hand-written equivalence corpus by family',
  examples: [
    'npm run bench:reward',
    'npm run bench:reward -- --seconds 1',
    'npm run bench:reward -- --seconds 10 --metrics runs/reward-long.jsonl',
  ],
})
  .option('--seconds <n>', 'seconds per timed phase', positiveNumber, 3)
  .option('--metrics <file>', 'JSONL metrics file', 'runs/bench-reward.jsonl')
  .parse()
  .opts<{ seconds: number; metrics: string }>();
const seconds = opts.seconds;
const metrics = new MetricsWriter(opts.metrics);

// ------------------------------------------------------------------------------------------ the mixed set

function mixedPairs(): Array<{ pred: string; gold: string; plain: boolean }> {
  const out: Array<{ pred: string; gold: string; plain: boolean }> = [];
  const add = (pred: string, gold: string, plain = false) => out.push({ pred, gold, plain });
  for (let i = 1; i <= 60; i++) {
    const a = i * 7;
    const b = i + 3;
    add(String(a), String(a), true);
    add(String(a + 1), String(a), true);
    add(`${a}/${b}`, `${(a / b).toPrecision(15)}`, true);
    add(`\\frac{${a}}{${b}}`, `${a}/${b}`);
    add(`\\dfrac{${2 * a}}{${2 * b}}`, `\\frac{${a}}{${b}}`);
    add(`${i}\\%`, `${i / 100}`);
    add(`${i}.5 \\times 10^{${i % 5}}`, `${(i + 0.5) * 10 ** (i % 5)}`);
    add(`${a},000`, `${a}000`);
    add(`(${i}, ${b}]`, `(${i},${b}]`);
    add(`[${i}, ${b}]`, `(${i},${b})`);
    add(`\\{${i}, ${b}, ${a}\\}`, `\\{${a}, ${i}, ${b}\\}`);
    add(`(${i}, ${b})`, `(${b}, ${i})`);
    add(`\\begin{pmatrix}${i}&${b}\\\\${a}&1\\end{pmatrix}`, `[[${i},${b}],[${a},1]]`);
    add(`y = ${i}x + ${b}`, `${b} + ${i}x = y`);
    add(`x = ${i}`, `${i}`);
    add(`x^2 + ${2 * i}x + ${i * i}`, `(x+${i})^2`, true);
    add(`x^2 + ${2 * i}x + ${i * i + 1}`, `(x+${i})^2`, true);
    add(`\\sqrt{${i * i * 2}}`, `${i}\\sqrt{2}`);
    add(`\\sin^2 x + \\cos^2 x + ${i}`, `${i + 1}`);
    add(`\\frac{x^2-${i * i}}{x-${i}}`, `x+${i}`);
    add(`${i} \\pm \\sqrt{${b}}`, `${i}+\\sqrt{${b}}, ${i}-\\sqrt{${b}}`);
    add(`e^{${i}x}\\cdot e^{x}`, `e^{${i + 1}x}`);
  }
  return out;
}

// ------------------------------------------------------------------------------------------ phases

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

function timed(label: string, n: number, fn: (i: number) => void, budgetS: number) {
  const lat: number[] = [];
  const progress = new Progress({ label, total: Math.round(budgetS * 10) });
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  let i = 0;
  let lastTick = start;
  while (performance.now() - start < budgetS * 1000) {
    const t0 = performance.now();
    fn(i % n);
    lat.push(performance.now() - t0);
    i++;
    if (t0 - lastTick > 100) {
      lastTick = t0;
      progress.update(Math.min(Math.round((t0 - start) / 100), budgetS * 10), `${i} checks`);
    }
  }
  progress.update(budgetS * 10, `${i} checks`);
  progress.stop();
  const elapsed = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  lat.sort((a, b) => a - b);
  return {
    checks: i,
    perSecond: i / elapsed,
    // Per second of this process's CPU time: the one-core rate, also on a machine shared with other work.
    perCpuSecond: i / ((cpu.user + cpu.system) / 1e6),
    p50us: percentile(lat, 0.5) * 1000,
    p99us: percentile(lat, 0.99) * 1000,
    maxMs: lat[lat.length - 1]!,
  };
}

const pairs = mixedPairs();
// Warm the JIT and mathjs caches once so every phase measures steady state.
for (const p of pairs) checkMath(p.pred, p.gold);
let equalCount = 0;
for (const p of pairs) if (checkMath(p.pred, p.gold).equal === true) equalCount++;

// Headline: no reuse of parsed references (every check parses both sides).
const rule = timed(
  'rule path',
  pairs.length,
  (i) => void checkMath(pairs[i]!.pred, pairs[i]!.gold, { goldCache: false }),
  seconds,
);
metrics.write({ phase: 'rule_path', pairs: pairs.length, equal: equalCount, ...rule });
// RL shape: a group of responses shares its reference, parsed once.
const ruleCached = timed(
  'rule path, reference cache',
  pairs.length,
  (i) => void checkMath(pairs[i]!.pred, pairs[i]!.gold),
  seconds,
);
metrics.write({ phase: 'rule_path_gold_cache', pairs: pairs.length, ...ruleCached });

// Agreement with the hand-written corpus, by family (issue #21), and the speed of those heavier checks.
const corpus = loadCorpus();
const corpusCases = Object.values(corpus).flat();
const agreement: Array<{ family: string; cases: number; agree: number; rate: number }> = [];
for (const [family, cases] of Object.entries(corpus)) {
  let agree = 0;
  for (const c of cases) {
    const r = checkMath(c.pred, c.gold, { ...c.options, goldCache: false });
    if (c.equal ? r.equal === true : r.equal !== true) agree++;
  }
  agreement.push({ family, cases: cases.length, agree, rate: agree / cases.length });
  metrics.write({ phase: 'corpus_agreement', family, cases: cases.length, agree, rate: agree / cases.length });
}
const corpusRun = timed(
  'corpus checks',
  corpusCases.length,
  (i) => void checkMath(corpusCases[i]!.pred, corpusCases[i]!.gold, { ...corpusCases[i]!.options, goldCache: false }),
  seconds,
);
metrics.write({ phase: 'corpus_checks', cases: corpusCases.length, ...corpusRun });

const plain = pairs.filter((p) => p.plain);
const peer = timed(
  'peer: mathjs simplify',
  plain.length,
  (i) => {
    try {
      void (simplify(`(${plain[i]!.pred}) - (${plain[i]!.gold})`).toString() === '0');
    } catch {
      // count it as a check anyway
    }
  },
  seconds,
);
const pts = [0.37, -1.21, 2.03];
const peerEval = timed(
  'peer: mathjs evaluate',
  plain.length,
  (i) => {
    try {
      const a = compile(plain[i]!.pred);
      const b = compile(plain[i]!.gold);
      void pts.every((x) => Math.abs(Number(a.evaluate({ x })) - Number(b.evaluate({ x }))) < 1e-9);
    } catch {
      // count it as a check anyway
    }
  },
  seconds,
);
const ours = timed(
  'rule path (same pairs)',
  plain.length,
  (i) => void checkMath(plain[i]!.pred, plain[i]!.gold),
  seconds,
);
metrics.write({ phase: 'peer_simplify', pairs: plain.length, ...peer });
metrics.write({ phase: 'peer_evaluate', pairs: plain.length, ...peerEval });
metrics.write({ phase: 'rule_path_plain', pairs: plain.length, ...ours });

// Router over mixed domains.
const B = (s: string) => `<|begin_of_box|>${s}<|end_of_box|>`;
const R = (a: string) =>
  `<think>Compute carefully, step by step, and check the result.</think><answer>${B(a)}</answer>`;
const mk = (over: Partial<Sample>): Sample => ({
  id: 'bench',
  domain: 'stem',
  source: 'bench',
  split: 'test',
  images: [],
  question: 'Answer the question.',
  answer: '1',
  verifier: { type: 'math' },
  ...over,
});
const routerItems: Array<{ s: Sample; r: string }> = [];
for (let i = 1; i <= 40; i++) {
  routerItems.push({ s: mk({ answer: `\\frac{${i}}{${i + 1}}` }), r: R(`${i}/${i + 1}`) });
  routerItems.push({
    s: mk({ domain: 'chart', answer: String(1990 + i), verifier: { type: 'chart' } }),
    r: R(String(1990 + i)),
  });
  routerItems.push({
    s: mk({ domain: 'chart', answer: String(100 * i), verifier: { type: 'chart' } }),
    r: R(String(100 * i + 1)),
  });
  routerItems.push({
    s: mk({ domain: 'vqa', answer: String(i % 12), verifier: { type: 'counting' } }),
    r: R(`${i % 12} apples`),
  });
  routerItems.push({
    s: mk({ domain: 'ocr', answer: `INVOICE ${i}`, verifier: { type: 'ocr' } }),
    r: R(`INV0ICE ${i}`),
  });
  routerItems.push({
    s: mk({ domain: 'grounding', answer: `[${i},${i},${i + 100},${i + 100}]`, verifier: { type: 'grounding' } }),
    r: R(`[${i + 2},${i},${i + 101},${i + 99}]`),
  });
  routerItems.push({
    s: mk({ domain: 'vqa', answer: 'B', options: ['red', 'green', 'blue'], verifier: { type: 'multiple_choice' } }),
    r: R(i % 2 ? 'B' : 'green'),
  });
  routerItems.push({ s: mk({ answer: '2 m/s', verifier: { type: 'physics' } }), r: R('7.2 km/h') });
}
const router = new RewardRouter({}, { cas: null });
const routerLat: number[] = [];
{
  const progress = new Progress({ label: 'router', total: Math.round(seconds * 10) });
  const start = performance.now();
  let i = 0;
  while (performance.now() - start < seconds * 1000) {
    const it = routerItems[i % routerItems.length]!;
    const t0 = performance.now();
    await router.score(it.s, it.r);
    routerLat.push(performance.now() - t0);
    i++;
    if (i % 500 === 0)
      progress.update(Math.min(Math.round((performance.now() - start) / 100), seconds * 10), `${i} scores`);
  }
  progress.update(seconds * 10, `${i} scores`);
  progress.stop();
}
routerLat.sort((a, b) => a - b);
const routerSum = {
  scores: routerLat.length,
  perSecond: routerLat.length / seconds,
  p50us: percentile(routerLat, 0.5) * 1000,
  p99us: percentile(routerLat, 0.99) * 1000,
};
metrics.write({ phase: 'router_mixed_domains', ...routerSum });

// Pathological set through the router with the CAS pool.
const nest = (open: string, mid: string, close: string, n: number) => open.repeat(n) + mid + close.repeat(n);
const patho: Array<{ name: string; answer: string; gold: string }> = [
  { name: 'giant sum', answer: `${'1+'.repeat(100_000)}1`, gold: '100001' },
  { name: 'deep parentheses', answer: nest('(', 'x+1', ')', 50_000), gold: 'x+1' },
  { name: 'deep \\frac', answer: nest('\\frac{1}{', '2', '}', 5_000), gold: '2' },
  { name: 'deep \\sqrt', answer: nest('\\sqrt{', '2', '}', 5_000), gold: '1' },
  { name: 'exponent tower', answer: '2^{2^{2^{2^{2^{2^{2^{100}}}}}}}', gold: '3' },
  { name: 'huge power', answer: '10^{10^{10}}', gold: '1' },
  { name: 'huge factorial', answer: '(10^{9})!', gold: '1' },
  { name: 'huge binomial', answer: '\\binom{10^{9}}{5 \\cdot 10^{8}}', gold: '1' },
  { name: 'long list', answer: Array.from({ length: 20_000 }, (_, i) => i).join(', '), gold: '1, 2' },
  {
    name: 'giant matrix',
    answer: `\\begin{pmatrix}${Array.from({ length: 200 }, () => Array(200).fill('1').join('&')).join('\\\\')}\\end{pmatrix}`,
    gold: '1',
  },
  { name: 'many variables', answer: Array.from({ length: 300 }, (_, i) => `x_{${i}}`).join('+'), gold: '0' },
  { name: 'power towers of x', answer: Array(200).fill('x').join('^'), gold: 'x' },
  { name: 'unbalanced braces', answer: '\\frac{1}{2'.repeat(1000), gold: '1' },
  { name: 'giant string', answer: 'a'.repeat(5_000_000), gold: '1' },
  { name: 'simplify-heavy polynomial', answer: '(x+1)^{60} - (x+1)^{60}', gold: '0' },
  { name: 'nested abs', answer: nest('|', 'x', '|', 2_000), gold: 'x' },
];
const cas = new CasPool({ timeoutMs: 2000 });
await cas.warmup();
// Twice: with the default gates (the repetition gate stops most of these early), and with every gate off so each
// case reaches the math path and the CAS pool.
const routers = {
  gated: new RewardRouter({ cas: { timeoutMs: 2000 } }, { cas }),
  ungated: new RewardRouter(
    {
      cas: { timeoutMs: 2000 },
      gates: {
        repetition: { enabled: false },
        echo: { enabled: false },
        language: { enabled: false },
        injection: { enabled: false },
      },
    },
    { cas },
  ),
};
let hangs = 0;
let slowest = { name: '', ms: 0 };
let rewarded = 0;
const limitMs = 10_000;
const pp = new Progress({ label: 'pathological', total: patho.length * 2 });
let done = 0;
for (const [mode, prouter] of Object.entries(routers)) {
  for (const p of patho) {
    const t0 = performance.now();
    const res = await Promise.race([
      prouter.score(mk({ answer: p.gold }), R(p.answer)),
      new Promise<null>((resolve) => setTimeout(() => resolve(null), limitMs).unref()),
    ]);
    const ms = performance.now() - t0;
    if (res === null) hangs++;
    if (res && res.reward > 0 && p.name !== 'simplify-heavy polynomial') rewarded++;
    if (ms > slowest.ms) slowest = { name: `${p.name} (${mode})`, ms };
    metrics.write({
      phase: 'pathological',
      mode,
      case: p.name,
      ms,
      hung: res === null,
      status: res?.status,
      path: res?.path,
      reward: res?.reward,
    });
    pp.update(++done, p.name);
  }
}
pp.stop();
await cas.close();
await router.close();

const f = (x: number) => x.toLocaleString('en-US', { maximumFractionDigits: 0 });
const isa = (() => {
  try {
    const flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.split(/\s+/) ?? [];
    return ['avx2', 'avx512f', 'avx512_bf16', 'amx_tile'].filter((x) => flags.includes(x)).join(' ') || 'baseline';
  } catch {
    return 'unknown';
  }
})();
const worstFamily = agreement.reduce((a, b) => (b.rate < a.rate ? b : a));
const corpusAgree = agreement.reduce((s, a) => s + a.agree, 0);
const lines = [
  '',
  `reward benchmark (one core, ${seconds}s per phase) — ${cpus()[0]?.model ?? 'cpu'}, ISA: ${isa}`,
  `  rule path, mixed set (${pairs.length} pairs, ${equalCount} equal): ${f(rule.perSecond)} checks/s wall, ${f(rule.perCpuSecond)} per CPU-second, p50 ${rule.p50us.toFixed(1)} µs, p99 ${rule.p99us.toFixed(1)} µs, max ${rule.maxMs.toFixed(2)} ms  [target ≥ 20,000/s on one core: ${Math.max(rule.perSecond, rule.perCpuSecond) >= 20_000 ? 'met' : 'NOT met'}]`,
  `  with the reference parsed once per group (RL): ${f(ruleCached.perSecond)} checks/s wall, ${f(ruleCached.perCpuSecond)} per CPU-second, p99 ${ruleCached.p99us.toFixed(1)} µs`,
  `  same plain pairs (${plain.length}): ours ${f(ours.perSecond)}/s, p99 ${ours.p99us.toFixed(1)} µs`,
  `    vs peer mathjs compile+evaluate ${f(peerEval.perSecond)}/s (p99 ${peerEval.p99us.toFixed(1)} µs) → ${(ours.perSecond / peerEval.perSecond).toFixed(1)}×`,
  `    vs peer mathjs simplify ${f(peer.perSecond)}/s (p99 ${peer.p99us.toFixed(0)} µs) → ${(ours.perSecond / peer.perSecond).toFixed(0)}×`,
  `  equivalence corpus (${corpusCases.length} hand-written cases): ${((100 * corpusAgree) / corpusCases.length).toFixed(1)} % agreement [target: no family below 95 %: ${worstFamily.rate >= 0.95 ? 'met' : 'NOT met'}]`,
  ...agreement.map((a) => `    ${a.family.padEnd(10)} ${a.agree}/${a.cases}  ${(100 * a.rate).toFixed(1)} %`),
  `    corpus checks (prose, structures, options): ${f(corpusRun.perSecond)} checks/s wall, ${f(corpusRun.perCpuSecond)} per CPU-second, p50 ${corpusRun.p50us.toFixed(1)} µs, p99 ${corpusRun.p99us.toFixed(1)} µs`,
  `  full router, 8 verifiers: ${f(routerSum.perSecond)} scores/s, p50 ${routerSum.p50us.toFixed(1)} µs, p99 ${routerSum.p99us.toFixed(1)} µs`,
  `  pathological set (${patho.length} cases × gated/ungated, CAS pool hard limit 2 s): ${hangs} hangs, ${rewarded} wrongly rewarded, slowest "${slowest.name}" ${slowest.ms.toFixed(0)} ms`,
];
process.stdout.write(`${lines.join('\n')}\n`);
metrics.write({
  phase: 'summary',
  cpu: cpus()[0]?.model,
  isa,
  rulePerSecond: rule.perSecond,
  rulePerCpuSecond: rule.perCpuSecond,
  corpusAgreement: corpusAgree / corpusCases.length,
  worstFamily: worstFamily.family,
  worstFamilyRate: worstFamily.rate,
  ruleP99us: rule.p99us,
  vsEvaluate: ours.perSecond / peerEval.perSecond,
  vsSimplify: ours.perSecond / peer.perSecond,
  routerPerSecond: routerSum.perSecond,
  hangs,
  rewarded,
  slowest,
});
if (hangs > 0 || rewarded > 0 || worstFamily.rate < 0.95) process.exitCode = 1;
