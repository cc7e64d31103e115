/**
 * Per-domain reward statistics for RL dashboards: reward mean, pass rate, format-failure rate, judge rate,
 * unjudged and error rates, gate trips, latency. Unjudged and error results are excluded from pass rates and
 * reward means (they carry no signal), and counted on their own.
 */
import type { RewardResult } from './types.js';

export interface DomainStats {
  domain: string;
  n: number;
  /** Mean reward over scored and gated results. */
  rewardMean: number;
  /** Correct / (scored + gated). */
  passRate: number;
  formatFailRate: number;
  /** Share of results where a judge was consulted. */
  judgeRate: number;
  unjudgedRate: number;
  errorRate: number;
  gateTrips: Record<string, number>;
  /** Mean and p99 latency in ms. */
  msMean: number;
  msP99: number;
}

interface Acc {
  n: number;
  counted: number;
  rewardSum: number;
  correct: number;
  formatFail: number;
  judged: number;
  unjudged: number;
  errors: number;
  gateTrips: Record<string, number>;
  ms: number[];
}

export class RewardStats {
  private readonly byDomain = new Map<string, Acc>();

  record(r: RewardResult): void {
    for (const key of [r.domain, '*']) {
      let a = this.byDomain.get(key);
      if (!a) {
        a = {
          n: 0,
          counted: 0,
          rewardSum: 0,
          correct: 0,
          formatFail: 0,
          judged: 0,
          unjudged: 0,
          errors: 0,
          gateTrips: {},
          ms: [],
        };
        this.byDomain.set(key, a);
      }
      a.n++;
      if (r.status === 'scored' || r.status === 'gated') {
        a.counted++;
        a.rewardSum += r.reward;
        if (r.correct) a.correct++;
      }
      if (r.status === 'unjudged') a.unjudged++;
      if (r.status === 'error') a.errors++;
      if (r.judge) a.judged++;
      for (const g of r.gates) {
        if (!g.tripped) continue;
        a.gateTrips[g.name] = (a.gateTrips[g.name] ?? 0) + 1;
        if (g.name === 'format') a.formatFail++;
      }
      // Bounded reservoir for the latency percentile (keeps memory flat on long runs).
      if (a.ms.length < 10_000) a.ms.push(r.ms);
      else a.ms[Math.floor(Math.random() * 10_000)] = r.ms;
    }
  }

  /** One row per domain plus `*` for all domains, sorted by domain name. */
  snapshot(): DomainStats[] {
    return [...this.byDomain.entries()]
      .sort(([a], [b]) => (a === '*' ? 1 : b === '*' ? -1 : a.localeCompare(b)))
      .map(([domain, a]) => {
        const sorted = [...a.ms].sort((x, y) => x - y);
        return {
          domain,
          n: a.n,
          rewardMean: a.counted ? a.rewardSum / a.counted : 0,
          passRate: a.counted ? a.correct / a.counted : 0,
          formatFailRate: a.n ? a.formatFail / a.n : 0,
          judgeRate: a.n ? a.judged / a.n : 0,
          unjudgedRate: a.n ? a.unjudged / a.n : 0,
          errorRate: a.n ? a.errors / a.n : 0,
          gateTrips: { ...a.gateTrips },
          msMean: sorted.length ? sorted.reduce((x, y) => x + y, 0) / sorted.length : 0,
          msP99: sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(0.99 * sorted.length))]! : 0,
        };
      });
  }

  reset(): void {
    this.byDomain.clear();
  }

  /** A fixed-width text table of the snapshot (CLI summaries). */
  table(): string {
    const rows = this.snapshot();
    const head = ['domain', 'n', 'reward', 'pass', 'format✗', 'judge', 'unjudged', 'error', 'p99 ms', 'gate trips'];
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
    const body = rows.map((r) => [
      r.domain === '*' ? 'ALL' : r.domain,
      String(r.n),
      r.rewardMean.toFixed(3),
      pct(r.passRate),
      pct(r.formatFailRate),
      pct(r.judgeRate),
      pct(r.unjudgedRate),
      pct(r.errorRate),
      r.msP99.toFixed(1),
      Object.entries(r.gateTrips)
        .map(([k, v]) => `${k}:${v}`)
        .join(' ') || '-',
    ]);
    const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
    return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
  }
}
