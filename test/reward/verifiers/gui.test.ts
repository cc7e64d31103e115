import { describe, expect, it } from 'vitest';
import { guiVerifier } from '../../../src/reward/verifiers/gui.js';
import { verify } from '../helpers.js';

const click = { domain: 'gui' as const, answer: '{"action_type": "click", "box_2d": [[100,100,200,200]]}' };

describe('gui verifier', () => {
  it('hits the element with the box centre, in either box spelling or Python-dict form', async () => {
    expect((await verify(guiVerifier, '{"action_type":"click","box_2d":[[120,130,180,170]]}', click)).correct).toBe(
      true,
    );
    expect((await verify(guiVerifier, "{'action_type': 'click', 'box_2d': [150,150,160,160]}", click)).correct).toBe(
      true,
    );
    expect((await verify(guiVerifier, '{"action_type":"click","box_2d":[[300,300,400,400]]}', click)).correct).toBe(
      false,
    );
  });
  it('rejects a different action, extra keys, invalid boxes', async () => {
    expect((await verify(guiVerifier, '{"action_type":"long_press","box_2d":[[120,130,180,170]]}', click)).path).toBe(
      'gui:type',
    );
    const extra = await verify(
      guiVerifier,
      '{"action_type":"click","box_2d":[[120,130,180,170]],"confidence":"high"}',
      click,
    );
    expect(extra).toMatchObject({ correct: false, path: 'gui:keys' });
    expect(
      (
        await verify(guiVerifier, '{"action_type":"click","box_2d":[[120,130,180,170]],"x":1}', click, {
          allowExtraKeys: true,
        })
      ).correct,
    ).toBe(true);
    expect((await verify(guiVerifier, '{"action_type":"click","box_2d":[[180,130,120,170]]}', click)).reason).toMatch(
      /inverted/,
    );
    expect((await verify(guiVerifier, '{"action_type":"click","box_2d":[[120,130,1180,170]]}', click)).reason).toMatch(
      /out of range/,
    );
    expect((await verify(guiVerifier, 'click the OK button', click)).path).toBe('gui:parse');
  });
  it('scores typed text by similarity and other arguments exactly', async () => {
    const type = {
      domain: 'gui' as const,
      answer: '{"action_type":"input_text","text":"hello world","box_2d":[[0,0,500,100]]}',
    };
    expect(
      (await verify(guiVerifier, '{"action_type":"input_text","text":"Hello World","box_2d":[[10,10,400,90]]}', type))
        .correct,
    ).toBe(true);
    const typo = await verify(
      guiVerifier,
      '{"action_type":"input_text","text":"hello wrld","box_2d":[[10,10,400,90]]}',
      type,
    );
    expect(typo.correct).toBe(false);
    expect(typo.score).toBeCloseTo(1 - 1 / 11);
    const swipe = { domain: 'gui' as const, answer: '{"action_type":"swipe","direction":"up"}' };
    expect((await verify(guiVerifier, '{"action_type":"swipe","direction":"UP"}', swipe)).correct).toBe(true);
    expect((await verify(guiVerifier, '{"action_type":"swipe","direction":"down"}', swipe)).correct).toBe(false);
  });
  it('OSWorld points get distance credit; WebVoyager elements match exactly', async () => {
    const os = { domain: 'gui' as const, answer: "left_click(start_box='[500,500]')" };
    expect((await verify(guiVerifier, "left_click(start_box='[500,500]')", os)).score).toBe(1);
    const near = await verify(guiVerifier, "left_click(start_box='[510,500]')", os);
    expect(near.score).toBeCloseTo(0.9);
    expect(near.correct).toBe(true);
    expect((await verify(guiVerifier, "left_click(start_box='[600,600]')", os)).score).toBe(0);
    const web = { domain: 'gui' as const, answer: 'Click [5]' };
    expect((await verify(guiVerifier, 'Click [5].', web)).correct).toBe(true);
    expect((await verify(guiVerifier, 'Click [6]', web)).correct).toBe(false);
  });
});
