/**
 * The command line of a bench script: commander with the bench's description and examples. `--help` prints them
 * and exits 0 before anything is measured; an unknown option (a typo like `--quik`), a missing value or a value
 * its parser rejects prints one error line and exits 2, so bad input never starts a long run with the defaults.
 */
import { Command, InvalidArgumentError } from 'commander';

export interface BenchCli {
  /** The npm script's name after `bench:` (`engine` for `npm run bench:engine`). */
  name: string;
  description: string;
  /** Full command lines, `npm run bench:NAME -- ...`. */
  examples: string[];
  /** Environment variables the bench reads, with what they do. */
  environment?: Array<[string, string]>;
}

export function benchProgram({ name, description, examples, environment = [] }: BenchCli): Command {
  const env = environment.length
    ? `\n\nEnvironment:\n${environment.map(([k, v]) => `  ${k.padEnd(16)}${v}`).join('\n')}`
    : '';
  return new Command()
    .name(`bench:${name}`)
    .description(description)
    .addHelpText('after', `\nExamples:\n${examples.map((e) => `  ${e}`).join('\n')}${env}`)
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
}

/** Option value parsers: a bad value is reported as commander's one-line error (exit 2), naming the option. */
export function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got ${v}`);
  return n;
}

export function positiveNumber(v: string): number {
  const n = Number(v);
  if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a positive number, got ${v}`);
  return n;
}

export function integer(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n)) throw new InvalidArgumentError(`expected an integer, got ${v}`);
  return n;
}
