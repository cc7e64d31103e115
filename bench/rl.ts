/**
 * RL benchmark (npm run bench:rl): rollout tokens/s, update step time, and the share of an RL step spent in
 * generation vs update, for
 *   1. the toy policy (TinyGpt, full-recompute sampling) against the same model and the same algorithm in PyTorch,
 *      measured in this run (the peer needs a Python with torch: .venv, GLMV_PYTHON, or python3);
 *   2. a small GLM-4.1V-shaped model (≈ the feasibility study's 2.3M-parameter size) with the KV-cache generator;
 *   3. the whole RL trainer step on the toy task (generate / reward / π_old / update breakdown);
 *   4. GLM rollouts at the pipeline's RL settings (the shipped small model, 16 prompts × G 8 at 112 px, 160 thinking
 *      + 32 answer tokens, temperature 1): per-response decoding (every response prefilled on its own, finished rows
 *      decoded to the end) against group decoding (one prefill per prompt, finished rows dropped), and the RL trainer
 *      step with each (generate / reward / π_old / update).
 *
 *   npm run bench:rl
 *   npm run bench:rl -- --quick
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateDataset } from '../src/data/dataset.js';
import { readSamples } from '../src/data/store.js';
import { getBackend, noGrad, optim, scope } from '../src/engine/index.js';
import { ChatModel } from '../src/io/chat.js';
import { Glm4vProcessor } from '../src/io/processor/request.js';
import { GlmTokenizer } from '../src/io/tokenizer.js';
import { Glm4vForConditionalGeneration } from '../src/model/glm4v.js';
import { tinyConfig } from '../src/model/presets.js';
import { applyOverrides, parseRlConfig, toyPreset } from '../src/rl/config.js';
import { GlmPolicy, GlmRolloutEngine } from '../src/rl/glm.js';
import { aggNorm, aggregationWeights, DEFAULT_LOSS, policyLoss } from '../src/rl/grpo.js';
import { ToyRolloutEngine } from '../src/rl/rollout/toy.js';
import { buildEngine, buildPolicy, buildRouter, loadPrompts } from '../src/rl/setup.js';
import { ToyPolicy, toySamples } from '../src/rl/toy.js';
import { RlTrainer } from '../src/rl/trainer.js';
import type { Policy, PolicyItem, Rollout, RolloutEngine, RolloutPrompt, SamplingParams } from '../src/rl/types.js';
import { benchProgram } from './cli.js';
import { medianTiming, type RolloutTiming, timeRolloutCall } from './rollout-timing.js';
import { median } from './stats.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..');
const opts = benchProgram({
  name: 'rl',
  description:
    'RL speed: rollout tokens/s, update step time and the generation / update share of a step, for the toy policy ' +
    '(against the same model and algorithm in PyTorch, measured in this run), a small GLM-4.1V-shaped model, the ' +
    'whole RL trainer step, and GLM rollouts at the pipeline settings (per-response vs group decoding)',
  examples: [
    'npm run bench:rl',
    'npm run bench:rl -- --quick',
    'OMP_NUM_THREADS=1 GLMV_PYTHON=/path/to/python npm run bench:rl -- --quick',
    'npm run bench:rl -- --baseline /tmp/before   # /tmp/before: git worktree add /tmp/before <commit>, node_modules linked, npm run build:native there',
  ],
  environment: [
    ['GLMV_PYTHON', 'the Python (with torch) for the peer; else .venv, then python3'],
    ['OMP_NUM_THREADS', 'threads the torch peer uses (default: all CPUs)'],
  ],
})
  .option('--quick', 'fewer repetitions and trainer steps')
  .option(
    '--baseline <dir>',
    'section 4: also time the GLM rollout engine of this checkout of the repository (another commit; its native addon built), on the same prompts, in a child process',
  )
  .parse()
  .opts<{ quick?: boolean; baseline?: string }>();
const quick = opts.quick === true;
const REPS = quick ? 2 : 4;

function findPython(): string | null {
  const c = [process.env.GLMV_PYTHON, join(repo, '.venv', 'bin', 'python'), 'python3'].filter(Boolean) as string[];
  for (const bin of c) {
    if (bin.includes('/') && !existsSync(bin)) continue;
    if (spawnSync(bin, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0) return bin;
  }
  return null;
}

interface Measure {
  genMs: number;
  genTokens: number;
  updMs: number;
  rows: number;
}

/** Rollout + one GRPO update (loss fwd/bwd over every rollout, AdamW) — the two halves of an RL step. */
async function measure(
  policy: Policy,
  engine: RolloutEngine,
  prompts: RolloutPrompt[],
  G: number,
  params: SamplingParams,
  micro: number,
): Promise<Measure> {
  const opt = new optim.AdamW(policy.parameters(), { lr: 1e-6 });
  const gen: number[] = [];
  const upd: number[] = [];
  let tokens = 0;
  let rows = 0;
  for (let rep = 0; rep < REPS + 1; rep++) {
    const t0 = performance.now();
    const out: Rollout[][] = await engine.generate(prompts, G, { ...params, seed: rep + 1 });
    const g = performance.now() - t0;
    const flat = out.flatMap((grp, i) => grp.map((r) => ({ r, i })));
    const items: Array<PolicyItem & { mask: Uint8Array; adv: number }> = flat.map(({ r, i }, k) => ({
      prompt: prompts[i]!.input,
      response: r.tokenIds.length ? r.tokenIds : Int32Array.of(0),
      mask: r.tokenIds.length ? r.lossMask : Uint8Array.of(0),
      adv: (k % 3) - 1,
    }));
    const t1 = performance.now();
    const norm = aggNorm(
      items.map((x) => x.mask),
      64,
    );
    for (let s = 0; s < items.length; s += micro) {
      const mb = items.slice(s, s + micro);
      scope(() => {
        const { logprobs } = policy.logProbs(mb);
        const T = logprobs.shape[1]!;
        const old = noGrad(() => logprobs.toFloat32());
        policyLoss(
          {
            logprobs,
            oldLogprobs: old,
            advantages: Float32Array.from(mb, (x) => x.adv),
            weights: aggregationWeights(
              mb.map((x) => x.mask),
              T,
              'seq-mean-token-mean',
              norm,
            ),
          },
          DEFAULT_LOSS,
        ).loss.backward();
      });
    }
    optim.clipGradNorm(policy.parameters(), 1);
    opt.step();
    opt.zeroGrad();
    const u = performance.now() - t1;
    if (rep === 0) continue; // warm-up
    gen.push(g);
    upd.push(u);
    tokens = flat.reduce((a, { r }) => a + r.lossMask.reduce((x, y) => x + y, 0), 0);
    rows = flat.length;
  }
  return { genMs: median(gen), genTokens: tokens, updMs: median(upd), rows };
}

/** The PyTorch peer: the same TinyGpt, the same sampling loop (full recompute), the same GRPO-style update. */
const TORCH_PEER = `
import json, sys, time
import torch, torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(int(sys.argv[1]))
V, D, H, LAYERS, MAXLEN, ROWS, P, NEW, REPS = [int(x) for x in sys.argv[2:11]]
class Block(nn.Module):
    def __init__(s):
        super().__init__()
        s.ln1, s.qkv, s.proj = nn.LayerNorm(D), nn.Linear(D, 3*D), nn.Linear(D, D)
        s.ln2, s.fc1, s.fc2 = nn.LayerNorm(D), nn.Linear(D, 4*D), nn.Linear(4*D, D)
    def forward(s, x):
        b, l, d = x.shape
        q, k, v = s.qkv(s.ln1(x)).view(b, l, 3, H, d//H).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + s.proj(a.transpose(1, 2).reshape(b, l, d))
        return x + s.fc2(F.gelu(s.fc1(s.ln2(x)), approximate="tanh"))
class Gpt(nn.Module):
    def __init__(s):
        super().__init__()
        s.wte, s.wpe = nn.Embedding(V, D), nn.Embedding(MAXLEN, D)
        s.h = nn.ModuleList([Block() for _ in range(LAYERS)])
        s.ln_f, s.head = nn.LayerNorm(D), nn.Linear(D, V, bias=False)
    def forward(s, ids):
        x = s.wte(ids) + s.wpe(torch.arange(ids.shape[1]))
        for b in s.h: x = b(x)
        return s.head(s.ln_f(x))
torch.manual_seed(0)
m = Gpt(); opt = torch.optim.AdamW(m.parameters(), lr=1e-6)
gen, upd = [], []
for rep in range(REPS + 1):
    ids = torch.randint(10, V, (ROWS, P))
    t0 = time.perf_counter()
    with torch.no_grad():
        for _ in range(NEW):
            p = torch.softmax(m(ids)[:, -1], -1)
            ids = torch.cat([ids, torch.multinomial(p, 1)], 1)
    g = time.perf_counter() - t0
    t1 = time.perf_counter()
    adv = (torch.arange(ROWS) % 3 - 1).float()
    lp = -F.cross_entropy(m(ids[:, :-1]).transpose(1, 2), ids[:, 1:], reduction="none")[:, P-1:]
    old = lp.detach()
    ratio = torch.exp(lp - old)
    pg = torch.maximum(-adv[:, None]*ratio, -adv[:, None]*ratio.clamp(0.8, 1.28))
    loss = pg.mean(-1).mean()
    loss.backward(); torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step(); opt.zero_grad()
    u = time.perf_counter() - t1
    if rep: gen.append(g); upd.append(u)
gen.sort(); upd.sort()
print(json.dumps({"torch": torch.__version__, "genMs": gen[len(gen)//2]*1000, "updMs": upd[len(upd)//2]*1000, "tokens": ROWS*NEW}))
`;

function row(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
}

async function main(): Promise<void> {
  const threads = Number(process.env.OMP_NUM_THREADS ?? cpus().length);
  console.log(
    `backend ${getBackend().name}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), ${quick ? 'quick' : 'full'} run`,
  );

  // 1. Toy policy vs PyTorch.
  const toy = ToyPolicy.create({ dim: 64, layers: 2, heads: 4, maxLen: 48 }, 0);
  const samples = [...toySamples({ task: 'name', max: 99 }), ...toySamples({ task: 'add', max: 9 })];
  const N = 16;
  const G = 8;
  const prompts = samples.slice(0, N).map((s) => ({ sample: s, input: toy.encodePrompt(s) }));
  // Untrained model + no eos bias: every row runs to the budget, a fixed number of tokens per row.
  const params: SamplingParams = {
    temperature: 1,
    topP: 1,
    topK: 0,
    maxThinkingTokens: 8,
    maxAnswerTokens: 8,
    forceAnswer: true,
    style: 'glm41v',
    seed: 1,
  };
  const t = await measure(toy, new ToyRolloutEngine(toy, { batchSize: 256 }), prompts, G, params, 128);
  const meanNew = Math.max(1, Math.round(t.genTokens / t.rows));
  const meanPrompt = Math.round(prompts.reduce((a, p) => a + p.input.ids.length, 0) / prompts.length);
  const py = findPython();
  let peer: { torch: string; genMs: number; updMs: number; tokens: number } | null = null;
  if (py) {
    const r = spawnSync(
      py,
      [
        '-c',
        TORCH_PEER,
        String(threads),
        ...[toy.codec.size, 64, 4, 2, 48, t.rows, meanPrompt, meanNew, REPS].map(String),
      ],
      { encoding: 'utf8', env: { ...process.env, OPENBLAS_CORETYPE: '', OPENBLAS_L2_SIZE: '' } },
    );
    if (r.status === 0) peer = JSON.parse(r.stdout.trim().split('\n').pop()!);
    else console.log(`torch peer failed: ${r.stderr.slice(-400)}`);
  } else
    console.log('torch peer: no Python with torch found (set GLMV_PYTHON or create .venv); peer columns are empty');

  const w = [44, 12, 12, 12];
  console.log(
    `\n1. toy policy (TinyGpt d=64, 2 layers, ${toy.model.numParameters()} parameters): ${t.rows} rollouts of ~${meanNew} tokens after ~${meanPrompt}-token prompts`,
  );
  console.log(row(['', 'glmv', `torch ${peer?.torch ?? ''}`.trim(), 'glmv/torch'], w));
  const tokS = (t.genTokens / t.genMs) * 1000;
  const peerTokS = peer ? (peer.tokens / peer.genMs) * 1000 : null;
  console.log(
    row(
      [
        'rollout tokens/s (full recompute, batched)',
        tokS.toFixed(0),
        peerTokS?.toFixed(0) ?? '-',
        peerTokS ? (tokS / peerTokS).toFixed(2) : '-',
      ],
      w,
    ),
  );
  console.log(
    row(
      ['rollout ms', t.genMs.toFixed(1), peer?.genMs.toFixed(1) ?? '-', peer ? (peer.genMs / t.genMs).toFixed(2) : '-'],
      w,
    ),
  );
  console.log(
    row(
      [
        'update ms (GRPO fwd+bwd+AdamW, all rollouts)',
        t.updMs.toFixed(1),
        peer?.updMs.toFixed(1) ?? '-',
        peer ? (peer.updMs / t.updMs).toFixed(2) : '-',
      ],
      w,
    ),
  );
  console.log(
    row(
      [
        'generation share of gen+update',
        `${((100 * t.genMs) / (t.genMs + t.updMs)).toFixed(0)}%`,
        peer ? `${((100 * peer.genMs) / (peer.genMs + peer.updMs)).toFixed(0)}%` : '-',
        '',
      ],
      w,
    ),
  );
  console.log('   (ms ratios are torch/glmv: above 1 means glmv is faster)');

  // 2. A small GLM-4.1V-shaped model with the KV-cache generator.
  const cfg = tinyConfig('glm4v', {
    hiddenSize: 192,
    layers: 4,
    heads: 6,
    kvHeads: 2,
    intermediateSize: 512,
    visionDepth: 3,
    visionHidden: 128,
  });
  Object.assign(cfg, {
    imageStartTokenId: 499,
    imageEndTokenId: 500,
    videoStartTokenId: 501,
    videoEndTokenId: 502,
    imageTokenId: 503,
    videoTokenId: 504,
    eosTokenId: [492, 496],
  });
  const model = Glm4vForConditionalGeneration.random(cfg, { seed: 1 });
  const tok = await GlmTokenizer.fromPretrained(join(repo, 'test', 'fixtures', 'tokenizer'));
  const glm = new GlmPolicy(new ChatModel(model, tok, new Glm4vProcessor(), '(bench)'));
  const gPrompts: RolloutPrompt[] = [];
  for (const s of samples.slice(0, 8)) gPrompts.push({ sample: s, input: await glm.encodePrompt(s) });
  const gParams = { ...params, maxThinkingTokens: 24, maxAnswerTokens: 16 };
  const gm = await measure(glm, new GlmRolloutEngine(glm, { batchSize: 64 }), gPrompts, G, gParams, 32);
  console.log(
    `\n2. small GLM-4.1V-shaped model (${(model.numParameters() / 1e6).toFixed(2)}M parameters, KV cache): ${gm.rows} rollouts of ~${Math.round(gm.genTokens / gm.rows)} sampled tokens`,
  );
  console.log(
    `   rollout ${((gm.genTokens / gm.genMs) * 1000).toFixed(0)} tokens/s (${gm.genMs.toFixed(0)} ms), update ${gm.updMs.toFixed(0)} ms, generation share ${((100 * gm.genMs) / (gm.genMs + gm.updMs)).toFixed(0)}%`,
  );

  // 3. Whole trainer steps on the toy task.
  const dir = mkdtempSync(join(tmpdir(), 'bench-rl-'));
  try {
    const rc = parseRlConfig(
      applyOverrides(toyPreset(join(dir, 'run')), [
        `run.steps=${quick ? 4 : 8}`,
        'run.checkpointEvery=0',
        'run.saveRollouts=false',
        'policy.coldStart.steps=100',
        'curriculum.offlinePassK.k=0',
        'rollout.maxThinkingTokens=6',
      ]),
    );
    const ps = await loadPrompts(rc);
    const policy = await buildPolicy(rc, ps, { quiet: true });
    const router = buildRouter(rc);
    const trainer = new RlTrainer(rc, {
      policy,
      engine: buildEngine(rc, policy),
      router,
      samples: ps,
      quiet: true,
      log: () => {},
    });
    await trainer.start({ resume: false });
    const recs = await trainer.run();
    await router.close();
    const ms = (k: string) => median(recs.slice(1).map((r) => (r.ms as Record<string, number>)[k]!));
    const total = ms('total');
    const share = (k: string) => `${((100 * ms(k)) / total).toFixed(0)}%`;
    const rolls = median(recs.slice(1).map((r) => r.rollouts as number));
    console.log(
      `\n3. RL trainer step on the toy task (${rolls} rollouts/step, batch ${rc.batch.prompts} × G ${rc.rollout.groupSize}, expansion on)`,
    );
    console.log(
      `   step ${total.toFixed(0)} ms: generate ${ms('generate').toFixed(0)} ms (${share('generate')}), reward ${ms('reward').toFixed(0)} ms (${share('reward')}), π_old ${ms('old_logprobs').toFixed(0)} ms (${share('old_logprobs')}), update ${ms('update').toFixed(0)} ms (${share('update')})`,
    );
    console.log(
      `   rollout ${median(recs.slice(1).map((r) => r.rollout_tok_s as number)).toFixed(0)} sampled tokens/s inside the trainer`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await pipelineRollouts();
}

/** Section 4: per-response vs group decoding of the GLM engine at the pipeline's RL settings, and the trainer step. */
async function pipelineRollouts(): Promise<void> {
  const modelDir = join(repo, 'models', 'glmv-small');
  if (!existsSync(join(modelDir, 'model.safetensors'))) {
    console.log('\n4. skipped: models/glmv-small is not there (glmv pipeline --ship writes it)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'bench-rl-glm-'));
  try {
    const data = join(dir, 'rl');
    await generateDataset(
      { domains: 'all', n: 16, split: 'train', seed: 7, difficulty: '1-5', size: '112', mcq: 'blank' },
      { out: data, quiet: true },
    );
    const samples = [];
    for await (const x of readSamples(data)) samples.push(x);
    const policy = await GlmPolicy.load(modelDir);
    const prompts: RolloutPrompt[] = [];
    for (const x of samples) prompts.push({ sample: x, input: await policy.encodePrompt(x) });
    const G = 8;
    const sp: SamplingParams = {
      temperature: 1,
      topP: 1,
      topK: 0,
      maxThinkingTokens: 160,
      maxAnswerTokens: 32,
      forceAnswer: true,
      style: 'glm41v',
      seed: 1,
    };
    const reps = quick ? 1 : 3;
    const engines = [
      new GlmRolloutEngine(policy, { batchSize: 256, groupDecode: false }),
      new GlmRolloutEngine(policy, { batchSize: 256 }),
    ];
    // One untimed call each first: an RL run generates with the same shapes every step, so the steady state (buffers
    // pooled, pages touched) is what counts. Then the two alternate, so machine load falls on both alike; process CPU
    // time (all threads) is reported beside wall time.
    for (const e of engines) await e.generate(prompts, G, { ...sp, seed: 99 });
    const timed: RolloutTiming[][] = engines.map(() => []);
    for (let rep = 0; rep < reps; rep++)
      for (const [k, e] of engines.entries())
        timed[k]!.push(await timeRolloutCall(e, prompts, G, { ...sp, seed: rep + 1 }));
    const [before, after] = timed.map(medianTiming) as [RolloutTiming, RolloutTiming];
    const tps = (m: { ms: number; tokens: number }) => (m.tokens / m.ms) * 1000;
    console.log(
      `\n4. GLM rollouts at the pipeline's RL settings (models/glmv-small, ${prompts.length} prompts × G ${G}, ${sp.maxThinkingTokens} + ${sp.maxAnswerTokens} tokens, T 1)`,
    );
    const w = [44, 14, 14, 8];
    const base = opts.baseline ? baselineRollouts(opts.baseline, modelDir, data, G, sp, reps) : null;
    console.log(row(['', 'per-response', 'group decode', 'ratio'], w));
    console.log(
      row(
        ['rollout tokens/s', tps(before).toFixed(0), tps(after).toFixed(0), (tps(after) / tps(before)).toFixed(2)],
        w,
      ),
    );
    console.log(
      row(['rollout ms (median)', before.ms.toFixed(0), after.ms.toFixed(0), (before.ms / after.ms).toFixed(2)], w),
    );
    console.log(
      row(
        [
          'rollout CPU ms, all threads (median)',
          before.cpuMs.toFixed(0),
          after.cpuMs.toFixed(0),
          (before.cpuMs / after.cpuMs).toFixed(2),
        ],
        w,
      ),
    );
    if (base) {
      console.log(
        `   ${base.label}: ${tps(base).toFixed(0)} rollout tokens/s, ${base.ms.toFixed(0)} ms, ${base.cpuMs.toFixed(0)} CPU ms — group decode today is ${(tps(after) / tps(base)).toFixed(2)}× its tokens/s (${(base.cpuMs / after.cpuMs).toFixed(2)}× in CPU time per call)`,
      );
    }
    for (const groupDecode of [false, true]) {
      const rc = parseRlConfig({
        run: {
          dir: join(dir, `run-${groupDecode}`),
          seed: 0,
          steps: quick ? 2 : 3,
          checkpointEvery: 0,
          saveRollouts: false,
        },
        policy: { kind: 'glm', path: modelDir },
        data: { sources: [{ kind: 'dataset', path: data }] },
        batch: { prompts: 16 },
        rollout: { groupSize: G, maxThinkingTokens: 160, maxAnswerTokens: 32 },
        grpo: { lr: 5e-5 },
        expansion: { enabled: false },
        reward: { cas: { enabled: false } },
      });
      const p = await GlmPolicy.load(modelDir);
      const router = buildRouter(rc);
      const trainer = new RlTrainer(rc, {
        policy: p,
        engine: new GlmRolloutEngine(p, { batchSize: rc.rollout.batchSize, groupDecode }),
        router,
        samples,
        quiet: true,
        log: () => {},
      });
      await trainer.start({ resume: false });
      const recs = (await trainer.run()).slice(1);
      await router.close();
      const ms = (k: string) => median(recs.map((r) => (r.ms as Record<string, number>)[k]!));
      const total = ms('total');
      const share = (k: string) => `${ms(k).toFixed(0)} ms (${((100 * ms(k)) / total).toFixed(0)}%)`;
      console.log(
        `   RL step, ${groupDecode ? 'group decode' : 'per-response'}: ${total.toFixed(0)} ms — generate ${share('generate')}, reward ${share('reward')}, π_old ${share('old_logprobs')}, update ${share('update')}; ${median(recs.map((r) => r.rollout_tok_s as number)).toFixed(0)} rollout tokens/s`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Section 4's rollouts with another checkout's engine (bench/rollouts-child.ts), for a before / after across commits. */
function baselineRollouts(
  tree: string,
  model: string,
  data: string,
  groupSize: number,
  params: SamplingParams,
  reps: number,
): RolloutTiming & { label: string } {
  if (!existsSync(join(tree, 'src', 'rl', 'glm.ts')))
    throw new Error(`--baseline ${tree}: not a checkout of this repository (src/rl/glm.ts is missing)`);
  if (!existsSync(join(tree, 'native', 'build', 'Release', 'glmv_native.node')))
    throw new Error(`--baseline ${tree}: its native addon is not built (run npm run build:native there)`);
  const commit = spawnSync('git', ['-C', tree, 'log', '-1', '--format=%h %cs'], { encoding: 'utf8' }).stdout.trim();
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      join(here, 'rollouts-child.ts'),
      JSON.stringify({ tree, model, data, groupSize, reps, params }),
    ],
    { encoding: 'utf8', maxBuffer: 1 << 26 },
  );
  const last = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !last.startsWith('{'))
    throw new Error(`--baseline ${tree}: the child failed (status ${r.status}): ${r.stderr.slice(-2000)}`);
  const m = JSON.parse(last) as RolloutTiming;
  return { ...m, label: `baseline ${tree} (${commit || 'not a git checkout'}), its engine's default decoding` };
}

await main();
