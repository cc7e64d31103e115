/**
 * Module and Parameter, PyTorch style. Parameters are found by walking a module's own fields, so a field named
 * `self_attn` holding a module with a Parameter field `q_proj.weight` yields the name `self_attn.q_proj.weight`:
 * the Hugging Face checkpoint name, with no mapping table. Arrays of modules become `layers.0`, `layers.1`, …
 */
import type { DType } from '../dtype.js';
import { untrack } from '../memory.js';
import { fmt, sameShape } from '../shape.js';
import { Tensor } from '../tensor.js';

export class Parameter extends Tensor {
  /** A parameter sharing `data`'s storage; trainable unless requiresGrad is false (buffers, frozen weights). */
  static from(data: Tensor, requiresGrad = true): Parameter {
    data.assertAlive('Parameter');
    data._storage.refs++;
    const p = new Parameter(data._storage, data.shape, data.strides, data.offset);
    untrack(p);
    p.requiresGrad =
      requiresGrad && (data.dtype === 'float32' || data.dtype === 'float64' || data.dtype === 'bfloat16');
    return p;
  }
}

export interface LoadReport {
  missing: string[];
  unexpected: string[];
  loaded: number;
}

export abstract class Module {
  training = true;

  /** (name, module) pairs of direct children, in field order. */
  children(): Array<[string, Module]> {
    const out: Array<[string, Module]> = [];
    for (const [k, v] of Object.entries(this)) {
      if (v instanceof Module) out.push([k, v]);
      else if (Array.isArray(v)) {
        v.forEach((m, i) => {
          if (m instanceof Module) out.push([`${k}.${i}`, m]);
        });
      }
    }
    return out;
  }

  /** Every parameter (trainable or not) with its dotted name. */
  namedParameters(prefix = ''): Array<[string, Parameter]> {
    const out: Array<[string, Parameter]> = [];
    for (const [k, v] of Object.entries(this)) {
      if (v instanceof Parameter) out.push([prefix + k, v]);
    }
    for (const [k, m] of this.children()) out.push(...m.namedParameters(`${prefix}${k}.`));
    return out;
  }

  /** Trainable parameters. */
  parameters(): Parameter[] {
    return this.namedParameters()
      .map(([, p]) => p)
      .filter((p) => p.requiresGrad);
  }

  namedModules(prefix = ''): Array<[string, Module]> {
    const out: Array<[string, Module]> = [[prefix.replace(/\.$/, ''), this]];
    for (const [k, m] of this.children()) out.push(...m.namedModules(`${prefix}${k}.`));
    return out;
  }

  numParameters(trainableOnly = false): number {
    return this.namedParameters()
      .filter(([, p]) => !trainableOnly || p.requiresGrad)
      .reduce((a, [, p]) => a + p.size, 0);
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  zeroGrad(): void {
    for (const [, p] of this.namedParameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Marks every parameter (not) trainable. */
  requiresGrad_(flag: boolean): this {
    for (const [, p] of this.namedParameters()) p.requiresGrad = flag;
    return this;
  }

  stateDict(): Map<string, Tensor> {
    return new Map(this.namedParameters());
  }

  /**
   * Copies tensors into parameters by name (dtype converted). strict: any missing or unexpected name, or a shape
   * mismatch, throws with every offending name listed; non-strict returns the lists.
   */
  loadStateDict(state: Map<string, Tensor> | Record<string, Tensor>, opts: { strict?: boolean } = {}): LoadReport {
    const strict = opts.strict ?? true;
    const src = state instanceof Map ? state : new Map(Object.entries(state));
    const own = new Map(this.namedParameters());
    const missing = [...own.keys()].filter((k) => !src.has(k));
    const unexpected = [...src.keys()].filter((k) => !own.has(k));
    const badShape: string[] = [];
    for (const [k, p] of own) {
      const t = src.get(k);
      if (t && !sameShape(t.shape, p.shape)) badShape.push(`${k}: checkpoint ${fmt(t.shape)} vs model ${fmt(p.shape)}`);
    }
    if (badShape.length)
      throw new Error(`loadStateDict: shape mismatch for ${badShape.length} tensor(s):\n  ${badShape.join('\n  ')}`);
    if (strict && (missing.length || unexpected.length)) {
      throw new Error(
        `loadStateDict: ${missing.length} missing and ${unexpected.length} unexpected tensor(s)` +
          (missing.length ? `\n  missing: ${missing.slice(0, 20).join(', ')}${missing.length > 20 ? ', …' : ''}` : '') +
          (unexpected.length
            ? `\n  unexpected: ${unexpected.slice(0, 20).join(', ')}${unexpected.length > 20 ? ', …' : ''}`
            : ''),
      );
    }
    let loaded = 0;
    for (const [k, p] of own) {
      const t = src.get(k);
      if (!t) continue;
      p.copy_(t);
      loaded++;
    }
    return { missing, unexpected, loaded };
  }

  /** Converts every parameter's storage to dtype in place (e.g. bf16 weights for inference). */
  toDtype(dtype: DType): this {
    const visit = (m: Module) => {
      for (const [k, v] of Object.entries(m)) {
        if (v instanceof Parameter && v.dtype !== dtype) {
          const converted = Parameter.from(v.detach().to(dtype), v.requiresGrad);
          v.dispose();
          (m as unknown as Record<string, unknown>)[k] = converted;
        }
      }
      for (const [, c] of m.children()) visit(c);
    };
    visit(this);
    return this;
  }
}
