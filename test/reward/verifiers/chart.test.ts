import { describe, expect, it } from 'vitest';
import { chartVerifier, parseChartNumber } from '../../../src/reward/verifiers/chart.js';
import { verify } from '../helpers.js';

const chart = { domain: 'chart' as const };

describe('chart verifier', () => {
  it('parses chart numbers', () => {
    expect(parseChartNumber('$1,234.5')).toMatchObject({ value: 1234.5 });
    expect(parseChartNumber('12.5%')).toMatchObject({ value: 12.5, percent: true });
    expect(parseChartNumber('3.5 million')).toMatchObject({ value: 3.5e6 });
    expect(parseChartNumber('blue')).toBeNull();
  });
  it('accepts numbers within 2.5% but years only exactly', async () => {
    expect((await verify(chartVerifier, '102', { ...chart, answer: '100' })).correct).toBe(true);
    expect((await verify(chartVerifier, '103', { ...chart, answer: '100' })).correct).toBe(false);
    expect(await verify(chartVerifier, '2020', { ...chart, answer: '2019' })).toMatchObject({
      correct: false,
      path: 'chart:year',
    });
    expect((await verify(chartVerifier, '2019.4', { ...chart, answer: '2019' })).correct).toBe(false);
    expect((await verify(chartVerifier, '2019.0', { ...chart, answer: '2019' })).correct).toBe(true);
    expect((await verify(chartVerifier, '2,019', { ...chart, answer: '2019' })).correct).toBe(true);
    expect((await verify(chartVerifier, '2020', { ...chart, answer: '2019' }, { yearRule: false })).correct).toBe(true);
  });
  it('handles percent variants, hedges and text', async () => {
    expect((await verify(chartVerifier, '0.25', { ...chart, answer: '25%' })).correct).toBe(true);
    expect((await verify(chartVerifier, '25', { ...chart, answer: '25%' })).correct).toBe(true);
    expect(await verify(chartVerifier, '95-105', { ...chart, answer: '100' })).toMatchObject({
      correct: false,
      path: 'chart:hedge',
    });
    expect((await verify(chartVerifier, 'The Blue line', { ...chart, answer: 'blue line' })).correct).toBe(true);
    expect(await verify(chartVerifier, 'red', { ...chart, answer: 'blue' })).toMatchObject({
      correct: false,
      confident: false,
    });
  });
});
