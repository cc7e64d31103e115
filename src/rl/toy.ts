/**
 * The toy policy: the engine's reference transformer (src/demo/tinyGpt.ts) behind the `Policy` interface, with a
 * small character vocabulary whose special tokens are the GLM output tags, two toy tasks, and a format-only cold
 * start. It is the stand-in that lets the whole RL stack (rollouts, rewards, GRPO, RLCS, expansion, resume) run and
 * learn on a CPU in minutes until the GLM model and src/io/generate.ts exist. It is text-only and not the GLM model.
 *
 * Tasks (real rewards through src/reward, strict GLM-4.1V or 4.5V format):
 * - `name` (domain text, verifier counting): "forty two" → 42. The model must read several characters to tell
 *   "six" from "seven" or "sixty"; difficulty 1 = 0–9, 2 = tens, 3 = teens, 4 = compounds.
 * - `add` (domain stem, verifier math): "3+4" → 7; difficulty 1 = sum ≤ 4, 2 = sum ≤ 9, 3 = two-digit sums.
 *
 * The cold start teaches the format — `<think>` + a few filler tokens + `</think>` + a boxed answer of the right
 * length — from a noisy teacher: only `correctShare` of its boxes hold the right answer, the rest random digits. With
 * correctShare 0 the policy starts at chance (RL from scratch: slow, and prone to collapsing onto one answer for a
 * whole task, as small GRPO runs do); with the default 0.5 and a short cold start it starts weak (≈ 30 % pass) but
 * prompt-aware and with high entropy — it cannot do better than ≈ 55 % by imitating its teacher — and what the reward
 * gains after that is RL's.
 */
import type { Sample } from '../data/sample.js';
import { assistantTarget } from '../data/sft.js';
import { TinyGpt, type TinyGptConfig } from '../demo/tinyGpt.js';
import { F, fromArray, manualSeed, noGrad, optim, type Parameter, scope, type Tensor } from '../engine/index.js';
import { Rng } from '../util/rng.js';
import type { AnswerStyle, LogProbOptions, Policy, PolicyItem, PolicyOutput, PromptInput } from './types.js';

// ---------------------------------------------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------------------------------------------

export const TOY_SPECIALS = [
  '<pad>',
  '<eos>',
  '<|user|>',
  '<|assistant|>',
  '<think>',
  '</think>',
  '<answer>',
  '</answer>',
  '<|begin_of_box|>',
  '<|end_of_box|>',
] as const;
const TOY_CHARS = '0123456789abcdefghijklmnopqrstuvwxyz +.\n?';

/** Character-level codec whose special tokens are single ids. */
export class ToyCodec {
  readonly vocab: readonly string[] = [...TOY_SPECIALS, ...TOY_CHARS];
  private readonly ids = new Map(this.vocab.map((t, i) => [t, i]));
  readonly pad = 0;
  readonly eos = 1;

  get size(): number {
    return this.vocab.length;
  }

  id(token: string): number {
    const i = this.ids.get(token);
    if (i === undefined) throw new Error(`toy codec: unknown token ${JSON.stringify(token)}`);
    return i;
  }

  /** Text → ids; special tags become one id each. Throws on characters outside the vocabulary. */
  encode(text: string): number[] {
    const out: number[] = [];
    let i = 0;
    while (i < text.length) {
      if (text[i] === '<') {
        const sp = TOY_SPECIALS.find((s) => text.startsWith(s, i));
        if (sp) {
          out.push(this.ids.get(sp)!);
          i += sp.length;
          continue;
        }
      }
      const ch = text[i]!.toLowerCase();
      const id = this.ids.get(ch);
      if (id === undefined || id < TOY_SPECIALS.length)
        throw new Error(
          `toy codec: character ${JSON.stringify(text[i])} at ${i} of ${JSON.stringify(text.slice(0, 60))} is not in the toy vocabulary (digits, a-z, space, + . ? and newline)`,
        );
      out.push(id);
      i++;
    }
    return out;
  }

  decode(ids: ArrayLike<number>): string {
    let s = '';
    for (let i = 0; i < ids.length; i++) {
      const t = this.vocab[ids[i]!];
      if (t === undefined) throw new Error(`toy codec: id ${ids[i]} is outside the vocabulary of ${this.size}`);
      if (t !== '<pad>' && t !== '<eos>') s += t;
    }
    return s;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Tasks
// ---------------------------------------------------------------------------------------------------------------

const ONES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
const TEENS = [
  'ten',
  'eleven',
  'twelve',
  'thirteen',
  'fourteen',
  'fifteen',
  'sixteen',
  'seventeen',
  'eighteen',
  'nineteen',
];
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];

/** English words for 0–99. */
export function numberWords(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 99) throw new Error(`numberWords: expected an integer 0..99, got ${n}`);
  if (n < 10) return ONES[n]!;
  if (n < 20) return TEENS[n - 10]!;
  const t = TENS[Math.floor(n / 10)]!;
  return n % 10 === 0 ? t : `${t} ${ONES[n % 10]}`;
}

export const TOY_TASKS = ['name', 'add'] as const;
export type ToyTask = (typeof TOY_TASKS)[number];

export interface ToyTaskOptions {
  task: ToyTask;
  /** name: numbers 0..max (≤ 99); add: operands 0..max (≤ 9). */
  max: number;
  /** add: keep only sums up to this (e.g. 9 for single-digit answers). */
  maxSum?: number;
}

/** Every prompt of a toy task (deterministic; ids `toy/<task>/<n>`). */
export function toySamples(o: ToyTaskOptions): Sample[] {
  const base = { split: 'train' as const, images: [] as string[] };
  if (o.task === 'name') {
    if (!Number.isInteger(o.max) || o.max < 1 || o.max > 99)
      throw new Error(`toy task name: max must be an integer 1..99, got ${o.max}`);
    return Array.from({ length: o.max + 1 }, (_, n) => ({
      ...base,
      id: `toy/name/${n}`,
      domain: 'text' as const,
      source: 'toy/name',
      difficulty: n < 10 ? 1 : n % 10 === 0 ? 2 : n < 20 ? 3 : 4,
      question: numberWords(n),
      answer: String(n),
      verifier: { type: 'counting' as const },
    }));
  }
  if (o.task === 'add') {
    if (!Number.isInteger(o.max) || o.max < 1 || o.max > 9)
      throw new Error(`toy task add: max must be an integer 1..9, got ${o.max}`);
    const out: Sample[] = [];
    for (let a = 0; a <= o.max; a++)
      for (let b = 0; b <= o.max; b++) {
        if (o.maxSum !== undefined && a + b > o.maxSum) continue;
        out.push({
          ...base,
          id: `toy/add/${a}+${b}`,
          domain: 'stem',
          source: 'toy/add',
          difficulty: a + b <= 4 ? 1 : a + b <= 9 ? 2 : 3,
          question: `${a}+${b}`,
          answer: String(a + b),
          verifier: { type: 'math' },
        });
      }
    return out;
  }
  throw new Error(`toy task: expected one of ${TOY_TASKS.join(', ')}, got ${JSON.stringify(o.task)}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Policy
// ---------------------------------------------------------------------------------------------------------------

export interface ToyPolicyConfig {
  dim: number;
  layers: number;
  heads: number;
  /** Longest prompt + response. */
  maxLen: number;
}

export const DEFAULT_TOY_POLICY: ToyPolicyConfig = { dim: 64, layers: 2, heads: 4, maxLen: 48 };

export class ToyPolicy implements Policy {
  readonly name = 'toy-tinygpt';
  readonly codec = new ToyCodec();

  constructor(
    readonly model: TinyGpt,
    readonly config: ToyPolicyConfig,
  ) {}

  /** A freshly initialised toy policy (seeds the engine's global generator, which TinyGpt's init draws from). */
  static create(config: Partial<ToyPolicyConfig> = {}, seed = 0): ToyPolicy {
    const c = { ...DEFAULT_TOY_POLICY, ...config };
    for (const k of ['dim', 'layers', 'heads', 'maxLen'] as const)
      if (!Number.isInteger(c[k]) || c[k] < 1)
        throw new Error(`toy policy ${k}: expected a positive integer, got ${c[k]}`);
    if (c.dim % c.heads !== 0) throw new Error(`toy policy: dim ${c.dim} is not divisible by heads ${c.heads}`);
    manualSeed(seed);
    const vocab = new ToyCodec().size;
    const gcfg: TinyGptConfig = {
      vocab,
      dim: c.dim,
      heads: c.heads,
      layers: c.layers,
      ffn: 4 * c.dim,
      maxLen: c.maxLen,
    };
    return new ToyPolicy(new TinyGpt(gcfg), c);
  }

  encodePrompt(sample: Sample): PromptInput {
    if (sample.images?.length || sample.video)
      throw new Error(`toy policy: sample ${sample.id} has images or video; the toy policy is text-only`);
    let body: number[];
    try {
      body = this.codec.encode(sample.question);
    } catch (e) {
      throw new Error(`toy policy: sample ${sample.id}: ${(e as Error).message}`);
    }
    const ids = [this.codec.id('<|user|>'), ...body, this.codec.id('<|assistant|>')];
    if (ids.length >= this.config.maxLen)
      throw new Error(
        `toy policy: sample ${sample.id} prompt has ${ids.length} tokens; maxLen is ${this.config.maxLen}`,
      );
    return { ids: Int32Array.from(ids) };
  }

  encodeText(text: string): number[] {
    return this.codec.encode(text);
  }

  parameters(): Parameter[] {
    return this.model.parameters();
  }

  stateDict(): Map<string, Tensor> {
    return this.model.stateDict();
  }

  loadStateDict(state: Map<string, Tensor>): void {
    this.model.loadStateDict(state);
  }

  snapshot(): ToyPolicy {
    const copy = new ToyPolicy(new TinyGpt(this.model.config), this.config);
    noGrad(() => copy.model.loadStateDict(this.model.stateDict()));
    copy.model.requiresGrad_(false);
    return copy;
  }

  /** Right-padded [B, L] ids of prompt + response (causal attention: padding after a row never affects it). */
  private pack(items: readonly PolicyItem[]): { ids: Int32Array; L: number } {
    let L = 0;
    items.forEach((it, b) => {
      const n = it.prompt.ids.length + it.response.length;
      if (it.prompt.ids.length === 0) throw new Error(`toy policy: item ${b} has an empty prompt`);
      if (n > this.config.maxLen)
        throw new Error(`toy policy: item ${b} has ${n} tokens (prompt + response); maxLen is ${this.config.maxLen}`);
      L = Math.max(L, n);
    });
    const ids = new Int32Array(items.length * L).fill(this.codec.pad);
    items.forEach((it, b) => {
      ids.set(it.prompt.ids, b * L);
      ids.set(it.response, b * L + it.prompt.ids.length);
    });
    return { ids, L };
  }

  logProbs(items: readonly PolicyItem[], opts: LogProbOptions = {}): PolicyOutput {
    if (items.length === 0) throw new Error('toy policy logProbs: empty batch');
    const temperature = opts.temperature ?? 1;
    if (!(temperature > 0)) throw new Error(`toy policy logProbs: temperature must be > 0, got ${temperature}`);
    const B = items.length;
    const { ids, L } = this.pack(items);
    const T = Math.max(1, ...items.map((it) => it.response.length));
    // Position p predicts token p + 1: the response token t of row b is predicted at prompt_len − 1 + t.
    const targets = new Int32Array(B * L).fill(-100);
    const index = new Int32Array(B * T);
    const valid = new Float32Array(B * T);
    items.forEach((it, b) => {
      const p0 = it.prompt.ids.length - 1;
      for (let t = 0; t < it.response.length; t++) targets[b * L + p0 + t] = it.response[t]!;
      for (let t = 0; t < T; t++) {
        // Past the row's end, point at the last column, whose target is always ignored (value 0).
        index[b * T + t] = t < it.response.length ? p0 + t : L - 1;
        valid[b * T + t] = t < it.response.length ? 1 : 0;
      }
    });
    let logits = this.model.forward(fromArray(ids, [B, L]));
    if (temperature !== 1) logits = logits.mul(1 / temperature);
    const nll = F.crossEntropy(logits, fromArray(targets, [B, L]), { reduction: 'none' });
    const idx = fromArray(index, [B, T]);
    const logprobs = nll.neg().gather(1, idx);
    if (!opts.entropy) return { logprobs };
    const lsm = logits.logSoftmax(-1);
    const ent = lsm.exp().mul(lsm).sum(-1).neg();
    const entropy = ent.gather(1, idx).mul(fromArray(valid, [B, T]));
    return { logprobs, entropy };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Format-only cold start
// ---------------------------------------------------------------------------------------------------------------

export interface ColdStartOptions {
  steps: number;
  batch: number;
  lr: number;
  /** Filler tokens in the thinking part: uniform in [0, maxThink]. */
  maxThink: number;
  style: AnswerStyle;
  /** Share of targets whose box holds the right answer (the rest: random digits). 0 = format only. */
  correctShare: number;
  seed: number;
  onStep?: (step: number, loss: number) => void;
}

/**
 * A cold-start target: the format, and in the box the right answer with probability `correctShare`, else random
 * digits of the same length — a deliberately noisy teacher, so the policy starts with high entropy and weak task
 * knowledge that only RL can sharpen.
 */
export function coldStartTarget(
  sample: Sample,
  rng: Rng,
  maxThink: number,
  style: AnswerStyle,
  correctShare = 0,
): string {
  const think = '.'.repeat(rng.int(0, maxThink));
  const right = rng.random() < correctShare;
  const digits = right ? sample.answer : Array.from(sample.answer, () => String(rng.int(0, 9))).join('');
  return assistantTarget(think, digits, style);
}

/** Supervised training on format-only targets; returns the last loss. */
export function coldStart(policy: ToyPolicy, samples: readonly Sample[], o: ColdStartOptions): number {
  if (!samples.length) throw new Error('cold start: no samples');
  if (!Number.isInteger(o.steps) || o.steps < 0)
    throw new Error(`cold start steps: expected an integer >= 0, got ${o.steps}`);
  if (!(o.correctShare >= 0 && o.correctShare <= 1))
    throw new Error(`cold start correctShare: expected a number in [0, 1], got ${o.correctShare}`);
  const rng = new Rng(o.seed);
  const opt = new optim.AdamW(policy.parameters(), { lr: o.lr, weightDecay: 0 });
  const prompts = samples.map((s) => policy.encodePrompt(s));
  let last = Number.NaN;
  for (let step = 0; step < o.steps; step++) {
    const items: PolicyItem[] = [];
    for (let i = 0; i < o.batch; i++) {
      const k = rng.int(0, samples.length - 1);
      const target = coldStartTarget(samples[k]!, rng, o.maxThink, o.style, o.correctShare);
      const response = Int32Array.from([...policy.codec.encode(target), policy.codec.eos]);
      items.push({ prompt: prompts[k]!, response });
    }
    last = scope(() => {
      const { logprobs } = policy.logProbs(items);
      const T = logprobs.shape[1]!;
      const mask = new Float32Array(items.length * T);
      let n = 0;
      items.forEach((it, b) => {
        for (let t = 0; t < it.response.length; t++) mask[b * T + t] = 1;
        n += it.response.length;
      });
      const loss = logprobs
        .mul(fromArray(mask, [items.length, T]))
        .sum()
        .mul(-1 / n);
      loss.backward();
      optim.clipGradNorm(policy.parameters(), 1);
      opt.step();
      opt.zeroGrad();
      return loss.item();
    });
    o.onStep?.(step, last);
  }
  return last;
}
