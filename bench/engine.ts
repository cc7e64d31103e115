/**
 * Engine benchmark (npm run bench:engine): fp32 GEMM against numpy, and a full train step of the reference
 * transformer (4 layers, d=256, 4 heads, FFN 1024, seq 256, batch 4, vocab 1000) against the same model in PyTorch,
 * both measured in this run on this machine. Prints a table with ratios and a kernel-time profile of our step.
 *
 *   npm run bench:engine                 # everything
 *   npm run bench:engine -- --quick      # shorter timings
 *   GLMV_PYTHON=/path/to/python npm run bench:engine
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TinyGpt } from '../src/demo/tinyGpt.js';
import type { F32Gemm } from '../src/engine/backends/native/backend.js';
import { nativeBackend } from '../src/engine/backends/native/index.js';
import {
  fromArray,
  getBackend,
  manualSeed,
  memoryStats,
  noGrad,
  optim,
  resetPeak,
  scope,
  setMatmulPrecision,
} from '../src/engine/index.js';
import { Rng } from '../src/util/rng.js';
import { benchProgram } from './cli.js';
import { cpuIsa } from './cpu.js';
import { gemmGflops } from './gemm-timing.js';
import { median } from './stats.js';

const here = dirname(fileURLToPath(import.meta.url));
const opts = benchProgram({
  name: 'engine',
  description:
    'fp32 GEMM against numpy and a full train step of the reference transformer (4 layers, d=256, seq 256, ' +
    'batch 4) against the same model in PyTorch, both measured in this run; prints ratios and a kernel profile',
  examples: [
    'npm run bench:engine',
    'npm run bench:engine -- --quick',
    'GLMV_PYTHON=/path/to/python npm run bench:engine -- --quick',
  ],
  environment: [['GLMV_PYTHON', 'the Python (with numpy and torch) for the peers; else .venv, then python3']],
})
  .option('--quick', 'shorter timings: 0.5 s per GEMM timing instead of 1.5 s, 5 measured train steps instead of 15')
  .parse()
  .opts<{ quick?: boolean }>();
const quick = opts.quick === true;
const SECS = quick ? 0.5 : 1.5;
const STEPS = quick ? 5 : 15;
const WARMUP = 3;

function findPython(): { bin: string; how: string } | null {
  const candidates: Array<[string, string]> = [];
  if (process.env.GLMV_PYTHON) candidates.push([process.env.GLMV_PYTHON, 'GLMV_PYTHON']);
  candidates.push([join(here, '..', '.venv', 'bin', 'python'), 'pip venv (.venv)']);
  candidates.push(['python3', 'python3 on PATH']);
  candidates.push(['/usr/bin/python3', 'Debian python3 (python3-torch)']);
  for (const [bin, how] of candidates) {
    if (bin.includes('/') && !existsSync(bin)) continue;
    const r = spawnSync(bin, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
    if (r.status === 0) return { bin, how };
  }
  return null;
}

/** The environment numpy runs in: OpenBLAS's forced Haswell core halves its speed, so those two are unset here only. */
function numpyEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}

const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/**
 * GFLOP per CPU-second of this process through the engine API (float32 GEMM path `mode`): how close the kernel runs
 * to the cores' peak whatever share of a loaded machine the process gets; idle and spinning threads do not count,
 * so wall-clock GFLOPS below 2 × this on 2 cores is lost to threading.
 */
function gemmPerCpuSecond(n: number, mode: F32Gemm): number {
  const nb = nativeBackend();
  if (!nb) return Number.NaN;
  const prev = nb.setF32Gemm(mode);
  try {
    return gemmGflops(n, SECS, cpuSeconds);
  } finally {
    nb.setF32Gemm(prev);
  }
}

/** Wraps every backend kernel to accumulate its wall time (for the profile). */
function instrument(): { reset(): void; table(): Array<[string, number, number]> } {
  const be = getBackend() as unknown as Record<string, unknown>;
  const times = new Map<string, [number, number]>();
  const proto = Object.getPrototypeOf(be) as object;
  for (const k of Object.getOwnPropertyNames(proto)) {
    const f = be[k];
    if (k === 'constructor' || k === 'supports' || typeof f !== 'function') continue;
    be[k] = (...args: unknown[]) => {
      const t = performance.now();
      const r = (f as (...a: unknown[]) => unknown).apply(be, args);
      const e = times.get(k) ?? [0, 0];
      e[0] += performance.now() - t;
      e[1]++;
      times.set(k, e);
      return r;
    };
  }
  return {
    reset: () => times.clear(),
    table: () =>
      [...times.entries()].map(([k, [t, c]]) => [k, t, c] as [string, number, number]).sort((a, b) => b[1] - a[1]),
  };
}

function trainOurs(profile: boolean) {
  manualSeed(0);
  const cfg = { vocab: 1000, dim: 256, heads: 4, layers: 4, ffn: 1024, maxLen: 256, gelu: 'tanh' as const };
  const model = new TinyGpt(cfg);
  const opt = new optim.AdamW(model.parameters(), { lr: 3e-4 });
  const rng = new Rng(0);
  const B = 4;
  const L = 256;
  const ids = Int32Array.from({ length: B * L }, () => rng.int(0, 999));
  const tg = Int32Array.from({ length: B * L }, () => rng.int(0, 999));
  const step = () =>
    scope(() => {
      const loss = model.loss(fromArray(ids, [B, L]), fromArray(tg, [B, L]));
      loss.backward();
      opt.step();
      opt.zeroGrad();
    });
  const times: number[] = [];
  const peaks: number[] = [];
  for (let i = 0; i < WARMUP + STEPS; i++) {
    resetPeak();
    const live = memoryStats().liveBytes;
    const t0 = performance.now();
    step();
    if (i >= WARMUP) {
      times.push(performance.now() - t0);
      // Memory the step itself needed above what was live before it (weights, optimizer state, …).
      peaks.push(memoryStats().peakBytes - live);
    }
  }
  const fwd: number[] = [];
  for (let i = 0; i < WARMUP + STEPS; i++) {
    const t0 = performance.now();
    noGrad(() =>
      scope(() => {
        model.forward(fromArray(ids, [B, L]));
      }),
    );
    if (i >= WARMUP) fwd.push(performance.now() - t0);
  }
  let prof: Array<[string, number, number]> = [];
  if (profile) {
    const p = instrument();
    p.reset();
    for (let i = 0; i < 3; i++) step();
    prof = p.table();
  }
  return {
    step: median(times),
    fwd: median(fwd),
    peakMB: Math.max(...peaks) / 1e6,
    params: model.numParameters(),
    prof,
  };
}

/** Builds bench/fma-peak.cc for this CPU (into runs/bench) once; null where no C++ compiler is found. */
function fmaPeakProbe(): string | null {
  const out = join(here, '..', 'runs', 'bench', 'fma-peak');
  mkdirSync(dirname(out), { recursive: true });
  const r = spawnSync(process.env.CXX ?? 'g++', ['-O2', '-march=native', join(here, 'fma-peak.cc'), '-o', out], {
    encoding: 'utf8',
  });
  return r.status === 0 ? out : null;
}

/** Runs a peer or child process to its end and parses the last line of its output as JSON (null on failure). */
function childJson(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Record<string, number> | null> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => {
      out += d;
    });
    p.stderr.on('data', (d) => {
      err += d;
    });
    p.on('error', () => resolve(null));
    p.on('close', (code) => {
      if (code !== 0) {
        console.log(`${cmd} ${args.at(-2) ?? ''} failed: ${err.slice(-300)}`);
        return resolve(null);
      }
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()!));
      } catch {
        resolve(null);
      }
    });
  });
}

async function main() {
  const be = getBackend() as unknown as { name: string; info?: () => { threads: number; onednn: string } };
  const info = be.info?.();
  console.log(
    `glmv engine benchmark — ${cpus()[0]?.model ?? 'cpu'}, ${cpus().length} cores, ISA: ${cpuIsa()}, load average ${loadavg()
      .map((x) => x.toFixed(1))
      .join(' / ')}, backend ${be.name}${info ? ` (oneDNN ${info.onednn}, ${info.threads} threads)` : ''}`,
  );
  if (be.name !== 'native')
    console.log('WARNING: the native backend is not active; numbers are for the pure-TypeScript reference backend.');
  const py = findPython();
  console.log(
    py
      ? `peers: ${py.bin} (${py.how})`
      : 'peers: no Python with torch+numpy found (set GLMV_PYTHON or create .venv); peer columns are empty',
  );

  // 1. GEMM: glmv and numpy alternate for ROUNDS rounds, so a slow patch of the machine hits both sides; medians per
  // side, and the spread of the per-round ratios.
  const sizes = [512, 1024, 2048];
  const ROUNDS = quick ? 1 : 3;
  const oursRounds: number[][] = [];
  const npRounds: Array<Record<string, number | string>> = [];
  for (let r = 0; r < ROUNDS; r++) {
    oursRounds.push(sizes.map((n) => gemmGflops(n, SECS)));
    if (!py) continue;
    const res = spawnSync(py.bin, [join(here, 'peers', 'numpy_gemm.py'), String(SECS), ...sizes.map(String)], {
      encoding: 'utf8',
      env: numpyEnv(),
    });
    if (res.status === 0) npRounds.push(JSON.parse(res.stdout.trim().split('\n').pop()!));
    else console.log(`numpy peer failed: ${res.stderr.slice(-500)}`);
  }
  const ours = sizes.map((_, i) => median(oursRounds.map((o) => o[i]!)));
  const np: Record<string, number | string> = { numpy: (npRounds[0]?.numpy as string) ?? 'n/a' };
  const ratioSpread: Record<string, [number, number]> = {};
  for (const [i, n] of sizes.entries()) {
    const per = npRounds.map((r) => r[String(n)] as number).filter((x) => Number.isFinite(x));
    if (per.length !== oursRounds.length) continue;
    np[String(n)] = median(per);
    const ratios = per.map((p, r) => oursRounds[r]![i]! / p);
    ratioSpread[String(n)] = [Math.min(...ratios), Math.max(...ratios)];
  }
  console.log(
    `\n1. fp32 GEMM, GFLOPS, median of ${ROUNDS} alternating round${ROUNDS > 1 ? 's' : ''} (numpy ${np.numpy} with OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset)`,
  );
  console.log('   n      glmv    numpy   glmv/numpy   per round');
  sizes.forEach((n, i) => {
    const p = np[String(n)] as number | undefined;
    const sp = ratioSpread[String(n)];
    console.log(
      `   ${String(n).padEnd(6)} ${ours[i]!.toFixed(1).padStart(6)}  ${p ? p.toFixed(1).padStart(6) : '   n/a'}   ${p ? `${(ours[i]! / p).toFixed(2)}×`.padEnd(10) : ''}   ${sp && ROUNDS > 1 ? `${sp[0].toFixed(2)}–${sp[1].toFixed(2)}×` : ''}`,
    );
  });

  // 1b. The same kernels per CPU-second (independent of the machine's load).
  if (be.name === 'native') {
    const per: Record<string, number[]> = { sgemm: [], matmul: [], split: [] };
    for (let r = 0; r < 3; r++)
      for (const m of ['sgemm', 'matmul', 'split'] as const) per[m]!.push(gemmPerCpuSecond(1024, m));
    let npCpu: number | null = null;
    if (py) {
      const r = spawnSync(py.bin, [join(here, 'peers', 'numpy_gemm.py'), String(SECS * 2), '1024'], {
        encoding: 'utf8',
        env: { ...numpyEnv(), GEMM_CLOCK: 'cpu', OPENBLAS_NUM_THREADS: '1' },
      });
      if (r.status === 0) npCpu = JSON.parse(r.stdout.trim().split('\n').pop()!)['1024'] as number;
    }
    console.log('\n1b. fp32 GEMM n=1024, GFLOP per CPU-second (kernel efficiency; load-independent)');
    console.log(
      `   glmv dnnl_sgemm ${median(per.sgemm!).toFixed(0)}, glmv oneDNN matmul primitive ${median(per.matmul!).toFixed(0)}, glmv one sgemm block per thread ${median(per.split!).toFixed(0)}, numpy 1 thread ${npCpu ? npCpu.toFixed(0) : 'n/a'}`,
    );
  }

  // 1c. The envelope: two single-threaded processes at once, one per core, each its own product. Nothing is shared
  // or split, so their sum is the most two cores give this kernel at once (clock and memory as under load); a 2-thread
  // GEMM can only lose to it. Both sides are measured the same way, so the ratio of ratios says whose threading loses.
  let envelope: { glmv: number[]; numpy: number[]; fmaPeak: number[] } | null = null;
  if (be.name === 'native' && cpus().length >= 2) {
    const n = 1024;
    // Both processes of a pair start measuring at the same moment, once they have had `delay` ms to start up.
    const pair = (cmd: string, args: string[], env: NodeJS.ProcessEnv, delay: number) => {
      const at = String(Date.now() + delay);
      return Promise.all([0, 1].map(() => childJson(cmd, args, { ...env, GEMM_START_AT: at })));
    };
    const pairOurs = await pair(
      process.execPath,
      [...process.execArgv, join(here, 'gemm-child.ts'), String(SECS * 2), String(n)],
      { ...process.env, OMP_NUM_THREADS: '1' },
      4000,
    );
    const theirs = py
      ? await pair(
          py.bin,
          [join(here, 'peers', 'numpy_gemm.py'), String(SECS * 2), String(n)],
          { ...numpyEnv(), OPENBLAS_NUM_THREADS: '1' },
          1500,
        )
      : [];
    // The cores' fp32 FMA peak, measured the same way (one register-only FMA loop per core, at once): what no kernel
    // can pass, so each GEMM's share of it says how much room is left.
    const probe = fmaPeakProbe();
    const peakPair = probe ? await pair(probe, [String(SECS)], process.env, 500) : [];
    const sum = (xs: Array<Record<string, number> | null>, key = String(n)) =>
      xs.length && xs.every((x) => x && Number.isFinite(x[key])) ? xs.map((x) => x![key]!) : [];
    envelope = { glmv: sum(pairOurs), numpy: sum(theirs), fmaPeak: sum(peakPair, 'gflops') };
    const show = (name: string, xs: number[], twoThread: number | undefined) => {
      if (!xs.length) return `${name} n/a`;
      const s = xs[0]! + xs[1]!;
      return `${name} ${xs.map((x) => x.toFixed(0)).join(' + ')} = ${s.toFixed(0)} GFLOPS${twoThread ? ` (its 2-thread GEMM in 1. reaches ${((100 * twoThread) / s).toFixed(0)} %)` : ''}`;
    };
    console.log(
      '\n1c. fp32 GEMM n=1024, two single-threaded processes at once, one per core (the envelope of two cores)',
    );
    console.log(`   ${show('glmv', envelope.glmv, ours[1])}`);
    console.log(`   ${show('numpy', envelope.numpy, np['1024'] as number | undefined)}`);
    const peak = envelope.fmaPeak.length ? envelope.fmaPeak[0]! + envelope.fmaPeak[1]! : null;
    const pct = (x: number | undefined) => (peak && x ? `${((100 * x) / peak).toFixed(0)} %` : 'n/a');
    console.log(
      peak
        ? `   fp32 FMA peak of the two cores at once ${envelope.fmaPeak.map((x) => x.toFixed(0)).join(' + ')} = ${peak.toFixed(0)} GFLOPS: glmv's 2-thread GEMM runs at ${pct(ours[1])} of it, numpy's at ${pct(np['1024'] as number | undefined)}`
        : '   fp32 FMA peak: n/a (no C++ compiler to build bench/fma-peak.cc)',
    );
  }

  // 2. train step (float32, then with bf16 GEMM inputs: mixed precision)
  const mine = trainOurs(true);
  setMatmulPrecision('bfloat16');
  const mixed = trainOurs(false);
  setMatmulPrecision('float32');
  let torchRes: {
    torch: string;
    threads: number;
    step_ms: number[];
    fwd_ms: number[];
    max_rss_mb: number;
    params: number;
    gemm_ms_per_step: number;
    gemm1024_gflops: number;
  } | null = null;
  if (py) {
    const r = spawnSync(
      py.bin,
      [join(here, 'peers', 'torch_transformer.py'), String(STEPS), String(WARMUP), String(cpus().length)],
      { encoding: 'utf8', env: numpyEnv() },
    );
    if (r.status === 0) torchRes = JSON.parse(r.stdout.trim().split('\n').pop()!);
    else console.log(`torch peer failed: ${r.stderr.slice(-500)}`);
  }
  const tStep = torchRes ? median(torchRes.step_ms) : null;
  const tFwd = torchRes ? median(torchRes.fwd_ms) : null;
  console.log(
    `\n2. train step of the reference transformer (${(mine.params / 1e6).toFixed(2)}M params, batch 4 × 256 tokens), median of ${STEPS} steps`,
  );
  console.log(`   PyTorch ${torchRes ? `${torchRes.torch}, ${torchRes.threads} threads` : 'n/a'}`);
  console.log('                       glmv      PyTorch   glmv/PyTorch');
  console.log(
    `   step (fwd+bwd+AdamW) ${mine.step.toFixed(1).padStart(7)} ms ${tStep ? `${tStep.toFixed(1).padStart(7)} ms` : '      n/a'}   ${tStep ? `${(mine.step / tStep).toFixed(2)}×` : ''}`,
  );
  console.log(
    `   forward only         ${mine.fwd.toFixed(1).padStart(7)} ms ${tFwd ? `${tFwd.toFixed(1).padStart(7)} ms` : '      n/a'}   ${tFwd ? `${(mine.fwd / tFwd).toFixed(2)}×` : ''}`,
  );
  console.log(
    `   step, bf16 GEMMs     ${mixed.step.toFixed(1).padStart(7)} ms ${tStep ? `${tStep.toFixed(1).padStart(7)} ms` : '      n/a'}   ${tStep ? `${(mixed.step / tStep).toFixed(2)}×` : ''}   (setMatmulPrecision('bfloat16'); PyTorch column is its fp32 step)`,
  );
  // Where the two steps' time goes: the same products in both, so the GEMM share follows each side's BLAS speed on this
  // CPU, and the rest (attention, norms, optimizer, dispatch) is what glmv can win on a CPU where both BLAS run at peak.
  const ourGemm = (mine.prof.find(([k]) => k === 'matmul')?.[1] ?? 0) / 3;
  if (torchRes && tStep) {
    console.log(
      `   of the step, GEMMs  ${ourGemm.toFixed(1).padStart(7)} ms ${torchRes.gemm_ms_per_step.toFixed(1).padStart(7)} ms   ${(ourGemm / torchRes.gemm_ms_per_step).toFixed(2)}×   (fp32 GEMM n=1024: glmv ${ours[1]?.toFixed(0) ?? 'n/a'}, PyTorch ${torchRes.gemm1024_gflops.toFixed(0)} GFLOPS)`,
    );
    console.log(
      `   the rest            ${(mine.step - ourGemm).toFixed(1).padStart(7)} ms ${(tStep - torchRes.gemm_ms_per_step).toFixed(1).padStart(7)} ms   ${((mine.step - ourGemm) / (tStep - torchRes.gemm_ms_per_step)).toFixed(2)}×`,
    );
  }
  console.log(
    `\n3. memory: peak tensor memory of a step (above weights and optimizer state) ${mine.peakMB.toFixed(1)} MB; process RSS ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB${torchRes ? `; PyTorch max RSS ${torchRes.max_rss_mb.toFixed(0)} MB` : ''}`,
  );
  const total = mine.prof.reduce((a, [, t]) => a + t, 0) / 3;
  console.log(
    `\nprofile of one glmv step (kernel time ${total.toFixed(1)} ms of ${mine.step.toFixed(1)} ms; the rest is TypeScript dispatch):`,
  );
  for (const [k, t, c] of mine.prof.slice(0, 10))
    console.log(`   ${k.padEnd(22)} ${(t / 3).toFixed(1).padStart(7)} ms  ${String(c / 3).padStart(4)} calls`);
  const gemmTarget = np['1024'] ? ours[1]! / (np['1024'] as number) : null;
  console.log('\ntargets:');
  console.log(
    `   GEMM at n=1024 >= 1.05× numpy: ${gemmTarget ? `${gemmTarget.toFixed(3)}× — ${gemmTarget >= 1.05 ? 'met' : 'MISSED'}` : 'not measured'}`,
  );
  console.log(
    `   train step <= 0.8× PyTorch:    ${tStep ? `${(mine.step / tStep).toFixed(2)}× — ${mine.step / tStep <= 0.8 ? 'met' : 'MISSED'}` : 'not measured'}`,
  );
  const out = join(here, '..', 'runs', 'bench');
  mkdirSync(out, { recursive: true });
  writeFileSync(
    join(out, 'engine.json'),
    JSON.stringify(
      {
        date: new Date().toISOString(),
        gemm: {
          sizes,
          rounds: ROUNDS,
          glmv: ours,
          numpy: np,
          ratioPerRound: ratioSpread,
          glmvRounds: oursRounds,
          numpyRounds: npRounds,
          envelope1024: envelope,
        },
        step: { glmv: mine, glmvBf16Gemm: mixed, torch: torchRes },
      },
      null,
      2,
    ),
  );
  console.log(`\nwrote ${join('runs', 'bench', 'engine.json')}`);
}

await main();
