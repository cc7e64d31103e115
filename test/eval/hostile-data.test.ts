/**
 * Issue #20 items 9 and 10: `--data NAME=relative/path` is relative to the working directory; TSV and JSONL
 * errors carry the right row; binary garbage is escaped in error lines; one rule for a broken
 * generation_config.json; `glmv eval` fails when no row is usable.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { register } from '../../src/cli/eval.js';
import { openDataset } from '../../src/data/formats/index.js';
import { resolveDataPath } from '../../src/eval/benchmark.js';
import { BUILTIN_BENCHMARKS } from '../../src/eval/benchmarks/index.js';
import { ChatModel } from '../../src/io/chat.js';
import { generationDefaults } from '../../src/serve/service.js';
import { tinyModelDir } from '../helpers/tinyModelDir.js';
import { chatJson, type MockServer, startMockOpenAI } from './mock-openai.js';

const dir = mkdtempSync(join(tmpdir(), 'glmv-hostile-data-'));
let server: MockServer;
beforeAll(async () => {
  server = await startMockOpenAI(() => ({ json: chatJson({ content: 'A' }) }));
});
afterAll(async () => {
  await server?.close();
});

async function errorsOf(file: string) {
  const src = await openDataset(file, {
    format: 'auto',
    onError: 'skip',
    maxErrorsKept: 100,
    source: 'x',
    split: 'test',
  });
  const rows: number[] = [];
  for await (const s of src) rows.push((s.meta as { row: number }).row);
  return { rows, errors: src.reports.flatMap((r) => r.errors) };
}

describe('data errors (item 9)', () => {
  it('--data NAME=relative/path is found relative to the working directory', () => {
    mkdirSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(join(dir, 'sub', 'mine.tsv'), 'index\tquestion\tanswer\n1\tq\ta\n');
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const b = BUILTIN_BENCHMARKS.get('docvqa')!;
      expect(resolveDataPath(b, [join(dir, 'data', 'eval')], 'sub/mine.tsv')).toBe(join(dir, 'sub', 'mine.tsv'));
    } finally {
      process.chdir(cwd);
    }
  });

  it('TSV: bad records before and after good ones have their own row numbers, not all "row 1"', async () => {
    const f = join(dir, 'rows.tsv');
    writeFileSync(f, 'index\tquestion\tanswer\n1\tq1\n2\tq2\ta\textra\n3\tq3\ta3\n4\tq4\n5\tq5\ta5\n');
    const { rows, errors } = await errorsOf(f);
    expect(rows).toEqual([3, 5]);
    expect(errors.map((e) => e.row)).toEqual([1, 2, 4]);
  });

  it('JSONL: the row is the line, blank lines counted', async () => {
    const f = join(dir, 'rows.jsonl');
    writeFileSync(f, '{"question":"q","answer":"a"}\nnot json\n\n{"question":"q2"}\n{"question":"q3","answer":"c"}\n');
    const { rows, errors } = await errorsOf(f);
    expect(rows).toEqual([1, 5]);
    expect(errors.map((e) => e.row)).toEqual([2, 4]);
  });

  it('binary garbage is escaped in error lines (no raw control bytes or terminal escapes)', async () => {
    const f = join(dir, 'garbage.jsonl');
    writeFileSync(f, Buffer.concat([Buffer.from([0, 1, 0xff, 0xfe, 0x1b]), Buffer.from('[31mred\x07\n')]));
    const { errors } = await errorsOf(f);
    expect(errors).toHaveLength(1);
    const line = `${errors[0]!.file}: row ${errors[0]!.row}: ${errors[0]!.detail}`;
    expect(/[\p{Cc}\ufffd]/u.test(line)).toBe(false);
    expect(errors[0]!.detail).toMatch(/\\u\{0\}\\u\{1\}\\u\{fffd\}\\u\{fffd\}\\u\{1b\}\[31mred\\u\{7\}/);
  });
});

describe('one rule for generation_config.json, and eval fails with no usable rows (item 10)', () => {
  it('a non-JSON generation_config.json is refused by chat (ChatModel.load) and serve alike', async () => {
    const m = tinyModelDir();
    writeFileSync(join(m, 'generation_config.json'), 'temperature = 0.7\n');
    await expect(ChatModel.load(m)).rejects.toThrow(/generation_config\.json: not valid JSON/);
    expect(() => generationDefaults(m)).toThrow(/generation_config\.json: not valid JSON/);
    writeFileSync(join(m, 'generation_config.json'), '{"temperature": "hot"}');
    await expect(ChatModel.load(m)).rejects.toThrow(/"temperature" must be a number, found "hot"/);
  }, 120_000);

  it('glmv eval where every row is malformed exits non-zero', async () => {
    const f = join(dir, 'allbad.tsv');
    writeFileSync(f, 'index\tquestion\n1\tno answer\n2\tnone either\n');
    const program = new Command().exitOverride();
    register(program);
    let stderr = '';
    const o = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const e = vi.spyOn(process.stderr, 'write').mockImplementation((d) => {
      stderr += String(d);
      return true;
    });
    const prev = process.exitCode;
    process.exitCode = 0;
    try {
      await program.parseAsync(
        [
          ...['node', 'glmv', 'eval', '--endpoint', server.url, '--bench', 'docvqa'],
          ...['--data', `docvqa=${f}`, '--out', join(dir, 'out'), '--quiet'],
        ],
        { from: 'node' },
      );
    } finally {
      o.mockRestore();
      e.mockRestore();
    }
    const code = process.exitCode;
    process.exitCode = prev;
    expect(code).toBe(1);
    expect(stderr).toMatch(/docvqa: no usable items in .*allbad\.tsv \(2 rows, 2 malformed/);
  });
});
