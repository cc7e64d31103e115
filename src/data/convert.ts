/**
 * Data users bring, read through to the end: a count of a source's samples per domain (validation), and the
 * conversion of any supported format into a glmv dataset folder with its media copied next to the manifests.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { Progress } from '../util/progress.js';
import type { SampleSource } from './formats/index.js';
import { fileStem } from './generate.js';
import type { Sample } from './sample.js';
import { type DatasetInfo, ShardWriter } from './store.js';

/** Reads a source to the end: its samples per domain (malformed rows land in `src.reports`). */
export async function countSamples(src: SampleSource): Promise<{ count: number; byDomain: Record<string, number> }> {
  const byDomain: Record<string, number> = {};
  let count = 0;
  for await (const s of src) {
    count++;
    byDomain[s.domain] = (byDomain[s.domain] ?? 0) + 1;
  }
  return { count, byDomain };
}

export interface ConvertOptions {
  /** The path the source was opened from (recorded in dataset.json). */
  from: string;
  /** Samples expected, for the progress bar (0: unknown). */
  total?: number;
}

/**
 * Writes every sample of `src` into a dataset folder at `out` (shards of 1000): images, video frames and video files
 * are copied under `img/` with the sample's id in their names, and the records point at the copies.
 */
export async function convertDataset(src: SampleSource, out: string, o: ConvertOptions): Promise<DatasetInfo> {
  const writer = new ShardWriter(out, 1000);
  const progress = new Progress({ label: 'data convert', total: o.total ?? 0 });
  let n = 0;
  for await (const s of src) {
    const stem = fileStem(s.id);
    const media: Array<{ path: string; png: Buffer }> = [];
    const copy = (p: string, tag: string) => {
      const rel = `img/${stem}-${tag}-${basename(p)}`;
      media.push({ path: rel, png: readFileSync(p) });
      return rel;
    };
    const rec: Sample = { ...s, images: s.images.map((p, i) => copy(p, String(i))) };
    if (s.video) {
      rec.video = { ...s.video };
      if (s.video.frames) rec.video.frames = s.video.frames.map((p, i) => copy(p, `f${i}`));
      if (s.video.path) rec.video.path = copy(s.video.path, 'video');
    }
    writer.writeRecord(rec, media, s.domain);
    n++;
    progress.update(n);
  }
  progress.stop();
  return writer.close({ convertedFrom: o.from, format: src.format });
}
