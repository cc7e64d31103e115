/**
 * The import graph of src: no cycle between files, and the layers' one-way rules that a cycle check cannot see (io
 * builds on nothing of data; only the ops and autograd see a Tensor without its methods).
 * Type-only imports count too: a cycle of types is still two files that cannot be read one after the other.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return tsFiles(p);
    return name.endsWith('.ts') ? [p] : [];
  });
}

/** Relative imports and re-exports (static, dynamic, type-only) of every file, as paths relative to src. */
function importGraph(): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  const re = /(?:\bfrom\s*|\bimport\s*\(?\s*)['"](\.{1,2}\/[^'"]+)['"]/g;
  for (const file of tsFiles(SRC)) {
    const deps = new Set<string>();
    for (const m of readFileSync(file, 'utf8').matchAll(re)) {
      const target = resolve(dirname(file), m[1]!).replace(/\.js$/, '.ts');
      deps.add(relative(SRC, target));
    }
    graph.set(relative(SRC, file), deps);
  }
  return graph;
}

/** Strongly connected components with more than one file (Tarjan). */
function cycles(graph: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) out.push(comp.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

describe('import graph of src', () => {
  const graph = importGraph();

  it('reads every file and resolves its relative imports to files that exist', () => {
    expect(graph.size).toBeGreaterThan(100);
    const missing = [...graph].flatMap(([f, deps]) => [...deps].filter((d) => !graph.has(d)).map((d) => `${f} → ${d}`));
    expect(missing).toEqual([]);
  });

  it('finds a planted cycle (the check itself works)', () => {
    const g = new Map(graph);
    g.set('x/a.ts', new Set(['x/b.ts']));
    g.set('x/b.ts', new Set(['x/a.ts']));
    expect(cycles(g)).toContainEqual(['x/a.ts', 'x/b.ts']);
  });

  it('has no cycle between files', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('io imports nothing from data (data builds on the answer format of io, not the other way)', () => {
    const up = [...graph]
      .filter(([f]) => f.startsWith('io/'))
      .flatMap(([f, deps]) => [...deps].filter((d) => d.startsWith('data/')).map((d) => `${f} → ${d}`));
    expect(up).toEqual([]);
  });

  it('only the ops, autograd and tensor.ts import tensor-core.ts (the rest get tensors with their methods)', () => {
    const allowed = (f: string) =>
      f.startsWith('engine/ops/') || f === 'engine/autograd.ts' || f === 'engine/tensor.ts';
    const direct = [...graph].filter(([f, deps]) => deps.has('engine/tensor-core.ts') && !allowed(f)).map(([f]) => f);
    expect(direct).toEqual([]);
    expect(graph.get('engine/tensor.ts')?.has('engine/tensor-core.ts')).toBe(true);
  });
});
