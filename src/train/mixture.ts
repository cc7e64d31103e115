/**
 * The training data order: records grouped into pools (source × kind or domain) with mixture weights. Draw n goes to
 * the pool furthest behind its weight (exact proportions at every prefix, no randomness); within a pool, records
 * follow a fresh seeded permutation each epoch. The whole order is a pure function of (seed, pool counts), so the
 * counts alone are the resume cursor.
 */
import { hash32 } from '../data/generate.js';
import { Rng } from '../util/rng.js';
import type { RecordSource } from './records.js';

export interface Pool {
  /** `key#group` (key: the source's position in the config), stable across runs: it seeds the permutations. */
  name: string;
  source: RecordSource;
  group: string;
  /** Record indices of the source that belong to this pool. */
  members: Int32Array;
  weight: number;
}

export interface MixtureState {
  /** Records drawn so far (all pools). */
  drawn: number;
  /** Records drawn from each pool, in pool order. */
  counts: number[];
}

export interface RecordRef {
  pool: number;
  source: RecordSource;
  /** Index within the source. */
  index: number;
  /** The pool's epoch this draw belongs to. */
  epoch: number;
}

/**
 * Groups the records of each source into pools. `mixture` (group → weight) both selects and weighs groups: a group it
 * does not list is left out; without a mixture every group keeps its natural share of its source. Source weights
 * scale their pools.
 */
export function buildPools(
  sources: ReadonlyArray<{ source: RecordSource; weight: number; key: string }>,
  mixture: Readonly<Record<string, number>> | undefined,
  keep?: (source: RecordSource, index: number) => boolean,
): Pool[] {
  const pools: Pool[] = [];
  const seen = new Set<string>();
  for (const { source, weight, key } of sources) {
    const byGroup = new Map<string, number[]>();
    for (let i = 0; i < source.size; i++) {
      const g = source.group(i);
      seen.add(g);
      if (keep && !keep(source, i)) continue;
      const list = byGroup.get(g);
      if (list) list.push(i);
      else byGroup.set(g, [i]);
    }
    const groups = [...byGroup.keys()].sort();
    const raw = groups.map((g) => (mixture ? (mixture[g] ?? 0) : byGroup.get(g)!.length));
    const total = raw.reduce((a, b) => a + b, 0);
    groups.forEach((g, k) => {
      if (raw[k]! <= 0) return;
      pools.push({
        name: `${key}#${g}`,
        source,
        group: g,
        members: Int32Array.from(byGroup.get(g)!),
        weight: (weight * raw[k]!) / total,
      });
    });
  }
  if (mixture) {
    const unknown = Object.keys(mixture).filter((g) => !seen.has(g) && mixture[g]! > 0);
    if (unknown.length)
      throw new Error(
        `data.mixture names ${unknown.map((g) => JSON.stringify(g)).join(', ')}, but no source has records of ${unknown.length > 1 ? 'those groups' : 'that group'}; groups found: ${[...seen].sort().join(', ')}`,
      );
  }
  if (pools.length === 0)
    throw new Error(
      mixture
        ? `data: the mixture selects no records (groups found: ${[...seen].sort().join(', ')})`
        : 'data: no records to train on',
    );
  return pools;
}

export class MixtureStream {
  private state: MixtureState;
  private readonly total: number;
  private readonly perms = new Map<number, { epoch: number; perm: Int32Array }>();

  constructor(
    readonly pools: readonly Pool[],
    readonly seed: number,
    state?: MixtureState,
  ) {
    this.total = pools.reduce((a, p) => a + p.weight, 0);
    this.state = state ? { drawn: state.drawn, counts: [...state.counts] } : { drawn: 0, counts: pools.map(() => 0) };
    if (this.state.counts.length !== pools.length)
      throw new Error(
        `data cursor: the checkpoint has ${this.state.counts.length} data pools, the config gives ${pools.length}; resume with the same data`,
      );
  }

  /** The next record, without consuming it. */
  peek(): RecordRef {
    const { drawn, counts } = this.state;
    let best = 0;
    let bestDeficit = Number.NEGATIVE_INFINITY;
    for (let p = 0; p < this.pools.length; p++) {
      const deficit = ((drawn + 1) * this.pools[p]!.weight) / this.total - counts[p]!;
      if (deficit > bestDeficit + 1e-9) {
        best = p;
        bestDeficit = deficit;
      }
    }
    const pool = this.pools[best]!;
    const n = pool.members.length;
    const c = counts[best]!;
    const epoch = Math.floor(c / n);
    return { pool: best, source: pool.source, index: pool.members[this.perm(best, epoch)[c % n]!]!, epoch };
  }

  /** The next n records in order, without consuming them (for prefetching). */
  peekAhead(n: number): RecordRef[] {
    const saved = this.getState();
    const out: RecordRef[] = [];
    try {
      for (let i = 0; i < n; i++) {
        out.push(this.peek());
        this.advance();
      }
    } finally {
      this.state = saved;
    }
    return out;
  }

  /** Consumes the record `peek` returned. */
  advance(): void {
    const ref = this.peek();
    this.state.drawn++;
    this.state.counts[ref.pool]!++;
  }

  getState(): MixtureState {
    return { drawn: this.state.drawn, counts: [...this.state.counts] };
  }

  private perm(p: number, epoch: number): Int32Array {
    const cached = this.perms.get(p);
    if (cached?.epoch === epoch) return cached.perm;
    const n = this.pools[p]!.members.length;
    const perm = new Int32Array(n);
    for (let i = 0; i < n; i++) perm[i] = i;
    const rng = new Rng(hash32(`glmv-train|${this.seed}|${this.pools[p]!.name}|${epoch}`));
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rng.random() * (i + 1));
      const t = perm[i]!;
      perm[i] = perm[j]!;
      perm[j] = t;
    }
    this.perms.set(p, { epoch, perm });
    return perm;
  }
}
