/**
 * `glmv pipeline`: trains a small thinking VLM from scratch through every stage of the paper's recipe and writes
 * an HTML report. Interrupt it any time (Ctrl-C checkpoints the running stage); the same command continues it.
 */
import type { Command } from 'commander';
import { resolvePipelineConfig } from '../pipeline/config.js';
import { writeReport } from '../pipeline/report.js';
import { runPipeline } from '../pipeline/run.js';
import { type PipelineStage, STAGES } from '../pipeline/state.js';

interface PipelineCliOptions {
  out: string;
  quick?: boolean;
  tiny?: boolean;
  config?: string;
  set: string[];
  ship?: string | boolean;
  until?: string;
  quiet?: boolean;
  printConfig?: boolean;
  reportOnly?: boolean;
}

const collect = (v: string, prev: string[]) => [...prev, v];

export function register(program: Command): void {
  program
    .command('pipeline')
    .description(
      'train a small thinking VLM from scratch: data → tokenizer → pre-training → long context → SFT → RL, with evaluation and a report',
    )
    .requiredOption('--out <dir>', 'run folder (the same command continues an interrupted run)')
    .option('--quick', 'the ~10-minute preset (smaller data, fewer steps)')
    .option('--tiny', 'the CI preset (a few minutes; checks the machinery, learns little)')
    .option('--config <file>', 'pipeline config (YAML/JSON) over the preset')
    .option('--set <path=value>', 'override a config field, e.g. --set sft.run.steps=200 (repeatable)', collect, [])
    .option(
      '--ship [dir]',
      'copy the final model (bf16) into the package as the embedded default (default dir models/glmv-small)',
    )
    .option('--until <stage>', `stop after a stage (${STAGES.join(', ')})`)
    .option('--print-config', 'print the resolved config and exit')
    .option('--report-only', 'only rebuild RUN/report.html from what the run folder holds')
    .option('--quiet', 'no progress bars')
    .addHelpText(
      'after',
      `
Stages: ${STAGES.join(' → ')}.
The run folder holds the data, each stage's run (metrics.jsonl, checkpoints, final/), the evaluations (eval/),
pipeline.json (finished stages) and report.html.

Examples:
  glmv pipeline --out runs/small                 # the default run, about an hour on 2 cores
  glmv pipeline --quick --out runs/quick         # about 10 minutes
  glmv pipeline --quick --out runs/quick --set rl.run.steps=20 --set eval.n=220
  glmv pipeline --out runs/small --ship          # …then make it the model \`glmv chat\` uses by default
  glmv pipeline --out runs/small --set rlSeeds=3 # RL again from the same SFT model with seeds 1 and 2: gain ± sd
  glmv pipeline --out runs/small --report-only   # rebuild the report
  glmv pipeline --out runs/frozen --set rl.grpo.visionLrScale=0   # the RL lab's settings: vision tower frozen in RL
  glmv pipeline --out runs/digits --set tokenizer.digits=single   # …and its tokenizer, one digit per token`,
    )
    .action(async (o: PipelineCliOptions) => {
      if (o.reportOnly) {
        console.log(writeReport(o.out));
        return;
      }
      if (o.quick && o.tiny) throw new Error('--quick and --tiny are different presets; pick one');
      if (o.until && !(STAGES as readonly string[]).includes(o.until))
        throw new Error(`--until: unknown stage '${o.until}'; stages are ${STAGES.join(', ')}`);
      const sets = [...o.set];
      if (o.ship) sets.push(`ship=${typeof o.ship === 'string' ? o.ship : 'models/glmv-small'}`);
      const config = resolvePipelineConfig({
        preset: o.tiny ? 'tiny' : o.quick ? 'quick' : 'default',
        file: o.config,
        sets,
      });
      if (o.printConfig) {
        console.log(JSON.stringify(config, null, 2));
        return;
      }
      const ac = new AbortController();
      const onSig = () => {
        if (ac.signal.aborted) process.exit(130);
        process.stderr.write(
          '\npipeline: interrupt — finishing the current step and checkpointing (Ctrl-C again to quit now)\n',
        );
        ac.abort();
      };
      process.on('SIGINT', onSig);
      process.on('SIGTERM', onSig);
      try {
        const t0 = Date.now();
        const r = await runPipeline(config, {
          out: o.out,
          signal: ac.signal,
          quiet: o.quiet,
          until: o.until as PipelineStage | undefined,
        });
        if (r.interrupted) {
          console.log(`pipeline: interrupted; continue with the same command (run folder ${o.out})`);
          process.exitCode = 130;
          return;
        }
        console.log(
          `pipeline: done in ${((Date.now() - t0) / 60000).toFixed(1)} min${r.report ? `; report ${r.report}` : ''}`,
        );
      } finally {
        process.off('SIGINT', onSig);
        process.off('SIGTERM', onSig);
      }
    });
}
