/**
 * `glmv demo`: trains the engine's reference transformer on the copy task for a fixed time budget and prints the
 * falling loss and the step time — a quick, real check that the engine trains on this machine.
 */
import type { Command } from 'commander';
import { copyBatch, TinyGpt } from '../demo/tinyGpt.js';
import { fromArray, getBackend, manualSeed, optim, scope } from '../engine/index.js';
import { MetricsWriter, Progress } from '../util/progress.js';
import { Rng } from '../util/rng.js';

interface DemoOptions {
  seconds: string;
  seed: string;
  out: string;
  layers: string;
  dim: string;
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('train a small transformer on a copy task for a fixed time and show the loss falling')
    .option('--seconds <s>', 'training time budget', '60')
    .option('--seed <n>', 'random seed', '0')
    .option('--layers <n>', 'transformer layers', '2')
    .option('--dim <n>', 'model width', '128')
    .option('--out <file>', 'JSONL metrics file', 'runs/demo/metrics.jsonl')
    .addHelpText(
      'after',
      `
Examples:
  glmv demo                      # one minute on the default 2-layer model
  glmv demo --seconds 10         # a quick look
  glmv demo --layers 4 --dim 256 --seconds 120`,
    )
    .action((o: DemoOptions) => runDemo(o));
}

function positiveInt(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, got '${v}'`);
  return n;
}

function runDemo(o: DemoOptions): void {
  const seconds = Number(o.seconds);
  if (!(seconds > 0)) throw new Error(`--seconds must be a positive number, got '${o.seconds}'`);
  const layers = positiveInt(o.layers, 'layers');
  const dim = positiveInt(o.dim, 'dim');
  if (dim % 4 !== 0) throw new Error(`--dim must be a multiple of 4 (4 attention heads), got ${dim}`);
  manualSeed(Number(o.seed));
  const vocab = 64;
  const half = 24;
  const batch = 32;
  const model = new TinyGpt({ vocab, dim, heads: 4, layers, ffn: 4 * dim, maxLen: 2 * half + 1 });
  const opt = new optim.AdamW(model.parameters(), { lr: 2e-3, weightDecay: 0 });
  const rng = new Rng(Number(o.seed) + 1);
  const metrics = new MetricsWriter(o.out);
  console.log(
    `backend ${getBackend().name}; model ${(model.numParameters() / 1e6).toFixed(2)}M parameters (${layers} layers, width ${dim})`,
  );
  console.log(
    `task: copy ${half} random tokens after a separator; chance-level loss is ln(${vocab - 1}) = ${Math.log(vocab - 1).toFixed(2)}`,
  );
  const bar = new Progress({ label: 'training', total: Math.round(seconds) });
  const t0 = performance.now();
  let step = 0;
  let ema = 0;
  let nextMark = 0;
  const marks: string[] = [];
  while ((performance.now() - t0) / 1000 < seconds) {
    const s0 = performance.now();
    const { ids, targets, len } = copyBatch(rng, batch, half, vocab);
    const loss = scope(() => {
      const l = model.loss(fromArray(ids, [batch, len]), fromArray(targets, [batch, len]));
      l.backward();
      optim.clipGradNorm(model.parameters(), 1);
      opt.step();
      opt.zeroGrad();
      return l.item();
    });
    const ms = performance.now() - s0;
    ema = step === 0 ? loss : 0.9 * ema + 0.1 * loss;
    metrics.write({ step, loss, step_ms: ms });
    const elapsed = (performance.now() - t0) / 1000;
    bar.update(
      Math.min(Math.round(elapsed), Math.round(seconds)),
      `step ${step} loss ${ema.toFixed(4)} ${ms.toFixed(1)} ms/step`,
    );
    if (elapsed >= nextMark) {
      nextMark += seconds / 10;
      marks.push(
        `  ${elapsed.toFixed(0).padStart(4)} s  step ${String(step).padStart(5)}  loss ${ema.toFixed(4)}  ${ms.toFixed(1)} ms/step`,
      );
    }
    step++;
  }
  bar.stop();
  console.log(marks.join('\n'));
  const total = (performance.now() - t0) / 1000;
  console.log(
    `done: ${step} steps in ${total.toFixed(1)} s (${((total * 1000) / step).toFixed(1)} ms/step), final loss ${ema.toFixed(4)}; metrics in ${o.out}`,
  );
}
