/**
 * AdamW (Loshchilov & Hutter): decoupled weight decay, bias-corrected moments, one fused kernel per parameter.
 * Parameter groups carry their own lr / weight decay (e.g. no decay on norms and biases) and an lr scale that
 * schedulers keep (`setLr(lr)` gives each group lr × its scale).
 */
import { noGrad } from '../autograd.js';
import { be } from '../device.js';
import { keep } from '../memory.js';
import type { Parameter } from '../nn/module.js';
import { fmt, sameShape } from '../shape.js';
import { type Tensor, zeros } from '../tensor.js';

export interface AdamWOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

export interface ParamGroup {
  params: Parameter[];
  lr?: number;
  weightDecay?: number;
  /** Multiplies the lr `setLr` sets (default 1). */
  lrScale?: number;
}

interface ResolvedGroup {
  params: Parameter[];
  lr: number;
  weightDecay: number;
  lrScale: number;
}

interface State {
  m: Tensor;
  v: Tensor;
}

export interface AdamWStateDict {
  step: number;
  lrs: number[];
  /** Per parameter (in group order): first and second moments. */
  moments: Array<{ m: Tensor; v: Tensor } | null>;
}

export class AdamW {
  readonly groups: ResolvedGroup[];
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  stepCount = 0;
  private readonly state = new Map<Parameter, State>();

  constructor(params: Parameter[] | ParamGroup[], opts: AdamWOptions = {}) {
    const lr = opts.lr ?? 1e-3;
    const [b1, b2] = opts.betas ?? [0.9, 0.999];
    this.beta1 = b1;
    this.beta2 = b2;
    this.eps = opts.eps ?? 1e-8;
    const wd = opts.weightDecay ?? 0.01;
    if (!(lr >= 0)) throw new Error(`AdamW: lr must be >= 0, got ${lr}`);
    if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1))
      throw new Error(`AdamW: betas must be in [0, 1), got [${b1}, ${b2}]`);
    if (!(this.eps > 0)) throw new Error(`AdamW: eps must be > 0, got ${this.eps}`);
    const list = params as Array<Parameter | ParamGroup>;
    const groups: ParamGroup[] =
      list.length > 0 && 'params' in (list[0] as object) && !('shape' in (list[0] as object))
        ? (list as ParamGroup[])
        : [{ params: list as Parameter[] }];
    this.groups = groups.map((g) => {
      const lrScale = g.lrScale ?? 1;
      if (!(lrScale >= 0)) throw new Error(`AdamW: lrScale must be >= 0, got ${lrScale}`);
      return { params: g.params, lr: g.lr ?? lr * lrScale, weightDecay: g.weightDecay ?? wd, lrScale };
    });
    const seen = new Set<Parameter>();
    for (const g of this.groups)
      for (const p of g.params) {
        if (seen.has(p)) throw new Error(`AdamW: parameter ${p.name ?? fmt(p.shape)} appears in more than one group`);
        seen.add(p);
        if (p.dtype !== 'float32' && p.dtype !== 'float64')
          throw new Error(`AdamW: parameters must be float32/float64 (master weights), got ${p.dtype}`);
      }
  }

  /** Sets the learning rate of every group (schedulers call this). */
  setLr(lr: number): void {
    for (const g of this.groups) g.lr = lr * g.lrScale;
  }

  get lr(): number {
    return this.groups[0]?.lr ?? 0;
  }

  /** One update from the parameters' current .grad (parameters without a gradient are skipped). */
  step(): void {
    this.stepCount++;
    const bc1 = 1 - this.beta1 ** this.stepCount;
    const bc2 = 1 - this.beta2 ** this.stepCount;
    noGrad(() => {
      for (const g of this.groups)
        for (const p of g.params) {
          if (!p.grad) continue;
          let st = this.state.get(p);
          if (!st) {
            st = keep({ m: zeros(p.shape, p.dtype), v: zeros(p.shape, p.dtype) });
            this.state.set(p, st);
          }
          const grad = p.grad.dtype === p.dtype ? p.grad.contiguous() : p.grad.to(p.dtype);
          if (!p.isContiguous()) throw new Error(`AdamW: parameter ${p.name ?? fmt(p.shape)} must be contiguous`);
          be('adamw', p.dtype).adamw(
            p.dtype,
            p.buf('AdamW'),
            grad.buf(),
            st.m.buf(),
            st.v.buf(),
            p.size,
            g.lr,
            this.beta1,
            this.beta2,
            this.eps,
            g.weightDecay,
            bc1,
            bc2,
          );
        }
    });
  }

  zeroGrad(): void {
    for (const g of this.groups)
      for (const p of g.params) {
        p.grad?.dispose();
        p.grad = null;
      }
  }

  stateDict(): AdamWStateDict {
    const moments: AdamWStateDict['moments'] = [];
    for (const g of this.groups) for (const p of g.params) moments.push(this.state.get(p) ?? null);
    return { step: this.stepCount, lrs: this.groups.map((g) => g.lr), moments };
  }

  loadStateDict(sd: AdamWStateDict): void {
    const params = this.groups.flatMap((g) => g.params);
    if (sd.moments.length !== params.length) {
      throw new Error(`AdamW.loadStateDict: state has ${sd.moments.length} parameters, optimizer has ${params.length}`);
    }
    params.forEach((p, i) => {
      const mo = sd.moments[i];
      if (!mo) {
        this.state.delete(p);
        return;
      }
      if (!sameShape(mo.m.shape, p.shape) || !sameShape(mo.v.shape, p.shape)) {
        throw new Error(
          `AdamW.loadStateDict: moment shape ${fmt(mo.m.shape)} does not match parameter ${p.name ?? ''} ${fmt(p.shape)}`,
        );
      }
      const st = keep({ m: zeros(p.shape, p.dtype), v: zeros(p.shape, p.dtype) });
      st.m.copy_(mo.m);
      st.v.copy_(mo.v);
      this.state.set(p, st);
    });
    this.stepCount = sd.step;
    sd.lrs.forEach((lr, i) => {
      const g = this.groups[i];
      if (g) g.lr = lr;
    });
  }
}
