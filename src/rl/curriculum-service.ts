/**
 * RLCS as a service: the curriculum of `glmv rl` (src/rl/rlcs.ts tiers, src/rl/expansion.ts ratio EMA) for a
 * trainer that runs elsewhere. verl's curriculum hook (`data.sampler.class_path` naming a subclass of
 * `AbstractCurriculumSampler`, integrations/verl/glmv_curriculum.py) registers its dataset's prompts, asks which to
 * draw for each step, and posts each step's per-prompt rewards back; the service answers with the tier
 * populations and the expansion EMA (the factor by which to oversample prompts, DAPO-style `gen_batch_size`).
 *
 * - `POST /curriculum/register` `{ prompts: [{ id, domain?, difficulty? }] }` — the pool (ids unique). Evidence
 *   from an offline pass@k file and a saved state is applied by id.
 * - `POST /curriculum/draw` `{ n, step }` → `{ step, prompts: [{ id, tier }] }`: n distinct prompts by tier weight
 *   and domain mix (the same draw as `glmv rl`); the draw of a step is the same when asked again (resume).
 * - `POST /curriculum/update` `{ step, groups: [{ id, rewards, correct? }], trainPrompts? }` → expansion EMA, the
 *   last ratio, the invalid (all-correct / all-wrong) share and `genPrompts` = ceil(trainPrompts × EMA).
 * - `GET /curriculum/state`, `GET /health`.
 * The state (curriculum records, expansion EMA, last step) is written to `statePath` after every update.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import Fastify, { type FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Sample } from '../data/sample.js';
import { formatZodError } from '../reward/judge.js';
import { clientErrorHandler } from '../util/http.js';
import type { MetricsWriter } from '../util/progress.js';
import { Rng } from '../util/rng.js';
import { ExpansionController, type ExpansionOptions, type ExpansionState, isInvalidGroup } from './expansion.js';
import { Curriculum, type CurriculumOptions, type CurriculumState, type Tier } from './rlcs.js';

export interface CurriculumServiceOptions {
  curriculum?: Partial<CurriculumOptions>;
  expansion?: Partial<ExpansionOptions>;
  /** Offline pass@k results (`glmv rl passk` output's `results`), applied by prompt id at registration. */
  offline?: ReadonlyArray<{ id: string; correct: number; k: number }>;
  seed?: number;
  /** A response counts as correct when the client sends no `correct` flags and its reward is at least this. */
  passThreshold?: number;
  /** JSON state file: read at registration when present, written after every update. */
  statePath?: string;
  metrics?: MetricsWriter;
}

interface SavedState {
  version: 1;
  step: number;
  curriculum: CurriculumState;
  expansion: ExpansionState;
}

const PromptSchema = z
  .object({
    id: z.string().min(1),
    domain: z.string().min(1).default('default'),
    difficulty: z.number().min(1).max(5).nullish(),
  })
  .strict();
const RegisterSchema = z.object({ prompts: z.array(PromptSchema).min(1) }).strict();
const DrawSchema = z.object({ n: z.number().int().min(0), step: z.number().int().min(0) }).strict();
const GroupSchema = z
  .object({
    id: z.string().min(1),
    rewards: z.array(z.number()).min(1),
    correct: z.array(z.union([z.boolean(), z.number()])).optional(),
  })
  .strict();
const UpdateSchema = z
  .object({
    step: z.number().int().min(0),
    groups: z.array(GroupSchema),
    trainPrompts: z.number().int().min(1).optional(),
  })
  .strict();

export class CurriculumService {
  private curriculum: Curriculum | null = null;
  private readonly expansion: ExpansionController;
  private readonly seed: number;
  private readonly passThreshold: number;
  private lastStep = -1;
  private readonly draws = new Map<number, Array<{ id: string; tier: Tier }>>();

  constructor(readonly opts: CurriculumServiceOptions = {}) {
    this.expansion = new ExpansionController(opts.expansion);
    this.seed = opts.seed ?? 0;
    this.passThreshold = opts.passThreshold ?? 0.5;
  }

  /** The prompt pool. Registering again (a restarted trainer) rebuilds it and re-applies saved evidence by id. */
  register(body: unknown) {
    const p = RegisterSchema.safeParse(body);
    if (!p.success) throw new BadRequest(`register body: ${formatZodError(p.error)}`);
    const samples = p.data.prompts.map(
      (x) =>
        ({
          id: x.id,
          domain: x.domain,
          source: 'curriculum',
          split: 'train',
          images: [],
          question: '',
          answer: '',
          verifier: { type: 'general' },
          ...(typeof x.difficulty === 'number' ? { difficulty: x.difficulty } : {}),
        }) as unknown as Sample,
    );
    let cur: Curriculum;
    try {
      cur = new Curriculum(samples, this.opts.curriculum);
    } catch (e) {
      throw new BadRequest(`register: ${(e as Error).message}`);
    }
    let offlineApplied = 0;
    for (const r of this.opts.offline ?? [])
      if (cur.sample(r.id)) {
        cur.setOffline(r.id, r.correct, r.k);
        offlineApplied++;
      }
    let restored = 0;
    const saved = this.readState();
    if (saved) {
      restored = cur.load(saved.curriculum).restored;
      this.expansion.state = { ...saved.expansion };
      this.lastStep = saved.step;
    }
    this.curriculum = cur;
    this.draws.clear();
    this.opts.metrics?.write({ event: 'register', prompts: cur.size, offlineApplied, restored });
    return { size: cur.size, domains: cur.domains(), offlineApplied, restored, lastStep: this.lastStep };
  }

  draw(body: unknown) {
    const cur = this.need();
    const p = DrawSchema.safeParse(body);
    if (!p.success) throw new BadRequest(`draw body: ${formatZodError(p.error)}`);
    const { n, step } = p.data;
    let drawn = this.draws.get(step);
    if (!drawn || drawn.length !== n) {
      // One stream per (seed, step): the same step draws the same prompts, whatever was asked before.
      const rng = new Rng((this.seed * 0x9e3779b1 + step) >>> 0);
      drawn = cur.draw(n, step, rng).map((d) => ({ id: d.sample.id, tier: d.tier }));
      this.draws.set(step, drawn);
      for (const k of this.draws.keys()) if (k < step - 4) this.draws.delete(k);
    }
    return { step, prompts: drawn };
  }

  update(body: unknown) {
    const cur = this.need();
    const p = UpdateSchema.safeParse(body);
    if (!p.success) throw new BadRequest(`update body: ${formatZodError(p.error)}`);
    const { step, groups, trainPrompts } = p.data;
    let invalid = 0;
    let unknown = 0;
    for (const g of groups) {
      if (!cur.sample(g.id)) {
        unknown++;
        continue;
      }
      if (g.correct && g.correct.length !== g.rewards.length)
        throw new BadRequest(
          `update: group ${g.id} has ${g.rewards.length} rewards and ${g.correct.length} correct flags`,
        );
      const correct = g.correct
        ? g.correct.filter((c) => c === true || (typeof c === 'number' && c >= this.passThreshold)).length
        : g.rewards.filter((r) => r >= this.passThreshold).length;
      cur.observe(g.id, correct, g.rewards.length, step);
      if (isInvalidGroup({ correct, total: g.rewards.length, rewardStd: 0 })) invalid++;
    }
    if (unknown === groups.length && groups.length > 0)
      throw new BadRequest(`update: none of the ${groups.length} group ids is a registered prompt`);
    const known = groups.length - unknown;
    const share = known > 0 ? invalid / known : 1;
    const { ratio, ema } = this.expansion.observe(share);
    this.lastStep = Math.max(this.lastStep, step);
    this.writeState();
    const out = {
      step,
      groups: known,
      unknown,
      invalidShare: share,
      expansion: { ratio, ema },
      ...(trainPrompts ? { genPrompts: this.expansion.promptsToSample(trainPrompts, 1) } : {}),
      populations: cur.populations()['*'],
    };
    this.opts.metrics?.write({ event: 'update', ...out });
    return out;
  }

  state() {
    const cur = this.curriculum;
    return {
      registered: cur !== null,
      size: cur?.size ?? 0,
      lastStep: this.lastStep,
      expansion: this.expansion.state,
      populations: cur?.populations() ?? {},
      offline: cur?.offlineCount() ?? 0,
    };
  }

  /** A prompt's merged pass-rate estimate and tier (tests, debugging). */
  prompt(id: string) {
    const cur = this.need();
    if (!cur.sample(id)) return null;
    return { id, passRate: cur.passRate(id), tier: cur.tierOf(id), record: cur.record(id) };
  }

  private need(): Curriculum {
    if (!this.curriculum) throw new BadRequest('no prompts registered yet: POST /curriculum/register first', 409);
    return this.curriculum;
  }

  private readState(): SavedState | null {
    const path = this.opts.statePath;
    if (!path || !existsSync(path)) return null;
    let s: SavedState;
    try {
      s = JSON.parse(readFileSync(path, 'utf8')) as SavedState;
    } catch (e) {
      throw new Error(`curriculum state ${path}: not valid JSON (${(e as Error).message})`);
    }
    if (s?.version !== 1 || !s.curriculum || !s.expansion)
      throw new Error(`curriculum state ${path}: expected { version: 1, curriculum, expansion, step }`);
    return s;
  }

  private writeState(): void {
    const path = this.opts.statePath;
    if (!path || !this.curriculum) return;
    const s: SavedState = {
      version: 1,
      step: this.lastStep,
      curriculum: this.curriculum.toJSON(),
      expansion: this.expansion.state,
    };
    writeFileSync(`${path}.tmp`, JSON.stringify(s));
    renameSync(`${path}.tmp`, path);
  }
}

/** A client error with its HTTP status. */
export class BadRequest extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

export function buildCurriculumServer(service: CurriculumService, opts: { logger?: boolean } = {}): FastifyInstance {
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: 256 * 1024 * 1024,
    clientErrorHandler: clientErrorHandler((_s, message) => ({ error: message })),
  });
  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    const status =
      err instanceof BadRequest ? err.status : err.statusCode && err.statusCode < 500 ? err.statusCode : 500;
    void reply.code(status).send({ error: status === 500 ? `internal error: ${err.message}` : err.message });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: `no route ${req.method} ${req.url.slice(0, 200)}` });
  });
  app.get('/health', async () => ({ ok: true }));
  app.get('/curriculum/state', async () => service.state());
  app.post('/curriculum/register', async (req) => service.register(req.body));
  app.post('/curriculum/draw', async (req) => service.draw(req.body));
  app.post('/curriculum/update', async (req) => service.update(req.body));
  return app;
}
