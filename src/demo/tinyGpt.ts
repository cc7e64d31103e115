/**
 * The engine's reference transformer: a pre-LN decoder-only GPT (learned positions, causal attention, GELU MLP,
 * cross-entropy). It is the workload of the engine benchmark (against the same model in PyTorch) and of
 * `glmv demo`, and the engine test trains it on a copy task. It is not the GLM architecture (see src/model).
 */
import { arange, F, nn, type Tensor } from '../engine/index.js';
import { Rng } from '../util/rng.js';

export interface TinyGptConfig {
  vocab: number;
  dim: number;
  heads: number;
  layers: number;
  ffn: number;
  maxLen: number;
  /** 'tanh' matches the PyTorch baseline in bench/ (nn.GELU(approximate='tanh')). */
  gelu?: 'none' | 'tanh';
}

class Block extends nn.Module {
  ln1: InstanceType<typeof nn.LayerNorm>;
  qkv: InstanceType<typeof nn.Linear>;
  proj: InstanceType<typeof nn.Linear>;
  ln2: InstanceType<typeof nn.LayerNorm>;
  fc1: InstanceType<typeof nn.Linear>;
  fc2: InstanceType<typeof nn.Linear>;
  constructor(private readonly c: TinyGptConfig) {
    super();
    this.ln1 = new nn.LayerNorm(c.dim);
    this.qkv = new nn.Linear(c.dim, 3 * c.dim);
    this.proj = new nn.Linear(c.dim, c.dim);
    this.ln2 = new nn.LayerNorm(c.dim);
    this.fc1 = new nn.Linear(c.dim, c.ffn);
    this.fc2 = new nn.Linear(c.ffn, c.dim);
  }
  forward(x: Tensor): Tensor {
    const [B, L, D] = x.shape as [number, number, number];
    const H = this.c.heads;
    // [B, L, 3, H, hd]: q, k and v are strided views, read by attention without copies.
    const qkv = this.qkv.forward(this.ln1.forward(x)).reshape([B, L, 3, H, D / H]);
    const a = F.attention(qkv.select(2, 0), qkv.select(2, 1), qkv.select(2, 2), { causal: true });
    x = x.add(this.proj.forward(a.reshape([B, L, D])));
    const h = this.fc1.forward(this.ln2.forward(x)).gelu(this.c.gelu ?? 'tanh');
    return x.add(this.fc2.forward(h));
  }
}

export class TinyGpt extends nn.Module {
  wte: InstanceType<typeof nn.Embedding>;
  wpe: InstanceType<typeof nn.Embedding>;
  h: Block[];
  ln_f: InstanceType<typeof nn.LayerNorm>;
  lm_head: InstanceType<typeof nn.Linear>;
  constructor(readonly config: TinyGptConfig) {
    super();
    if (config.dim % config.heads !== 0)
      throw new Error(`TinyGpt: dim ${config.dim} is not divisible by heads ${config.heads}`);
    this.wte = new nn.Embedding(config.vocab, config.dim);
    this.wpe = new nn.Embedding(config.maxLen, config.dim);
    this.h = Array.from({ length: config.layers }, () => new Block(config));
    this.ln_f = new nn.LayerNorm(config.dim);
    this.lm_head = new nn.Linear(config.dim, config.vocab, { bias: false });
    for (const p of [this.wte.weight, this.wpe.weight]) nn.init.normal_(p, 0.02);
  }

  /** ids int32 [B, L] → logits [B, L, vocab]. */
  forward(ids: Tensor): Tensor {
    const [, L] = ids.shape as [number, number];
    if (L > this.config.maxLen) throw new Error(`TinyGpt: sequence length ${L} exceeds maxLen ${this.config.maxLen}`);
    const pos = arange(0, L, 1, 'int32');
    let x = this.wte.forward(ids).add(this.wpe.forward(pos));
    for (const b of this.h) x = b.forward(x);
    return this.lm_head.forward(this.ln_f.forward(x));
  }

  loss(ids: Tensor, targets: Tensor): Tensor {
    const logits = this.forward(ids);
    return F.crossEntropy(logits.reshape([-1, this.config.vocab]), targets.reshape([-1]));
  }
}

/**
 * The copy task: a random prefix of `half` tokens, a separator, then the prefix again. Loss counts only the
 * copied half, which a model can only predict by attending back — a real test of attention and its gradients.
 */
export function copyBatch(
  rng: Rng,
  batch: number,
  half: number,
  vocab: number,
): { ids: Int32Array; targets: Int32Array; len: number } {
  const len = 2 * half + 1;
  const sep = vocab - 1;
  const ids = new Int32Array(batch * len);
  const targets = new Int32Array(batch * len).fill(-100);
  for (let b = 0; b < batch; b++) {
    const o = b * len;
    for (let i = 0; i < half; i++) ids[o + i] = rng.int(0, vocab - 2);
    ids[o + half] = sep;
    for (let i = 0; i < half; i++) ids[o + half + 1 + i] = ids[o + i]!;
    // Position t predicts token t+1: the copied half is predictable from the separator on.
    for (let t = half; t < len - 1; t++) targets[o + t] = ids[o + t + 1]!;
  }
  return { ids, targets, len };
}

export { Rng };
