#!/usr/bin/env node
/**
 * The `glmv` command. Each subcommand lives in its own file under src/cli/ and exports `register(program)`.
 */
import { Command } from 'commander';

const program = new Command();
program
  .name('glmv')
  .description('GLM-4.1V-Thinking / GLM-4.5V in TypeScript: engine, model, data, training, RL, rewards, eval, serving')
  .version('0.1.0')
  .showHelpAfterError();

// Subcommands register themselves here, one import each.
const modules: Array<Promise<{ register: (p: Command) => void }>> = [
  import('./demo.js'),
  import('./chat.js'),
  import('./pipeline.js'),
  import('./lab.js'),
  import('./data.js'),
  import('./reward.js'),
  import('./rl.js'),
  import('./curriculum.js'),
  import('./eval.js'),
  import('./serve.js'),
  import('./train.js'),
  import('./quantize.js'),
];
for (const m of await Promise.all(modules)) m.register(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  // Bad input gets one clear line; GLMV_DEBUG=1 shows the stack.
  if (process.env.GLMV_DEBUG) throw e;
  process.stderr.write(`glmv: ${(e as Error).message}\n`);
  process.exitCode = 1;
}
