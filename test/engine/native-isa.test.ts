/**
 * The addon is built with -march=native, so each machine compiles it for its own CPU. Every source must compile for
 * CPUs without AVX-512 too (AVX2, and baseline x86-64): the AVX-512 / VNNI kernels carry their own target attributes
 * and are chosen at run time, and an intrinsic reached from code without such an attribute (a lambda inside a
 * target function inherits nothing) fails only there. The machines that run CI all have AVX-512, so this compiles the
 * sources for the other targets here.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const src = join(root, 'native', 'src');
const require = createRequire(import.meta.url);
const nodeInclude = ['/usr/include/node', join(dirname(dirname(process.execPath)), 'include', 'node')].find((d) =>
  existsSync(join(d, 'node_api.h')),
);
const canCompile = existsSync('/usr/include/oneapi/dnnl/dnnl.hpp') && !!nodeInclude;

function compile(file: string, march: string): Promise<{ code: number | null; err: string }> {
  const obj = join(tmpdir(), `glmv-isa-${process.pid}-${march}-${file}.o`);
  const args = [
    '-std=c++17',
    '-O2',
    `-march=${march}`,
    '-fno-math-errno',
    '-fopenmp',
    '-fexceptions',
    '-DNAPI_VERSION=8',
    `-I${nodeInclude}`,
    `-I${(require('node-addon-api') as { include_dir: string }).include_dir}`,
    `-I${src}`,
    '-c',
    join(src, file),
    '-o',
    obj,
  ];
  return new Promise((resolve) => {
    const p = spawn('g++', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => {
      err += d;
    });
    p.on('error', (e) => resolve({ code: -1, err: String(e) }));
    p.on('close', (code) => {
      rmSync(obj, { force: true });
      resolve({ code, err });
    });
  });
}

describe.skipIf(!canCompile)('native sources on CPUs without AVX-512', () => {
  it('compile for AVX2 (haswell) and baseline x86-64', { timeout: 600_000 }, async () => {
    const files = readdirSync(src).filter((f) => f.endsWith('.cc'));
    expect(files.length).toBeGreaterThan(3);
    for (const march of ['haswell', 'x86-64']) {
      // Two at a time: the machine's cores, without starving other test files.
      const results: Array<readonly [string, { code: number | null; err: string }]> = [];
      for (let i = 0; i < files.length; i += 2)
        results.push(
          ...(await Promise.all(files.slice(i, i + 2).map(async (f) => [f, await compile(f, march)] as const))),
        );
      for (const [f, r] of results) expect(r.code, `${f} with -march=${march}:\n${r.err.slice(0, 1500)}`).toBe(0);
    }
  });
});
