/**
 * Local rollouts for the toy policy: batched sampling with temperature / top-k / top-p (io/sampling.ts), the thinking
 * budget and force answering (io/force-answer.ts, recorded by rollout/sampling.ts `ResponseBuilder`). TinyGpt has no KV cache, so each new token re-runs the batch's full
 * sequences — fine for the toy's ~30-token sequences; the GLM engine will decode incrementally (src/io/generate.ts).
 * Every response draws from its own generator forked in a fixed order, so results do not depend on batch size.
 */
import { fromArray, noGrad, scope } from '../../engine/index.js';
import { forcedSuffix } from '../../io/force-answer.js';
import { sampleToken, tokenLogProb } from '../../io/sampling.js';
import { Rng } from '../../util/rng.js';
import type { ToyPolicy } from '../toy.js';
import type { Rollout, RolloutEngine, RolloutPrompt, SamplingParams } from '../types.js';
import { type ControlTokens, ResponseBuilder, validateSampling } from './sampling.js';

/** The toy has no repetition penalty: no token history. */
const NO_HISTORY: ReadonlySet<number> = new Set();

export interface ToyEngineOptions {
  /** Responses decoded together (rows of one forward pass). Default 256. */
  batchSize?: number;
}

export class ToyRolloutEngine implements RolloutEngine {
  readonly name = 'toy-local';
  private readonly batchSize: number;
  /** Tokens sampled (not inserted) since construction: the benchmark's rollout tokens/s. */
  sampledTokens = 0;

  constructor(
    readonly policy: ToyPolicy,
    opts: ToyEngineOptions = {},
  ) {
    this.batchSize = opts.batchSize ?? 256;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1)
      throw new Error(`toy engine batchSize: expected a positive integer, got ${opts.batchSize}`);
  }

  control(style: SamplingParams['style']): ControlTokens {
    const c = this.policy.codec;
    return { thinkClose: c.id('</think>'), forced: c.encode(forcedSuffix(style)), eos: [c.eos] };
  }

  async generate(prompts: readonly RolloutPrompt[], groupSize: number, params: SamplingParams): Promise<Rollout[][]> {
    validateSampling(params);
    if (!Number.isInteger(groupSize) || groupSize < 1)
      throw new Error(`toy engine: groupSize must be a positive integer, got ${groupSize}`);
    const control = this.control(params.style);
    const root = new Rng(params.seed);
    const rows = prompts.flatMap((p, i) =>
      Array.from({ length: groupSize }, (_, j) => ({
        i,
        j,
        prompt: p.input.ids,
        rng: root.fork(),
        b: new ResponseBuilder(params, control),
      })),
    );
    for (const [k, r] of rows.entries())
      if (r.prompt.length === 0)
        throw new Error(`toy engine: prompt ${r.i} (${prompts[r.i]!.sample.id}) is empty (row ${k})`);
    const maxLen = this.policy.config.maxLen;
    const V = this.policy.codec.size;
    for (let start = 0; start < rows.length; start += this.batchSize) {
      const chunk = rows.slice(start, start + this.batchSize);
      for (;;) {
        for (const r of chunk) {
          r.b.beforeSample();
          if (!r.b.done && r.prompt.length + r.b.tokens.length >= maxLen) r.b.finish = 'length';
        }
        const active = chunk.filter((r) => !r.b.done);
        if (active.length === 0) break;
        const lens = active.map((r) => r.prompt.length + r.b.tokens.length);
        const L = Math.max(...lens);
        const ids = new Int32Array(active.length * L).fill(this.policy.codec.pad);
        active.forEach((r, a) => {
          ids.set(r.prompt, a * L);
          ids.set(r.b.tokens, a * L + r.prompt.length);
        });
        const logits = noGrad(() =>
          scope(() => this.policy.model.forward(fromArray(ids, [active.length, L])).toFloat32()),
        );
        active.forEach((r, a) => {
          const off = (a * L + lens[a]! - 1) * V;
          const row = logits.subarray(off, off + V);
          const token = sampleToken(row, NO_HISTORY, params, r.rng);
          // The tempered log-probability: what the trainer recomputes at the rollout temperature.
          r.b.push(token, tokenLogProb(row, token, params.temperature));
          this.sampledTokens++;
        });
      }
    }
    const out: Rollout[][] = prompts.map(() => []);
    for (const r of rows) out[r.i]![r.j] = r.b.build((ids) => this.policy.codec.decode(ids));
    return out;
  }
}
