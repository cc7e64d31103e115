import { describe, expect, it } from 'vitest';
import { parseQuantity } from '../../../src/reward/units.js';
import { chemicalKind, chemistryVerifier, normalizeChem } from '../../../src/reward/verifiers/chemistry.js';
import { physicsVerifier } from '../../../src/reward/verifiers/physics.js';
import { verify } from '../helpers.js';

describe('quantities', () => {
  it('parses values with units from LaTeX and text', () => {
    expect(parseQuantity('3.0 \\times 10^{8}\\,\\text{m/s}')).toMatchObject({ value: 3e8, unitText: 'm/s' });
    expect(parseQuantity('7.2 km/h')!.unit!.toNumber('m/s')).toBeCloseTo(2);
    expect(parseQuantity('0.99c')!.value).toBeCloseTo(0.99 * 299792458);
    expect(parseQuantity('25 °C')!.unit!.toNumber('K')).toBeCloseTo(298.15);
    expect(parseQuantity('very close to the speed of light')).toBeNull();
    expect(parseQuantity('5 blorps')!.unitText).toBe('?blorps');
  });
});

describe('physics verifier', () => {
  const ref = { answer: '2 m/s' };
  it('converts units deterministically', async () => {
    expect((await verify(physicsVerifier, '7.2 km/h', ref)).correct).toBe(true);
    expect((await verify(physicsVerifier, '200 cm/s', ref)).correct).toBe(true);
    expect((await verify(physicsVerifier, '2.01 m/s', ref)).correct).toBe(true); // 1% default tolerance
    expect((await verify(physicsVerifier, '2.5 m/s', ref)).correct).toBe(false);
  });
  it('rejects omitted and wrong units, hedges and value-free answers', async () => {
    expect(await verify(physicsVerifier, '2', ref)).toMatchObject({ correct: false, path: 'physics:unit_missing' });
    expect((await verify(physicsVerifier, '2', ref, { requireUnit: false })).correct).toBe(true);
    expect(await verify(physicsVerifier, '2 kg', ref)).toMatchObject({
      correct: false,
      path: 'physics:unit_dimension',
    });
    expect(await verify(physicsVerifier, 'about 2 m/s', ref)).toMatchObject({ correct: false, path: 'physics:hedge' });
    expect(
      await verify(physicsVerifier, 'very close to the speed of light', { answer: '2.9 \\times 10^8 m/s' }),
    ).toMatchObject({
      correct: false,
    });
    expect(await verify(physicsVerifier, 'the speed of light', { answer: '3e8 m/s' })).toMatchObject({
      correct: false,
      path: 'physics:no_value',
    });
  });
  it('uses params.unit for bare-number references and sends formulas to the math path', async () => {
    expect((await verify(physicsVerifier, '3.6 km/h', { answer: '1' }, { unit: 'm/s' })).correct).toBe(true);
    expect((await verify(physicsVerifier, '\\sqrt{2gh}', { answer: '\\sqrt{2 g h}' })).correct).toBe(true);
  });
});

describe('chemistry verifier', () => {
  it('normalises formulas and equations', () => {
    expect(normalizeChem('\\mathrm{H_{2}O}')).toBe('H2O');
    expect(chemicalKind(normalizeChem('2H_2 + O_2 \\rightarrow 2H_2O'))).toBe('reaction');
    expect(chemicalKind('H2SO4')).toBe('formula');
    expect(chemicalKind('12')).toBeNull();
  });
  it('compares species regardless of order, coefficients exactly', async () => {
    const ref = { answer: '2H_2 + O_2 \\rightarrow 2H_2O', domain: 'stem' as const };
    expect((await verify(chemistryVerifier, 'O2 + 2H2 -> 2H2O', ref)).correct).toBe(true);
    expect((await verify(chemistryVerifier, 'H2 + O2 -> H2O', ref)).correct).toBe(false);
    expect((await verify(chemistryVerifier, 'H_2O', { answer: 'H2O' })).correct).toBe(true);
    expect((await verify(chemistryVerifier, 'H2O2', { answer: 'H2O' })).correct).toBe(false);
  });
  it('handles molarity and molar mass units', async () => {
    expect((await verify(chemistryVerifier, '100 mM', { answer: '0.1 M' })).correct).toBe(true);
    expect((await verify(chemistryVerifier, '0.018 kg/mol', { answer: '18 g/mol' })).correct).toBe(true);
    expect((await verify(chemistryVerifier, '18', { answer: '18 g/mol' })).correct).toBe(false);
  });
});
