/**
 * The published package: built from src like `npm run build`, packed by `npm pack`, unpacked into a fresh folder's
 * node_modules next to its dependencies (as `npm install glmv-*.tgz` lays it out), and every subpath of
 * package.json `exports` imported by a separate Node process from outside the repository.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  exports: Record<string, string>;
  files: string[];
  bin: Record<string, string>;
};
let app = '';
let packed: string[] = [];

beforeAll(() => {
  const work = mkdtempSync(join(tmpdir(), 'glmv-pack-'));
  const stage = join(work, 'stage');
  mkdirSync(stage);
  // The build of `npm run build`, written into the stage instead of the shared dist/.
  execFileSync(
    process.execPath,
    [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', join(stage, 'dist')],
    {
      cwd: ROOT,
      stdio: 'pipe',
    },
  );
  for (const f of ['package.json', ...pkg.files.filter((f) => f !== 'dist')])
    cpSync(join(ROOT, f), join(stage, f), { recursive: true });
  const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], {
    cwd: stage,
    encoding: 'utf8',
  });
  const info = JSON.parse(out) as Array<{ filename: string; files: Array<{ path: string }> }>;
  packed = info[0]!.files.map((f) => f.path);
  app = join(work, 'app');
  const nm = join(app, 'node_modules');
  mkdirSync(nm, { recursive: true });
  execFileSync('tar', ['-xzf', join(work, info[0]!.filename), '-C', nm]);
  renameSync(join(nm, 'package'), join(nm, 'glmv'));
  // Its dependencies, as npm would install them (already resolved in this checkout).
  for (const d of readdirSync(join(ROOT, 'node_modules')))
    if (d !== '.bin' && d !== 'glmv' && !d.startsWith('.')) symlinkSync(join(ROOT, 'node_modules', d), join(nm, d));
}, 600_000);

function importIn(dir: string, specifier: string): string[] {
  const r = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const m = await import(${JSON.stringify(specifier)}); console.log(JSON.stringify(Object.keys(m)));`,
    ],
    { cwd: dir, encoding: 'utf8', env: { ...process.env, GLMV_QUIET: '1' }, timeout: 120_000 },
  );
  if (r.status !== 0) throw new Error(`import('${specifier}') failed:\n${r.stderr.slice(-3000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as string[];
}

describe('npm package', () => {
  it('packs the build, the native sources, the default model and the trainer adapters, and no tests or TypeScript sources', () => {
    for (const f of [
      'dist/index.js',
      'dist/index.d.ts',
      'dist/cli/main.js',
      'native/binding.gyp',
      'package.json',
      'integrations/verl/glmv_reward.py',
      'integrations/verl/glmv_curriculum.py',
    ])
      expect(packed, f).toContain(f);
    expect(packed.some((f) => f.startsWith('models/'))).toBe(true);
    expect(packed.filter((f) => f.startsWith('test/') || (f.endsWith('.ts') && !f.endsWith('.d.ts')))).toEqual([]);
    for (const target of Object.values(pkg.exports)) expect(packed, target).toContain(target.replace(/^\.\//, ''));
  });

  for (const sub of Object.keys(pkg.exports)) {
    const specifier = sub === '.' ? 'glmv' : `glmv/${sub.slice(2)}`;
    it(`import('${specifier}') works from an installed copy`, () => {
      const keys = importIn(app, specifier);
      expect(keys.length).toBeGreaterThan(0);
      if (sub === '.')
        for (const k of [
          'engine',
          'model',
          'reward',
          'rl',
          'train',
          'evaluation',
          'client',
          'ChatModel',
          'RewardRouter',
        ])
          expect(keys).toContain(k);
    }, 120_000);
  }
});
