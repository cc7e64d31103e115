/**
 * Choosing the next token from one row of logits — greedy, or seeded sampling with temperature, top-k, top-p and a
 * repetition penalty — and the log-probabilities reported beside it. The one sampler of the project: generation
 * (io/generate.ts), the serving batcher and the RL rollout engines all draw through `sampleToken`, so the same seed
 * gives the same tokens everywhere.
 *
 * Order of the warpers as in Hugging Face `generate` and vLLM: repetition penalty, temperature, top-k, then top-p over
 * the renormalised top-k mass. Every sampled token costs exactly one draw of the row's `Rng`; greedy costs none.
 *
 * Plain sampling (a temperature and nothing else, the paper's rollout setting) draws with `sampleFromProbs` from
 * softmax(logits / T) rows the engine computes for the whole batch (`stepRows` in ./generate.ts): an exp per
 * vocabulary entry in JS was a quarter of an RL rollout's time. Generation, the batcher and the RL engines all pick
 * the sampler the same way, so the same seed still gives the same tokens everywhere.
 */
import type { Rng } from '../util/rng.js';

export interface SamplingOptions {
  /** 0 (default) = greedy. */
  temperature?: number;
  /** Keep the k most likely tokens (0 = off). */
  topK?: number;
  /** Nucleus sampling; 1 (default, the paper's rollout setting) = off. */
  topP?: number;
  /** HF-style penalty on tokens already present (prompt included); 1 = off. */
  repetitionPenalty?: number;
  /** Seed of the sampler (each row gets its own stream derived from it). */
  seed?: number;
}

let scratch = new Float64Array(0);
/** The normaliser of the last full-distribution sample (reused by `tokenLogProb` on the same row and temperature). */
let lastNorm: { logits: Float32Array; temperature: number; mx: number; total: number } | null = null;

/** Throws on a NaN logit (a model with broken weights), naming its index. */
function nanError(i: number): Error {
  return new Error(`sampleToken: logit ${i} is NaN (the model produced NaN; check the weights)`);
}

/** Next token from one row of logits under the sampling options; `history` holds the ids the penalty applies to. */
export function sampleToken(logits: Float32Array, history: ReadonlySet<number>, o: SamplingOptions, rng: Rng): number {
  lastNorm = null;
  const V = logits.length;
  if (V === 0) throw new Error('sampleToken: empty logits');
  const rp = o.repetitionPenalty ?? 1;
  const x = rp !== 1 ? Float32Array.from(logits) : logits;
  if (rp !== 1) {
    for (const id of history) {
      const v = x[id] as number;
      x[id] = v > 0 ? v / rp : v * rp;
    }
  }
  const temp = o.temperature ?? 0;
  if (temp === 0) {
    let best = 0;
    for (let i = 0; i < V; i++) {
      const v = x[i] as number;
      if (Number.isNaN(v)) throw nanError(i);
      if (v > (x[best] as number)) best = i;
    }
    return best;
  }
  const topK = o.topK ?? 0;
  const topP = o.topP ?? 1;
  let mx = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < V; i++) {
    const v = x[i] as number;
    if (Number.isNaN(v)) throw nanError(i);
    mx = Math.max(mx, v);
  }
  if (topK === 0 && topP >= 1) {
    // Full distribution: one pass, no sort, into a reused buffer (one per process: sampling is synchronous).
    let total = 0;
    if (scratch.length < V) scratch = new Float64Array(V);
    const p = scratch;
    for (let i = 0; i < V; i++) {
      p[i] = Math.exp(((x[i] as number) - mx) / temp);
      total += p[i] as number;
    }
    // This is log-softmax's normaliser at this temperature, computed as tokenLogProb does: keep it for its call.
    lastNorm = x === logits ? { logits, temperature: temp, mx, total } : null;
    let r = rng.random() * total;
    for (let i = 0; i < V; i++) {
      r -= p[i] as number;
      if (r < 0) return i;
    }
    return V - 1;
  }
  const order = Array.from({ length: V }, (_, i) => i);
  order.sort((a, b) => (x[b] as number) - (x[a] as number) || a - b);
  const keep = topK > 0 ? Math.min(topK, V) : V;
  const probs: number[] = [];
  let total = 0;
  for (let j = 0; j < keep; j++) {
    const v = Math.exp(((x[order[j]!] as number) - mx) / temp);
    probs.push(v);
    total += v;
  }
  // Nucleus: the smallest prefix whose mass reaches topP (always at least one token).
  let cut = probs.length;
  if (topP < 1) {
    let acc = 0;
    for (let j = 0; j < probs.length; j++) {
      acc += (probs[j] as number) / total;
      if (acc >= topP) {
        cut = j + 1;
        break;
      }
    }
  }
  let mass = 0;
  for (let j = 0; j < cut; j++) mass += probs[j] as number;
  let r = rng.random() * mass;
  for (let j = 0; j < cut; j++) {
    r -= probs[j] as number;
    if (r < 0) return order[j] as number;
  }
  return order[cut - 1] as number;
}

/**
 * A token drawn from a row of probabilities (softmax(logits / T), computed by the engine): one uniform draw of the row's
 * `Rng`, the first id whose cumulative mass passes it — sampleToken's full-distribution draw without the exps.
 */
export function sampleFromProbs(probs: Float32Array, rng: Rng): number {
  const V = probs.length;
  if (V === 0) throw new Error('sampleFromProbs: empty probabilities');
  let total = 0;
  for (let i = 0; i < V; i++) total += probs[i] as number;
  // A NaN or infinite logit makes every probability NaN.
  if (!(total > 0 && Number.isFinite(total)))
    throw new Error('sampleToken: the logits hold NaN or infinite values (the model produced them; check the weights)');
  let r = rng.random() * total;
  let last = 0;
  for (let i = 0; i < V; i++) {
    const p = probs[i] as number;
    if (p > 0) last = i;
    r -= p;
    if (r < 0) return i;
  }
  return last; // rounding left a sliver of mass: the last token that has any
}

/**
 * log softmax(logits / temperature) at `id`: the token's log-probability under the tempered, untruncated
 * distribution (with top-k / top-p the sampler drew from the truncated one; a trainer recomputes this quantity).
 */
export function tokenLogProb(logits: Float32Array, id: number, temperature = 1): number {
  if (!(temperature > 0)) throw new Error(`tokenLogProb: temperature must be > 0, got ${temperature}`);
  if (lastNorm?.logits === logits && lastNorm.temperature === temperature)
    return ((logits[id] as number) - lastNorm.mx) / temperature - Math.log(lastNorm.total);
  let mx = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) mx = Math.max(mx, logits[i] as number);
  let s = 0;
  for (let i = 0; i < logits.length; i++) s += Math.exp(((logits[i] as number) - mx) / temperature);
  return ((logits[id] as number) - mx) / temperature - Math.log(s);
}

/** The k largest entries of log softmax(logits), most likely first (ties: the smaller id first). */
export function topLogProbs(logits: Float32Array, k: number): Array<[number, number]> {
  const V = logits.length;
  let mx = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < V; i++) mx = Math.max(mx, logits[i] as number);
  let s = 0;
  for (let i = 0; i < V; i++) s += Math.exp((logits[i] as number) - mx);
  const lse = mx + Math.log(s);
  // A small sorted buffer: k is at most 20, so insertion beats sorting the vocabulary.
  const top: number[] = [];
  const n = Math.min(k, V);
  for (let i = 0; i < V; i++) {
    const v = logits[i] as number;
    if (top.length === n && v <= (logits[top[n - 1]!] as number)) continue;
    let j = top.length < n ? top.length : n - 1;
    if (top.length < n) top.push(i);
    while (j > 0 && (logits[top[j - 1]!] as number) < v) {
      top[j] = top[j - 1]!;
      j--;
    }
    top[j] = i;
  }
  return top.map((i) => [i, (logits[i] as number) - lse]);
}
