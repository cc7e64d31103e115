/**
 * A complete tiny model folder for end-to-end tests: a random GLM-4.1V-shaped model whose special-token ids match
 * the fixture tokenizer (test/fixtures/tokenizer), plus that tokenizer and its chat template.
 */
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Glm4vForConditionalGeneration } from '../../src/model/glm4v.js';
import { tinyConfig } from '../../src/model/presets.js';

export function tinyModelDir(opts: { seed?: number; layers?: number } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'glmv-tiny-'));
  const cfg = tinyConfig('glm4v', { layers: opts.layers ?? 2 });
  // Fixture tokenizer ids: <|endoftext|> 492 … <|begin_of_image|> 499, <|end_of_image|> 500, <|begin_of_video|> 501,
  // <|end_of_video|> 502, <|image|> 503, <|video|> 504.
  Object.assign(cfg, {
    imageStartTokenId: 499,
    imageEndTokenId: 500,
    videoStartTokenId: 501,
    videoEndTokenId: 502,
    imageTokenId: 503,
    videoTokenId: 504,
    eosTokenId: [492, 496],
  });
  Glm4vForConditionalGeneration.random(cfg, { seed: opts.seed ?? 3 }).save(dir);
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja'])
    cpSync(join('test/fixtures/tokenizer', f), join(dir, f));
  return dir;
}
