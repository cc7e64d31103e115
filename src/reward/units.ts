/**
 * Physical quantities for the physics and chemistry verifiers: a number with a unit, parsed from LaTeX or plain
 * text and converted deterministically with mathjs units (anchors 3.6: "mathjs units can do most conversions"),
 * instead of sending every unit-bearing answer to an LLM as the released system did.
 */
import { all, create, type Unit } from 'mathjs';
import { latexToPlain } from './math/latex.js';
import { parseMathValue } from './math/value.js';

// A private instance: custom units must not leak into other users of mathjs.
const math = create(all);
const defineUnit = (name: string, definition: string, prefixes?: string) => {
  try {
    math.createUnit(name, prefixes ? { definition, prefixes } : definition);
  } catch {
    // Already defined by this mathjs version.
  }
};
defineUnit('M', '1 mol/L', 'short'); // molarity, with mM, uM, nM
defineUnit('cal', '4.184 J', 'short');
defineUnit('Cal', '4184 J');
defineUnit('mph', '1 mi/h');
defineUnit('kph', '1 km/h');
defineUnit('lightyear', '9.4607304725808e15 m');
defineUnit('ly', '9.4607304725808e15 m');
defineUnit('amu', '1.66053906660e-27 kg');
defineUnit('Da', '1.66053906660e-27 kg', 'short');

export const SPEED_OF_LIGHT = 299_792_458;

export interface Quantity {
  value: number;
  /** The unit, or null for a bare number. */
  unit: Unit | null;
  /** The unit as written after normalisation, e.g. `km/h`. */
  unitText: string;
}

const UNIT_ALIASES: Array<[RegExp, string]> = [
  [/°\s*C|℃|\^\(?\s*circ\s*\)?\s*C|degrees?\s+celsius|celsius/gi, 'degC'],
  [/°\s*F|℉|degrees?\s+fahrenheit|fahrenheit/gi, 'degF'],
  [/°|degrees?\b/gi, 'deg'],
  [/Ω|\bohms?\b/g, 'ohm'],
  [/[µμ]/g, 'u'],
  [/Å/g, 'angstrom'],
  [/[·⋅×*]/g, ' '],
  [/\bsec\b|\bsecs\b|\bseconds?\b/g, 's'],
  [/\bhrs?\b|\bhours?\b/g, 'h'],
  [/\bminutes?\b|\bmins\b/g, 'min'],
  [/\bmeters?\b|\bmetres?\b/g, 'm'],
  [/\bkilograms?\b/g, 'kg'],
  [/\bgrams?\b/g, 'g'],
  [/\bnewtons?\b/g, 'N'],
  [/\bjoules?\b/g, 'J'],
  [/\bwatts?\b/g, 'W'],
  [/\bvolts?\b/g, 'V'],
  [/\bamperes?\b|\bamps?\b/g, 'A'],
  [/\bkelvins?\b/g, 'K'],
  [/\bmoles?\b/g, 'mol'],
  [/\bliters?\b|\blitres?\b/g, 'L'],
  [/\bpascals?\b/g, 'Pa'],
  [/\bhertz\b/g, 'Hz'],
  [/\^\(\s*([-+]?\d+)\s*\)/g, '^$1'],
];

/** Normalises a unit string to mathjs syntax. */
export function normalizeUnit(u: string): string {
  let t = u.trim();
  for (const [re, rep] of UNIT_ALIASES) t = t.replace(re, rep);
  return t
    .replace(/\s+/g, ' ')
    .replace(/\s*\/\s*/g, '/')
    .trim();
}

/**
 * Splits "3.0 × 10^8 m/s", "2\,\text{m/s}", "0.99c", "25 °C", "7.2 km/h" into a value and a unit.
 * Returns null when there is no leading number (text such as "very close to the speed of light").
 */
export function parseQuantity(raw: string): Quantity | null {
  let plain: string;
  // Degree signs are units here, not the math converter's "drop the degree mark".
  const pre = raw
    .replace(/(?:\^\s*\{?\s*\\circ\s*\}?|°)\s*C(?![A-Za-z])|℃/g, ' degC')
    .replace(/(?:\^\s*\{?\s*\\circ\s*\}?|°)\s*F(?![A-Za-z])|℉/g, ' degF')
    .replace(/\^\s*\{?\s*\\circ\s*\}?|°/g, ' deg');
  try {
    plain = latexToPlain(pre);
  } catch {
    return null;
  }
  plain = plain.replace(/\s*\.$/, '').trim();
  if (plain.length > 200) return null;
  // Numeric head: digits, sign, decimal point, exponent forms, ×10^n, fractions.
  const m =
    /^([-+]?(?:\d[\d,]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?:\s*\*\s*10\s*\^\s*\(?\s*[-+]?\d+\s*\)?)?(?:\s*\/\s*\d+(?:\.\d+)?)?)\s*(.*)$/.exec(
      plain,
    );
  if (!m) return null;
  const head = m[1]!.replace(/,(?=\d{3}\b)/g, '');
  let value: number;
  try {
    const v = parseMathValue(head);
    if (v.kind !== 'number') return null;
    value = v.value;
  } catch {
    return null;
  }
  let unitText = m[2]!.trim();
  if (unitText === '') return { value, unit: null, unitText: '' };
  if (unitText === 'c')
    return { value: value * SPEED_OF_LIGHT, unit: math.unit(value * SPEED_OF_LIGHT, 'm/s'), unitText: 'c' };
  if (unitText === '%') return { value: value / 100, unit: null, unitText: '%' };
  unitText = normalizeUnit(unitText);
  try {
    const unit = math.unit(value, unitText);
    return { value, unit, unitText };
  } catch {
    return { value, unit: null, unitText: `?${unitText}` };
  }
}

/** True when the two units measure the same physical dimension. */
export function sameDimension(a: Unit, b: Unit): boolean {
  return a.equalBase(b);
}

/** `q` expressed in `target`'s unit (same dimension required). */
export function convertTo(q: Unit, target: Unit): number {
  return q.toNumber(target.formatUnits());
}

/** Parses a unit string alone (`km/h`), or null. */
export function parseUnit(u: string): Unit | null {
  try {
    return math.unit(1, normalizeUnit(u));
  } catch {
    return null;
  }
}
