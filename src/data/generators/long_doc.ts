/**
 * Long documents: multi-page reports (2–8 pages) with running headers, section headings, paragraphs and tables.
 * Every question is about one page: find the page of a section, read a table cell, name a heading, count table rows,
 * total a column. Each page is its own image, in order.
 */
import type { Rng } from '../../util/rng.js';
import { drawText, newCanvas, to28, wrapText } from '../render.js';
import { titleCase, word } from '../words.js';
import { type Built, type GenConfig, type Generator, pickTask, planUntil } from './types.js';

const TASKS = ['find_section', 'table_cell', 'heading', 'table_rows', 'column_total'] as const;
type Task = (typeof TASKS)[number];

interface Table {
  caption: string;
  cols: string[];
  rows: Array<{ name: string; values: number[] }>;
}

interface Page {
  heading: string;
  paragraphs: string[];
  table?: Table;
}

export interface DocPlan {
  task: Task;
  title: string;
  pages: Page[];
  qa: { question: string; answer: string; rationale: string };
}

function sentence(rng: Rng, cfg: GenConfig): string {
  const s = cfg.split;
  const n = () => word(rng, 'noun', s, 10);
  const a = () => word(rng, 'adjective', s, 10);
  return rng.pick([
    () => `The ${a()} ${n()} team reviewed ${rng.int(2, 90)} ${n()} reports in ${word(rng, 'city', s, 12)}.`,
    () => `Most ${n()} requests were ${a()} and were closed within ${rng.int(2, 30)} days.`,
    () => `A new ${n()} process made the ${n()} work more ${a()}.`,
    () => `${titleCase(word(rng, 'firstName', s, 9))} led the ${a()} ${n()} project this year.`,
    () => `Costs for ${n()} support rose by ${rng.int(2, 40)} percent.`,
  ])();
}

function makeDoc(rng: Rng, cfg: GenConfig): Pick<DocPlan, 'title' | 'pages'> {
  const d = cfg.difficulty;
  const nPages = [2, 3, 4, 6, 8][d - 1]!;
  const title = `${titleCase(word(rng, 'adjective', cfg.split, 10))} ${titleCase(word(rng, 'noun', cfg.split, 10))} Report`;
  const headings = new Set<string>();
  const pages: Page[] = [];
  for (let i = 0; i < nPages; i++) {
    let heading = '';
    do
      heading = `${titleCase(word(rng, 'noun', cfg.split, 11))} ${rng.pick(['Overview', 'Results', 'Budget', 'Plan', 'Review', 'Summary'])}`;
    while (headings.has(heading));
    headings.add(heading);
    const page: Page = {
      heading,
      paragraphs: Array.from({ length: rng.int(1, 2) }, () =>
        Array.from({ length: rng.int(2, 3) }, () => sentence(rng, cfg)).join(' '),
      ),
    };
    if (rng.random() < 0.7) {
      const cols = rng.pick([
        ['Q1', 'Q2', 'Q3'],
        ['2022', '2023'],
        ['Units', 'Price'],
        ['Plan', 'Actual'],
      ]);
      const names = new Set<string>();
      const nRows = rng.int(2, d <= 2 ? 3 : 5);
      while (names.size < nRows)
        names.add(titleCase(word(rng, rng.pick(['fruit', 'animal', 'department'] as const), cfg.split, 10)));
      page.table = {
        caption: `Table ${i + 1}: ${heading}`,
        cols,
        rows: [...names].map((name) => ({
          name,
          values: cols.map(() => rng.int(1, 99) * (rng.random() < 0.3 ? 10 : 1)),
        })),
      };
    }
    pages.push(page);
  }
  return { title, pages };
}

function planDoc(rng: Rng, cfg: GenConfig): DocPlan | null {
  const doc = makeDoc(rng, cfg);
  const task = pickTask(rng, TASKS, cfg, [2, 2, 1.5, 1, cfg.difficulty >= 4 ? 1.5 : 0.2]);
  const k = rng.int(0, doc.pages.length - 1);
  const page = doc.pages[k]!;
  const P = k + 1;
  if (task === 'find_section') {
    return {
      ...doc,
      task,
      qa: {
        question: `On which page does the section "${page.heading}" appear? Answer with the page number.`,
        answer: String(P),
        rationale: `Page headings: ${doc.pages.map((p, i) => `page ${i + 1}: ${p.heading}`).join('; ')}. "${page.heading}" is on page ${P}.`,
      },
    };
  }
  if (task === 'heading') {
    return {
      ...doc,
      task,
      qa: {
        question: `What is the section heading on page ${P}?`,
        answer: page.heading,
        rationale: `Page ${P} starts its section with the heading "${page.heading}".`,
      },
    };
  }
  const t = page.table;
  if (!t) return null;
  if (task === 'table_rows') {
    return {
      ...doc,
      task,
      qa: {
        question: `How many data rows (not counting the header) does the table on page ${P} have?`,
        answer: String(t.rows.length),
        rationale: `The table on page ${P} lists ${t.rows.map((r) => r.name).join(', ')}: ${t.rows.length} rows.`,
      },
    };
  }
  const c = rng.int(0, t.cols.length - 1);
  if (task === 'column_total') {
    const vals = t.rows.map((r) => r.values[c]!);
    const total = vals.reduce((a, b) => a + b, 0);
    return {
      ...doc,
      task,
      qa: {
        question: `On page ${P}, what is the total of the "${t.cols[c]}" column of the table?`,
        answer: String(total),
        rationale: `The "${t.cols[c]}" column on page ${P} reads ${vals.join(', ')}. ${vals.join(' + ')} = ${total}.`,
      },
    };
  }
  const r = rng.pick(t.rows);
  return {
    ...doc,
    task,
    qa: {
      question: `On page ${P}, what is the "${t.cols[c]}" value for ${r.name} in the table?`,
      answer: String(r.values[c]),
      rationale: `The table on page ${P} has a row for ${r.name}; its "${t.cols[c]}" column reads ${r.values[c]}.`,
    },
  };
}

function renderPage(doc: DocPlan, i: number, size: number) {
  const h = size;
  const w = to28(size * 0.75);
  const { canvas, ctx } = newCanvas(w, h, '#ffffff');
  const m = w * 0.08;
  const fs = Math.max(5, w / 42);
  const page = doc.pages[i]!;
  drawText(ctx, doc.title, m, m * 0.6, fs * 0.8, '#777777', 'serif');
  drawText(
    ctx,
    `Page ${i + 1} of ${doc.pages.length}`,
    w - m,
    h - m * 0.5,
    fs * 0.9,
    '#333333',
    'serif',
    false,
    'right',
  );
  let y = m * 1.3;
  drawText(ctx, `${i + 1}. ${page.heading}`, m, y + fs, fs * 1.6, '#111111', 'sans', true);
  y += fs * 3;
  for (const para of page.paragraphs) {
    for (const line of wrapText(ctx, para, w - 2 * m, `${fs}px "GLMV Serif"`)) {
      if (y > h - m * 1.5) break;
      drawText(ctx, line, m, y, fs, '#222222', 'serif');
      y += fs * 1.4;
    }
    y += fs * 0.8;
  }
  const t = page.table;
  if (t && y < h - m * 2) {
    drawText(ctx, t.caption, m, y, fs * 0.95, '#111111', 'sans', true);
    y += fs * 1.2;
    const colW = (w - 2 * m) / (t.cols.length + 1.6);
    const rowH = fs * 1.6;
    const cells = [['', ...t.cols], ...t.rows.map((r) => [r.name, ...r.values.map(String)])];
    cells.forEach((row, ri) => {
      if (ri === 0) {
        ctx.fillStyle = '#e8eef7';
        ctx.fillRect(m, y, w - 2 * m, rowH);
      }
      row.forEach((cell, ci) => {
        const x = ci === 0 ? m + fs * 0.3 : m + colW * (ci + 0.6) + colW - fs * 0.5;
        drawText(ctx, cell, x, y + rowH / 2, fs, '#111111', 'sans', ri === 0, ci === 0 ? 'left' : 'right');
      });
      ctx.strokeStyle = '#bbbbbb';
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(m, y + rowH);
      ctx.lineTo(w - m, y + rowH);
      ctx.stroke();
      y += rowH;
    });
  }
  return canvas;
}

export const longDoc: Generator<DocPlan> = {
  domain: 'long_doc',
  name: 'synth/long_doc',
  description: 'multi-page reports with headings, paragraphs and tables; questions about one page',
  tasks: TASKS,
  defaultSize: 672,
  minSize: 112,
  plan(rng, cfg) {
    return planUntil(() => planDoc(rng, cfg), `long_doc: could not plan a document at difficulty ${cfg.difficulty}`);
  },
  key: (p) => `${p.title}|${p.pages.map((x) => x.heading).join(',')}|${p.qa.question}`,
  build(p, cfg): Built {
    return {
      task: p.task,
      ...p.qa,
      verifier: { type: 'long_doc' },
      images: p.pages.map((_, i) => renderPage(p, i, cfg.size)),
      meta: { pages: p.pages.length },
    };
  },
  describe: (p) =>
    `A ${p.pages.length}-page document titled "${p.title}". ${p.pages
      .map(
        (pg, i) =>
          `Page ${i + 1}: section "${pg.heading}"${pg.table ? ` with a table of ${pg.table.rows.length} rows (${pg.table.cols.join(', ')})` : ''}.`,
      )
      .join(' ')}`,
};
