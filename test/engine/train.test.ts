/** Training machinery end to end: a transformer learns a copy task; AdamW math, resume, schedules, clipping. */
import { describe, expect, it } from 'vitest';
import { copyBatch, TinyGpt } from '../../src/demo/tinyGpt.js';
import { fromArray, manualSeed, nn, optim, scope, tensor } from '../../src/engine/index.js';
import { Rng } from '../../src/util/rng.js';

describe('a 2-layer transformer on the copy task', () => {
  it('reaches near-zero loss, decreasing on average', () => {
    manualSeed(0);
    const model = new TinyGpt({ vocab: 12, dim: 64, heads: 4, layers: 2, ffn: 128, maxLen: 32 });
    const opt = new optim.AdamW(model.parameters(), { lr: 3e-3, weightDecay: 0 });
    const rng = new Rng(1);
    const losses: number[] = [];
    for (let step = 0; step < 150; step++) {
      const { ids, targets, len } = copyBatch(rng, 16, 8, 12);
      losses.push(
        scope(() => {
          const loss = model.loss(fromArray(ids, [16, len]), fromArray(targets, [16, len]));
          loss.backward();
          optim.clipGradNorm(model.parameters(), 1);
          opt.step();
          opt.zeroGrad();
          return loss.item();
        }),
      );
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const windows = [0, 30, 60, 90, 120].map((s) => mean(losses.slice(s, s + 30)));
    for (let i = 1; i < windows.length; i++) expect(windows[i]!).toBeLessThan(windows[i - 1]!);
    expect(losses[0]!).toBeGreaterThan(2);
    expect(mean(losses.slice(-10))).toBeLessThan(0.05);
  });
});

describe('AdamW', () => {
  it('matches the update formula (decoupled weight decay, bias correction) for two steps', () => {
    const p = nn.Parameter.from(tensor([1, -2], { dtype: 'float64' }));
    const opt = new optim.AdamW([p], { lr: 0.1, betas: [0.9, 0.99], eps: 1e-8, weightDecay: 0.5 });
    const grads = [
      [0.3, -0.4],
      [-0.1, 0.2],
    ];
    const ref = [1, -2];
    const m = [0, 0];
    const v = [0, 0];
    grads.forEach((g, t) => {
      p.grad = tensor(g, { dtype: 'float64' });
      opt.step();
      for (let i = 0; i < 2; i++) {
        m[i] = 0.9 * m[i]! + 0.1 * g[i]!;
        v[i] = 0.99 * v[i]! + 0.01 * g[i]! ** 2;
        const mh = m[i]! / (1 - 0.9 ** (t + 1));
        const vh = v[i]! / (1 - 0.99 ** (t + 1));
        ref[i] = ref[i]! * (1 - 0.1 * 0.5) - (0.1 * mh) / (Math.sqrt(vh) + 1e-8);
      }
    });
    const got = p.toArray();
    for (let i = 0; i < 2; i++) expect(got[i]!).toBeCloseTo(ref[i]!, 12);
  });

  it('keeps each group at its lr scale through setLr (the same update as lr × scale)', () => {
    const a = nn.Parameter.from(tensor([1, -2], { dtype: 'float64' }));
    const b = nn.Parameter.from(tensor([1, -2], { dtype: 'float64' }));
    const ref = nn.Parameter.from(tensor([1, -2], { dtype: 'float64' }));
    const opt = new optim.AdamW(
      [
        { params: [a], lrScale: 1 },
        { params: [b], lrScale: 0.1 },
      ],
      { lr: 0.5, weightDecay: 0.2 },
    );
    const refOpt = new optim.AdamW([ref], { lr: 0.05, weightDecay: 0.2 });
    expect(opt.groups.map((g) => g.lr)).toEqual([0.5, 0.05]);
    for (const lr of [0.5, 0.3]) {
      opt.setLr(lr);
      refOpt.setLr(lr * 0.1);
      for (const p of [a, b, ref]) p.grad = tensor([0.3, -0.4], { dtype: 'float64' });
      opt.step();
      refOpt.step();
    }
    expect(opt.groups[1]!.lr).toBeCloseTo(0.03, 15);
    expect(b.toArray()).toEqual(ref.toArray());
    expect(a.toArray()).not.toEqual(ref.toArray());
    expect(() => new optim.AdamW([{ params: [a], lrScale: -1 }], { lr: 1 })).toThrow(/lrScale/);
  });

  it('resumes exactly from its state dict', () => {
    const run = (resumeAt: number | null) => {
      manualSeed(3);
      const lin = new nn.Linear(4, 3);
      const opt = new optim.AdamW(lin.parameters(), { lr: 0.05 });
      const rng = new Rng(9);
      const x = tensor(
        Array.from({ length: 8 }, () => rng.normal()),
        { shape: [2, 4] },
      );
      const step = () => {
        lin.forward(x).square().sum().backward();
        opt.step();
        opt.zeroGrad();
      };
      for (let i = 0; i < 3; i++) step();
      if (resumeAt !== null) {
        // snapshot, then rebuild everything from the snapshot
        const params = new Map([...lin.stateDict()].map(([k, t]) => [k, t.clone()]));
        const sd = opt.stateDict();
        const saved = {
          step: sd.step,
          lrs: sd.lrs,
          moments: sd.moments.map((mo) => (mo ? { m: mo.m.clone(), v: mo.v.clone() } : null)),
        };
        manualSeed(123);
        const lin2 = new nn.Linear(4, 3);
        lin2.loadStateDict(params);
        const opt2 = new optim.AdamW(lin2.parameters(), { lr: 0.05 });
        opt2.loadStateDict(saved);
        for (let i = 0; i < 3; i++) {
          lin2.forward(x).square().sum().backward();
          opt2.step();
          opt2.zeroGrad();
        }
        return lin2.weight.toArray();
      }
      for (let i = 0; i < 3; i++) step();
      return lin.weight.toArray();
    };
    expect(run(3)).toEqual(run(null));
  });

  it('rejects bad options and bf16 master weights', () => {
    expect(() => new optim.AdamW([nn.Parameter.from(tensor([1]))], { lr: -1 })).toThrow(/lr must be >= 0/);
    expect(() => new optim.AdamW([nn.Parameter.from(tensor([1], { dtype: 'bfloat16' }))])).toThrow(/master weights/);
  });
});

describe('schedules and clipping', () => {
  it('cosine with warmup', () => {
    const f = optim.cosineSchedule({ lr: 1, warmupSteps: 10, totalSteps: 110, minRatio: 0.1 });
    expect(f(0)).toBeCloseTo(0.1);
    expect(f(9)).toBeCloseTo(1);
    expect(f(10)).toBeCloseTo(1);
    expect(f(60)).toBeCloseTo(0.55);
    expect(f(110)).toBeCloseTo(0.1);
    expect(() => optim.cosineSchedule({ lr: 1, warmupSteps: 5, totalSteps: 0 })).toThrow(/totalSteps/);
  });

  it('clipGradNorm scales the global norm down to maxNorm and reports the original', () => {
    const a = tensor([3, 0]).requireGrad();
    const b = tensor([0, 4]).requireGrad();
    a.grad = tensor([3, 0]);
    b.grad = tensor([0, 4]);
    const n = optim.clipGradNorm([a, b], 1);
    expect(n).toBeCloseTo(5);
    expect(a.grad.toArray()[0]).toBeCloseTo(0.6, 5);
    expect(b.grad.toArray()[1]).toBeCloseTo(0.8, 5);
  });
});
