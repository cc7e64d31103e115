/**
 * Surface forms around a number in an answer: thousands separators in every style, comma decimals, currency signs
 * and codes, unit words (with powers and `/`), percent words. The math verifier compares the number; physics and
 * chemistry parse units themselves before they get here.
 *
 * Every scanner here is linear in the input: tokens come from one global regex of simple alternatives (no nested
 * quantifiers), and the unit suffix is found by walking tokens from the end. Issue #20 measured 82 s for a
 * 43-character answer in the nested-quantifier regex this replaces.
 */

/** Words that may follow a number and carry no mathematical content in a math answer. */
const UNIT_WORDS = new Set(
  // length, area, volume
  (
    'mm cm dm m km nm um μm inch inches in ft foot feet yard yards yd mile miles meter meters metre metres ' +
    'centimeter centimeters centimetre centimetres millimeter millimeters kilometer kilometers kilometre kilometres ' +
    'square sq cubic cu ml mL l L liter liters litre litres gallon gallons cc acre acres hectare hectares ha ' +
    // mass, time, speed, angle, temperature
    'kg g mg gram grams kilogram kilograms lb lbs pound pounds oz ounce ounces ton tons tonne tonnes ' +
    's sec secs second seconds ms min mins minute minutes h hr hrs hour hours day days week weeks month months ' +
    'year years yr yrs mph kph kmh per degree degrees deg rad radian radians celsius fahrenheit ' +
    // money
    'dollar dollars cent cents euro euros yen yuan rmb usd eur gbp cny jpy inr rupee rupees rs ' +
    // counted things and generic units
    'unit units students people persons person ways points cookies apples marbles items times children coins ' +
    'cards balls books pages boxes sides edges faces vertices numbers integers digits'
  ).split(' '),
);
const PERCENT_WORDS = new Set(['percent', 'pct', 'percentage']);
const CURRENCY_SIGNS = '$€£¥₹₩₽¢₺₴₦₱฿';
/** Word-ish tokens, powers `^2` / `^(2)`, single symbols and whitespace: one pass, no nested quantifiers. */
const TOKEN_RE = /[A-Za-zμ]+|\^\(*\d+\)*|\^\d+|\s+|./gsu;

export interface Surface {
  /** The answer without its currency / unit / percent decoration. */
  text: string;
  /** A percent word (`15 percent`, `15 per cent`, `15 pct`) was read as `%`. */
  percent: boolean;
}

/**
 * Strips currency signs and codes before or after a value, and a unit phrase after it (`35 cm^2`, `3 km/h`,
 * `12 square feet`, `4 apples`); percent words become `%`. Returns the input unchanged when the tail is not made
 * only of unit words (so `5 x` or `2 and 3` are never touched).
 */
export function stripSurface(s0: string): Surface {
  let s = s0.trim();
  // Fast path: digits, operators and brackets only.
  if (!/[A-Za-z$€£¥₹₩₽¢₺₴₦₱฿μ]/.test(s)) return { text: s, percent: false };
  let percent = false;
  // Leading currency: `$4.20`, `-$5`, `€ 12`, `USD 12`.
  const lead = /^([-+]?)\s*(?:[$€£¥₹₩₽¢₺₴₦₱฿]|(?:USD|EUR|GBP|CNY|RMB|INR|Rs\.?)(?=[\s\d]))\s*(?=[-+]?[\d.])/.exec(s);
  if (lead) s = lead[1] + s.slice(lead[0].length);
  const tokens = s.match(TOKEN_RE) ?? [];
  let end = tokens.length;
  let sawWord = false;
  let cut = -1;
  while (end > 0) {
    const t = tokens[end - 1]!;
    if (/^\s+$/.test(t) || t === '.' || t === '/' || t === '*' || t === '·' || /^\^/.test(t)) {
      end--;
      continue;
    }
    if (t.length === 1 && CURRENCY_SIGNS.includes(t)) {
      end--;
      cut = end;
      continue;
    }
    if (/^[A-Za-zμ]+$/.test(t)) {
      const w = t.toLowerCase();
      if (PERCENT_WORDS.has(w)) percent = true;
      else if (w === 'cent' && end >= 3 && tokens[end - 3]!.toLowerCase() === 'per') percent = true;
      else if (!UNIT_WORDS.has(t) && !UNIT_WORDS.has(w)) break;
      end--;
      sawWord = true;
      cut = end;
      continue;
    }
    break;
  }
  if (cut < 0) return { text: s.trim(), percent: false };
  const head = tokens.slice(0, cut).join('').trimEnd();
  // The value must end where the unit starts (a digit, a closing bracket or a percent sign) and be a constant:
  // in `pi r^2 h` the `h` is a variable, not hours.
  if (head === '' || !/[\d)\]}%]$/.test(head) || !isConstant(head)) return { text: s.trim(), percent: false };
  if (!sawWord && !percent) return { text: head, percent: false };
  // `per cent` leaves `per` in the unit words consumed above; a `per` that starts the tail means nothing else.
  return { text: head, percent };
}

const CONSTANT_WORDS = new Set(['sqrt', 'nthRoot', 'pi', 'e', 'log', 'log10', 'exp', 'sin', 'cos', 'tan', 'Infinity']);

/** No variables: every word is a function or constant name. */
function isConstant(s: string): boolean {
  for (const w of s.match(/[A-Za-zμ]+/g) ?? []) if (!CONSTANT_WORDS.has(w)) return false;
  return true;
}

const SEPARATED_THOUSANDS = /^[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?$/;
const DOT_THOUSANDS_COMMA_DECIMAL = /^[1-9]\d{0,2}(?:\.\d{3})+,\d+$/;
const DOT_THOUSANDS = /^[1-9]\d{0,2}(?:\.\d{3}){2,}$/;
const SPACE_THOUSANDS = /^[1-9]\d{0,2}(?:[ '’\u00a0\u2009\u202f]\d{3})+(?:[.,]\d+)?$/;
const COMMA_DECIMAL = /^\d+,\d+$/;

/**
 * One number written with grouping or a decimal comma, as a plain decimal string, or null when `s` is not such a
 * number. `2,048.5`, `2.048,5`, `1.234.567`, `48 200`, `1'234`, `3,75`, `0,5`. A single comma followed by exactly
 * three digits is a thousands separator (`3,750` = 3750), as every mainstream grader reads it; `listComma` keeps
 * commas for the caller to split (`1,2` read as the pair 1, 2 rather than 1.2).
 */
export function normalizeNumberToken(s0: string, listComma = false): string | null {
  const s = s0.trim();
  // One cheap test first: digits and separators only, with a separator somewhere.
  if (s.length > 64 || !/^[-+]?\d[\d.,'’ \u00a0\u2009\u202f]*$/.test(s) || !/[.,'’ \u00a0\u2009\u202f]/.test(s))
    return null;
  const sign = s[0] === '-' || s[0] === '+' ? s[0] : '';
  const t = sign ? s.slice(1).trim() : s;
  if (SEPARATED_THOUSANDS.test(t)) return listComma ? null : sign + t.replace(/,/g, '');
  if (DOT_THOUSANDS_COMMA_DECIMAL.test(t)) return sign + t.replace(/\./g, '').replace(',', '.');
  if (DOT_THOUSANDS.test(t)) return sign + t.replace(/\./g, '');
  if (SPACE_THOUSANDS.test(t)) return sign + t.replace(/[ '’\u00a0\u2009\u202f]/g, '').replace(',', '.');
  if (!listComma && COMMA_DECIMAL.test(t)) return sign + t.replace(',', '.');
  return null;
}

/** True when `s` is a lone number whose comma could also separate two values (`1,2`, `3,750`). */
export function hasAmbiguousComma(s: string): boolean {
  const t = s.trim().replace(/^[-+]/, '');
  return t.length < 40 && COMMA_DECIMAL.test(t);
}

/**
 * Joins digit groups separated by spaces, thin spaces or apostrophes inside a longer expression (`x = 48 200`),
 * only where every group after the first has exactly three digits. Linear scan.
 */
export function joinDigitGroups(s: string): string {
  if (!/\d[ '’\u00a0\u2009\u202f]\d/.test(s)) return s;
  let out = '';
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c >= '0' && c <= '9' && !(i > 0 && /[\d.,A-Za-z_]/.test(s[i - 1]!))) {
      let j = i;
      while (j < s.length && s[j]! >= '0' && s[j]! <= '9') j++;
      let run = s.slice(i, j);
      if (j - i <= 3 && s[i] !== '0') {
        let k = j;
        const groups: string[] = [];
        while (
          k + 3 < s.length + 0 &&
          /[ '’\u00a0\u2009\u202f]/.test(s[k]!) &&
          /^\d{3}$/.test(s.slice(k + 1, k + 4)) &&
          !/\d/.test(s[k + 4] ?? '')
        ) {
          groups.push(s.slice(k + 1, k + 4));
          k += 4;
        }
        if (groups.length > 0) {
          run += groups.join('');
          j = k;
        }
      }
      out += run;
      i = j;
      continue;
    }
    out += c;
    i++;
  }
  return out;
}
