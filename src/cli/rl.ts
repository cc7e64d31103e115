/**
 * `glmv rl`: GRPO training with RLCS and EMA expansion (`glmv rl --config FILE`), and the tools around a run:
 * `inspect` (rollouts with rewards and gate reasons), `curves` (per-domain curves, tier populations), `passk`
 * (offline pass@k of a model for the curriculum) and `init` (write a starting config).
 */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { stringify as toYaml } from 'yaml';
import { PRESETS, parseRlConfig } from '../rl/config.js';
import {
  filterRollouts,
  formatCompare,
  formatCurves,
  formatRollouts,
  formatTiers,
  ROLLOUT_FILTERS,
  type RolloutFilter,
  readMetrics,
  readRollouts,
  readRunsToCompare,
} from '../rl/inspect.js';
import { writePassK } from '../rl/passk.js';
import { loadRlConfig, passKRun, trainRl } from '../rl/run.js';

const collect = (v: string, prev: string[]) => [...prev, v];

/** Runs an action; a thrown error becomes one line on stderr and exit code 1 (no stack trace for bad input). */
function guard<A extends unknown[]>(fn: (...args: A) => unknown): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      process.stderr.write(`glmv rl: error: ${(e as Error).message ?? String(e)}\n`);
      process.exitCode = 1;
    }
  };
}

function stepArg(v: string): number | 'last' {
  if (v === 'last') return 'last';
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new Error(`--step: expected a step number or "last", got ${JSON.stringify(v)}`);
  return n;
}

interface TrainOptions {
  config: string;
  set: string[];
  resume?: boolean;
  stopAfter?: string;
  quiet?: boolean;
}

async function train(o: TrainOptions): Promise<void> {
  const config = loadRlConfig(o.config, o.set);
  const stopAfter = o.stopAfter !== undefined ? Number(o.stopAfter) : undefined;
  if (stopAfter !== undefined && !(Number.isInteger(stopAfter) && stopAfter > 0))
    throw new Error(`--stop-after: expected a positive integer, got ${o.stopAfter}`);
  const log = (l: string) => process.stderr.write(`${l}\n`);
  let stop = false;
  const onSig = () => {
    if (stop) process.exit(130);
    stop = true;
    log('\nrl: interrupt — finishing this step and writing a checkpoint (Ctrl-C again to quit now)');
  };
  try {
    const {
      start,
      end,
      records: recs,
      skipped,
    } = await trainRl(config, {
      resume: !!o.resume,
      ...(stopAfter ? { stopAfter } : {}),
      quiet: o.quiet,
      shouldStop: () => stop,
      onReady: () => process.on('SIGINT', onSig),
      log,
    });
    const first = recs.slice(0, Math.min(5, recs.length));
    const last = recs.slice(-Math.min(5, recs.length));
    const avg = (rs: typeof recs, k: string) => rs.reduce((a, r) => a + (r[k] as number), 0) / Math.max(1, rs.length);
    if (recs.length)
      console.log(
        `rl: steps ${start}..${end}; reward ${avg(first, 'reward_mean').toFixed(3)} → ${avg(last, 'reward_mean').toFixed(3)}, ` +
          `pass ${(avg(first, 'pass_rate') * 100).toFixed(1)}% → ${(avg(last, 'pass_rate') * 100).toFixed(1)}% (first/last ${first.length} steps); ` +
          `skipped updates ${skipped}; metrics ${config.run.dir}/metrics.jsonl`,
      );
    console.log(
      `rl: inspect with  glmv rl inspect ${config.run.dir} --step last   and   glmv rl curves ${config.run.dir}`,
    );
  } finally {
    process.off('SIGINT', onSig);
  }
}

async function passk(o: {
  config: string;
  set: string[];
  k: string;
  out: string;
  limit?: string;
  quiet?: boolean;
}): Promise<void> {
  const k = Number(o.k);
  if (!Number.isInteger(k) || k < 1) throw new Error(`--k: expected a positive integer, got ${o.k}`);
  const config = loadRlConfig(o.config, o.set, 'passk');
  const log = (l: string) => process.stderr.write(`${l}\n`);
  let limit: number | undefined;
  if (o.limit !== undefined) {
    limit = Number(o.limit);
    if (!Number.isInteger(limit) || limit < 1) throw new Error(`--limit: expected a positive integer, got ${o.limit}`);
  }
  const { results, prompts, engine } = await passKRun(config, {
    k,
    ...(limit !== undefined ? { limit } : {}),
    quiet: o.quiet,
    log,
  });
  writePassK(o.out, results, { k, engine, config: o.config, prompts });
  const mean = results.reduce((a, x) => a + x.correct / x.k, 0) / Math.max(1, results.length);
  console.log(
    `pass@${k}: ${results.length} of ${prompts} prompts graded, mean pass rate ${(mean * 100).toFixed(1)}%; written to ${o.out} (use it as curriculum.offlinePassK.file)`,
  );
}

export function register(program: Command): void {
  const rl = program
    .command('rl')
    .description('GRPO reinforcement learning with RLCS curriculum, EMA dynamic-sampling expansion and force answering')
    .addHelpText(
      'after',
      `
Without a subcommand, \`glmv rl --config FILE\` trains (see \`glmv rl train --help\` for every option).

Examples:
  glmv rl --config toy                          # the built-in toy run (a few CPU minutes)
  glmv rl --config rl.yaml --resume             # continue a run exactly
  glmv rl inspect runs/rl-toy --step last       # read rollouts per domain
  glmv rl curves runs/rl-toy --tiers            # tier populations over time
  glmv rl passk --config rl.yaml --k 8 --out passk.json`,
    );

  rl.command('train', { isDefault: true })
    .description('run (or resume) an RL training run from a config file')
    .requiredOption('--config <file>', 'YAML/JSON run config, or a preset name (toy)')
    .option('--set <key=value>', 'override a config field (dotted path; repeatable)', collect, [])
    .option('--resume', 'continue the run in run.dir from its newest checkpoint, exactly')
    .option('--stop-after <n>', 'stop (with a checkpoint) after n steps of this invocation')
    .option('--quiet', 'no progress bars')
    .addHelpText(
      'after',
      `
The loop: draw prompts (RLCS tiers × domain mix, over-sampled by the expansion EMA) → roll out G responses each
(thinking budget, force answering) → score with the reward router → keep the most balanced groups → GRPO update
(clip-higher 0.2/0.28, no KL, no entropy, per-sample loss averaging by default). Writes RUN/metrics.jsonl (per-domain
curves, tier populations, clip fractions, timings), RUN/rollouts/step-N.jsonl and RUN/checkpoints/.

Examples:
  glmv rl --config toy                                   # the built-in toy run (a few CPU minutes)
  glmv rl init --out rl.yaml && glmv rl --config rl.yaml # start from the preset, edit, run
  glmv rl --config rl.yaml --set grpo.lr=5e-4 --set rollout.groupSize=16
  glmv rl --config rl.yaml --resume                      # continue after Ctrl-C or a crash, exactly
  glmv rl --config toy --set run.dir=runs/t2 --set grpo.lossAgg=token-mean --set grpo.dualClip=3
  glmv rl --config toy --set run.dir=runs/t3 --set lengthControl.forcedPenalty=0.1   # price on reaching the thinking budget`,
    )
    .action(guard((o: TrainOptions) => train(o)));

  rl.command('inspect')
    .description('show the sampled responses of a step with rewards, gate reasons and advantages, per domain')
    .argument('<run>', 'the run folder (run.dir)')
    .option('--step <n>', 'step number, or "last"', 'last')
    .option('--domain <d>', 'only this domain')
    .option('--only <what>', `filter: ${ROLLOUT_FILTERS.join(', ')}`, 'all')
    .option('--limit <n>', 'responses shown per domain', '8')
    .option('--full', 'print whole responses (default: one clipped line)')
    .option('--json', 'print the matching rollouts as JSON lines')
    .addHelpText(
      'after',
      `
Read rollouts per domain to catch reward hacking (paper §5.2): a verifier fooled by "a correct number between 0 and
10" shows up here as correct answers with nonsense reasoning.

Examples:
  glmv rl inspect runs/rl-toy --step 40
  glmv rl inspect runs/rl-toy --step last --domain stem --only wrong --limit 20
  glmv rl inspect runs/rl-toy --only gated            # what the format / repetition / language gates caught
  glmv rl inspect runs/rl-toy --step 3 --json | head`,
    )
    .action(
      guard(
        (
          run: string,
          o: { step: string; domain?: string; only: string; limit: string; full?: boolean; json?: boolean },
        ) => {
          const limit = Number(o.limit);
          if (!Number.isInteger(limit) || limit < 1)
            throw new Error(`--limit: expected a positive integer, got ${o.limit}`);
          const { step, rows } = readRollouts(run, stepArg(o.step));
          const sel = filterRollouts(rows, {
            ...(o.domain ? { domain: o.domain } : {}),
            only: o.only as RolloutFilter,
          });
          if (o.domain && !rows.some((r) => r.domain === o.domain))
            throw new Error(
              `--domain ${o.domain}: step ${step} has no rollouts of it; it has ${[...new Set(rows.map((r) => r.domain))].join(', ')}`,
            );
          if (o.json) {
            for (const r of sel) console.log(JSON.stringify(r));
            return;
          }
          console.log(formatRollouts(step, sel, { limit, ...(o.full ? { full: true } : {}) }));
        },
      ),
    );

  rl.command('curves')
    .description(
      'per-domain reward / pass / format-failure / forced / length curves and RLCS tier populations of a run',
    )
    .argument('<run>', 'the run folder (run.dir)')
    .option('--domain <d>', 'only this domain (tiers of this domain)')
    .option('--every <n>', 'show every n-th step (default: about 25 rows)')
    .option('--tiers', 'show tier populations over time instead of curves')
    .option(
      '--compare <run>',
      'another run to show side by side: forced-answer share, thinking tokens, pass rate (repeatable)',
      collect,
      [],
    )
    .addHelpText(
      'after',
      `
Examples:
  glmv rl curves runs/rl-toy
  glmv rl curves runs/rl-toy --domain stem --every 5
  glmv rl curves runs/rl-toy --tiers
  glmv rl curves runs/toy-off --compare runs/toy-forced   # thinking-length control off vs on (lengthControl)`,
    )
    .action(
      guard((run: string, o: { domain?: string; every?: string; tiers?: boolean; compare: string[] }) => {
        const every = o.every !== undefined ? Number(o.every) : undefined;
        if (every !== undefined && !(Number.isInteger(every) && every > 0))
          throw new Error(`--every: expected a positive integer, got ${o.every}`);
        const rows = readMetrics(run);
        const opts = { ...(o.domain ? { domain: o.domain } : {}), ...(every ? { every } : {}) };
        if (o.compare.length) {
          if (o.tiers) throw new Error('--tiers and --compare cannot be combined');
          console.log(formatCompare(readRunsToCompare([run, ...o.compare]), opts));
          return;
        }
        console.log(o.tiers ? formatTiers(rows, opts) : formatCurves(rows, opts));
      }),
    );

  rl.command('passk')
    .description("offline pass@k of a model over the config's prompts (seeds RLCS difficulty tiers)")
    .requiredOption('--config <file>', 'run config (data sources, rollout engine, reward), or a preset name')
    .option('--set <key=value>', 'override a config field (repeatable)', collect, [])
    .option('--k <n>', 'samples per prompt', '8')
    .option('--limit <n>', 'only the first n prompts')
    .requiredOption('--out <file>', 'where to write the results (JSON)')
    .option('--quiet', 'no progress bars')
    .addHelpText(
      'after',
      `
With rollout.engine server any OpenAI-compatible server (vLLM / SGLang serving GLM-4.1V or 4.5V) grades the prompts;
no local model is needed. Feed the file to a run with curriculum.offlinePassK.file.

Examples:
  glmv rl passk --config rl.yaml --k 8 --out passk.json
  glmv rl passk --config rl.yaml --set rollout.engine=server --set rollout.server.baseURL=http://localhost:8000/v1 --k 4 --out p.json`,
    )
    .action(
      guard((o: { config: string; set: string[]; k: string; out: string; limit?: string; quiet?: boolean }) =>
        passk(o),
      ),
    );

  rl.command('init')
    .description('write a starting config (the toy preset) to edit')
    .option('--preset <name>', `one of ${Object.keys(PRESETS).join(', ')}`, 'toy')
    .option('--out <file>', 'write here instead of printing (.yaml or .json)')
    .option('--dir <runDir>', 'run.dir of the new config', 'runs/rl-toy')
    .addHelpText(
      'after',
      `
Examples:
  glmv rl init --out rl.yaml
  glmv rl init --dir runs/exp1 --out exp1.json`,
    )
    .action(
      guard((o: { preset: string; out?: string; dir: string }) => {
        const p = Object.hasOwn(PRESETS, o.preset) ? PRESETS[o.preset] : undefined;
        if (!p)
          throw new Error(
            `--preset: expected one of ${Object.keys(PRESETS).join(', ')}, got ${JSON.stringify(o.preset)}`,
          );
        const cfg = p(o.dir);
        parseRlConfig(cfg, `preset ${o.preset}`);
        const text = o.out && /\.json$/i.test(o.out) ? `${JSON.stringify(cfg, null, 2)}\n` : toYaml(cfg);
        if (o.out) {
          writeFileSync(o.out, text);
          console.log(`wrote ${o.out}; run it with  glmv rl --config ${o.out}`);
        } else process.stdout.write(text);
      }),
    );
}
