/**
 * The data feed of a training stage: the record sources and their mixture pools (after the SFT difficulty filter),
 * the deterministic stream over them (its cursor is part of the trainer state, so a resumed run reads the same
 * records), records encoded into examples, and `batch.rows` packed sequences per step with the next step's images
 * decoding in the background.
 */
import { hash32 } from '../data/generate.js';
import type { TrainerState } from './checkpoint.js';
import type { ModelStageConfig, SftConfig } from './config.js';
import { Encoder, type Example, fitExample } from './encode.js';
import type { FilterDecision } from './filter.js';
import { buildPools, MixtureStream, type Pool, type RecordRef } from './mixture.js';
import type { StageDescription } from './model.js';
import { type microBatches, Packer } from './packing.js';
import { openRecords, type RecordSource } from './records.js';

/** Deterministic per-sample, per-epoch draw: is this draw trained as `/nothink`? */
export function isNothink(seed: number, id: string, epoch: number, share: number): boolean {
  if (share <= 0) return false;
  if (share >= 1) return true;
  return hash32(`nothink|${seed}|${id}|${epoch}`) / 2 ** 32 < share;
}

export class StageData {
  readonly sources: RecordSource[] = [];
  pools: Pool[] = [];
  /** Samples trained as /nothink because they have no rationale (counted in metrics). */
  noRationale = 0;
  private stream!: MixtureStream;
  private pending: { ref: RecordRef; example: Example | null } | null = null;

  /** `totals` is the trainer's running totals (dropped and truncated records are counted there). */
  constructor(
    private readonly cfg: ModelStageConfig,
    readonly encoder: Encoder,
    private readonly totals: () => TrainerState['totals'],
    private readonly log: (l: string) => void,
  ) {}

  /** The encoder for a described (or built) model. */
  static encoderFor(c: ModelStageConfig, d: StageDescription): Encoder {
    return new Encoder({
      tokenizer: d.tokenizer,
      imageConfig: d.imageConfig,
      videoConfig: d.videoConfig,
      maxImageTokens: c.processor.maxImageTokens,
      maxVideoTokens: c.processor.maxVideoTokens,
      template: d.template,
      style: d.style,
      endToken: c.stage === 'sft' ? c.sft.endToken : '<|endoftext|>',
      imageCacheBytes: c.data.imageCacheMB * 2 ** 20,
    });
  }

  /** Sources and pools (after the SFT filter, which needs the model), and the cursor. */
  async open(
    state: TrainerState | null,
    dryRun: boolean,
    filter?: () => Promise<Map<string, FilterDecision>>,
  ): Promise<void> {
    const c = this.cfg;
    for (const s of c.data.sources) this.sources.push(await openRecords(s.path, { format: s.format, limit: s.limit }));
    let keep: ((src: RecordSource, i: number) => boolean) | undefined = c.data.video
      ? undefined
      : (src, i) => !src.hasVideo(i);
    if (c.stage === 'sft') {
      for (const s of this.sources)
        if (s.size > 0 && s.get(0).type !== 'sample')
          throw new Error(`data source ${s.name}: holds pre-training documents; the sft stage trains on samples`);
      if (c.sft.filter.enabled && !dryRun && filter) {
        const decisions = await filter();
        const media = keep;
        keep = (src, i) => {
          const d = decisions.get(`${this.sources.indexOf(src)}:${i}`);
          return (d === undefined || d === 'keep' || d === 'unscored') && (!media || media(src, i));
        };
      }
    }
    this.pools = buildPools(
      this.sources.map((source, k) => ({ source, weight: c.data.sources[k]!.weight, key: `s${k}` })),
      c.data.mixture,
      keep,
    );
    this.stream = new MixtureStream(this.pools, c.run.seed, state?.data);
    if (!dryRun)
      this.log(
        `data: ${this.pools.length} pools: ${this.pools.map((p) => `${p.group} ${p.members.length} (w ${p.weight.toFixed(2)})`).join(', ')}`,
      );
  }

  /** The stream's cursor, for the trainer state. */
  getState(): ReturnType<MixtureStream['getState']> {
    return this.stream.getState();
  }

  close(): void {
    for (const s of this.sources) s.close();
  }

  async encode(ref: RecordRef): Promise<Example | null> {
    const c = this.cfg;
    const rec = ref.source.get(ref.index);
    let ex: Example;
    if (c.stage === 'sft') {
      if (rec.type !== 'sample') throw new Error(`data source ${ref.source.name}: record ${ref.index} is not a sample`);
      const s = Encoder.prepareSft(rec.sample, (c as SftConfig).sft.mcq);
      let thinking = !isNothink(c.run.seed, s.id, ref.epoch, (c as SftConfig).sft.nothinkShare);
      if (thinking && !s.rationale?.trim()) {
        // No reasoning to train on: the item can only teach the direct answer.
        thinking = false;
        if (this.noRationale++ === 0)
          this.log(
            `data: sample ${s.id} has no rationale; samples without one are trained as /nothink (counted in metrics)`,
          );
      }
      ex = await this.withContext(s.id, ref, () => this.encoder.encodeSft(s, thinking));
    } else {
      const doc = rec.type === 'doc' ? rec.doc : this.encoder.sampleAsDoc(rec.sample);
      ex = await this.withContext(doc.id, ref, () => this.encoder.encodeDoc(doc));
    }
    const fit = fitExample(ex, c.pack.seqLen, c.pack.overlong, this.encoder.ids);
    if (!fit || fit.targets <= 0) return null;
    if (fit.truncated) this.totals().truncated++;
    return fit;
  }

  /** How micro-batch rows are laid out (padding, vision bucket, isolation). */
  rowOptions(padId: number): Parameters<typeof microBatches>[2] {
    const c = this.cfg;
    const I = this.encoder.ids;
    return {
      padId,
      padMultiple: c.pack.padMultiple,
      isolation: c.pack.isolation,
      visionBucket: {
        bucket: c.pack.visionBucket,
        imageId: I.image,
        beginImageId: I.beginImage,
        endImageId: I.endImage,
        beginVideoId: I.beginVideo,
        endVideoId: I.endVideo,
        mergeSize: this.encoder.opts.imageConfig.mergeSize,
      },
    };
  }

  /** Errors while encoding a record name the record and its source (a missing image, an unreadable video…). */
  private async withContext<T>(id: string, ref: RecordRef, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw new Error(`data source ${ref.source.name}, record ${id}: ${(e as Error).message}`);
    }
  }

  /** Starts decoding the images of roughly the next step's records (they decode during this step's compute). */
  prefetch(n: number): void {
    const paths: string[] = [];
    for (const ref of this.stream.peekAhead(Math.ceil(n * 1.25) + 1)) {
      const rec = ref.source.get(ref.index);
      const r = rec.type === 'doc' ? rec.doc : rec.sample;
      paths.push(...r.images, ...(r.video?.frames ?? []));
    }
    this.encoder.prefetch(paths);
  }

  /** Fills `batch.rows` sequences; the first example that fits nowhere waits for the next step. */
  async nextBatch(): Promise<Packer> {
    const c = this.cfg;
    const packer = new Packer(c.pack.seqLen, c.batch.rows);
    let guard = 0;
    for (;;) {
      let cur = this.pending;
      if (!cur) {
        const ref = this.stream.peek();
        cur = { ref, example: await this.encode(ref) };
        this.pending = cur;
      }
      if (!cur.example) {
        this.totals().dropped++;
        this.stream.advance();
        this.pending = null;
        if (++guard > 10_000)
          throw new Error(
            `data: 10000 records in a row were longer than pack.seqLen ${c.pack.seqLen} with overlong ${c.pack.overlong} (or had no loss tokens); raise pack.seqLen`,
          );
        continue;
      }
      if (!packer.add(cur.example)) return packer;
      this.stream.advance();
      this.pending = null;
    }
  }
}
