/**
 * Building blocks of the GLM-V modules with explicit control over parameter creation, so one code path serves
 * (a) random init for training from scratch and (b) empty placeholders that a checkpoint replaces without ever
 * writing them (a 9B model must not be initialised, or even touched, before its weights are read from disk).
 *
 * Init scheme (the reference's `_init_weights`): Linear/Conv weights and Embedding tables ~ N(0, initializer_range),
 * biases 0, RMSNorm/LayerNorm weights 1 and LayerNorm biases 0, the MoE router weight ~ N(0, initializer_range),
 * `e_score_correction_bias` 0. Vision modules use vision_config.initializer_range, text modules text_config's.
 */
import {
  type DType,
  empty,
  F,
  fromArray,
  isGradEnabled,
  Linear,
  Module,
  Parameter,
  type ParamInit,
  scope,
  type Tensor,
} from '../engine/index.js';
import type { Rng } from '../util/rng.js';
import type { Activation } from './config.js';

export type InitMode = 'normal' | 'empty';

/** Creates parameters: normal-initialised (training) or empty placeholders (to be replaced by a checkpoint). */
export class ParamFactory implements ParamInit {
  constructor(
    readonly mode: InitMode,
    readonly dtype: DType,
    private readonly rng: Rng | null,
    readonly std: number,
  ) {
    if (mode === 'normal' && !rng) throw new Error('ParamFactory: normal init needs an Rng');
  }

  /** The same factory with another std (vision vs text initializer_range). */
  withStd(std: number): ParamFactory {
    return new ParamFactory(this.mode, this.dtype, this.rng, std);
  }

  private make(
    shape: readonly number[],
    fill: (buf: Float32Array) => void,
    trainable = true,
    dtype = this.dtype,
  ): Parameter {
    // Placeholders are zero-filled by the allocator but never written: the OS commits no memory for them.
    if (this.mode === 'empty') return Parameter.from(empty(shape, dtype, true), trainable);
    const n = shape.reduce((a, b) => a * b, 1);
    const vals = new Float32Array(n);
    fill(vals);
    const t = F.reshape(tensorFrom(vals), shape);
    return Parameter.from(dtype === 'float32' ? t : t.to(dtype), trainable);
  }

  /** ParamInit: weights and tables ~ N(0, std). */
  weight(shape: readonly number[]): Parameter {
    return this.normal(shape);
  }

  /** ParamInit: biases start at 0. */
  bias(shape: readonly number[]): Parameter {
    return this.constant(shape, 0);
  }

  normal(shape: readonly number[], std = this.std): Parameter {
    const rng = this.rng;
    return this.make(shape, (b) => {
      for (let i = 0; i < b.length; i++) b[i] = rng!.normal(0, std);
    });
  }

  constant(shape: readonly number[], value: number, trainable = true, dtype = this.dtype): Parameter {
    return this.make(shape, (b) => b.fill(value), trainable, dtype);
  }
}

function tensorFrom(vals: Float32Array): Tensor {
  return fromArray(vals, [vals.length], 'float32');
}

/** A convolution whose kernel equals its stride (patch embedding, 2×2 merge): weight [out, in, ...kernel], bias. */
export class PatchConv extends Module {
  weight: Parameter;
  bias: Parameter;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernel: readonly number[],
    pf: ParamFactory,
  ) {
    super();
    this.weight = pf.normal([outChannels, inChannels, ...kernel]);
    this.bias = pf.constant([outChannels], 0);
  }
  /**
   * rows [N, in·Πkernel] in (channel, ...kernel) order → [N, out]. With kernel == stride the convolution of one
   * window is a dot product with the flattened kernel, so this is one GEMM with no im2col.
   */
  forwardRows(rows: Tensor): Tensor {
    return F.linear(rows, F.reshape(this.weight, [this.outChannels, -1]), this.bias);
  }
}

export function activation(name: Activation): (x: Tensor) => Tensor {
  switch (name) {
    case 'silu':
      return F.silu;
    case 'gelu':
      return (x) => F.gelu(x, 'none');
    case 'gelu_pytorch_tanh':
      return (x) => F.gelu(x, 'tanh');
    case 'relu':
      return F.relu;
  }
}

let inferenceRows = 512;

/** Rows per chunk for position-wise blocks in inference (bounds activation memory for long inputs). */
export function setInferenceRows(rows: number): number {
  if (!Number.isInteger(rows) || rows <= 0)
    throw new Error(`setInferenceRows: expected a positive integer, got ${rows}`);
  const prev = inferenceRows;
  inferenceRows = rows;
  return prev;
}

/**
 * fn applied to x [..., H] row by row. Without gradient recording, long inputs go through in chunks of `rows` rows,
 * each in its own scope, so a 8k-token prefill of a 13696-wide MLP holds 512 rows of intermediates, not 8k. With
 * gradients the whole input goes at once (backward needs every intermediate anyway).
 */
export function rowChunked(x: Tensor, fn: (x: Tensor) => Tensor, rows = inferenceRows): Tensor {
  const H = x.shape[x.ndim - 1] as number;
  const n = H === 0 ? 0 : x.size / H;
  if (isGradEnabled() || n <= rows) return fn(x);
  const flat = F.reshape(x, [n, H]);
  const parts: Tensor[] = [];
  for (let s = 0; s < n; s += rows) parts.push(scope(() => fn(flat.slice(0, s, Math.min(n, s + rows)))));
  const out = F.concat(parts, 0);
  for (const p of parts) p.dispose();
  return F.reshape(out, [...x.shape.slice(0, -1), out.shape[1] as number]);
}

/** SwiGLU-style MLP with separate gate/up/down projections (ViT blocks, merger, GLM-4.5V dense and experts). */
export class GatedMlp extends Module {
  gate_proj: Linear;
  up_proj: Linear;
  down_proj: Linear;
  private readonly act: (x: Tensor) => Tensor;
  constructor(hidden: number, inter: number, act: Activation, pf: ParamFactory) {
    super();
    this.gate_proj = new Linear(hidden, inter, { bias: false, init: pf });
    this.up_proj = new Linear(hidden, inter, { bias: false, init: pf });
    this.down_proj = new Linear(inter, hidden, { bias: false, init: pf });
    this.act = activation(act);
  }
  forward(x: Tensor): Tensor {
    return rowChunked(x, (t) =>
      this.down_proj.forward(F.mul(this.act(this.gate_proj.forward(t)), this.up_proj.forward(t))),
    );
  }
}

/** Looks a parameter up by its dotted name. */
export function getParameter(root: Module, name: string): Parameter | undefined {
  const { owner, key } = resolve(root, name);
  const v = owner?.[key];
  return v instanceof Parameter ? v : undefined;
}

/**
 * Replaces the parameter at a dotted name (`model.language_model.layers.3.self_attn.q_proj.weight`) with a new one,
 * disposing the old. Throws if the name does not lead to an existing parameter field.
 */
export function setParameter(root: Module, name: string, value: Parameter): void {
  const { owner, key } = resolve(root, name);
  const old = owner?.[key];
  if (!owner || !(old instanceof Parameter)) throw new Error(`setParameter: the model has no parameter '${name}'`);
  if (old !== value) {
    owner[key] = value;
    old.dispose();
  }
}

/** The module that holds a parameter ('a.b.weight' → a.b), or null. */
export function parameterOwner(root: Module, name: string): Module | null {
  return resolve(root, name).owner as Module | null;
}

function resolve(root: object, name: string): { owner: Record<string, unknown> | null; key: string } {
  const parts = name.split('.');
  let cur: unknown = root;
  for (let i = 0; i < parts.length - 1; i++) {
    const p = parts[i] as string;
    if (cur === null || typeof cur !== 'object') return { owner: null, key: '' };
    cur = Array.isArray(cur) ? (/^\d+$/.test(p) ? cur[Number(p)] : undefined) : (cur as Record<string, unknown>)[p];
  }
  if (!(cur instanceof Module)) return { owner: null, key: '' };
  return { owner: cur as unknown as Record<string, unknown>, key: parts[parts.length - 1] as string };
}
