/** Generator inputs that once crashed, kept as regression cases. */
import { describe, expect, it } from 'vitest';
import { makePretrainDoc } from '../../src/data/pretrain.js';

describe('generator regressions', () => {
  it('multi-image recolour with no free colour plans again instead of throwing (pretrain text doc 2871, seed 0)', () => {
    expect(() =>
      makePretrainDoc('text', { seed: 0, split: 'train', difficulty: [1, 5], size: 112 }, 2871),
    ).not.toThrow();
  });
});
