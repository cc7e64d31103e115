/**
 * A static HTML contact sheet of samples (images or video frames, question, options, answer, rationale, verifier),
 * with grounding / GUI answer boxes drawn over the image, so a person can check generated data by eye.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { parseBoxes } from '../io/answer/geometry.js';
import { openDataset } from './formats/index.js';
import type { Sample } from './sample.js';

export interface ShowOptions {
  out: string;
  limit?: number;
  domains?: string[];
  /** Samples per domain at most (so one domain does not fill the page). */
  perDomain?: number;
}

const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function boxesFor(s: Sample): { boxes: number[][]; scale: number } {
  if (s.verifier.type !== 'grounding' && s.verifier.type !== 'gui') return { boxes: [], scale: 1000 };
  const scale = s.verifier.type === 'gui' ? 999 : 1000;
  return {
    boxes: parseBoxes(s.answer, { system: s.verifier.type === 'gui' ? 'gui' : 'grounding' }).map((b) => [...b.box]),
    scale,
  };
}

function card(s: Sample, base: string): string {
  const rel = (p: string) => esc(relative(base, resolve(p)).split('\\').join('/'));
  const { boxes, scale } = boxesFor(s);
  const imgs = s.images
    .map((p, i) => {
      const overlay =
        i === 0
          ? boxes
              .map(
                (b) =>
                  `<div class="box" style="left:${(b[0]! / scale) * 100}%;top:${(b[1]! / scale) * 100}%;width:${((b[2]! - b[0]!) / scale) * 100}%;height:${((b[3]! - b[1]!) / scale) * 100}%"></div>`,
              )
              .join('')
          : '';
      return `<div class="img"><img src="${rel(p)}" loading="lazy">${overlay}</div>`;
    })
    .join('');
  const frames = s.video?.frames
    ? `<div class="frames">${s.video.frames.map((p, i) => `<figure><img src="${rel(p)}" loading="lazy"><figcaption>${(i / (s.video?.fps ?? 1)).toFixed(1)}s</figcaption></figure>`).join('')}</div>`
    : '';
  const options = s.options?.length ? `<ol type="A">${s.options.map((o) => `<li>${esc(o)}</li>`).join('')}</ol>` : '';
  const task = typeof s.meta?.task === 'string' ? ` · ${esc(s.meta.task)}` : '';
  return `<div class="card">
<div class="head">${esc(s.domain)}${task} · level ${s.difficulty ?? '-'} · ${esc(s.verifier.type)}${s.verifier.params ? ` ${esc(JSON.stringify(s.verifier.params))}` : ''}</div>
<div class="media">${imgs}${frames}</div>
<div class="q">${esc(s.question).replace(/\n/g, '<br>')}</div>${options}
<div class="a">Answer: <code>${esc(s.answer).replace(/\n/g, '<br>')}</code></div>
${s.rationale ? `<details open><summary>rationale</summary><div class="r">${esc(s.rationale)}</div></details>` : ''}
<div class="id">${esc(s.id)}</div></div>`;
}

/** Writes the contact sheet; returns the number of samples shown. */
export async function contactSheet(path: string, o: ShowOptions): Promise<number> {
  const limit = o.limit ?? 200;
  const per = o.perDomain ?? Number.POSITIVE_INFINITY;
  const base = dirname(resolve(o.out));
  const seen: Record<string, number> = {};
  const cards: string[] = [];
  const source = await openDataset(path);
  for await (const s of source) {
    if (o.domains?.length && !o.domains.includes(s.domain)) continue;
    if ((seen[s.domain] ?? 0) >= per) continue;
    seen[s.domain] = (seen[s.domain] ?? 0) + 1;
    cards.push(card(s, base));
    if (cards.length >= limit) break;
  }
  const counts = Object.entries(seen)
    .map(([k, v]) => `${esc(k)}: ${v}`)
    .join(' · ');
  const html = `<!doctype html>
<html><head><meta charset="utf-8"><title>glmv data: ${esc(path)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:16px;background:#f4f4f6;color:#111}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:12px}
.card{background:#fff;border-radius:8px;padding:10px;box-shadow:0 1px 3px #0002;overflow:hidden}
.head{font-size:12px;color:#555;margin-bottom:6px}.id{font-size:11px;color:#999;margin-top:6px;word-break:break-all}
.media{display:flex;flex-wrap:wrap;gap:4px}.img{position:relative;display:inline-block;max-width:100%}
.img img{display:block;max-width:300px;max-height:300px;image-rendering:pixelated;border:1px solid #ddd}
.box{position:absolute;border:2px solid #e91e63;box-sizing:border-box}
.frames{display:flex;flex-wrap:wrap;gap:2px}.frames img{width:64px;image-rendering:pixelated;border:1px solid #ddd}
figure{margin:0;text-align:center;font-size:10px}
.q{margin-top:8px;font-weight:600}.a{margin-top:4px}.r{color:#333;font-size:13px;white-space:pre-wrap}
code{background:#eef;padding:1px 4px;border-radius:3px;white-space:pre-wrap;word-break:break-all}
</style></head><body>
<h2>${esc(path)}</h2><p>${cards.length} samples shown (${counts})</p>
<div class="grid">${cards.join('\n')}</div></body></html>
`;
  mkdirSync(base, { recursive: true });
  writeFileSync(o.out, html);
  return cards.length;
}
