/**
 * GUI: rendered phone app screens (login form, settings with toggles, confirmation dialog, inbox list, shop) with
 * every element's box known. Tasks: "what should I click to …" → `{"action_type":"click","box_2d":[[x1,y1,x2,y2]]}`,
 * typing into a field → `{"action_type":"type","box_2d":[[…]],"text":"…"}`, element grounding → `[x1,y1,x2,y2]`,
 * and element QA (states, prices, counts, titles). Coordinates are integers 0–999 as in GLM's agent prompts.
 * Actions use the `gui` verifier; element grounding the `grounding` verifier in the 0–999 system; QA `vqa`/`counting`.
 */
import { pixelToNorm } from '../../io/answer/geometry.js';
import type { Rng } from '../../util/rng.js';
import { type Box, drawText, measureText, newCanvas, roundRect, to28 } from '../render.js';
import type { VerifierSpec } from '../sample.js';
import { fullName, productName, titleCase, word } from '../words.js';
import { type Built, type GenConfig, type Generator, pickTask, planUntil } from './types.js';

const TASKS = ['click', 'type', 'ground', 'qa'] as const;
type Task = (typeof TASKS)[number];
type Screen = 'login' | 'settings' | 'dialog' | 'inbox' | 'shop';

interface El {
  kind: 'title' | 'button' | 'link' | 'field' | 'toggle' | 'row' | 'text' | 'price';
  label: string;
  box: Box;
  /** Toggle state, unread flag, field placeholder… */
  on?: boolean;
  /** What clicking it does, as a goal phrase ("sign in"). */
  goal?: string;
  /** The box the action targets when it differs from the label (a toggle's switch, a product's Add button). */
  target?: number;
}

export interface GuiPlan {
  task: Task;
  screen: Screen;
  app: string;
  w: number;
  h: number;
  els: El[];
  qa: { question: string; answer: string; rationale: string; verifier: VerifierSpec };
}

/** Lays out elements top to bottom on a phone screen; sizes are fractions of the width. */
class Layout {
  y: number;
  readonly els: El[] = [];
  constructor(
    readonly w: number,
    readonly h: number,
  ) {
    this.y = h * 0.13;
  }
  get fs() {
    return Math.max(6, this.w * 0.06);
  }
  add(
    kind: El['kind'],
    label: string,
    heightFrac: number,
    opts: Partial<El> & { x?: number; width?: number } = {},
  ): number {
    const hgt = this.w * heightFrac;
    const x = opts.x ?? this.w * 0.08;
    const width = opts.width ?? this.w * 0.84;
    this.els.push({ kind, label, box: { x1: x, y1: this.y, x2: x + width, y2: this.y + hgt }, ...opts });
    this.y += hgt + this.w * 0.04;
    return this.els.length - 1;
  }
  fits() {
    return this.y < this.h * 0.97;
  }
}

function gui999(b: Box, w: number, h: number): number[] {
  return pixelToNorm([b.x1, b.y1, b.x2, b.y2], { width: w, height: h }, 'gui');
}

function action(type: 'click' | 'type', box: number[], text?: string): string {
  return JSON.stringify({ action_type: type, box_2d: [box], ...(text !== undefined ? { text } : {}) });
}

function planScreen(rng: Rng, cfg: GenConfig, screen: Screen): Pick<GuiPlan, 'app' | 'w' | 'h' | 'els'> | null {
  const h = cfg.size;
  const w = to28(h * 0.5625);
  const L = new Layout(w, h);
  const split = cfg.split;
  const app = titleCase(word(rng, rng.pick(['noun', 'animal', 'fruit'] as const), split, 8));
  switch (screen) {
    case 'login': {
      L.add('title', `Sign in to ${app}`, 0.12);
      L.add('field', 'Username', 0.13);
      L.add('field', 'Password', 0.13);
      L.add('button', 'Sign in', 0.14, { goal: 'sign in' });
      L.add('link', 'Forgot password?', 0.08, { goal: 'reset my password' });
      L.add('link', 'Create account', 0.08, { goal: 'create a new account' });
      break;
    }
    case 'settings': {
      L.add('title', 'Settings', 0.12);
      const names = rng.shuffle([
        'Wi-Fi',
        'Bluetooth',
        'Airplane mode',
        'Location',
        'Dark mode',
        'Notifications',
        'Auto-rotate',
      ]);
      const n = Math.min(names.length, cfg.difficulty + 2, h < 224 ? 4 : 7);
      for (const name of names.slice(0, n)) {
        const on = rng.random() < 0.5;
        const i = L.add('toggle', name, 0.11, { on, goal: `turn ${on ? 'off' : 'on'} ${name}` });
        const el = L.els[i]!;
        // The switch itself is the click target.
        L.els.push({
          kind: 'button',
          label: `${name} switch`,
          box: { x1: el.box.x2 - w * 0.2, y1: el.box.y1 + w * 0.02, x2: el.box.x2, y2: el.box.y2 - w * 0.02 },
          on,
        });
        el.target = L.els.length - 1;
      }
      break;
    }
    case 'dialog': {
      L.add('title', app, 0.12);
      L.y = h * 0.38;
      const file = `${word(rng, 'noun', split, 8)}.${rng.pick(['pdf', 'png', 'txt', 'doc'])}`;
      L.add('text', `Delete ${file}?`, 0.12);
      const bw = w * 0.36;
      const y = L.y;
      L.add('button', 'Cancel', 0.13, { x: w * 0.1, width: bw, goal: `keep ${file}` });
      L.y = y;
      L.add('button', 'Delete', 0.13, { x: w * 0.54, width: bw, goal: `confirm deleting ${file}` });
      break;
    }
    case 'inbox': {
      L.add('title', 'Inbox', 0.12);
      const n = Math.min(cfg.difficulty + 2, h < 224 ? 3 : 6);
      const seen = new Set<string>();
      for (let i = 0; i < n; i++) {
        const who = fullName(rng, split);
        if (seen.has(who)) continue;
        seen.add(who);
        L.add('row', who, 0.15, { on: rng.random() < 0.4, goal: `open the email from ${who}` });
      }
      break;
    }
    case 'shop': {
      L.add('title', `${app} Shop`, 0.12);
      const n = Math.min(cfg.difficulty + 1, h < 224 ? 2 : 4);
      const seen = new Set<string>();
      for (let i = 0; i < n; i++) {
        const prod = productName(rng, split);
        if (seen.has(prod)) continue;
        seen.add(prod);
        const price = `$${rng.int(2, 199)}.${rng.pick(['00', '49', '99', '25'])}`;
        const row = L.add('row', prod, 0.2);
        const r = L.els[row]!.box;
        L.els.push({
          kind: 'price',
          label: price,
          box: { x1: r.x1 + w * 0.03, y1: r.y1 + w * 0.1, x2: r.x1 + w * 0.4, y2: r.y2 - w * 0.02 },
        });
        L.els.push({
          kind: 'button',
          label: 'Add',
          box: { x1: r.x2 - w * 0.24, y1: r.y1 + w * 0.09, x2: r.x2 - w * 0.03, y2: r.y2 - w * 0.03 },
          goal: `add the ${prod} to the cart`,
        });
      }
      break;
    }
  }
  if (!L.fits()) return null;
  return { app, w, h, els: L.els };
}

function planGui(rng: Rng, cfg: GenConfig): GuiPlan | null {
  const task = pickTask(rng, TASKS, cfg, [3, 1, 2, 2]);
  const screen = task === 'type' ? 'login' : rng.pick<Screen>(['login', 'settings', 'dialog', 'inbox', 'shop']);
  const s = planScreen(rng, cfg, screen);
  if (!s) return null;
  const { els, w, h } = s;
  const actionV: VerifierSpec = { type: 'gui' };
  if (task === 'click') {
    const cands = els.filter((e) => e.goal);
    if (cands.length === 0) return null;
    const e = rng.pick(cands);
    const t = e.target !== undefined ? els[e.target]! : e;
    const b = gui999(t.box, w, h);
    return {
      ...s,
      task,
      screen,
      qa: {
        question: `On this screen, what should I click to ${e.goal}? Answer with an action JSON.`,
        answer: action('click', b),
        rationale: `The goal is to ${e.goal}. The ${e.kind === 'toggle' ? `switch next to "${e.label}" (now ${e.on ? 'on' : 'off'})` : `"${e.label}" ${e.kind}`} does that. It spans x ${b[0]}-${b[2]}, y ${b[1]}-${b[3]} (0-999). So I click it.`,
        verifier: actionV,
      },
    };
  }
  if (task === 'type') {
    const field = rng.pick(els.filter((e) => e.kind === 'field'));
    const text =
      field.label === 'Username'
        ? word(rng, 'firstName', cfg.split, 9).toLowerCase() + rng.int(1, 99)
        : `${word(rng, 'noun', cfg.split, 8)}${rng.int(100, 999)}`;
    const b = gui999(field.box, w, h);
    return {
      ...s,
      task,
      screen,
      qa: {
        question: `Enter "${text}" as the ${field.label.toLowerCase()}. What is the next action? Answer with an action JSON.`,
        answer: action('type', b, text),
        rationale: `The ${field.label} field spans x ${b[0]}-${b[2]}, y ${b[1]}-${b[3]} (0-999). I type "${text}" into it.`,
        verifier: actionV,
      },
    };
  }
  if (task === 'ground') {
    const cands = els.filter((e) => ['button', 'link', 'field'].includes(e.kind) && !e.label.endsWith(' switch'));
    const labels = cands.map((e) => e.label);
    const unique = cands.filter((c) => labels.filter((l) => l === c.label).length === 1);
    if (unique.length === 0) return null;
    const e = rng.pick(unique);
    const b = gui999(e.box, w, h);
    return {
      ...s,
      task,
      screen,
      qa: {
        question: `Where is the "${e.label}" ${e.kind} on the screen? Give its bounding box [x1,y1,x2,y2] in 0-999 coordinates.`,
        answer: `[${b.join(',')}]`,
        rationale: `The "${e.label}" ${e.kind} spans x ${b[0]}-${b[2]}, y ${b[1]}-${b[3]}.`,
        verifier: { type: 'grounding', params: { system: 'gui', iouThreshold: 0.5 } },
      },
    };
  }
  const qaV: VerifierSpec = { type: 'vqa' };
  if (screen === 'settings') {
    const t = rng.pick(els.filter((e) => e.kind === 'toggle'));
    return {
      ...s,
      task,
      screen,
      qa: {
        question: `Is ${t.label} turned on? Answer yes or no.`,
        answer: t.on ? 'yes' : 'no',
        rationale: `The switch next to ${t.label} is ${t.on ? 'colored and to the right, so it is on' : 'gray and to the left, so it is off'}.`,
        verifier: qaV,
      },
    };
  }
  if (screen === 'inbox') {
    const rows = els.filter((e) => e.kind === 'row');
    const unread = rows.filter((e) => e.on);
    return {
      ...s,
      task,
      screen,
      qa: {
        question: 'How many unread emails (marked with a blue dot and bold name) are in the inbox?',
        answer: String(unread.length),
        rationale: `Rows: ${rows.map((r) => `${r.label} (${r.on ? 'unread' : 'read'})`).join(', ')}. Unread: ${unread.length}.`,
        verifier: { type: 'counting' },
      },
    };
  }
  if (screen === 'shop') {
    const rows = els.filter((e) => e.kind === 'row');
    const i = rng.int(0, rows.length - 1);
    const price = els[els.indexOf(rows[i]!) + 1]!.label;
    return {
      ...s,
      task,
      screen,
      qa: {
        question: `What is the price of the ${rows[i]!.label}?`,
        answer: price,
        rationale: `The ${rows[i]!.label} card shows the price ${price}.`,
        verifier: qaV,
      },
    };
  }
  const title = els.find((e) => e.kind === 'title')!;
  return {
    ...s,
    task,
    screen,
    qa: {
      question: 'What is the title shown at the top of the screen?',
      answer: title.label,
      rationale: `The header at the top reads "${title.label}".`,
      verifier: qaV,
    },
  };
}

function render(p: GuiPlan) {
  const { w, h } = p;
  const { canvas, ctx } = newCanvas(w, h, '#f7f7fa');
  const fs = Math.max(6, w * 0.055);
  ctx.fillStyle = '#222222';
  ctx.fillRect(0, 0, w, h * 0.04);
  drawText(ctx, '9:41', w * 0.05, h * 0.02, fs * 0.6, '#ffffff');
  const accent = '#1a73e8';
  for (const e of p.els) {
    const b = e.box;
    const bw = b.x2 - b.x1;
    const bh = b.y2 - b.y1;
    const cy = (b.y1 + b.y2) / 2;
    switch (e.kind) {
      case 'title':
        ctx.fillStyle = '#ffffff';
        ctx.fillRect(0, b.y1 - w * 0.02, w, bh + w * 0.04);
        drawText(
          ctx,
          e.label,
          b.x1,
          cy,
          Math.min(fs * 1.15, (bw / Math.max(1, measureText(e.label, 10).w)) * 10),
          '#111111',
          'sans',
          true,
        );
        break;
      case 'field':
        roundRect(ctx, b.x1, b.y1, bw, bh, bh * 0.15);
        ctx.fillStyle = '#ffffff';
        ctx.fill();
        ctx.strokeStyle = '#9aa0a6';
        ctx.lineWidth = Math.max(1, w / 200);
        ctx.stroke();
        drawText(ctx, e.label, b.x1 + bh * 0.3, cy, fs * 0.9, '#80868b');
        break;
      case 'button':
        if (e.label.endsWith(' switch')) {
          roundRect(ctx, b.x1, b.y1, bw, bh, bh / 2);
          ctx.fillStyle = e.on ? accent : '#c4c7c5';
          ctx.fill();
          ctx.beginPath();
          ctx.fillStyle = '#ffffff';
          ctx.arc(e.on ? b.x2 - bh / 2 : b.x1 + bh / 2, cy, bh * 0.38, 0, 2 * Math.PI);
          ctx.fill();
          break;
        }
        roundRect(ctx, b.x1, b.y1, bw, bh, bh * 0.25);
        ctx.fillStyle = e.label === 'Delete' ? '#d93025' : e.label === 'Cancel' ? '#e8eaed' : accent;
        ctx.fill();
        drawText(
          ctx,
          e.label,
          (b.x1 + b.x2) / 2,
          cy,
          Math.min(fs, bh * 0.55),
          e.label === 'Cancel' ? '#111111' : '#ffffff',
          'sans',
          true,
          'center',
        );
        break;
      case 'link':
        drawText(ctx, e.label, b.x1, cy, fs * 0.85, accent);
        break;
      case 'toggle':
        ctx.fillStyle = '#ffffff';
        ctx.fillRect(b.x1, b.y1, bw, bh);
        drawText(ctx, e.label, b.x1 + w * 0.03, cy, fs * 0.9, '#111111');
        break;
      case 'row': {
        ctx.fillStyle = '#ffffff';
        ctx.fillRect(b.x1, b.y1, bw, bh);
        const shop = p.screen === 'shop';
        if (!shop && e.on) {
          ctx.beginPath();
          ctx.fillStyle = accent;
          ctx.arc(b.x1 + w * 0.04, cy, w * 0.015, 0, 2 * Math.PI);
          ctx.fill();
        }
        drawText(
          ctx,
          e.label,
          b.x1 + w * 0.08 - (shop ? w * 0.05 : 0),
          shop ? b.y1 + bh * 0.28 : cy,
          fs * 0.85,
          '#111111',
          'sans',
          !shop && e.on === true,
        );
        break;
      }
      case 'price':
        drawText(ctx, e.label, b.x1, (b.y1 + b.y2) / 2, fs * 0.9, '#188038', 'sans', true);
        break;
      case 'text':
        drawText(ctx, e.label, w / 2, cy, fs, '#111111', 'sans', false, 'center');
        break;
    }
  }
  return canvas;
}

export const gui: Generator<GuiPlan> = {
  domain: 'gui',
  name: 'synth/gui',
  description: 'phone app screens: click and type actions as 0-999 action JSON, element grounding, element QA',
  tasks: TASKS,
  defaultSize: 560,
  minSize: 112,
  plan(rng, cfg) {
    return planUntil(
      () => planGui(rng, cfg),
      `gui: could not plan a screen at difficulty ${cfg.difficulty}, size ${cfg.size}`,
    );
  },
  key: (p) => `${p.screen}|${p.app}|${p.els.map((e) => `${e.label}:${e.on ?? ''}`).join(',')}|${p.qa.question}`,
  build(p): Built {
    return { task: p.task, ...p.qa, images: [render(p)], meta: { screen: p.screen } };
  },
  describe: (p) =>
    `A phone screen of the ${p.app} app (${p.screen}): ${p.els
      .filter((e) => !e.label.endsWith(' switch'))
      .map((e) => `${e.kind} "${e.label}"${e.kind === 'toggle' ? ` ${e.on ? 'on' : 'off'}` : ''}`)
      .join(', ')}.`,
  regions: (p) => p.els.map((e) => ({ label: `${e.kind} "${e.label}"`, box: e.box })),
};
