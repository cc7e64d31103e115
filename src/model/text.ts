/**
 * GLM-4 text decoders (docs/design.md B.1, B.2) and the KV cache. Names are the checkpoint names under
 * `model.language_model.`.
 *
 * GLM-4.1V layer ("sandwich" norms):
 *   x += post_self_attn_layernorm(self_attn(input_layernorm(x)))
 *   x += post_mlp_layernorm(mlp(post_attention_layernorm(x)))          mlp = down(up · silu(gate)), fused gate_up_proj
 * GLM-4.5V layer (pre-norm):  x += self_attn(input_layernorm(x));  x += mlp(post_attention_layernorm(x))
 *   layers < first_k_dense_replace: dense SwiGLU; the rest: sigmoid-routed MoE + shared expert.
 * Attention: GQA with q/k/v bias, partial rotary (interleaved pairs for 4.1V, half-split for 4.5V), one
 * `F.attention` call per layer for the whole batch (causal, optional packed segments and left padding).
 */
import {
  checkpoint,
  Embedding,
  empty,
  F,
  fromArray,
  isGradEnabled,
  keep,
  Linear,
  Module,
  type Parameter,
  RMSNorm,
  scope,
  type Tensor,
} from '../engine/index.js';
import { untrack } from '../engine/memory.js';
import type { MoeConfig, TextConfig } from './config.js';
import { activation, GatedMlp, type ParamFactory, rowChunked } from './modules.js';

/** What every layer of one forward shares. */
export interface TextContext {
  /** Rotary tables [B or 1, L, rotaryDim/2]. */
  cos: Tensor;
  sin: Tensor;
  /** Packed samples: attention never crosses these offsets. */
  cuSeqlens: readonly number[] | null;
  /** Left padding: first real key per row. */
  keyStart: Int32Array | null;
  cache: KVCache | null;
  /** When set, MoE layers append their routing statistics here. */
  routerStats: RouterStats[] | null;
  /** Token ranges (flat [B·L] indices) of each sequence for the sequence-level balance loss; null = no aux loss. */
  auxSequences: Array<{ start: number; end: number; mask: Uint8Array | null }> | null;
}

export interface RouterStats {
  layer: number;
  /** Tokens routed to each expert in this forward. */
  counts: Int32Array;
  /** Chosen experts per token, [N·k] (tokens in row-major [B, L] order, slots by rank). */
  topk: Int32Array;
  /** Sequence-level balance loss of this layer (DeepSeek-V3 form, unscaled), when requested. */
  auxLoss: Tensor | null;
}

// ---------------------------------------------------------------------------------------------------------------
// KV cache

/**
 * Keys and values of past positions, per layer, stored [B, capacity, kvHeads, headDim] float32 and grown by
 * doubling. `update` writes the new step in place and returns views over everything so far, which attention reads
 * without copies. Its tensors live outside any `scope`; call `dispose()` when done.
 */
export class KVCache {
  private readonly keys: Array<Tensor | null>;
  private readonly values: Array<Tensor | null>;
  /** Positions stored (the padded length of the batch so far). */
  length = 0;
  /** First real position per row (left padding), fixed at prefill. */
  keyStart: Int32Array | null = null;
  /** Per row: decode position = absolute index + ropeDeltas[row]; set at prefill. */
  ropeDeltas: number[] | null = null;
  batch = 0;
  private disposed = false;

  constructor(
    readonly numLayers: number,
    private readonly initialCapacity = 256,
  ) {
    if (!Number.isInteger(numLayers) || numLayers <= 0)
      throw new Error(`KVCache: numLayers must be a positive integer, got ${numLayers}`);
    this.keys = new Array(numLayers).fill(null);
    this.values = new Array(numLayers).fill(null);
  }

  /** Allocated positions per layer. */
  get capacity(): number {
    return (this.keys[0]?.shape[1] as number | undefined) ?? 0;
  }

  /** Bytes held by the cache. */
  get bytes(): number {
    let n = 0;
    for (const t of [...this.keys, ...this.values]) if (t) n += t.size * 4;
    return n;
  }

  private check(): void {
    if (this.disposed) throw new Error('KVCache: the cache was disposed');
  }

  /** Appends k/v [B, L, Hkv, D] of `layer` at position `length`; returns k/v views [B, length + L, Hkv, D]. */
  update(layer: number, k: Tensor, v: Tensor): { k: Tensor; v: Tensor } {
    this.check();
    if (layer < 0 || layer >= this.numLayers)
      throw new Error(`KVCache: layer ${layer} out of range [0, ${this.numLayers})`);
    const [B, L, H, D] = k.shape as [number, number, number, number];
    if (this.length > 0 && B !== this.batch)
      throw new Error(`KVCache: the cache holds a batch of ${this.batch} rows, this step has ${B}`);
    const need = this.length + L;
    for (const store of [this.keys, this.values]) {
      let t = store[layer] ?? null;
      if (t && (t.shape[2] !== H || t.shape[3] !== D))
        throw new Error(`KVCache: layer ${layer} holds [${t.shape}] entries, got keys of shape [${k.shape}]`);
      if (!t || (t.shape[1] as number) < need) {
        const cap = Math.max(need, t ? 2 * (t.shape[1] as number) : this.initialCapacity);
        const grown = empty([B, cap, H, D], 'float32');
        untrack(grown);
        if (t && this.length > 0) grown.slice(1, 0, this.length).copy_(rows(t, B).slice(1, 0, this.length));
        t?.dispose();
        store[layer] = grown;
        t = grown;
      }
    }
    const K = rows(this.keys[layer] as Tensor, B);
    const V = rows(this.values[layer] as Tensor, B);
    K.slice(1, this.length, need).copy_(k);
    V.slice(1, this.length, need).copy_(v);
    return { k: K.slice(1, 0, need), v: V.slice(1, 0, need) };
  }

  /**
   * Views [B, length, Hkv, D] of the keys and values stored for `layer` (null before the first step). Read-only use:
   * the serving batcher copies rows out of them to let requests join and leave a running batch.
   */
  stored(layer: number): { k: Tensor; v: Tensor } | null {
    this.check();
    if (layer < 0 || layer >= this.numLayers)
      throw new Error(`KVCache: layer ${layer} out of range [0, ${this.numLayers})`);
    const K = this.keys[layer];
    const V = this.values[layer];
    if (!K || !V || this.length === 0) return null;
    return { k: rows(K, this.batch).slice(1, 0, this.length), v: rows(V, this.batch).slice(1, 0, this.length) };
  }

  /**
   * Keeps the stored rows `index` (in that order, repeats allowed): `[0, 0, 1, 1]` shares each prompt's prefill
   * with two decode rows, `[0, 2]` drops row 1 from the batch. Per-row state (left padding, rope deltas) follows.
   * Dropping rows (a strictly increasing index) moves the kept rows down in place, copying only the stored
   * positions: no allocation (the buffers keep their row count; the cache uses the first `batch` rows).
   */
  selectRows(index: readonly number[]): void {
    this.check();
    if (this.length === 0) throw new Error('KVCache.selectRows: the cache is empty (prefill first)');
    if (index.length === 0) throw new Error('KVCache.selectRows: expected at least one row');
    for (const r of index)
      if (!(Number.isInteger(r) && r >= 0 && r < this.batch))
        throw new Error(`KVCache.selectRows: row ${r} outside the batch of ${this.batch}`);
    if (index.every((r, k) => k === 0 || r > index[k - 1]!)) {
      // Row index[k] ≥ k moves to k; rows below k were already moved or kept, so no source is overwritten early.
      scope(() => {
        for (const store of [this.keys, this.values])
          for (const t of store) {
            if (!t) continue;
            for (const [k, r] of index.entries())
              if (r !== k)
                t.slice(0, k, k + 1)
                  .slice(1, 0, this.length)
                  .copy_(t.slice(0, r, r + 1).slice(1, 0, this.length));
          }
      });
      this.keepRowState(index);
      return;
    }
    // Inside a scope the new buffers come from (and go back to) the engine's pool: RL generates with the same
    // shapes call after call, and first touching a fresh cache costs more than the copy itself. Only the stored
    // positions are copied: the rest of the capacity (the decode steps still to come) would be copied for nothing —
    // at RL settings that is most of it.
    scope(() => {
      for (const store of [this.keys, this.values]) {
        for (let l = 0; l < this.numLayers; l++) {
          const t = store[l];
          if (!t) continue;
          const [, cap, H, D] = t.shape as [number, number, number, number];
          const next = empty([index.length, cap, H, D], 'float32');
          untrack(next);
          const from = t.slice(1, 0, this.length);
          const to = next.slice(1, 0, this.length);
          for (const [k, r] of index.entries()) to.slice(0, k, k + 1).copy_(from.slice(0, r, r + 1));
          t.dispose();
          store[l] = next;
        }
      }
    });
    this.keepRowState(index);
  }

  private keepRowState(index: readonly number[]): void {
    if (this.keyStart) this.keyStart = Int32Array.from(index, (r) => this.keyStart![r]!);
    if (this.ropeDeltas) this.ropeDeltas = index.map((r) => this.ropeDeltas![r]!);
    this.batch = index.length;
  }

  /** Marks `steps` new positions as stored (after every layer has called update). */
  advance(steps: number, batch: number): void {
    this.check();
    this.length += steps;
    this.batch = batch;
  }

  /** Frees every buffer; the cache cannot be used afterwards. */
  dispose(): void {
    for (const t of [...this.keys, ...this.values]) t?.dispose();
    this.keys.fill(null);
    this.values.fill(null);
    this.disposed = true;
  }
}

/** The first `b` rows of a cache buffer (all of them when it holds exactly `b`). */
function rows(t: Tensor, b: number): Tensor {
  return (t.shape[0] as number) === b ? t : t.slice(0, 0, b);
}

// ---------------------------------------------------------------------------------------------------------------
// Attention

export class Glm4vTextAttention extends Module {
  q_proj: Linear;
  k_proj: Linear;
  v_proj: Linear;
  o_proj: Linear;
  constructor(
    private readonly cfg: TextConfig,
    readonly layerIdx: number,
    private readonly interleaved: boolean,
    pf: ParamFactory,
  ) {
    super();
    const { hiddenSize: Hd, numAttentionHeads: Hq, numKeyValueHeads: Hkv, headDim: D, attentionBias } = cfg;
    this.q_proj = new Linear(Hd, Hq * D, { bias: attentionBias, init: pf });
    this.k_proj = new Linear(Hd, Hkv * D, { bias: attentionBias, init: pf });
    this.v_proj = new Linear(Hd, Hkv * D, { bias: attentionBias, init: pf });
    this.o_proj = new Linear(Hq * D, Hd, { bias: false, init: pf });
  }

  forward(x: Tensor, ctx: TextContext): Tensor {
    const [B, L] = x.shape as [number, number];
    const { numAttentionHeads: Hq, numKeyValueHeads: Hkv, headDim: D } = this.cfg;
    const rot = { interleaved: this.interleaved };
    // One bf16 copy of x for the three projections (mixed precision), the same products as three linear calls.
    const projs = [this.q_proj, this.k_proj, this.v_proj];
    const [qx, kx, vx] = (
      projs.every((p) => p.constructor === Linear) ? F.linearsOf(x, projs) : projs.map((p) => p.forward(x))
    ) as [Tensor, Tensor, Tensor];
    const q = F.applyRotary(F.reshape(qx, [B, L, Hq, D]), ctx.cos, ctx.sin, rot);
    let k = F.applyRotary(F.reshape(kx, [B, L, Hkv, D]), ctx.cos, ctx.sin, rot);
    let v = F.reshape(vx, [B, L, Hkv, D]);
    if (ctx.cache) ({ k, v } = ctx.cache.update(this.layerIdx, k, v));
    const o = F.attention(q, k, v, {
      causal: true,
      scale: 1 / Math.sqrt(D),
      cuSeqlens: ctx.cuSeqlens,
      keyStart: ctx.keyStart,
    });
    return this.o_proj.forward(F.reshape(o, [B, L, Hq * D]));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// GLM-4.1V dense layer

/** GLM-4 MLP with the fused gate_up_proj: rows [0, I) are the gate, [I, 2I) the up projection. */
export class Glm4vTextMLP extends Module {
  gate_up_proj: Linear;
  down_proj: Linear;
  private readonly act: (x: Tensor) => Tensor;
  constructor(
    private readonly cfg: TextConfig,
    pf: ParamFactory,
  ) {
    super();
    this.gate_up_proj = new Linear(cfg.hiddenSize, 2 * cfg.intermediateSize, { bias: false, init: pf });
    this.down_proj = new Linear(cfg.intermediateSize, cfg.hiddenSize, { bias: false, init: pf });
    this.act = activation(cfg.hiddenAct);
  }
  forward(x: Tensor): Tensor {
    const I = this.cfg.intermediateSize;
    return rowChunked(x, (t) => {
      const gu = this.gate_up_proj.forward(t);
      const gate = gu.slice(-1, 0, I);
      const up = gu.slice(-1, I, 2 * I);
      // SiLU (every GLM checkpoint) runs as one fused kernel over the two halves of the projection.
      const h = this.cfg.hiddenAct === 'silu' ? F.swiglu(gate, up) : F.mul(up, this.act(gate));
      return this.down_proj.forward(h);
    });
  }
}

export class Glm4vTextDecoderLayer extends Module {
  self_attn: Glm4vTextAttention;
  mlp: Glm4vTextMLP;
  input_layernorm: RMSNorm;
  post_attention_layernorm: RMSNorm;
  post_self_attn_layernorm: RMSNorm;
  post_mlp_layernorm: RMSNorm;
  constructor(cfg: TextConfig, layerIdx: number, pf: ParamFactory) {
    super();
    this.self_attn = new Glm4vTextAttention(cfg, layerIdx, true, pf);
    this.mlp = new Glm4vTextMLP(cfg, pf);
    this.input_layernorm = new RMSNorm(cfg.hiddenSize, cfg.rmsNormEps, { init: pf });
    this.post_attention_layernorm = new RMSNorm(cfg.hiddenSize, cfg.rmsNormEps, { init: pf });
    this.post_self_attn_layernorm = new RMSNorm(cfg.hiddenSize, cfg.rmsNormEps, { init: pf });
    this.post_mlp_layernorm = new RMSNorm(cfg.hiddenSize, cfg.rmsNormEps, { init: pf });
  }
  forward(x: Tensor, ctx: TextContext): Tensor {
    const a = this.post_self_attn_layernorm.forward(this.self_attn.forward(this.input_layernorm.forward(x), ctx));
    const h = F.add(x, a);
    const m = this.post_mlp_layernorm.forward(this.mlp.forward(this.post_attention_layernorm.forward(h)));
    return F.add(h, m);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// GLM-4.5V MoE

export interface Routing {
  /** Chosen experts, [N·k] row-major (token, slot). */
  indices: Int32Array;
  /** Their weights [N, k] (normalised, scaled; differentiable in the router weight and the input). */
  weights: Tensor;
  /** sigmoid(router logits) [N, E] float32. */
  scores: Tensor;
}

/**
 * Sigmoid router with a selection-only bias (docs/design.md B.2): scores = σ(x·Wᵀ) in float32; choice = scores + bias;
 * with n_group > 1, groups are ranked by the sum of their top-2 choices and only the best topk_group groups stay
 * eligible (others −∞, as the current reference); the top-k experts by choice are picked, weighted by their
 * unbiased scores, normalised by the sum (+1e-20) when norm_topk_prob, times routed_scaling_factor.
 */
export class Glm4vMoeTextTopkRouter extends Module {
  weight: Parameter;
  e_score_correction_bias: Parameter;
  constructor(
    readonly moe: MoeConfig,
    hidden: number,
    pf: ParamFactory,
  ) {
    super();
    this.weight = pf.normal([moe.nRoutedExperts, hidden]);
    // A buffer, not trained by gradients (updated by the load-balancing rule); kept float32 as in the checkpoints.
    this.e_score_correction_bias = pf.constant([moe.nRoutedExperts], 0, false, 'float32');
  }

  route(x: Tensor): Routing {
    const { nRoutedExperts: E, numExpertsPerTok: k, nGroup, topkGroup } = this.moe;
    const N = x.shape[0] as number;
    const w = this.weight.dtype === 'float32' ? this.weight : this.weight.to('float32');
    const scores = F.sigmoid(F.linear(x.dtype === 'float32' ? x : x.to('float32'), w));
    const s = scores.toFloat32();
    const bias = this.e_score_correction_bias.toFloat32();
    const indices = new Int32Array(N * k);
    const choice = new Float64Array(E);
    const perGroup = E / nGroup;
    const groupScore = new Float64Array(nGroup);
    const taken = new Uint8Array(E);
    for (let n = 0; n < N; n++) {
      for (let e = 0; e < E; e++) choice[e] = Math.fround((s[n * E + e] as number) + (bias[e] as number));
      if (nGroup > 1) {
        for (let g = 0; g < nGroup; g++) {
          let a = Number.NEGATIVE_INFINITY;
          let b = Number.NEGATIVE_INFINITY;
          for (let e = g * perGroup; e < (g + 1) * perGroup; e++) {
            const c = choice[e] as number;
            if (c > a) {
              b = a;
              a = c;
            } else if (c > b) b = c;
          }
          groupScore[g] = a + b;
        }
        const keep = new Uint8Array(nGroup);
        for (let r = 0; r < topkGroup; r++) {
          let best = -1;
          for (let g = 0; g < nGroup; g++)
            if (!keep[g] && (best < 0 || (groupScore[g] as number) > (groupScore[best] as number))) best = g;
          keep[best] = 1;
        }
        for (let e = 0; e < E; e++) if (!keep[Math.floor(e / perGroup)]) choice[e] = Number.NEGATIVE_INFINITY;
      }
      taken.fill(0);
      for (let r = 0; r < k; r++) {
        let best = -1;
        for (let e = 0; e < E; e++)
          if (!taken[e] && (best < 0 || (choice[e] as number) > (choice[best] as number))) best = e;
        taken[best] = 1;
        indices[n * k + r] = best;
      }
    }
    let weights = F.gather(scores, 1, fromArray(indices, [N, k], 'int32'));
    if (this.moe.normTopkProb) weights = F.div(weights, F.add(F.sum(weights, -1, true), 1e-20));
    if (this.moe.routedScalingFactor !== 1) weights = F.mul(weights, this.moe.routedScalingFactor);
    return { indices, weights, scores };
  }
}

export class Glm4vMoeTextMoE extends Module {
  experts: GatedMlp[];
  gate: Glm4vMoeTextTopkRouter;
  shared_experts: GatedMlp;
  constructor(
    private readonly cfg: TextConfig,
    readonly layerIdx: number,
    pf: ParamFactory,
  ) {
    super();
    const moe = cfg.moe as MoeConfig;
    this.experts = Array.from(
      { length: moe.nRoutedExperts },
      () => new GatedMlp(cfg.hiddenSize, moe.moeIntermediateSize, cfg.hiddenAct, pf),
    );
    this.gate = new Glm4vMoeTextTopkRouter(moe, cfg.hiddenSize, pf);
    this.shared_experts = new GatedMlp(
      cfg.hiddenSize,
      moe.moeIntermediateSize * Math.max(1, moe.nSharedExperts),
      cfg.hiddenAct,
      pf,
    );
  }

  forward(x: Tensor, ctx: TextContext): Tensor {
    const shape = x.shape;
    const Hd = this.cfg.hiddenSize;
    const x2 = F.reshape(x, [-1, Hd]);
    const N = x2.shape[0] as number;
    const { indices, weights, scores } = this.gate.route(x2);
    const k = this.gate.moe.numExpertsPerTok;
    const E = this.experts.length;
    // Bucket (token, slot) assignments by expert, then run each expert once on its tokens.
    const counts = new Int32Array(E);
    for (let i = 0; i < indices.length; i++) counts[indices[i] as number]!++;
    const offsets = new Int32Array(E + 1);
    for (let e = 0; e < E; e++) offsets[e + 1] = (offsets[e] as number) + (counts[e] as number);
    const fill = offsets.slice(0, E);
    const tokenOf = new Int32Array(N * k);
    const slotOf = new Int32Array(N * k);
    for (let i = 0; i < indices.length; i++) {
      const e = indices[i] as number;
      const at = fill[e]!++;
      tokenOf[at] = Math.floor(i / k);
      slotOf[at] = i;
    }
    const flatW = F.reshape(weights, [N * k]);
    const parts: Tensor[] = [];
    for (let e = 0; e < E; e++) {
      const a = offsets[e] as number;
      const b = offsets[e + 1] as number;
      if (a === b) continue;
      const tok = fromArray(tokenOf.slice(a, b), [b - a], 'int32');
      const y = (this.experts[e] as GatedMlp).forward(F.indexSelect(x2, 0, tok));
      const w = F.indexSelect(flatW, 0, fromArray(slotOf.slice(a, b), [b - a], 'int32'));
      parts.push(F.mul(y, F.unsqueeze(w, 1)));
    }
    const routed = F.indexAdd([N, Hd], 0, fromArray(tokenOf, [N * k], 'int32'), F.concat(parts, 0));
    const out = F.add(routed, this.shared_experts.forward(x2));
    if (ctx.routerStats) {
      ctx.routerStats.push({
        layer: this.layerIdx,
        counts,
        topk: indices,
        // keep: the layer may run inside its own scope (inference), the loss must outlive it.
        auxLoss: ctx.auxSequences ? keep(this.balanceLoss(scores, indices, ctx.auxSequences)) : null,
      });
    }
    return F.reshape(out, shape);
  }

  /**
   * Sequence-level balance loss (DeepSeek-V3; the paper's 1e-4 auxiliary loss): per sequence,
   * Σᵢ fᵢ·Pᵢ with fᵢ = E/(k·T)·(tokens choosing i), Pᵢ = mean over tokens of sᵢ/Σⱼsⱼ; averaged over sequences.
   */
  private balanceLoss(scores: Tensor, indices: Int32Array, seqs: NonNullable<TextContext['auxSequences']>): Tensor {
    const { nRoutedExperts: E, numExpertsPerTok: k } = this.gate.moe;
    const N = scores.shape[0] as number;
    const S = seqs.length;
    const sel = new Float32Array(S * N);
    const f = new Float32Array(S * E);
    seqs.forEach((q, si) => {
      let T = 0;
      for (let t = q.start; t < q.end; t++) if (!q.mask || q.mask[t - q.start]) T++;
      if (T === 0) return;
      for (let t = q.start; t < q.end; t++) {
        if (q.mask && !q.mask[t - q.start]) continue;
        sel[si * N + t] = 1 / T;
        for (let j = 0; j < k; j++) f[si * E + (indices[t * k + j] as number)]! += E / (k * T);
      }
    });
    const norm = F.div(scores, F.sum(scores, -1, true));
    const P = F.matmul(fromArray(sel, [S, N]), norm); // [S, E]
    return F.div(F.sum(F.mul(P, fromArray(f, [S, E]))), S);
  }
}

export class Glm4vMoeTextDecoderLayer extends Module {
  self_attn: Glm4vTextAttention;
  mlp: GatedMlp | Glm4vMoeTextMoE;
  input_layernorm: RMSNorm;
  post_attention_layernorm: RMSNorm;
  constructor(cfg: TextConfig, layerIdx: number, pf: ParamFactory) {
    super();
    const moe = cfg.moe as MoeConfig;
    this.self_attn = new Glm4vTextAttention(cfg, layerIdx, false, pf);
    this.mlp =
      layerIdx >= moe.firstKDenseReplace
        ? new Glm4vMoeTextMoE(cfg, layerIdx, pf)
        : new GatedMlp(cfg.hiddenSize, cfg.intermediateSize, cfg.hiddenAct, pf);
    this.input_layernorm = new RMSNorm(cfg.hiddenSize, cfg.rmsNormEps, { init: pf });
    this.post_attention_layernorm = new RMSNorm(cfg.hiddenSize, cfg.rmsNormEps, { init: pf });
  }
  forward(x: Tensor, ctx: TextContext): Tensor {
    const h = F.add(x, this.self_attn.forward(this.input_layernorm.forward(x), ctx));
    const n = this.post_attention_layernorm.forward(h);
    const m = this.mlp instanceof Glm4vMoeTextMoE ? this.mlp.forward(n, ctx) : this.mlp.forward(n);
    return F.add(h, m);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The text model

export type DecoderLayer = Glm4vTextDecoderLayer | Glm4vMoeTextDecoderLayer;

export class Glm4vTextModel extends Module {
  embed_tokens: Embedding;
  layers: DecoderLayer[];
  norm: RMSNorm;
  /** Recompute each layer's activations in backward instead of keeping them (long sequences). */
  gradientCheckpointing = false;

  constructor(
    readonly config: TextConfig,
    moe: boolean,
    pf: ParamFactory,
  ) {
    super();
    this.embed_tokens = new Embedding(config.vocabSize, config.hiddenSize, { init: pf });
    this.layers = Array.from({ length: config.numHiddenLayers }, (_, i) =>
      moe ? new Glm4vMoeTextDecoderLayer(config, i, pf) : new Glm4vTextDecoderLayer(config, i, pf),
    );
    this.norm = new RMSNorm(config.hiddenSize, config.rmsNormEps, { init: pf });
  }

  /**
   * embeds [B, L, H] → final-normed hidden states. With `collect`, also the reference's hidden_states tuple:
   * (inputs, output of layers 0..n−2, normed output of the last layer).
   */
  forward(embeds: Tensor, ctx: TextContext, collect = false): { hidden: Tensor; hiddenStates: Tensor[] | null } {
    const states: Tensor[] | null = collect ? [embeds] : null;
    let h = embeds;
    const ckpt = this.gradientCheckpointing && isGradEnabled();
    if (ckpt && ctx.auxSequences)
      throw new Error('text model: the MoE balance loss cannot be combined with gradient checkpointing');
    this.layers.forEach((layer, i) => {
      if (ckpt) {
        // The recompute in backward must not record router statistics a second time.
        let first = true;
        h = checkpoint((t: Tensor) => {
          const c = first ? ctx : { ...ctx, routerStats: null };
          first = false;
          return layer.forward(t, c);
        }, h);
      } else if (isGradEnabled()) {
        h = layer.forward(h, ctx);
      } else {
        // Inference: free each layer's intermediates as soon as it returns (a 40-layer prefill would otherwise
        // hold every layer's activations until the caller's scope ends).
        const x = h;
        h = scope(() => layer.forward(x, ctx));
      }
      if (states && i < this.layers.length - 1) states.push(h);
    });
    const hidden = this.norm.forward(h);
    states?.push(hidden);
    return { hidden, hiddenStates: states };
  }
}
