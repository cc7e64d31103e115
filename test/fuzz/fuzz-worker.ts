/**
 * Fuzz worker: runs one input through one target off the test's thread, so the pool can kill a call that overruns
 * its deadline (a hang or super-linear backtracking) and the harness can print the input that did it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sample, VerifierType } from '../../src/data/sample.js';
import { loadSafetensors } from '../../src/engine/safetensors.js';
import { parseResponse } from '../../src/io/answer/response.js';
import { checkMath } from '../../src/reward/math/equivalence.js';
import { VERIFIERS } from '../../src/reward/verifiers/index.js';

export type FuzzTask =
  | { op: 'echo' }
  | { op: 'parse'; input: string }
  | { op: 'math'; input: string; gold: string }
  | { op: 'verify'; verifier: VerifierType; sample: Sample; input: string }
  | { op: 'safetensors'; bytes: Uint8Array };

/** What a call returned: `ok` (a result or a clean Error), or `bad` with why (a non-Error throw, a wrong result). */
export type FuzzReply = { ok: true; note?: string } | { ok: false; why: string };

const dir = mkdtempSync(join(tmpdir(), 'glmv-fuzz-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

export default async function run(t: FuzzTask): Promise<FuzzReply> {
  switch (t.op) {
    case 'echo':
      return { ok: true };
    case 'parse': {
      for (const style of ['glm41v', 'glm45v'] as const)
        for (const mode of ['strict', 'lenient'] as const) parseResponse(t.input, { style, mode });
      return { ok: true };
    }
    case 'math': {
      const r = checkMath(t.input, t.gold);
      if (r.equal !== true && r.equal !== false && r.equal !== null) return { ok: false, why: `equal is ${r.equal}` };
      return { ok: true };
    }
    case 'verify': {
      const v = VERIFIERS[t.verifier];
      const response = parseResponse(`<think>t</think><answer><|begin_of_box|>${t.input}<|end_of_box|></answer>`);
      try {
        const d = await v.verify({
          sample: t.sample,
          response,
          answer: t.input,
          params: v.params.parse({}),
          cas: null,
          judge: null,
          judgeMode: 'fallback',
        });
        if (!(d.score >= 0 && d.score <= 1)) return { ok: false, why: `score ${d.score} outside [0, 1]` };
      } catch (e) {
        if (!(e instanceof Error)) return { ok: false, why: `threw a non-Error: ${String(e)}` };
      }
      return { ok: true };
    }
    case 'safetensors': {
      const p = join(dir, `f${process.pid}-${Math.random().toString(36).slice(2)}.safetensors`);
      writeFileSync(p, t.bytes);
      try {
        loadSafetensors(p);
        return { ok: true, note: 'loaded' };
      } catch (e) {
        if (!(e instanceof Error)) return { ok: false, why: `threw a non-Error: ${String(e)}` };
        return { ok: true, note: e.message };
      } finally {
        rmSync(p, { force: true });
      }
    }
  }
}
