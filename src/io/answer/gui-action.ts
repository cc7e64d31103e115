/** GUI agent actions in answers: the JSON (mobile), call (computer use) and WebVoyager formats in one shape. */
import { type Box, boxCenter, type Point, parseBoxes, parsePoints } from './geometry.js';

/**
 * A GUI agent action in one shape for all GLM agent formats:
 * - `json` — AndroidWorld / mobile: `{"action_type":"click","box_2d":[[x1,y1,x2,y2]]}` (0–999), also Python-dict
 *   spelling (`{'action_type': 'open_app', 'override': True}`) as the prompts' history shows;
 * - `call` — OSWorld computer use: `left_click(start_box='[x,y]', element_info='…')`, `type(content='…')`, `DONE()`;
 * - `webvoyager` — set-of-marks web: `Click [5]`, `Type [2]; [text]`, `Scroll [WINDOW]; [up]`, `ANSWER; <content>…</content>`.
 */
export interface GuiAction {
  /** Lower-case action name: `click`, `long_press`, `input_text`, `swipe`, `left_click`, `type`, `scroll`, `done`… */
  type: string;
  format: 'json' | 'call' | 'webvoyager';
  /** Target box (`box_2d`), normalised. */
  box?: Box;
  /** Target point (`start_box` as a point, or `start_point`), normalised. */
  point?: Point;
  /** End point (`left_drag` `end_box`, swipe `end_point`). */
  endPoint?: Point;
  /** Typed / answered text (`text`, `content`). */
  text?: string;
  /** `swipe`/`scroll` direction. */
  direction?: string;
  /** WebVoyager element label (`Click [5]` → `5`, `WINDOW`). */
  element?: string;
  /** Every argument as parsed, keyed by its original name. */
  args: Record<string, unknown>;
}

export type GuiParse = { ok: true; action: GuiAction } | { ok: false; error: string };

/** Parses one GUI action from box content or a raw answer (an `Action:` prefix is allowed). Never throws. */
export function parseGuiAction(text: string): GuiParse {
  // A full agent answer ("Memory: … Reason: … Action: {…}") carries the action after its last "Action:".
  const marker = [...text.matchAll(/(?:^|\n)\s*(?:\d+\.\s*)?action\s*[:：]/gi)].pop();
  const t = (marker ? text.slice(marker.index + marker[0].length) : text).trim();
  if (t === '') return { ok: false, error: 'GUI action: expected an action, found empty text' };
  if (t.startsWith('{')) return parseJsonAction(t);
  const call = /^([A-Za-z_]\w*)\s*\(([\s\S]*)\)\s*$/.exec(t);
  if (call) return parseCallAction(call[1]!, call[2]!);
  const web = parseWebVoyagerAction(t);
  if (web.ok) return web;
  const brace = t.indexOf('{');
  if (brace >= 0) return parseJsonAction(t.slice(brace));
  return web;
}

function parseJsonAction(t: string): GuiParse {
  const end = matchingBrace(t, 0);
  if (end < 0) return { ok: false, error: `GUI action: unbalanced braces in ${preview(t)}` };
  let obj: unknown;
  try {
    obj = parseLooseJson(t.slice(0, end + 1));
  } catch (e) {
    return { ok: false, error: `GUI action: invalid JSON object ${preview(t)}: ${(e as Error).message}` };
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj))
    return { ok: false, error: `GUI action: expected a JSON object, found ${preview(t)}` };
  const args = obj as Record<string, unknown>;
  const rawType = args.action_type ?? args.action;
  if (typeof rawType !== 'string' || rawType.trim() === '')
    return { ok: false, error: `GUI action: missing string "action_type" in ${preview(t)}` };
  const action: GuiAction = { type: normaliseActionName(rawType), format: 'json', args };
  if (args.box_2d !== undefined) {
    const b = toBox(args.box_2d);
    if (!b)
      return {
        ok: false,
        error: `GUI action: "box_2d" must be [[x1,y1,x2,y2]] or [x1,y1,x2,y2], found ${preview(JSON.stringify(args.box_2d))}`,
      };
    action.box = b;
  }
  for (const [key, field] of [
    ['start_point', 'point'],
    ['point', 'point'],
    ['end_point', 'endPoint'],
  ] as const) {
    if (args[key] === undefined) continue;
    const p = toPoint(args[key]);
    if (!p)
      return { ok: false, error: `GUI action: "${key}" must be [x,y], found ${preview(JSON.stringify(args[key]))}` };
    action[field] = p;
  }
  if (typeof args.text === 'string') action.text = args.text;
  if (typeof args.direction === 'string') action.direction = args.direction.toLowerCase();
  return { ok: true, action };
}

function parseCallAction(name: string, argText: string): GuiParse {
  const args: Record<string, unknown> = {};
  const re = /\s*([A-Za-z_]\w*)\s*=\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\[[^\]]*\]|\([^)]*\)|[^,]+?)\s*(?:,|$)/gy;
  let pos = 0;
  const body = argText.trim();
  while (pos < body.length) {
    re.lastIndex = pos;
    const m = re.exec(body);
    if (!m)
      return { ok: false, error: `GUI action: cannot parse arguments of ${name}(…) at ${preview(body.slice(pos))}` };
    const raw = m[2]!;
    args[m[1]!] = /^['"]/.test(raw)
      ? unescapeQuoted(raw.slice(1, -1))
      : /^[-+]?\d+(?:\.\d+)?$/.test(raw)
        ? Number(raw)
        : raw;
    pos = re.lastIndex;
  }
  const action: GuiAction = { type: normaliseActionName(name), format: 'call', args };
  for (const [key, field] of [
    ['start_box', 'point'],
    ['end_box', 'endPoint'],
  ] as const) {
    const v = args[key];
    if (v === undefined) continue;
    const s = String(v);
    const boxes = parseBoxes(s);
    const points = parsePoints(s);
    if (boxes.length === 1) {
      // A box given where a point is expected: its centre is the click target.
      action[field] = boxCenter(boxes[0]!.box);
      if (field === 'point') action.box = boxes[0]!.box;
    } else if (points.length === 1) action[field] = points[0]!;
    else return { ok: false, error: `GUI action: ${key} of ${name}(…) must be '[x,y]', found ${preview(s)}` };
  }
  const text = args.content ?? args.text;
  if (typeof text === 'string') action.text = text;
  if (typeof args.keys === 'string') action.text ??= args.keys;
  if (typeof args.direction === 'string') action.direction = args.direction.toLowerCase();
  return { ok: true, action };
}

function parseWebVoyagerAction(t: string): GuiParse {
  const s = t.replace(/\.\s*$/, '').trim();
  let m = /^answer\s*;\s*(?:<content>([\s\S]*?)<\/content>|\[?([\s\S]*?)\]?)$/i.exec(s);
  if (m) {
    const text = (m[1] ?? m[2] ?? '').trim();
    return { ok: true, action: { type: 'answer', format: 'webvoyager', text, args: { content: text } } };
  }
  m = /^(click)\s*\[?\s*([\w-]+)\s*\]?$/i.exec(s);
  if (m) return { ok: true, action: { type: 'click', format: 'webvoyager', element: m[2]!, args: { element: m[2]! } } };
  m = /^(type)\s*\[?\s*([\w-]+)\s*\]?\s*;\s*\[?([\s\S]*?)\]?$/i.exec(s);
  if (m)
    return {
      ok: true,
      action: {
        type: 'type',
        format: 'webvoyager',
        element: m[2]!,
        text: m[3]!,
        args: { element: m[2]!, content: m[3]! },
      },
    };
  m = /^(scroll)\s*\[?\s*([\w-]+)\s*\]?\s*;\s*\[?\s*(up|down)\s*\]?$/i.exec(s);
  if (m)
    return {
      ok: true,
      action: {
        type: 'scroll',
        format: 'webvoyager',
        element: m[2]!,
        direction: m[3]!.toLowerCase(),
        args: { element: m[2]!, direction: m[3]!.toLowerCase() },
      },
    };
  m = /^key\s*;\s*\[?\s*([^\]]+?)\s*\]?$/i.exec(s);
  if (m) return { ok: true, action: { type: 'key', format: 'webvoyager', text: m[1]!, args: { key: m[1]! } } };
  m = /^(wait|goback|go back|bing)$/i.exec(s);
  if (m) return { ok: true, action: { type: normaliseActionName(m[1]!), format: 'webvoyager', args: {} } };
  return {
    ok: false,
    error: `GUI action: expected a JSON action, a call like left_click(start_box='[x,y]'), or a WebVoyager action, found ${preview(t)}`,
  };
}

function normaliseActionName(s: string): string {
  return s.trim().replace(/\s+/g, '_').toLowerCase();
}

function toBox(v: unknown): Box | null {
  let a = v;
  if (Array.isArray(a) && a.length === 1 && Array.isArray(a[0])) a = a[0];
  if (typeof a === 'string') {
    const b = parseBoxes(a);
    return b.length === 1 ? b[0]!.box : null;
  }
  if (Array.isArray(a) && a.length === 4 && a.every((x) => typeof x === 'number' && Number.isFinite(x)))
    return a as Box;
  return null;
}

function toPoint(v: unknown): Point | null {
  let a = v;
  if (Array.isArray(a) && a.length === 1 && Array.isArray(a[0])) a = a[0];
  if (typeof a === 'string') {
    const p = parsePoints(a);
    return p.length === 1 ? p[0]! : null;
  }
  if (Array.isArray(a) && a.length === 2 && a.every((x) => typeof x === 'number' && Number.isFinite(x)))
    return a as Point;
  return null;
}

function preview(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s);
}

function unescapeQuoted(s: string): string {
  return s.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : c));
}

/** Index of the brace closing the one at `start`, skipping quoted strings; -1 if unbalanced. */
function matchingBrace(s: string, start: number): number {
  let depth = 0;
  let quote: string | null = null;
  for (let i = start; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '{') depth++;
    else if (c === '}') {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

/**
 * JSON, plus the Python-literal spellings GLM agent histories contain: single-quoted strings, True/False/None,
 * integers with leading zeros (`[[0503,…]]`, normalised by the released AndroidWorld verifier too), trailing commas.
 */
export function parseLooseJson(src: string): unknown {
  try {
    return JSON.parse(src);
  } catch {
    // fall through to the tolerant rewrite
  }
  let out = '';
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '"' || c === "'") {
      let j = i + 1;
      let str = '';
      while (j < src.length && src[j] !== c) {
        if (src[j] === '\\' && j + 1 < src.length) {
          const e = src[j + 1]!;
          str += e === "'" ? "'" : `\\${e}`;
          j += 2;
        } else {
          str += src[j] === '"' ? '\\"' : src[j] === '\n' ? '\\n' : src[j]!;
          j++;
        }
      }
      if (j >= src.length) throw new Error(`unterminated string starting at ${i}`);
      out += `"${str}"`;
      i = j + 1;
      continue;
    }
    const word = /^[A-Za-z_]\w*/.exec(src.slice(i, i + 16));
    if (word) {
      const w = word[0];
      out += w === 'True' ? 'true' : w === 'False' ? 'false' : w === 'None' ? 'null' : w;
      i += w.length;
      continue;
    }
    const num = /^-?0+(\d)/.exec(src.slice(i, i + 24));
    if (num && (i === 0 || !/[\w.]/.test(src[i - 1]!))) {
      // strip leading zeros of an integer: 0503 → 503 (but keep 0.5 and a lone 0)
      const full = /^-?\d+(?:\.\d+)?/.exec(src.slice(i))![0];
      const neg = full.startsWith('-');
      const digits = full.replace(/^-/, '');
      const stripped = digits.includes('.') ? digits.replace(/^0+(?=\d)/, '') : digits.replace(/^0+(?=\d)/, '');
      out += (neg ? '-' : '') + stripped;
      i += full.length;
      continue;
    }
    if (c === ',') {
      const next = /^,\s*([}\]])/.exec(src.slice(i, i + 64));
      if (next) {
        i += next[0].length - 1; // trailing comma: drop it, keep the bracket
        continue;
      }
    }
    out += c;
    i++;
  }
  return JSON.parse(out);
}
