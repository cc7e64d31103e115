/**
 * A stand-in for the reward router in trainer tests: `reward(response)` scores each rollout in order (a response is
 * correct when its reward is 1); the other fields are what a scored result carries, fixed.
 */
import type { Sample } from '../../src/data/sample.js';
import type { RewardRouter } from '../../src/reward/router.js';
import type { RewardResult } from '../../src/reward/types.js';

export function stubRouter(
  reward: (response: string) => number,
  o: { verifier?: string; reason?: string; route?: string; path?: string } = {},
): RewardRouter {
  return {
    scoreBatch: async (items: Array<{ sample: Sample; response: string }>) =>
      items.map((it): RewardResult => {
        const r = reward(it.response);
        return {
          id: it.sample.id,
          reward: r,
          correct: r === 1,
          domain: it.sample.domain,
          verifier: o.verifier ?? 'vqa',
          reason: o.reason ?? 'stub',
          confident: true,
          status: 'scored',
          route: o.route ?? 'test',
          answer: null,
          path: o.path ?? 'stub',
          gates: [],
          ms: 0,
        } as RewardResult;
      }),
    close: async () => {},
  } as unknown as RewardRouter;
}
