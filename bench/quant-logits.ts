/**
 * Logit error of int8 / int4 weights against bf16 at GLM-4.1V-9B's widths (npm run bench:quant-logits): a model
 * with the real widths (text 4096 / 32 heads / 2 KV heads / head_dim 128 / MLP 13696, vision 1536 / 12 heads,
 * merger 13696) and the parity fixtures' depth and vocabulary, weights drawn as tools/parity/make_fixtures.py draws
 * them (std 1/√fan_in: O(1) activations), stored in bf16. Its Linear layers are quantised in memory (int8 per
 * channel; int4 with --group-size, 128 by default) and each parity case (image, video, image + video) is run
 * through all three; the report gives the max and mean relative logit error against bf16 and how often the top-1
 * token agrees. That is the prefill path (the whole prompt at once). The decode path (one row per step, where
 * quantLinear quantises activations to int8 by default) is measured too: after each case's prompt, --decode-steps
 * tokens (bf16's greedy continuation, the same tokens for every model) are fed one at a time with the KV cache, with
 * int8 activations (the default) and with float activations (GLMV_QUANT_ACTIVATIONS=float), against bf16's logits at
 * the same steps.
 *
 *   npm run bench:quant-logits
 *   npm run bench:quant-logits -- --group-size 64 --layers 4
 */
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { fromArray, Linear, type Module, noGrad, QuantLinear, setQuantActivations } from '../src/engine/index.js';
import { configToJson, loadConfig, parseConfig } from '../src/model/config.js';
import { Glm4vForConditionalGeneration } from '../src/model/glm4v.js';
import { setParameter } from '../src/model/modules.js';
import { MetricsWriter, Progress } from '../src/util/progress.js';
import { Rng } from '../src/util/rng.js';
import { FIXTURES, loadFixture } from '../test/model/helpers.js';
import { cpuIsa } from './cpu.js';

const here = dirname(fileURLToPath(import.meta.url));

const program = new Command()
  .name('bench:quant-logits')
  .description('int8 / int4 logit error against bf16 at GLM-4.1V-9B widths on the parity fixtures’ inputs')
  .option('--group-size <n>', 'int4 group size', '128')
  .option('--layers <n>', 'decoder layers (the fixtures have 2)', '2')
  .option('--seed <n>', 'weight seed', '1')
  .option('--decode-steps <n>', 'decode steps after each prompt (0: prefill only)', '8')
  .option('--metrics <file>', 'JSONL metrics file', join(here, '..', 'runs', 'bench', 'quant-logits.jsonl'))
  .addHelpText(
    'after',
    `
Examples:
  npm run bench:quant-logits
  npm run bench:quant-logits -- --group-size 64`,
  );

function nine(layers: number) {
  const tiny = configToJson(loadConfig(join(FIXTURES, 'glm4v'))) as Record<string, Record<string, unknown>>;
  const text = tiny.text_config!;
  Object.assign(text, {
    hidden_size: 4096,
    intermediate_size: 13696,
    num_attention_heads: 32,
    num_key_value_heads: 2,
    head_dim: 128,
    num_hidden_layers: layers,
  });
  (text.rope_scaling as Record<string, unknown>).mrope_section = [8, 12, 12];
  Object.assign(tiny.vision_config!, {
    hidden_size: 1536,
    num_heads: 12,
    image_size: 336,
    out_hidden_size: 4096,
    intermediate_size: 13696,
  });
  return parseConfig(tiny, '9B-width config');
}

/** make_fixtures.py's draw: biases 0.1·N, norms 1 + 0.1·N, embeddings N(0,1), matrices N(0, 1/fan_in). */
function redraw(model: Module, seed: number, bar: Progress): void {
  const rng = new Rng(seed);
  const params = model.namedParameters();
  params.forEach(([name, p], i) => {
    const v = new Float32Array(p.size);
    const fanIn = p.ndim > 1 ? p.size / (p.shape[0] as number) : 1;
    const [mean, std] = name.endsWith('bias')
      ? [0, 0.1]
      : /norm/.test(name) && p.ndim === 1
        ? [1, 0.1]
        : name.includes('embed_tokens')
          ? [0, 1]
          : name.includes('position_embedding')
            ? [0, 0.5]
            : [0, (name === 'lm_head.weight' ? 2 : 1) / Math.sqrt(fanIn)];
    for (let j = 0; j < v.length; j++) v[j] = rng.normal(mean, std);
    setParameter(model, name, fromArray(v, p.shape).to('bfloat16') as never);
    bar.update(i + 1);
  });
}

function quantised(model: Glm4vForConditionalGeneration, bits: 4 | 8, group: number | null): Map<string, Module> {
  const out = new Map<string, Module>();
  for (const [name, m] of model.namedModules())
    if (m instanceof Linear && name !== 'lm_head') out.set(name, QuantLinear.fromLinear(m, bits, group));
  return out;
}

function swap(model: Module, mods: Map<string, Module>): Map<string, Module> {
  const old = new Map<string, Module>();
  for (const [name, m] of mods) {
    const parts = name.split('.');
    let cur = model as unknown as Record<string, unknown>;
    for (const p of parts.slice(0, -1)) cur = cur[p] as Record<string, unknown>;
    const key = parts[parts.length - 1]!;
    old.set(name, cur[key] as Module);
    cur[key] = m;
  }
  return old;
}

function main(): void {
  const o = program
    .parse()
    .opts<{ groupSize: string; layers: string; seed: string; decodeSteps: string; metrics: string }>();
  const steps = Number(o.decodeSteps);
  if (!Number.isInteger(steps) || steps < 0)
    throw new Error(`--decode-steps must be a non-negative integer, got ${o.decodeSteps}`);
  const group = Number(o.groupSize);
  const layers = Number(o.layers);
  if (!Number.isInteger(group) || group <= 0 || 4096 % group || 1536 % group || 13696 % group)
    throw new Error(`--group-size must divide 1536, 4096 and 13696 (e.g. 32, 64, 128), got ${o.groupSize}`);
  if (!Number.isInteger(layers) || layers < 1) throw new Error(`--layers must be a positive integer, got ${o.layers}`);
  console.log(`glmv quantised logit error — ${cpus()[0]?.model ?? 'cpu'}, ${cpus().length} cores, ISA: ${cpuIsa()}`);
  const cfg = nine(layers);
  const model = new Glm4vForConditionalGeneration(cfg, { init: 'empty', dtype: 'bfloat16' });
  const bar = new Progress({ label: 'weights', total: model.namedParameters().length });
  redraw(model, Number(o.seed), bar);
  bar.stop();
  model.eval();
  const cases = loadFixture(join(FIXTURES, 'glm4v'));
  const logits = (m: Glm4vForConditionalGeneration) =>
    cases.map((c) => noGrad(() => m.forward(c.inputs)).logits.toFloat32());
  /** The prompt through the prefill path, then `feed[i]` one token per step; logits of the decode steps [steps, V]. */
  const decodeLogits = (m: Glm4vForConditionalGeneration, feeds: number[][]) =>
    cases.map((c, i) =>
      noGrad(() => {
        const cache = m.newCache(8);
        try {
          m.forward({ ...c.inputs, cache, logitsToKeep: 1 });
          const feed = feeds[i]!;
          const out = new Float32Array(feed.length * cfg.text.vocabSize);
          for (let s = 0; s < feed.length; s++)
            out.set(m.forward({ inputIds: [[feed[s]!]], cache }).logits.toFloat32(), s * cfg.text.vocabSize);
          return out;
        } finally {
          cache.dispose();
        }
      }),
    );
  /** bf16's greedy continuation of each prompt: the tokens every model is fed. */
  const greedyFeeds = (): number[][] =>
    cases.map((c) =>
      noGrad(() => {
        const cache = model.newCache(8);
        const V = cfg.text.vocabSize;
        const argmax = (l: Float32Array) => l.reduce((bi, v, j) => (v > l[bi]! ? j : bi), 0);
        try {
          const feed: number[] = [];
          let l = model.forward({ ...c.inputs, cache, logitsToKeep: 1 }).logits.toFloat32();
          for (let s = 0; s < steps; s++) {
            feed.push(argmax(l.subarray(l.length - V)));
            l = model.forward({ inputIds: [[feed[s]!]], cache }).logits.toFloat32();
          }
          return feed;
        } finally {
          cache.dispose();
        }
      }),
    );
  const base = logits(model);
  const feeds = steps > 0 ? greedyFeeds() : [];
  const baseDecode = steps > 0 ? decodeLogits(model, feeds) : [];
  const metrics = new MetricsWriter(o.metrics);
  const rows: string[] = [];
  const runs: Array<[4 | 8, number | null, 'prefill' | 'decode, int8 x' | 'decode, float x']> = [];
  for (const [bits, g] of [
    [8, null],
    [4, group],
  ] as const) {
    runs.push([bits, g, 'prefill']);
    if (steps > 0) runs.push([bits, g, 'decode, int8 x'], [bits, g, 'decode, float x']);
  }
  for (const [bits, g, path] of runs) {
    const old = swap(model, quantised(model, bits, g));
    const mode = setQuantActivations(path === 'decode, float x' ? 'float' : 'int8');
    const q = path === 'prefill' ? logits(model) : decodeLogits(model, feeds);
    setQuantActivations(mode);
    swap(model, old);
    cases.forEach((c, i) => {
      const a = q[i]!;
      const b = path === 'prefill' ? base[i]! : baseDecode[i]!;
      const V = cfg.text.vocabSize;
      let maxAbs = 0;
      let maxRef = 0;
      let sumAbs = 0;
      let sumRef = 0;
      let agree = 0;
      for (let r = 0; r < b.length / V; r++) {
        let ia = 0;
        let ib = 0;
        for (let v = 0; v < V; v++) {
          const j = r * V + v;
          maxAbs = Math.max(maxAbs, Math.abs(a[j]! - b[j]!));
          maxRef = Math.max(maxRef, Math.abs(b[j]!));
          sumAbs += Math.abs(a[j]! - b[j]!);
          sumRef += Math.abs(b[j]!);
          if (a[j]! > a[r * V + ia]!) ia = v;
          if (b[j]! > b[r * V + ib]!) ib = v;
        }
        if (ia === ib) agree++;
      }
      const rowsN = b.length / V;
      const res = {
        case: c.name,
        path,
        bits,
        group: g,
        max_rel: maxAbs / maxRef,
        mean_rel: sumAbs / sumRef,
        top1_agree: agree / rowsN,
        positions: rowsN,
      };
      metrics.write(res);
      rows.push(
        `int${bits} ${g === null ? 'per channel' : `group ${g}`}  ${path.padEnd(15)} ${c.name.padEnd(12)} max rel ${res.max_rel.toFixed(4)}  mean rel ${res.mean_rel.toFixed(4)}  top-1 agree ${agree}/${rowsN}`,
      );
    });
  }
  console.log(rows.join('\n'));
  console.log(
    'max rel = max |Δlogit| / max |logit_bf16|; mean rel = Σ|Δlogit| / Σ|logit_bf16| (over every position; decode: over the fed steps)',
  );
}

main();
