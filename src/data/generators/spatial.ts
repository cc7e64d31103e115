/**
 * Spatial and logic puzzles with checkable answers: analog clocks (read the time, add a duration), mazes (shortest
 * path length by BFS), coloured grids (cell lookup, row counts, the row with most cells of a colour) and
 * polyomino puzzles (count unit squares; which option is the target rotated, with mirror-image distractors).
 */
import type { Rng } from '../../util/rng.js';
import { COLORS, drawText, newCanvas } from '../render.js';
import type { VerifierSpec } from '../sample.js';
import { type Built, type GenConfig, type Generator, LETTERS, pickTask, plural } from './types.js';

const TASKS = ['clock', 'maze', 'grid', 'polyomino'] as const;
type Task = (typeof TASKS)[number];

export interface SpatialPlan {
  task: Task;
  data: Record<string, unknown>;
  /** `choices`: the letters of options drawn in the image (multiple choice without option text). */
  qa: { question: string; answer: string; rationale: string; choices?: string[] };
}

const SPATIAL: VerifierSpec = { type: 'spatial' };

// ---------------------------------------------------------------- clock
function clock(rng: Rng, d: number): SpatialPlan {
  const h = rng.int(1, 12);
  const m = d <= 1 ? 0 : d === 2 ? rng.pick([0, 15, 30, 45]) : d === 3 ? 5 * rng.int(0, 11) : rng.int(0, 59);
  const t = `${h}:${String(m).padStart(2, '0')}`;
  const read = `The short hour hand points ${m === 0 ? 'at' : 'just past'} ${h}; the long minute hand points at ${m === 0 ? '12' : `${m} minutes (${m / 5 === Math.floor(m / 5) ? `the ${m / 5}` : `between the ${Math.floor(m / 5) || 12} and the ${Math.floor(m / 5) + 1}`})`}. The time is ${t}.`;
  if (d >= 5) {
    const addH = rng.int(0, 3);
    const addM = 5 * rng.int(1, 11);
    const total = (h % 12) * 60 + m + addH * 60 + addM;
    const h2 = Math.floor(total / 60) % 12 || 12;
    const m2 = total % 60;
    const t2 = `${h2}:${String(m2).padStart(2, '0')}`;
    return {
      task: 'clock',
      data: { h, m },
      qa: {
        question: `What time will the clock show ${addH ? `${plural(addH, 'hour')} and ` : ''}${addM} minutes later? Answer as H:MM on a 12-hour clock.`,
        answer: t2,
        rationale: `${read} Adding ${addH ? `${addH} h ` : ''}${addM} min: ${t} + ${addH}:${String(addM).padStart(2, '0')} = ${t2}.`,
      },
    };
  }
  return {
    task: 'clock',
    data: { h, m },
    qa: { question: 'What time does the clock show? Answer as H:MM.', answer: t, rationale: read },
  };
}

// ---------------------------------------------------------------- maze
type Cell = { walls: [boolean, boolean, boolean, boolean] }; // N E S W

function makeMaze(rng: Rng, n: number, loops: number): Cell[][] {
  const g: Cell[][] = Array.from({ length: n }, () =>
    Array.from({ length: n }, () => ({ walls: [true, true, true, true] as [boolean, boolean, boolean, boolean] })),
  );
  const seen = Array.from({ length: n }, () => new Array<boolean>(n).fill(false));
  const stack: Array<[number, number]> = [[0, 0]];
  seen[0]![0] = true;
  const D: Array<[number, number, number, number]> = [
    [-1, 0, 0, 2],
    [0, 1, 1, 3],
    [1, 0, 2, 0],
    [0, -1, 3, 1],
  ];
  while (stack.length) {
    const [r, c] = stack[stack.length - 1]!;
    const nb = D.filter(([dr, dc]) => r + dr >= 0 && r + dr < n && c + dc >= 0 && c + dc < n && !seen[r + dr]![c + dc]);
    if (nb.length === 0) {
      stack.pop();
      continue;
    }
    const [dr, dc, w, ow] = rng.pick(nb);
    g[r]![c]!.walls[w] = false;
    g[r + dr]![c + dc]!.walls[ow] = false;
    seen[r + dr]![c + dc] = true;
    stack.push([r + dr, c + dc]);
  }
  // Extra openings create alternative routes, so the shortest path is a real search.
  for (let k = 0; k < loops; k++) {
    const r = rng.int(0, n - 1);
    const c = rng.int(0, n - 2);
    g[r]![c]!.walls[1] = false;
    g[r]![c + 1]!.walls[3] = false;
  }
  return g;
}

/** Shortest path by breadth-first search, as a list of moves; null when E is unreachable. */
function bfs(g: Cell[][], s: [number, number], e: [number, number]): string[] | null {
  const n = g.length;
  const prev = new Map<number, [number, number]>();
  const seen = new Set<number>([s[0] * n + s[1]]);
  const q: Array<[number, number]> = [s];
  const D: Array<[number, number, string]> = [
    [-1, 0, 'up'],
    [0, 1, 'right'],
    [1, 0, 'down'],
    [0, -1, 'left'],
  ];
  for (let head = 0; head < q.length; head++) {
    const [r, c] = q[head]!;
    if (r === e[0] && c === e[1]) break;
    for (const [w, [dr, dc]] of D.entries()) {
      const [nr, nc] = [r + dr, c + dc];
      if (g[r]![c]!.walls[w] || nr < 0 || nr >= n || nc < 0 || nc >= n || seen.has(nr * n + nc)) continue;
      seen.add(nr * n + nc);
      prev.set(nr * n + nc, [r, c]);
      q.push([nr, nc]);
    }
  }
  if (!seen.has(e[0] * n + e[1])) return null;
  const moves: string[] = [];
  let cur = e;
  while (cur[0] !== s[0] || cur[1] !== s[1]) {
    const p = prev.get(cur[0] * n + cur[1])!;
    moves.push(D.find(([dr, dc]) => p[0] + dr === cur[0] && p[1] + dc === cur[1])![2]);
    cur = p;
  }
  return moves.reverse();
}

/** "right 2, down 1, …": runs of equal moves. */
function runs(moves: string[]): string {
  const out: string[] = [];
  for (let i = 0; i < moves.length; ) {
    let j = i;
    while (j < moves.length && moves[j] === moves[i]) j++;
    out.push(`${moves[i]} ${j - i}`);
    i = j;
  }
  return out.join(', ');
}

function maze(rng: Rng, d: number, size: number): SpatialPlan {
  const n = Math.min(d + 3, Math.max(4, Math.floor(size / 12)));
  const g = makeMaze(rng, n, d >= 4 ? n : 0);
  const s: [number, number] = [rng.int(0, n - 1), 0];
  const e: [number, number] = [rng.int(0, n - 1), n - 1];
  const path = bfs(g, s, e);
  if (!path) throw new Error('maze: generated maze is not connected (bug)');
  const len = path.length;
  return {
    task: 'maze',
    data: { n, walls: g.map((row) => row.map((c) => c.walls.map((w) => (w ? 1 : 0)).join(''))), s, e },
    qa: {
      question:
        'The maze has a start S and an end E. Moving one cell at a time through open passages, what is the smallest number of moves from S to E?',
      answer: String(len),
      rationale: `S is at row ${s[0] + 1}, column 1; E is at row ${e[0] + 1}, column ${n}. The maze is ${n}×${n}. The shortest route through open passages is: ${runs(path)}. Adding the runs gives ${len} moves.`,
    },
  };
}

// ---------------------------------------------------------------- grid
function grid(rng: Rng, d: number): SpatialPlan {
  const n = d <= 2 ? 3 : d <= 4 ? 4 : 5;
  const palette = d <= 2 ? ['red', 'blue', 'white'] : ['red', 'blue', 'green', 'yellow', 'white'];
  const cells = Array.from({ length: n }, () => Array.from({ length: n }, () => rng.pick(palette)));
  const mode = d <= 2 ? rng.int(0, 1) : rng.int(0, 2);
  const col = rng.pick(palette.filter((c) => c !== 'white'));
  if (mode === 0) {
    const r = rng.int(0, n - 1);
    const c = rng.int(0, n - 1);
    return {
      task: 'grid',
      data: { n, cells },
      qa: {
        question: `What color is the cell in row ${r + 1}, column ${c + 1}? Rows count from the top, columns from the left.`,
        answer: cells[r]![c]!,
        rationale: `Row ${r + 1} reads: ${cells[r]!.join(', ')}. Column ${c + 1} of it is ${cells[r]![c]}.`,
      },
    };
  }
  if (mode === 1) {
    const r = rng.int(0, n - 1);
    const k = cells[r]!.filter((x) => x === col).length;
    return {
      task: 'grid',
      data: { n, cells },
      qa: {
        question: `How many ${col} cells are in row ${r + 1} (counting rows from the top)?`,
        answer: String(k),
        rationale: `Row ${r + 1} reads: ${cells[r]!.join(', ')}. It has ${k} ${col} cell${k === 1 ? '' : 's'}.`,
      },
    };
  }
  const counts = cells.map((row) => row.filter((x) => x === col).length);
  const best = Math.max(...counts);
  if (counts.filter((x) => x === best).length !== 1) return grid(rng, d);
  return {
    task: 'grid',
    data: { n, cells },
    qa: {
      question: `Which row has the most ${col} cells? Answer with the row number, counting from the top.`,
      answer: String(counts.indexOf(best) + 1),
      rationale: `${col} cells per row: ${counts.map((k, i) => `row ${i + 1}: ${k}`).join(', ')}. The most is ${best}, in row ${counts.indexOf(best) + 1}.`,
    },
  };
}

// ---------------------------------------------------------------- polyomino
type Cells = Array<[number, number]>;

function normalize(c: Cells): Cells {
  const minR = Math.min(...c.map((p) => p[0]));
  const minC = Math.min(...c.map((p) => p[1]));
  return c.map(([r, cc]) => [r - minR, cc - minC] as [number, number]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
}
const keyOf = (c: Cells) => JSON.stringify(normalize(c));
const rot90 = (c: Cells): Cells => c.map(([r, cc]) => [cc, -r] as [number, number]);
const mirror = (c: Cells): Cells => c.map(([r, cc]) => [r, -cc] as [number, number]);
function rotations(c: Cells): string[] {
  const out: string[] = [];
  let x = c;
  for (let i = 0; i < 4; i++) {
    out.push(keyOf(x));
    x = rot90(x);
  }
  return out;
}

function randomPoly(rng: Rng, k: number): Cells {
  const cells: Cells = [[0, 0]];
  while (cells.length < k) {
    const [r, c] = rng.pick(cells);
    const [dr, dc] = rng.pick<[number, number]>([
      [0, 1],
      [1, 0],
      [0, -1],
      [-1, 0],
    ]);
    if (!cells.some((p) => p[0] === r + dr && p[1] === c + dc)) cells.push([r + dr, c + dc]);
  }
  return normalize(cells);
}

function polyomino(rng: Rng, d: number, size: number): SpatialPlan {
  const k = d <= 2 ? rng.int(3, 5) : rng.int(5, 7);
  const target = randomPoly(rng, k);
  // Four candidate shapes need room: below 112 px only the counting variant is legible.
  if (d <= 2 || size < 112) {
    return {
      task: 'polyomino',
      data: { target },
      qa: {
        question: 'The figure is made of equal unit squares. How many unit squares does it have?',
        answer: String(k),
        rationale: `Counting the squares row by row: ${rowCounts(target)}. Total: ${k}.`,
      },
    };
  }
  const rots = rotations(target);
  const mirrored = rotations(mirror(target));
  if (mirrored.some((m) => rots.includes(m))) return polyomino(rng, d, size); // symmetric shapes make mirror distractors invalid
  let x = target;
  const turns = rng.int(1, 3);
  for (let i = 0; i < turns; i++) x = rot90(x);
  const correct = normalize(x);
  const distract: Cells[] = [];
  if (d >= 4) distract.push(normalize(rot90(mirror(target))));
  for (let t = 0; distract.length < 3 && t < 100; t++) {
    const o = randomPoly(rng, k);
    const ok = !rots.includes(keyOf(o)) && !distract.some((q) => rotations(q).includes(keyOf(o)));
    if (ok) distract.push(o);
  }
  if (distract.length < 3) return polyomino(rng, d, size);
  const opts = rng.shuffle([correct, ...distract]);
  const letter = LETTERS[opts.findIndex((o) => keyOf(o) === keyOf(correct))]!;
  return {
    task: 'polyomino',
    data: { target, options: opts },
    qa: {
      question: 'Which option (A-D) is the target shape on the left rotated, without flipping?',
      answer: letter,
      choices: ['A', 'B', 'C', 'D'],
      rationale: `The target has ${k} squares, rows: ${rowCounts(target)}. Rotating it by ${turns * 90}° clockwise gives rows: ${rowCounts(correct)}, which matches option ${letter}.${d >= 4 ? ' One option is a mirror image, which a rotation cannot produce.' : ''}`,
    },
  };
}

function rowCounts(c: Cells): string {
  const n = c.map((p) => p[0]);
  const rows: number[] = [];
  for (let r = 0; r <= Math.max(...n); r++) rows.push(n.filter((x) => x === r).length);
  return rows.join('-');
}

// ---------------------------------------------------------------- rendering
function render(p: SpatialPlan, size: number) {
  const { canvas, ctx } = newCanvas(size, size, '#ffffff');
  const D = p.data as Record<string, unknown>;
  if (p.task === 'clock') {
    const cx = size / 2;
    const cy = size / 2;
    const R = size * 0.44;
    ctx.fillStyle = '#fbfbf4';
    ctx.strokeStyle = '#222222';
    ctx.lineWidth = Math.max(1.5, size / 80);
    ctx.beginPath();
    ctx.arc(cx, cy, R, 0, 2 * Math.PI);
    ctx.fill();
    ctx.stroke();
    for (let i = 0; i < 60; i++) {
      const a = (i / 60) * 2 * Math.PI;
      const r0 = i % 5 === 0 ? R * 0.86 : R * 0.93;
      if (size < 112 && i % 5 !== 0) continue;
      ctx.lineWidth = i % 5 === 0 ? Math.max(1, size / 120) : 1;
      ctx.beginPath();
      ctx.moveTo(cx + Math.sin(a) * r0, cy - Math.cos(a) * r0);
      ctx.lineTo(cx + Math.sin(a) * R * 0.98, cy - Math.cos(a) * R * 0.98);
      ctx.stroke();
    }
    if (size >= 112)
      for (let i = 1; i <= 12; i++) {
        const a = (i / 12) * 2 * Math.PI;
        drawText(
          ctx,
          String(i),
          cx + Math.sin(a) * R * 0.72,
          cy - Math.cos(a) * R * 0.72,
          R * 0.17,
          '#222222',
          'sans',
          false,
          'center',
        );
      }
    const h = D.h as number;
    const m = D.m as number;
    const hand = (a: number, len: number, w: number, color: string) => {
      ctx.strokeStyle = color;
      ctx.lineWidth = w;
      ctx.lineCap = 'round';
      ctx.beginPath();
      ctx.moveTo(cx, cy);
      ctx.lineTo(cx + Math.sin(a) * len, cy - Math.cos(a) * len);
      ctx.stroke();
      ctx.lineCap = 'butt';
    };
    hand((((h % 12) + m / 60) / 12) * 2 * Math.PI, R * 0.5, Math.max(2, size / 40), '#111111');
    hand((m / 60) * 2 * Math.PI, R * 0.82, Math.max(1.5, size / 90), '#333333');
    return canvas;
  }
  if (p.task === 'maze') {
    const n = D.n as number;
    const walls = D.walls as string[][];
    const m = size * 0.06;
    const c = (size - 2 * m) / n;
    ctx.strokeStyle = '#111111';
    ctx.lineWidth = Math.max(1, c / 8);
    ctx.lineCap = 'square';
    for (let r = 0; r < n; r++) {
      for (let k = 0; k < n; k++) {
        const w = walls[r]![k]!;
        const x = m + k * c;
        const y = m + r * c;
        ctx.beginPath();
        if (w[0] === '1') {
          ctx.moveTo(x, y);
          ctx.lineTo(x + c, y);
        }
        if (w[1] === '1') {
          ctx.moveTo(x + c, y);
          ctx.lineTo(x + c, y + c);
        }
        if (w[2] === '1') {
          ctx.moveTo(x, y + c);
          ctx.lineTo(x + c, y + c);
        }
        if (w[3] === '1') {
          ctx.moveTo(x, y);
          ctx.lineTo(x, y + c);
        }
        ctx.stroke();
      }
    }
    const [sr, sc] = D.s as [number, number];
    const [er, ec] = D.e as [number, number];
    ctx.fillStyle = '#2ca02c';
    ctx.fillRect(m + sc * c + c * 0.2, m + sr * c + c * 0.2, c * 0.6, c * 0.6);
    ctx.fillStyle = '#d62728';
    ctx.fillRect(m + ec * c + c * 0.2, m + er * c + c * 0.2, c * 0.6, c * 0.6);
    if (c >= 14) {
      drawText(ctx, 'S', m + sc * c + c / 2, m + sr * c + c / 2, c * 0.45, '#ffffff', 'sans', true, 'center');
      drawText(ctx, 'E', m + ec * c + c / 2, m + er * c + c / 2, c * 0.45, '#ffffff', 'sans', true, 'center');
    }
    return canvas;
  }
  if (p.task === 'grid') {
    const n = D.n as number;
    const cells = D.cells as string[][];
    const m = size * 0.06;
    const c = (size - 2 * m) / n;
    for (let r = 0; r < n; r++) {
      for (let k = 0; k < n; k++) {
        ctx.fillStyle = cells[r]![k] === 'white' ? '#ffffff' : COLORS[cells[r]![k]!]!;
        ctx.fillRect(m + k * c, m + r * c, c, c);
      }
    }
    ctx.strokeStyle = '#333333';
    ctx.lineWidth = Math.max(1, size / 150);
    for (let i = 0; i <= n; i++) {
      ctx.beginPath();
      ctx.moveTo(m + i * c, m);
      ctx.lineTo(m + i * c, m + n * c);
      ctx.moveTo(m, m + i * c);
      ctx.lineTo(m + n * c, m + i * c);
      ctx.stroke();
    }
    return canvas;
  }
  // polyomino
  const drawPoly = (cells: Cells, x0: number, y0: number, u: number, color: string) => {
    for (const [r, c] of cells) {
      ctx.fillStyle = color;
      ctx.fillRect(x0 + c * u, y0 + r * u, u, u);
      ctx.strokeStyle = '#ffffff';
      ctx.lineWidth = Math.max(1, u / 10);
      ctx.strokeRect(x0 + c * u, y0 + r * u, u, u);
    }
  };
  const target = D.target as Cells;
  const options = D.options as Cells[] | undefined;
  const extent = (c: Cells) => [Math.max(...c.map((q) => q[1])) + 1, Math.max(...c.map((q) => q[0])) + 1] as const;
  if (!options) {
    const [w, h] = extent(target);
    const u = (size * 0.8) / Math.max(w, h, 3);
    drawPoly(target, (size - w * u) / 2, (size - h * u) / 2, u, COLORS.blue!);
    return canvas;
  }
  const u = size / 17;
  const [tw, th] = extent(target);
  drawPoly(target, (size * 0.36 - tw * u) / 2, (size - th * u) / 2, u, COLORS.blue!);
  ctx.strokeStyle = '#999999';
  ctx.beginPath();
  ctx.moveTo(size * 0.36, size * 0.05);
  ctx.lineTo(size * 0.36, size * 0.95);
  ctx.stroke();
  options.forEach((o, i) => {
    const x = size * (0.4 + (i % 2) * 0.3);
    const y = size * (0.08 + Math.floor(i / 2) * 0.47);
    drawText(ctx, LETTERS[i]!, x, y + u * 0.3, u * 0.9, '#111111', 'sans', true);
    drawPoly(o, x + u * 0.9, y + u * 0.3, u * 0.7, COLORS.orange!);
  });
  return canvas;
}

export const spatial: Generator<SpatialPlan> = {
  domain: 'spatial',
  name: 'synth/spatial',
  description: 'analog clocks, maze shortest paths, coloured-grid lookups and counts, polyomino counting and rotation',
  tasks: TASKS,
  defaultSize: 336,
  minSize: 56,
  plan(rng, cfg: GenConfig) {
    const d = cfg.difficulty;
    const task = pickTask(rng, TASKS, cfg);
    if (task === 'clock') return clock(rng, d);
    if (task === 'maze') return maze(rng, d, cfg.size);
    if (task === 'grid') return grid(rng, d);
    return polyomino(rng, d, cfg.size);
  },
  key: (p) => `${p.task}|${JSON.stringify(p.data)}|${p.qa.question}`,
  build(p, cfg): Built {
    return {
      task: p.task,
      question: p.qa.question,
      answer: p.qa.answer,
      // The candidates are drawn in the image; the option texts name them so the letter is checkable as usual.
      ...(p.qa.choices ? { options: p.qa.choices.map((l) => `shape ${l}`) } : {}),
      verifier: p.qa.choices ? { type: 'multiple_choice' } : SPATIAL,
      rationale: p.qa.rationale,
      images: [render(p, cfg.size)],
    };
  },
  describe(p) {
    const D = p.data as Record<string, unknown>;
    if (p.task === 'clock') return `An analog clock showing ${D.h}:${String(D.m).padStart(2, '0')}.`;
    if (p.task === 'maze')
      return `A ${D.n} by ${D.n} maze with a green start S on the left edge and a red end E on the right edge.`;
    if (p.task === 'grid')
      return `A ${D.n} by ${D.n} grid of colored cells. ${(D.cells as string[][]).map((r, i) => `Row ${i + 1}: ${r.join(', ')}`).join('. ')}.`;
    return `A shape of ${(D.target as Cells).length} unit squares with rows ${rowCounts(D.target as Cells)}${D.options ? ', and four lettered candidate shapes' : ''}.`;
  },
};
