/**
 * `glmv curriculum serve`: the RLCS curriculum (tiers from offline pass@k and online results, expansion EMA) over
 * HTTP for trainers that run elsewhere — verl's curriculum sampler hook (integrations/verl/glmv_curriculum.py).
 */
import type { Command } from 'commander';
import { z } from 'zod';
import { formatZodError } from '../reward/judge.js';
import { RlConfigSchema } from '../rl/config.js';
import { buildCurriculumServer, CurriculumService } from '../rl/curriculum-service.js';
import { TIERS, type Tier } from '../rl/rlcs.js';
import { readConfigFile } from '../util/config.js';
import { MetricsWriter } from '../util/progress.js';

/** The file: `curriculum` and `expansion` exactly as in a `glmv rl` config, plus the service's own keys. */
const ServiceConfigSchema = z
  .object({
    curriculum: RlConfigSchema.shape.curriculum,
    expansion: RlConfigSchema.shape.expansion,
    seed: z.number().int().min(0).default(0),
    passThreshold: z.number().default(0.5),
  })
  .strict();

function fail(e: unknown): never {
  process.stderr.write(`error: ${(e as Error).message}\n`);
  process.exit(1);
}

export function register(program: Command): void {
  const cmd = program.command('curriculum').description('RLCS curriculum service for external trainers (verl)');
  cmd
    .command('serve')
    .description('serve the RLCS curriculum over HTTP (verl data.sampler → integrations/verl/glmv_curriculum.py)')
    .option('--config <file>', 'YAML/JSON: { curriculum: {...}, expansion: {...}, seed, passThreshold } as in glmv rl')
    .option('--offline <file>', 'offline pass@k results (the JSON `glmv rl passk` writes), applied by prompt id')
    .option('--state <file>', 'resumable state: read at registration when present, written after every update')
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--port <port>', 'port', '8200')
    .option('--metrics <file>', 'JSONL metrics: registration and every update (tiers, expansion EMA)')
    .addHelpText(
      'after',
      `
Endpoints:
  POST /curriculum/register  {"prompts": [{"id", "domain", "difficulty"}]}
  POST /curriculum/draw      {"n", "step"}                → {"prompts": [{"id", "tier"}]}
  POST /curriculum/update    {"step", "groups": [{"id", "rewards", "correct"}], "trainPrompts"}
                             → {"expansion": {"ema", "ratio"}, "genPrompts", "populations", ...}
  GET  /curriculum/state, /health

Examples:
  glmv curriculum serve --port 8200 --state runs/verl-curriculum.json
  glmv curriculum serve --config curriculum.yaml --offline runs/passk.json --metrics runs/curriculum.jsonl
  # verl: data.sampler.class_path=integrations/verl/glmv_curriculum.py data.sampler.class_name=GlmvCurriculumSampler
  #       data.dataloader_num_workers=0   (GLMV_CURRICULUM_URL=http://<host>:8200; see docs/reward-server.md)`,
    )
    .action(async (o) => {
      let service: CurriculumService;
      const port = Number(o.port);
      try {
        if (!Number.isInteger(port) || port <= 0 || port > 65535)
          throw new Error(`--port: expected an integer in 1..65535, got "${o.port}"`);
        const raw = o.config ? readConfigFile(o.config, 'curriculum config') : {};
        const p = ServiceConfigSchema.safeParse(raw ?? {});
        if (!p.success) throw new Error(`${o.config}: ${formatZodError(p.error)}`);
        const c = p.data;
        let offline: Array<{ id: string; correct: number; k: number }> | undefined;
        if (o.offline) {
          const data = readConfigFile(o.offline, 'offline pass@k') as { results?: unknown };
          if (!Array.isArray(data?.results))
            throw new Error(`--offline ${o.offline}: expected { "results": [{ "id", "correct", "k" }, ...] }`);
          offline = data.results as typeof offline;
        }
        const flat = Object.fromEntries(TIERS.map((t) => [t, 1])) as Record<Tier, number>;
        service = new CurriculumService({
          curriculum: {
            thresholds: c.curriculum.thresholds,
            schedule: c.curriculum.enabled ? c.curriculum.schedule : [{ step: 0, weights: flat }],
            onlineDecay: c.curriculum.onlineDecay,
            labelPrior: c.curriculum.labelPrior,
            offlineWeight: c.curriculum.offlineWeight,
            mix: c.curriculum.mix,
          },
          expansion: {
            decay: c.expansion.decay,
            maxRatio: c.expansion.maxRatio,
            initialRatio: c.expansion.initialRatio,
          },
          offline,
          seed: c.seed,
          passThreshold: c.passThreshold,
          statePath: o.state,
          metrics: o.metrics ? new MetricsWriter(o.metrics) : undefined,
        });
      } catch (e) {
        fail(e);
      }
      const app = buildCurriculumServer(service);
      try {
        await app.listen({ host: o.host, port });
      } catch (e) {
        fail(new Error(`cannot listen on ${o.host}:${port}: ${(e as Error).message}`));
      }
      process.stderr.write(`curriculum service on http://${o.host}:${port}\n`);
      const stop = async () => {
        await app.close();
        process.exit(0);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
