/**
 * The reward router: `score(sample, response)` → `{ reward, correct, domain, verifier, reason, confident, … }`.
 * Never throws: bad input, a broken reference or a verifier bug give status `error` with reward = minReward and a
 * reason; a judge outage gives `unjudged`. Async and batchable (`scoreBatch` with a concurrency limit).
 *
 * Order of work for one response: route → overlong → format → thinking → repetition → answer extraction →
 * box-in-non-verifiable → language → injection → echo → verifier → soft overlong penalty.
 */
import { DOMAINS, type Sample, VERIFIER_TYPES, type VerifierType } from '../data/sample.js';
import { parseResponse } from '../io/answer/response.js';
import { CasPool } from './cas.js';
import {
  matchRoute,
  parseRewardConfig,
  type RewardConfig,
  type RewardConfigInput,
  type Route,
  resolveGates,
} from './config.js';
import {
  boxGate,
  echoGate,
  type GateResult,
  type GatesConfig,
  injectionGate,
  languageGate,
  overlongGate,
  repetitionGate,
  thinkingGate,
} from './gates.js';
import { formatZodError, JudgeClient, type JudgeClientOptions } from './judge.js';
import { RewardStats } from './stats.js';
import type { ResponseMeta, RewardResult, Verdict } from './types.js';
import { acquireVerifierPool, type VerifierPool } from './verifier-pool.js';
import { judgeVerdict } from './verifiers/common.js';
import { VERIFIERS } from './verifiers/index.js';

export interface RouterOptions {
  /** Use this judge instead of building one from the config (tests, shared clients). */
  judge?: JudgeClient | null;
  /** Use this CAS pool instead of building one (null disables the pool: limits-exceeding math is undecided). */
  cas?: CasPool | null;
  /**
   * Run verifier calls in this deadline pool instead of the shared one the config describes; null runs them on
   * the calling thread with no deadline (trusted input only).
   */
  verifierPool?: VerifierPool | null;
  judgeOptions?: JudgeClientOptions;
}

export interface ScoreItem {
  sample: Sample;
  response: string;
  meta?: ResponseMeta;
}

interface ResolvedRoute {
  route: Route | null;
  label: string;
  gates: GatesConfig;
}

export class RewardRouter {
  readonly config: RewardConfig;
  readonly stats = new RewardStats();
  readonly judge: JudgeClient | null;
  private casPool: CasPool | null | undefined;
  private verifierPool: VerifierPool | null | undefined;
  private releaseVerifierPool: (() => Promise<void>) | null = null;
  private readonly gatesByRoute = new Map<number, ResolvedRoute>();
  private readonly defaultRoute: ResolvedRoute;

  constructor(config: RewardConfigInput | RewardConfig = {}, opts: RouterOptions = {}) {
    this.config = parseRewardConfig(config);
    this.judge =
      opts.judge !== undefined
        ? opts.judge
        : this.config.judge
          ? new JudgeClient(this.config.judge, opts.judgeOptions)
          : null;
    this.casPool = opts.cas !== undefined ? opts.cas : this.config.cas.enabled ? undefined : null;
    this.verifierPool =
      opts.verifierPool !== undefined ? opts.verifierPool : this.config.isolation.enabled ? undefined : null;
    this.defaultRoute = { route: null, label: 'sample', gates: resolveGates(this.config, null, 'reward config') };
    this.config.routes.forEach((route, i) => {
      this.gatesByRoute.set(i, {
        route,
        label: route.name ?? `routes[${i}]`,
        gates: resolveGates(this.config, route, `routes[${i}]`),
      });
    });
  }

  /** The CAS pool, created on first need so routers that never meet hard math start no threads. */
  private get cas(): CasPool | null {
    if (this.casPool === undefined)
      this.casPool = new CasPool({
        threads: this.config.cas.threads,
        timeoutMs: this.config.cas.timeoutMs,
        maxQueue: this.config.cas.maxQueue,
      });
    return this.casPool;
  }

  /** The verifier deadline pool, taken from the shared ones on first use. */
  private get isolation(): VerifierPool | null {
    if (this.verifierPool === undefined) {
      const { pool, release } = acquireVerifierPool(this.config.isolation);
      this.verifierPool = pool;
      this.releaseVerifierPool = release;
    }
    return this.verifierPool;
  }

  /** Scores one response. Never throws. */
  async score(sample: Sample, response: string, meta: ResponseMeta = {}): Promise<RewardResult> {
    const t0 = performance.now();
    const result = await this.scoreInner(sample, response, meta).catch(
      (e: unknown): RewardResult => this.errorResult(sample, `internal error: ${(e as Error).message ?? String(e)}`),
    );
    result.ms = performance.now() - t0;
    this.stats.record(result);
    return result;
  }

  /** Scores many responses with at most `concurrency` in flight; results keep the input order. */
  async scoreBatch(
    items: ScoreItem[],
    opts: { concurrency?: number; onResult?: (r: RewardResult, index: number) => void } = {},
  ): Promise<RewardResult[]> {
    const out = new Array<RewardResult>(items.length);
    let next = 0;
    const worker = async () => {
      while (next < items.length) {
        const i = next++;
        const it = items[i]!;
        out[i] = await this.score(it.sample, it.response, it.meta);
        opts.onResult?.(out[i]!, i);
      }
    };
    const n = Math.max(1, Math.min(opts.concurrency ?? 16, items.length));
    await Promise.all(Array.from({ length: n }, worker));
    return out;
  }

  async close(): Promise<void> {
    if (this.casPool) await this.casPool.close();
    this.casPool = null;
    if (this.releaseVerifierPool) {
      // A router used again after close takes a pool again.
      await this.releaseVerifierPool();
      this.releaseVerifierPool = null;
      this.verifierPool = undefined;
    }
  }

  /** The result for a sample that could not be scored: minimum reward, status 'error', the reason. */
  errorResult(sample: unknown, reason: string, partial: Partial<RewardResult> = {}): RewardResult {
    const s = (sample ?? {}) as Partial<Sample>;
    return {
      id: typeof s.id === 'string' ? s.id : '(no id)',
      reward: this.config.minReward,
      correct: false,
      domain: (DOMAINS as readonly string[]).includes(s.domain as string) ? (s.domain as Sample['domain']) : 'text',
      verifier: (VERIFIER_TYPES as readonly string[]).includes(s.verifier?.type as string)
        ? (s.verifier!.type as VerifierType)
        : 'general',
      reason,
      confident: false,
      status: 'error',
      route: '-',
      answer: null,
      path: 'error',
      gates: [],
      ms: 0,
      ...partial,
    };
  }

  private async scoreInner(sample: Sample, response: string, meta: ResponseMeta): Promise<RewardResult> {
    const bad = checkSample(sample);
    if (bad) return this.errorResult(sample, bad);
    if (typeof response !== 'string')
      return this.errorResult(
        sample,
        `response: expected a string, found ${response === null ? 'null' : typeof response}`,
      );

    const m = matchRoute(this.config.routes, sample);
    const rr = m ? this.gatesByRoute.get(m.index)! : this.defaultRoute;
    const vtype: VerifierType | undefined = rr.route?.verifier ?? sample.verifier?.type;
    if (!vtype || !(vtype in VERIFIERS))
      return this.errorResult(
        sample,
        `sample ${sample.id}: verifier "${String(vtype)}" is not one of ${VERIFIER_TYPES.join(', ')}`,
        {
          route: rr.label,
        },
      );
    const verifier = VERIFIERS[vtype];
    const rawParams = {
      ...(rr.route?.params ?? {}),
      ...(sample.verifier?.type === vtype ? (sample.verifier.params ?? {}) : {}),
    };
    const params = verifier.params.safeParse(rawParams);
    const base = {
      id: sample.id,
      domain: sample.domain,
      verifier: vtype,
      route: rr.label,
    };
    if (!params.success)
      return this.errorResult(
        sample,
        `sample ${sample.id}: params for ${vtype}: ${formatZodError(params.error)}`,
        base,
      );

    const g = rr.gates;
    const reports: GateResult[] = [];
    const gated = (report: GateResult, answer: string | null): RewardResult => ({
      ...base,
      reward: this.config.minReward,
      correct: false,
      reason: `${report.name}: ${report.detail ?? 'tripped'}`,
      confident: true,
      status: 'gated',
      answer,
      path: `gate:${report.name}`,
      gates: reports,
      ms: 0,
    });
    const run = (r: GateResult, answer: string | null): RewardResult | null => {
      reports.push(r);
      return r.tripped ? gated(r, answer) : null;
    };

    const first = run(overlongGate(g.overlong, response, meta), null);
    if (first) return first;
    const parsed = parseResponse(response, {
      style: g.format.style,
      prefilledThink: g.format.prefilledThink,
      mode: meta.extract ?? g.format.extraction,
    });
    const formatReport: GateResult = g.format.enabled
      ? {
          name: 'format',
          tripped: !parsed.format.ok,
          detail: parsed.format.ok ? undefined : parsed.format.violations.join(', '),
        }
      : { name: 'format', tripped: false, detail: 'disabled' };
    for (const report of [formatReport, thinkingGate(g.thinking, parsed), repetitionGate(g.repetition, parsed)]) {
      const hit = run(report, null);
      if (hit) return hit;
    }

    let answer: string;
    if (verifier.boxed) {
      if (!parsed.box.ok) {
        const failures: Record<string, string> = {
          none: 'no <|begin_of_box|> answer',
          multiple: `${parsed.box.count} boxes where exactly one is required`,
          only_in_think: 'the only box is inside <think>',
          nested: 'nested boxes',
          unclosed: 'unbalanced box markers',
          legacy_boxed: '\\boxed{} is not accepted',
          empty: 'empty box',
        };
        return gated({ name: 'extract', tripped: true, detail: failures[parsed.box.failure] }, null);
      }
      answer = parsed.box.value;
    } else {
      answer = parsed.content;
      const hit = run(boxGate(g.boxInNonVerifiable, false, parsed), answer);
      if (hit) return hit;
      if (answer.trim() === '') return gated({ name: 'extract', tripped: true, detail: 'empty answer' }, answer);
    }
    // Lazily evaluated so that a tripped gate skips the later ones.
    const late: Array<() => GateResult> = [
      () => languageGate(g.language, sample, parsed, answer),
      () => injectionGate(g.injection, answer),
      () => echoGate(g.echo, sample, answer),
    ];
    for (const gate of late) {
      const hit = run(gate(), answer);
      if (hit) return hit;
    }

    let verdict: Verdict;
    try {
      const ctx = {
        sample,
        response: parsed,
        answer,
        params: params.data,
        cas: this.needsCas(vtype) ? this.cas : null,
        judge: rr.route?.judge === 'never' ? null : this.judge,
        judgeMode: rr.route?.judge ?? 'fallback',
      };
      const pool = this.isolation;
      verdict = pool ? await pool.verify(vtype, ctx) : await verifier.verify(ctx);
    } catch (e) {
      return this.errorResult(sample, `sample ${sample.id}: ${(e as Error).message}`, {
        ...base,
        answer,
        gates: reports,
      });
    }

    // `judge: always`: the judge has the last word for every verifier (the rule verdict stays in the reason).
    if (rr.route?.judge === 'always' && this.judge && !verdict.judge) {
      const rule = verdict;
      verdict = await judgeVerdict(
        { sample, response: parsed, answer, params: params.data, cas: null, judge: this.judge, judgeMode: 'always' },
        verifier.judgeKind,
        'judge mode always',
      );
      verdict = {
        ...verdict,
        reason: `${verdict.reason}; rules said ${rule.correct ? 'correct' : 'incorrect'} (${rule.path})`,
      };
    }

    const penalty = reports.reduce((s, r) => s + (r.penalty ?? 0), 0);
    const status = verdict.status ?? 'scored';
    const reward = status === 'unjudged' ? 0 : Math.max(this.config.minReward, verdict.score - penalty);
    return {
      ...base,
      reward,
      correct: status === 'unjudged' ? false : verdict.correct,
      reason: penalty > 0 ? `${verdict.reason}; overlong penalty ${penalty.toFixed(3)}` : verdict.reason,
      confident: verdict.confident,
      status,
      answer,
      path: verdict.path,
      gates: reports,
      ...(verdict.judge ? { judge: verdict.judge } : {}),
      ms: 0,
    };
  }

  private needsCas(v: VerifierType): boolean {
    return v === 'math' || v === 'physics' || v === 'chemistry' || v === 'spatial';
  }
}

/** Checks the fields scoring reads; returns a message naming the problem, or null. */
export function checkSample(s: unknown): string | null {
  if (s === null || typeof s !== 'object' || Array.isArray(s))
    return `sample: expected an object, found ${s === null ? 'null' : Array.isArray(s) ? 'an array' : typeof s}`;
  const x = s as Record<string, unknown>;
  const id = typeof x.id === 'string' ? x.id : '(no id)';
  if (typeof x.id !== 'string' || x.id === '')
    return `sample: "id" must be a non-empty string, found ${JSON.stringify(x.id)}`;
  if (typeof x.question !== 'string') return `sample ${id}: "question" must be a string, found ${typeof x.question}`;
  if (typeof x.answer !== 'string') return `sample ${id}: "answer" must be a string, found ${typeof x.answer}`;
  if (typeof x.source !== 'string') return `sample ${id}: "source" must be a string, found ${typeof x.source}`;
  if (!(DOMAINS as readonly string[]).includes(x.domain as string))
    return `sample ${id}: "domain" must be one of ${DOMAINS.join(', ')}, found ${JSON.stringify(x.domain)}`;
  if (x.options !== undefined && (!Array.isArray(x.options) || x.options.some((o) => typeof o !== 'string')))
    return `sample ${id}: "options" must be an array of strings`;
  const v = x.verifier as Record<string, unknown> | undefined;
  if (v !== undefined && (typeof v !== 'object' || v === null || typeof v.type !== 'string'))
    return `sample ${id}: "verifier" must be { type, params? }, found ${JSON.stringify(v)}`;
  return null;
}

let defaultRouter: RewardRouter | null = null;

/**
 * Scores with a default router (no routes, no judge, CAS pool on demand). For configured routing build a
 * `RewardRouter`. Call `closeDefaultRouter()` before exiting if hard math was scored (it stops the CAS threads).
 */
export function score(sample: Sample, response: string, meta?: ResponseMeta): Promise<RewardResult> {
  defaultRouter ??= new RewardRouter();
  return defaultRouter.score(sample, response, meta);
}

export async function closeDefaultRouter(): Promise<void> {
  await defaultRouter?.close();
  defaultRouter = null;
}
