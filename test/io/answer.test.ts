import { describe, expect, it } from 'vitest';
import { extractBox, findLatexBoxed } from '../../src/io/answer/extract.js';
import { checkFormat } from '../../src/io/answer/format.js';
import {
  type Box,
  boxProblem,
  iou,
  normToPixel,
  parseBoxes,
  parsePoints,
  pixelPointToNorm,
  pixelToNorm,
  pointInBox,
} from '../../src/io/answer/geometry.js';
import { parseGuiAction, parseLooseJson } from '../../src/io/answer/gui-action.js';
import { parseResponse } from '../../src/io/answer/response.js';
import { ThinkStreamSplitter } from '../../src/io/answer/stream.js';
import { splitThinking } from '../../src/io/answer/think.js';

const B = (s: string) => `<|begin_of_box|>${s}<|end_of_box|>`;

describe('splitThinking', () => {
  it('splits GLM-4.1V style', () => {
    const s = splitThinking(`<think>reason here</think><answer>The result is ${B('42')}.</answer>`);
    expect(s.reasoning).toBe('reason here');
    expect(s.content).toBe(`The result is ${B('42')}.`);
    expect(s.style).toBe('glm41v');
    expect(s.hasAnswerTags).toBe(true);
    expect(s.issues).toEqual([]);
  });

  it('splits GLM-4.5V style (no answer tags)', () => {
    const s = splitThinking(`<think>\nstep 1\n</think>\nIt is ${B('7')}`);
    expect(s.reasoning).toBe('step 1');
    expect(s.content).toBe(`It is ${B('7')}`);
    expect(s.style).toBe('glm45v');
  });

  it('reports a missing </think> and recovers a following <answer>', () => {
    const s = splitThinking(`<think>thinking...<answer>${B('3')}</answer>`);
    expect(s.thinkClosed).toBe(false);
    expect(s.issues).toContain('unclosed_think');
    expect(s.reasoning).toBe('thinking...');
    expect(s.content).toBe(B('3'));
  });

  it('a truncated response has reasoning and no content', () => {
    const s = splitThinking('<think>long long reasoning that got cut');
    expect(s.content).toBe('');
    expect(s.reasoning).toBe('long long reasoning that got cut');
    expect(s.thinkClosed).toBe(false);
  });

  it('handles a pre-opened think (missing <think>)', () => {
    const s = splitThinking('reasoning</think>answer');
    expect(s.reasoning).toBe('reasoning');
    expect(s.content).toBe('answer');
    expect(s.issues).toContain('missing_think_open');
  });

  it('plain text has no reasoning', () => {
    const s = splitThinking('just an answer');
    expect(s.reasoning).toBeNull();
    expect(s.style).toBe('plain');
    expect(s.content).toBe('just an answer');
  });

  it('is case-insensitive on tags and notes empty think', () => {
    const s = splitThinking('<THINK></Think><Answer>x</ANSWER>');
    expect(s.reasoning).toBe('');
    expect(s.content).toBe('x');
    expect(s.issues).toContain('empty_think');
  });
});

describe('checkFormat', () => {
  const good41 = `<think>ok</think>\n<answer>so ${B('1')}</answer>`;
  it('accepts the canonical formats', () => {
    expect(checkFormat(good41)).toMatchObject({ ok: true, style: 'glm41v', violations: [] });
    expect(checkFormat(`<think>ok</think>\nso ${B('1')}`)).toMatchObject({ ok: true, style: 'glm45v' });
    expect(checkFormat(`  ${good41}\n`).ok).toBe(true);
    expect(checkFormat('<think>a</think><answer>no box is fine for format</answer>').ok).toBe(true);
  });

  it.each([
    ['no think', `<answer>${B('1')}</answer>`, 'missing_think'],
    ['unclosed think', '<think>abc', 'unclosed_think'],
    ['text before think', `hi <think>a</think><answer>${B('1')}</answer>`, 'text_before_think'],
    ['text between think and answer', `<think>a</think>hmm<answer>${B('1')}</answer>`, 'text_outside_answer'],
    ['text after answer', `<think>a</think><answer>${B('1')}</answer> extra`, 'text_outside_answer'],
    ['two think blocks', `<think>a</think><think>b</think><answer>${B('1')}</answer>`, 'nested_tags'],
    ['nested answer', `<think>a</think><answer><answer>${B('1')}</answer></answer>`, 'nested_tags'],
    ['answer inside think', `<think>a<answer>1</answer></think><answer>${B('1')}</answer>`, 'nested_tags'],
    ['two boxes', `<think>a</think><answer>${B('1')} ${B('2')}</answer>`, 'multiple_box_markers'],
    ['box begin only', '<think>a</think><answer><|begin_of_box|>1</answer>', 'unbalanced_box'],
    ['box reversed', '<think>a</think><answer><|end_of_box|>1<|begin_of_box|></answer>', 'unbalanced_box'],
    ['legacy boxed', '<think>a</think><answer>\\boxed{1}</answer>', 'legacy_boxed'],
    ['legacy boxed with space', '<think>a</think><answer>\\boxed {1}</answer>', 'legacy_boxed'],
    ['empty answer', '<think>a</think><answer>  </answer>', 'empty_answer'],
    ['unclosed answer', `<think>a</think><answer>${B('1')}`, 'unclosed_answer'],
  ])('rejects %s', (_name, text, violation) => {
    const f = checkFormat(text);
    expect(f.ok).toBe(false);
    expect(f.violations).toContain(violation);
  });

  it('enforces the requested style', () => {
    expect(checkFormat(`<think>a</think>${B('1')}`, { style: 'glm41v' }).violations).toContain('missing_answer_tags');
    expect(checkFormat(good41, { style: 'glm45v' }).violations).toContain('unexpected_answer_tags');
  });

  it('a box inside think still counts toward the one-box limit (released rule)', () => {
    expect(checkFormat(`<think>${B('1')}</think><answer>${B('1')}</answer>`).violations).toContain(
      'multiple_box_markers',
    );
  });

  it('notes an empty think without failing', () => {
    const f = checkFormat(`<think></think>${B('1')}`);
    expect(f.ok).toBe(true);
    expect(f.notes).toContain('empty_think');
  });

  it('prefilledThink assumes the opening tag', () => {
    expect(checkFormat(`abc</think>${B('1')}`).ok).toBe(false);
    expect(checkFormat(`abc</think>${B('1')}`, { prefilledThink: true }).ok).toBe(true);
    expect(checkFormat(`<think>abc</think>${B('1')}`, { prefilledThink: true }).ok).toBe(true);
  });
});

describe('extractBox (strict)', () => {
  it('extracts exactly one box from the answer part', () => {
    expect(extractBox(`<think>a</think><answer>x ${B(' 12 ')} y</answer>`)).toEqual({
      ok: true,
      value: '12',
      source: 'box',
      count: 1,
    });
    expect(extractBox(`<think>a</think>${B('\\frac{1}{2}')}`)).toMatchObject({ ok: true, value: '\\frac{1}{2}' });
  });

  it.each([
    ['none', '<think>a</think><answer>12</answer>', 'none'],
    ['several', `<think>a</think><answer>${B('1')} or ${B('2')}</answer>`, 'multiple'],
    ['box inside think only', `<think>maybe ${B('5')}</think><answer>5</answer>`, 'only_in_think'],
    ['nested', `<think>a</think><answer><|begin_of_box|>1${B('2')}<|end_of_box|></answer>`, 'nested'],
    ['unclosed', '<think>a</think><answer><|begin_of_box|>1</answer>', 'unclosed'],
    ['stray end', '<think>a</think><answer>1<|end_of_box|></answer>', 'unclosed'],
    ['legacy boxed smuggled', `<think>a</think><answer>${B('1')} \\boxed{2}</answer>`, 'legacy_boxed'],
    ['empty box', `<think>a</think><answer>${B('  ')}</answer>`, 'empty'],
    ['truncated', `<think>thinking ${B('3')}`, 'only_in_think'],
  ])('fails on %s', (_n, text, failure) => {
    const r = extractBox(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.failure).toBe(failure);
  });

  it('ignores a box in think when the answer has its own', () => {
    expect(extractBox(`<think>${B('4')}</think><answer>${B('5')}</answer>`)).toMatchObject({ ok: true, value: '5' });
  });
});

describe('extractBox (lenient)', () => {
  it('prefers box tokens, then the last \\boxed, then Answer:, then the last line', () => {
    expect(extractBox(`${B('1')} then ${B('2')}`, 'lenient')).toMatchObject({ value: '2', source: 'box', count: 2 });
    expect(extractBox('so \\boxed{\\frac{1}{2}} and finally \\boxed{x^{2}}', 'lenient')).toMatchObject({
      value: 'x^{2}',
      source: 'boxed',
      count: 2,
    });
    expect(extractBox('work...\nThe final answer is **17**.', 'lenient')).toMatchObject({
      value: '17',
      source: 'answer_line',
    });
    expect(extractBox('Answer: B\nbecause reasons', 'lenient')).toMatchObject({ value: 'B', source: 'answer_line' });
    expect(extractBox('line one\n  42  \n\n', 'lenient')).toMatchObject({ value: '42', source: 'last_line' });
    expect(extractBox('', 'lenient')).toMatchObject({ ok: false, failure: 'none' });
  });

  it('looks into the reasoning of a truncated response', () => {
    expect(extractBox('<think>so \\boxed{9}', 'lenient')).toMatchObject({ value: '9', source: 'boxed' });
  });
});

describe('findLatexBoxed', () => {
  it('brace-matches and skips nested boxes', () => {
    expect(findLatexBoxed('\\boxed{\\frac{a}{b}} x \\boxed{\\{1,2\\}}')).toEqual(['\\frac{a}{b}', '\\{1,2\\}']);
    expect(findLatexBoxed('\\boxed{a \\boxed{b}}')).toEqual(['a \\boxed{b}']);
    expect(findLatexBoxed('\\boxed{unclosed')).toEqual([]);
    expect(findLatexBoxed('\\fbox{3}')).toEqual(['3']);
  });
});

describe('parseResponse', () => {
  it('combines split, format and extraction', () => {
    const r = parseResponse(`<think>r</think><answer>${B('x=1')}</answer>`);
    expect(r.answer).toBe('x=1');
    expect(r.format.ok).toBe(true);
    expect(r.reasoning).toBe('r');
  });
  // 200k near-miss closing tags: a quadratic scan would not finish, so the test timeout is a generous hang guard
  // rather than a timed assertion.
  it('a giant response is parsed in linear time', () => {
    const big = `<think>${'</think'.repeat(200_000)}</think><answer>${B('1')}</answer>`;
    const r = parseResponse(big);
    expect(r.answer).toBe('1');
  }, 30_000);
});

describe('ThinkStreamSplitter', () => {
  const full = `<think>step one</think><answer>It is ${B('4')}</answer>`;

  function run(chunks: string[], opts = {}) {
    const s = new ThinkStreamSplitter(opts);
    let reasoning = '';
    let content = '';
    for (const c of chunks) {
      const d = s.push(c);
      expect(d.reasoning + d.content).not.toMatch(/<\/?thi|<\/th/);
      reasoning += d.reasoning;
      content += d.content;
    }
    const d = s.end();
    return { reasoning: reasoning + d.reasoning, content: content + d.content, s };
  }

  it('gives the same result for every chunking, tags split anywhere', () => {
    for (let size = 1; size <= full.length; size++) {
      const chunks: string[] = [];
      for (let i = 0; i < full.length; i += size) chunks.push(full.slice(i, i + size));
      const r = run(chunks);
      expect(r.reasoning).toBe('step one');
      expect(r.content).toBe(`<answer>It is ${B('4')}</answer>`);
      expect(r.s.reasoningDone).toBe(true);
    }
  });

  it('strips answer tags on request', () => {
    const chars = [...full];
    const r = run(chars, { stripAnswerTags: true });
    expect(r.content).toBe(`It is ${B('4')}`);
  });

  it('no <think>: everything is content; a lone "<" is not swallowed', () => {
    expect(run(['<', 'b>hi'])).toMatchObject({ reasoning: '', content: '<b>hi' });
    expect(run(['<th'])).toMatchObject({ reasoning: '', content: '<th' });
  });

  it('pre-opened thinking and an unclosed think', () => {
    const r = run(['abc</th', 'ink>def'], { startInReasoning: true });
    expect(r).toMatchObject({ reasoning: 'abc', content: 'def' });
    const u = run(['<think>abc </thi'], {});
    expect(u.reasoning).toBe('abc </thi');
    expect(u.s.unclosedThink).toBe(true);
  });
});

describe('grounding boxes', () => {
  it('parses every bracket style', () => {
    const text = 'a [10,20,30,40] b [[1, 2, 3, 4],[5,6,7,8]] c (11 12 13 14) d <100,200,300,400> e [1,2,3]';
    expect(parseBoxes(text).map((b) => b.box)).toEqual([
      [10, 20, 30, 40],
      [1, 2, 3, 4],
      [5, 6, 7, 8],
      [11, 12, 13, 14],
      [100, 200, 300, 400],
    ]);
    expect(parseBoxes('[1.5, 2.25, 3e2, 400]')[0]!.box).toEqual([1.5, 2.25, 300, 400]);
    expect(parseBoxes('[1,2,3,4)')).toEqual([]);
  });

  it('flags invalid boxes instead of dropping them', () => {
    expect(parseBoxes('[30,20,10,40]')[0]!.problem).toBe('inverted');
    expect(parseBoxes('[0,0,1001,5]')[0]!.problem).toBe('out_of_range');
    expect(parseBoxes('[-1,0,10,5]')[0]!.problem).toBe('out_of_range');
    expect(parseBoxes('[0,0,1000,5]')[0]!.problem).toBeUndefined();
    expect(parseBoxes('[0,0,1000,5]', { system: 'gui' })[0]!.problem).toBe('out_of_range');
    expect(parseBoxes('[5,5,5,9]')[0]!.problem).toBe('degenerate');
    expect(boxProblem([0, 0, Number.NaN, 1])).toBe('not_finite');
  });

  it('parses points', () => {
    expect(parsePoints("start_box='[376,465]' (1,2) <3 4>")).toEqual([
      [376, 465],
      [1, 2],
      [3, 4],
    ]);
  });

  it('converts normalised <-> pixel coordinates', () => {
    const size = { width: 1920, height: 1080 };
    expect(normToPixel([500, 500, 1000, 1000], size)).toEqual([960, 540, 1920, 1080]);
    expect(pixelToNorm([960, 540, 1920, 1080], size)).toEqual([500, 500, 1000, 1000]);
    expect(pixelToNorm([960, 540, 1920, 1080], size, 'gui')).toEqual([500, 500, 999, 999]);
    expect(pixelPointToNorm([1, 1079], size, 'gui')).toEqual([1, 999]);
    // Round trip within rounding error of one normalised unit.
    const px: Box = [123, 45, 678, 901];
    const back = normToPixel(pixelToNorm(px, size), size);
    for (let i = 0; i < 4; i++) expect(Math.abs(back[i]! - px[i]!)).toBeLessThanOrEqual(1.92 / 2 + 1e-9);
    expect(() => normToPixel([0, 0, 1, 1], { width: 0, height: 10 })).toThrow(/width and height/);
  });

  it('computes IoU and point-in-box', () => {
    expect(iou([0, 0, 10, 10], [0, 0, 10, 10])).toBe(1);
    expect(iou([0, 0, 10, 10], [5, 0, 15, 10])).toBeCloseTo(50 / 150);
    expect(iou([0, 0, 10, 10], [20, 20, 30, 30])).toBe(0);
    expect(iou([10, 10, 0, 0], [0, 0, 10, 10])).toBe(0);
    expect(pointInBox([5, 5], [0, 0, 10, 10])).toBe(true);
    expect(pointInBox([11, 5], [0, 0, 10, 10])).toBe(false);
  });
});

describe('parseGuiAction', () => {
  it('parses AndroidWorld JSON with [[box]] or [box]', () => {
    const a = parseGuiAction('{"action_type": "click", "box_2d": [[503,580,718,702]]}');
    expect(a).toMatchObject({ ok: true, action: { type: 'click', format: 'json', box: [503, 580, 718, 702] } });
    const b = parseGuiAction('{"action_type": "click", "box_2d": [27,840,122,885]}');
    expect(b).toMatchObject({ ok: true, action: { box: [27, 840, 122, 885] } });
  });

  it('parses Python-dict spelling, leading zeros and the agent answer wrapper', () => {
    const a = parseGuiAction(
      "Memory: None\nReason: open it\nAction: {'action_type': 'input_text', 'text': \"it's\", 'box_2d': [[0503,0580,718,702]], 'override': True}",
    );
    expect(a.ok).toBe(true);
    if (!a.ok) return;
    expect(a.action).toMatchObject({ type: 'input_text', text: "it's", box: [503, 580, 718, 702] });
    expect(a.action.args.override).toBe(true);
  });

  it('parses swipe, status and keeps extra keys visible', () => {
    const s = parseGuiAction('{"action_type":"swipe","direction":"UP","start_point":[1,2],"end_point":[3,4]}');
    expect(s).toMatchObject({ ok: true, action: { direction: 'up', point: [1, 2], endPoint: [3, 4] } });
    const st = parseGuiAction('{"action_type":"status","goal_status":"complete","extra":1}');
    expect(st.ok && st.action.args).toEqual({ action_type: 'status', goal_status: 'complete', extra: 1 });
  });

  it('parses OSWorld calls', () => {
    expect(parseGuiAction("left_click(start_box='[376,465]', element_info='Search box')")).toMatchObject({
      ok: true,
      action: { type: 'left_click', format: 'call', point: [376, 465], args: { element_info: 'Search box' } },
    });
    expect(parseGuiAction("left_drag(start_box='[1,2]', end_box='[3,4]')")).toMatchObject({
      ok: true,
      action: { point: [1, 2], endPoint: [3, 4] },
    });
    expect(parseGuiAction("type(content='drip coffee, black')")).toMatchObject({
      ok: true,
      action: { type: 'type', text: 'drip coffee, black' },
    });
    expect(parseGuiAction("scroll(start_box='[5,6]', direction='down', step=5)")).toMatchObject({
      ok: true,
      action: { direction: 'down', args: { step: 5 } },
    });
    expect(parseGuiAction('DONE()')).toMatchObject({ ok: true, action: { type: 'done', args: {} } });
    expect(parseGuiAction("left_click(start_box='[1,2,11,12]')")).toMatchObject({
      ok: true,
      action: { point: [6, 7], box: [1, 2, 11, 12] },
    });
  });

  it('parses WebVoyager actions', () => {
    expect(parseGuiAction('Click [5].')).toMatchObject({ ok: true, action: { type: 'click', element: '5' } });
    expect(parseGuiAction('Type [2]; [5$]')).toMatchObject({ ok: true, action: { type: 'type', text: '5$' } });
    expect(parseGuiAction('Scroll [WINDOW]; [up]')).toMatchObject({ ok: true, action: { direction: 'up' } });
    expect(parseGuiAction('ANSWER; <content>Guatemala</content>')).toMatchObject({
      ok: true,
      action: { type: 'answer', text: 'Guatemala' },
    });
    expect(parseGuiAction('Key; [Return]')).toMatchObject({ ok: true, action: { type: 'key', text: 'Return' } });
    expect(parseGuiAction('Wait')).toMatchObject({ ok: true, action: { type: 'wait' } });
  });

  it('gives clear errors', () => {
    const cases: Array<[string, RegExp]> = [
      ['', /empty/],
      ['{"action_type": "click", "box_2d": [[1,2,3]]}', /box_2d/],
      ['{"box_2d": [[1,2,3,4]]}', /action_type/],
      ['{"action_type": "click"', /unbalanced/],
      ['{"action_type": click}', /invalid JSON/],
      ['dance wildly', /expected a JSON action/],
      ["left_click(start_box='nowhere')", /start_box/],
    ];
    for (const [text, re] of cases) {
      const r = parseGuiAction(text);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error).toMatch(re);
    }
  });
});

describe('parseLooseJson', () => {
  it('accepts Python literals and keeps strings intact', () => {
    expect(parseLooseJson("{'a': None, 'b': [True, False], 'c': 'x, }', 'd': 007, 'e': 0.5,}")).toEqual({
      a: null,
      b: [true, false],
      c: 'x, }',
      d: 7,
      e: 0.5,
    });
    expect(() => parseLooseJson("{'a': 'unterminated}")).toThrow(/unterminated/);
  });
});
