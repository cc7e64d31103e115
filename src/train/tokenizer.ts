/**
 * `glmv train tokenizer`: a byte-level BPE tokenizer with the GLM special tokens, learned from the text the model will
 * see — pre-training documents, sample questions, options, answers and rationales — plus plain-text corpora, saved
 * with the chat template as RUN/tokenizer (tokenizer.json, tokenizer_config.json, chat_template.jinja).
 */
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { readCorpusFiles, SINGLE_DIGIT_PATTERN, trainBpeTokenizer } from '../io/bpe-trainer.js';
import { CHAT_TEMPLATES } from '../io/template.js';
import { MetricsWriter } from '../util/progress.js';
import type { TokenizerConfig } from './config.js';
import { openRecords, type TrainRecord } from './records.js';

export interface TokenizerStageResult {
  stage: 'tokenizer';
  runDir: string;
  /** The tokenizer folder (model.tokenizer of the next stage). */
  checkpoint: string;
  vocabSize: number;
  merges: number;
  documents: number;
  seconds: number;
}

function recordTexts(rec: TrainRecord): string[] {
  if (rec.type === 'doc') return rec.doc.content.flatMap((p) => (p.type === 'text' ? [p.text] : []));
  const s = rec.sample;
  return [s.question, ...(s.options ?? []), s.answer, ...(s.rationale ? [s.rationale] : [])];
}

export async function trainTokenizerStage(
  c: TokenizerConfig,
  opts: { quiet?: boolean; log?: (l: string) => void } = {},
): Promise<TokenizerStageResult> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const t0 = performance.now();
  const texts: string[] = [];
  for (const s of c.data.sources) {
    const src = await openRecords(s.path, { format: s.format, limit: s.limit });
    try {
      for (let i = 0; i < src.size; i++) texts.push(...recordTexts(src.get(i)).map((t) => `${t}\n`));
    } finally {
      src.close();
    }
  }
  const documents = texts.length;
  const corpus = c.data.corpora.length ? readCorpusFiles(c.data.corpora) : null;
  function* all(): Generator<string> {
    yield* texts;
    if (corpus) yield* corpus;
  }
  mkdirSync(c.run.dir, { recursive: true });
  const metrics = new MetricsWriter(join(c.run.dir, 'metrics.jsonl'));
  const trained = trainBpeTokenizer(all(), {
    vocabSize: c.tokenizer.vocabSize,
    minFrequency: c.tokenizer.minFrequency,
    chatTemplate: CHAT_TEMPLATES[c.tokenizer.template],
    ...(c.tokenizer.digits === 'single' ? { pattern: SINGLE_DIGIT_PATTERN } : {}),
    progress: !opts.quiet,
    metrics,
  });
  const out = join(c.run.dir, 'tokenizer');
  const tmp = join(c.run.dir, `.tokenizer.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  await trained.tokenizer.save(tmp);
  rmSync(out, { recursive: true, force: true });
  renameSync(tmp, out);
  const result: TokenizerStageResult = {
    stage: 'tokenizer',
    runDir: c.run.dir,
    checkpoint: out,
    vocabSize: trained.tokenizer.vocabSize,
    merges: trained.numMerges,
    documents,
    seconds: (performance.now() - t0) / 1000,
  };
  metrics.write({ event: 'done', ...result });
  if (trained.tokenizer.vocabSize < c.tokenizer.vocabSize)
    log(
      `tokenizer: the corpus ran out of pairs seen ${c.tokenizer.minFrequency}+ times at ${trained.tokenizer.vocabSize} tokens (asked for ${c.tokenizer.vocabSize})`,
    );
  log(
    `tokenizer: ${trained.tokenizer.vocabSize} tokens (${trained.numMerges} merges) from ${documents} texts; saved ${out}`,
  );
  return result;
}
