import { describe, expect, it } from 'vitest';
import { parseGuiAction, parseLooseJson } from '../../../src/io/answer/gui-action.js';

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
