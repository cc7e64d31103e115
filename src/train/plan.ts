/** The dry run of a training stage: what a run would do, without training or writing anything. */
import { getMatmulPrecision, scope, setMatmulPrecision } from '../engine/index.js';
import type { ModelStageConfig } from './config.js';
import { describeStageModel, initStageModel, parameterSummary } from './model.js';
import { microBatches, rowInputs } from './packing.js';
import { StageData } from './stage-data.js';

export interface StagePlan {
  config: ModelStageConfig;
  modelType: string;
  parameters: { vision: number; text: number; lmHead: number; total: number };
  trainable: number;
  tokenizerSize: number;
  pools: Array<{ name: string; source: string; group: string; records: number; weight: number }>;
  /** Capacity: batch.rows × pack.seqLen. */
  tokensPerStep: number;
  accumulation: number;
  /** The first step's batch from the real data. */
  firstStep: { examples: number; realTokens: number; targets: number; packingEfficiency: number; dataMs: number };
  /** Forward + backward of one micro-batch, measured (null when not measured). */
  microBatchMs: number | null;
  /** Compute of one step: micro-batch time × accumulation (data loading and the AdamW update come on top). */
  estimatedStepMs: number | null;
  estimatedRunSeconds: number | null;
  filter: { candidates: number; k: number } | null;
}

/**
 * What a run would do, without training or writing anything (the `--dry-run` of the CLI): resolved setup, data pools, the first step's packing and, when `measure`, one timed micro-batch
 * (the model is only built then; models above 1B parameters are never built here).
 */
export async function planStage(
  config: ModelStageConfig,
  opts: { measure?: boolean; log?: (l: string) => void } = {},
): Promise<StagePlan> {
  const c = config;
  const measure = opts.measure ?? true;
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  let data: StageData | null = null;
  const prevPrecision = getMatmulPrecision();
  setMatmulPrecision(c.precision === 'bf16' ? 'bfloat16' : 'float32');
  try {
    const d = await describeStageModel(c);
    const counts = parameterSummary(d.config);
    const build = measure && counts.total <= 1e9;
    const fresh = { tokens: 0, targets: 0, examples: 0, dropped: 0, truncated: 0, seconds: 0 };
    data = new StageData(c, StageData.encoderFor(c, d), () => fresh, log);
    await data.open(null, true);
    const t = performance.now();
    const packer = await data.nextBatch();
    const dataMs = performance.now() - t;
    const padId = d.tokenizer.padTokenId ?? data.encoder.ids.eos;
    const rows = microBatches(packer.bins, c.batch.microRows, data.rowOptions(padId));
    let microMs: number | null = null;
    let trainable = c.model.freezeVision ? counts.total - counts.vision : counts.total;
    if (build) {
      const sm = await initStageModel(c);
      trainable = sm.model.numParameters(true);
      // Warm-up, then a timed forward + backward of the first micro-batch (no update).
      const times: number[] = [];
      for (let i = 0; i < 2; i++) {
        const t0 = performance.now();
        scope(() => {
          sm.model.forward({ ...rowInputs(rows[0]!), lossReduction: 'sum' }).loss!.backward();
          sm.model.zeroGrad();
        });
        times.push(performance.now() - t0);
      }
      microMs = times[times.length - 1]!;
    }
    const accum = c.batch.rows / c.batch.microRows;
    return {
      config: c,
      modelType: d.config.modelType,
      parameters: counts,
      trainable,
      tokenizerSize: d.tokenizer.vocabSize,
      pools: data.pools.map((p) => ({
        name: p.name,
        source: p.source.name,
        group: p.group,
        records: p.members.length,
        weight: p.weight,
      })),
      tokensPerStep: c.batch.rows * c.pack.seqLen,
      accumulation: accum,
      firstStep: {
        examples: packer.bins.reduce((a, b) => a + b.examples.length, 0),
        realTokens: rows.reduce((a, r) => a + r.realTokens, 0),
        targets: rows.reduce((a, r) => a + r.targets, 0),
        packingEfficiency: packer.efficiency(),
        dataMs,
      },
      microBatchMs: microMs,
      estimatedStepMs: microMs === null ? null : microMs * rows.length,
      estimatedRunSeconds: microMs === null ? null : ((microMs * rows.length) / 1000) * c.run.steps,
      filter:
        c.stage === 'sft' && c.sft.filter.enabled
          ? {
              candidates: Math.min(
                data.sources.reduce((a, s) => a + s.size, 0),
                c.sft.filter.maxCandidates ?? Number.POSITIVE_INFINITY,
              ),
              k: c.sft.filter.k,
            }
          : null,
    };
  } finally {
    setMatmulPrecision(prevPrecision);
    data?.close();
  }
}
