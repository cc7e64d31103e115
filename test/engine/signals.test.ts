/**
 * oneDNN's JIT GEMM corrupts the heap when an asynchronous signal arrives mid-kernel (SIGPROF under
 * `node --cpu-prof`); the native backend blocks such signals around oneDNN calls. This runs GEMMs under the CPU
 * profiler in a child process: before the fix it aborted with "corrupted size vs. prev_size" every time.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

describe('native GEMM under a sampling profiler', () => {
  it('survives SIGPROF storms', () => {
    const dir = mkdtempSync(join(tmpdir(), 'glmv-sig-'));
    const script = join(dir, 'mm.ts');
    const engine = resolve('src/engine/index.js');
    writeFileSync(
      script,
      `import { F, randn, scope } from '${engine}';
const shapes = [[64, 64, 64], [1, 512, 64], [64, 512, 64], [37, 64, 192], [64, 4096, 64], [2048, 64, 64]];
const ts = shapes.map(([m, k, n]) => [randn([m, k]), randn([n, k])]);
for (let it = 0; it < 1500; it++) for (const [a, b] of ts) scope(() => a.matmul(b.mT));
const q = randn([2, 64, 4, 16]);
for (let it = 0; it < 300; it++) scope(() => F.attention(q, q, q, { causal: true }));
console.log('done');
`,
    );
    const r = spawnSync(
      process.execPath,
      ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', '50', '--import', 'tsx', script],
      {
        encoding: 'utf8',
        env: { ...process.env, GLMV_BACKEND: 'native', OMP_NUM_THREADS: '1' },
      },
    );
    expect(r.stderr).not.toMatch(/corrupted|invalid next size|double free/);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('done');
  });
});
