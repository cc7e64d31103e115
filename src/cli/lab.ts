/**
 * `glmv lab`: the RL lab — a small model trained on the lab tasks, then the paper's RL lessons as seeded experiments
 * (RL gain over seeds, RLCS vs uniform vs offline filter, expansion, cross-domain transfer, reward hacking, force
 * answering), with results JSON and an HTML report. Ctrl-C checkpoints; the same command continues.
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { EXPERIMENTS, resolveLabConfig } from '../lab/config.js';
import { labPaths } from '../lab/model.js';
import { publishLab, readLabState, runLab } from '../lab/run.js';

interface LabCliOptions {
  out: string;
  quick?: boolean;
  tiny?: boolean;
  config?: string;
  from?: string;
  set: string[];
  only?: string;
  quiet?: boolean;
  printConfig?: boolean;
  reportOnly?: boolean;
}

const collect = (v: string, prev: string[]) => [...prev, v];

export function register(program: Command): void {
  program
    .command('lab')
    .description('the RL lab: train a small model on the lab tasks, then run the paper RL experiments with a report')
    .requiredOption('--out <dir>', 'lab folder (the same command continues an interrupted lab)')
    .option(
      '--quick',
      'the quick preset (small sets, SFT 1,400 steps, a 200-step cold start at 50 % shortcut targets, 5 RL steps per run, 1 seed; under 20 minutes on 2 idle cores)',
    )
    .option('--tiny', 'the CI preset (checks the machinery, learns nothing)')
    .option('--config <file>', 'lab config (YAML/JSON) over the preset')
    .option(
      '--from <dir>',
      "start a new --out from this lab folder's finished stages whose settings match (other RL settings, same start model)",
    )
    .option('--set <path=value>', 'override a config field, e.g. --set rl.run.steps=20 (repeatable)', collect, [])
    .option('--only <list>', `run only these experiments (${EXPERIMENTS.join(', ')})`)
    .option('--print-config', 'print the resolved config and exit')
    .option('--report-only', 'rebuild RUN/results.json and RUN/report.html from what the lab folder holds')
    .option('--quiet', 'no progress bars')
    .addHelpText(
      'after',
      `
Stages: data → tokenizer → sft (from scratch, probes included) → coldstart → start (probe accuracy, pass@1 / pass@k) →
offline (pass@k on the RL prompts) → hedge (experiment 5's start: the start model taught to box a range sometimes) →
the experiments' RL runs (RUN/runs/<name>, each resumable) → results.json, report.html. Experiments:
${EXPERIMENTS.join(', ')}.

Examples:
  glmv lab --quick --out runs/lab-quick            # the quick preset (its measured time: README, "The RL lab")
  glmv lab --out runs/lab                          # the full lab (about 71 minutes on 2 idle cores)
  glmv lab --from runs/lab --out runs/lab-lr1e-4 --set rl.grpo.lr=1e-4   # the full lab's start model, other RL
  glmv lab --out runs/lab --only gain,hacking      # some experiments now, the rest later (same folder)
  glmv lab --out runs/lab --set seeds=5            # more seeds for experiment 1
  glmv lab --quick --out runs/lab-quick --set rl.grpo.lr=2e-4 --print-config
  glmv lab --quick --from runs/lab-quick --out runs/lab-lr5e-5 --set rl.grpo.lr=5e-5   # same start model, new RL
  glmv lab --out runs/lab --report-only`,
    )
    .action(async (o: LabCliOptions) => {
      if (o.reportOnly) {
        const state = readLabState(o.out);
        if (!state) throw new Error(`lab: ${o.out} has no lab.json; is it a lab folder?`);
        if (!state.stages.start)
          throw new Error(`lab: ${o.out} has no start model measurements yet; nothing to report`);
        publishLab(o.out, state);
        const p = labPaths(o.out);
        console.log(`${p.results}\n${p.report}`);
        return;
      }
      if (o.quick && o.tiny) throw new Error('--quick and --tiny are different presets; pick one');
      const sets = [...o.set];
      if (o.only) {
        const list = o.only.split(',').map((s) => s.trim());
        for (const e of list)
          if (!(EXPERIMENTS as readonly string[]).includes(e))
            throw new Error(`--only: unknown experiment '${e}'; expected some of ${EXPERIMENTS.join(', ')}`);
        sets.push(`experiments=${JSON.stringify(list)}`);
      }
      const config = resolveLabConfig({ preset: o.tiny ? 'tiny' : o.quick ? 'quick' : 'full', file: o.config, sets });
      if (o.printConfig) {
        console.log(JSON.stringify(config, null, 2));
        return;
      }
      const ac = new AbortController();
      const onSig = () => {
        if (ac.signal.aborted) process.exit(130);
        process.stderr.write('\nlab: interrupt — checkpointing the current run (Ctrl-C again to quit now)\n');
        ac.abort();
      };
      process.on('SIGINT', onSig);
      process.on('SIGTERM', onSig);
      try {
        const t0 = Date.now();
        const r = await runLab(config, { out: o.out, from: o.from, signal: ac.signal, quiet: o.quiet });
        if (r.interrupted) {
          console.log(`lab: interrupted; continue with the same command (lab folder ${o.out})`);
          process.exitCode = 130;
          return;
        }
        console.log(`lab: done in ${((Date.now() - t0) / 60000).toFixed(1)} min; report ${r.report}`);
        if (!existsSync(r.report ?? '')) process.exitCode = 1;
      } finally {
        process.off('SIGINT', onSig);
        process.off('SIGTERM', onSig);
      }
    });
}
