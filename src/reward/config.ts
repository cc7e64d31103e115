/**
 * Declarative reward routing: a YAML or JSON file mapping data sources / domains to a verifier, its parameters,
 * judge use and gate settings, validated with zod. First matching route wins; a sample no route matches uses its
 * own `verifier` spec with the global gates.
 *
 * ```yaml
 * minReward: 0
 * gates: { thinking: { required: true } }
 * judge: { endpoints: [{ baseURL: http://localhost:8000/v1, model: judge, apiKeyEnv: JUDGE_KEY }] }
 * routes:
 *   - { name: charts, match: { domain: chart }, verifier: chart, params: { tolerance: 0.02 } }
 *   - { match: { source: "geo3k*" }, verifier: math, judge: never }
 * ```
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { DOMAINS, VERIFIER_TYPES } from '../data/sample.js';
import { GatesSchema } from './gates.js';
import { formatZodError, JudgeConfigSchema } from './judge.js';
import { VERIFIERS } from './verifiers/index.js';

const oneOrMany = <T extends z.ZodTypeAny>(t: T) => z.union([t, z.array(t).min(1)]);

export const RouteSchema = z
  .object({
    name: z.string().min(1).optional(),
    match: z
      .object({
        /** Glob(s) on `sample.source` (`*` matches anything). */
        source: oneOrMany(z.string().min(1)).optional(),
        domain: oneOrMany(z.enum(DOMAINS)).optional(),
        /** Match on the sample's own verifier type. */
        verifier: oneOrMany(z.enum(VERIFIER_TYPES)).optional(),
      })
      .strict()
      .default({}),
    /** Verifier to use; default: the sample's own `verifier.type`. */
    verifier: z.enum(VERIFIER_TYPES).optional(),
    /** Verifier parameters; a sample's own params (same verifier) override them per item. */
    params: z.record(z.string(), z.unknown()).default({}),
    judge: z.enum(['fallback', 'never', 'always']).default('fallback'),
    /** Gate overrides, merged key by key over the global gates. */
    gates: z.record(z.string(), z.record(z.string(), z.unknown())).default({}),
  })
  .strict();

export const RewardConfigSchema = z
  .object({
    /** Reward given by tripped gates and failed extraction (default 0). */
    minReward: z.number().max(0).default(0),
    gates: z.record(z.string(), z.record(z.string(), z.unknown())).default({}),
    judge: JudgeConfigSchema.optional(),
    cas: z
      .object({
        enabled: z.boolean().default(true),
        /** Worker threads; default: the cores. */
        threads: z.number().int().positive().optional(),
        timeoutMs: z.number().int().positive().default(3000),
        /** Checks waiting for a thread; more (and any still waiting at their deadline) are undecided at once. */
        maxQueue: z.number().int().nonnegative().default(64),
      })
      .strict()
      .default({ enabled: true, timeoutMs: 3000, maxQueue: 64 }),
    /**
     * Every verifier call runs in a worker killed at its deadline (compute time; judge and CAS waits excluded).
     * Over the deadline or behind a full queue, the result is `unjudged` with the reason.
     */
    isolation: z
      .object({
        enabled: z.boolean().default(true),
        threads: z.number().int().positive().optional(),
        timeoutMs: z.number().int().positive().default(10_000),
        /** Calls waiting for a thread (a whole RL batch queues); more are `unjudged` at once. */
        maxQueue: z.number().int().nonnegative().default(16_384),
        /** Longest wait for a thread before a call is `unjudged`. */
        maxWaitMs: z.number().int().positive().default(120_000),
      })
      .strict()
      .default({ enabled: true, timeoutMs: 10_000, maxQueue: 16_384, maxWaitMs: 120_000 }),
    routes: z.array(RouteSchema).default([]),
  })
  .strict();

export type RewardConfig = z.infer<typeof RewardConfigSchema>;
export type RewardConfigInput = z.input<typeof RewardConfigSchema>;
export type Route = z.infer<typeof RouteSchema>;

function deepMergeGates(
  base: Record<string, Record<string, unknown>>,
  over: Record<string, Record<string, unknown>>,
): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = { ...(base[k] ?? {}), ...v };
  return out;
}

/** Resolved gates for a route: global settings with the route's overrides, validated. */
export function resolveGates(config: RewardConfig, route: Route | null, where: string) {
  const merged = route ? deepMergeGates(config.gates, route.gates) : config.gates;
  const r = GatesSchema.safeParse(merged);
  if (!r.success) throw new Error(`${where}: invalid gates: ${formatZodError(r.error)}`);
  return r.data;
}

/** Validates a config object; every problem is reported with its path. */
export function parseRewardConfig(input: unknown, where = 'reward config'): RewardConfig {
  const r = RewardConfigSchema.safeParse(input ?? {});
  if (!r.success) throw new Error(`${where}: ${formatZodError(r.error)}`);
  const config = r.data;
  resolveGates(config, null, where);
  config.routes.forEach((route, i) => {
    const label = `${where}: routes[${i}]${route.name ? ` (${route.name})` : ''}`;
    resolveGates(config, route, label);
    if (route.verifier) {
      const p = VERIFIERS[route.verifier].params.safeParse(route.params);
      if (!p.success) throw new Error(`${label}: params for ${route.verifier}: ${formatZodError(p.error)}`);
    }
    if (route.judge === 'always' && !config.judge)
      throw new Error(`${label}: judge: always needs a top-level judge configuration`);
  });
  return config;
}

/** Reads a YAML (.yaml/.yml) or JSON file. */
export function loadRewardConfig(path: string): RewardConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`reward config ${path}: cannot read (${(e as Error).message})`);
  }
  let data: unknown;
  try {
    data = /\.json$/i.test(path) ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new Error(
      `reward config ${path}: not valid ${/\.json$/i.test(path) ? 'JSON' : 'YAML'} (${(e as Error).message})`,
    );
  }
  return parseRewardConfig(data, `reward config ${path}`);
}

function globToRegex(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
}

const globCache = new Map<string, RegExp>();
function globMatch(glob: string, s: string): boolean {
  let re = globCache.get(glob);
  if (!re) {
    re = globToRegex(glob);
    globCache.set(glob, re);
  }
  return re.test(s);
}

const asArray = <T>(x: T | T[] | undefined): T[] | undefined =>
  x === undefined ? undefined : Array.isArray(x) ? x : [x];

/** The first route matching the sample, with its index. */
export function matchRoute(
  routes: Route[],
  s: { source: string; domain: string; verifier?: { type?: string } },
): { route: Route; index: number } | null {
  for (let i = 0; i < routes.length; i++) {
    const m = routes[i]!.match;
    const sources = asArray(m.source);
    const domains = asArray(m.domain);
    const verifiers = asArray(m.verifier);
    if (sources && !sources.some((g) => globMatch(g, s.source))) continue;
    if (domains && !domains.includes(s.domain as never)) continue;
    if (verifiers && !verifiers.includes((s.verifier?.type ?? '') as never)) continue;
    return { route: routes[i]!, index: i };
  }
  return null;
}
