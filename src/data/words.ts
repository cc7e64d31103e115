/**
 * Word pools for text in images (OCR, documents, GUI, charts), drawn from @faker-js/faker's English locale data
 * with our own seeded RNG (faker's generator is not used, so the data depends only on our seeds). Each pool is
 * split by a fixed hash partition: the held-out split draws only from its own part, so held-out words never
 * appear in training images (pools under 64 words are shared; the key partition still separates the samples).
 */
import { faker } from '@faker-js/faker/locale/en';
import type { Rng } from '../util/rng.js';
import { isHeldoutValue } from './generate.js';
import type { Split } from './generators/types.js';

const defs = faker.rawDefinitions as unknown as Record<string, Record<string, unknown>>;

function strings(v: unknown): string[] {
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  if (v && typeof v === 'object') return Object.values(v).flatMap(strings);
  return [];
}

/** Printable ASCII only: the shipped OCR fonts cover nothing else, and templates ("{{…}}") are dropped. */
function clean(list: string[], maxLen = 14): string[] {
  const seen = new Set<string>();
  for (const w of list) {
    const t = w.trim();
    if (t && t.length <= maxLen && /^[A-Za-z][A-Za-z' -]*$/.test(t) && !t.includes('{')) seen.add(t);
  }
  return [...seen].sort();
}

const RAW: Record<string, () => string[]> = {
  noun: () => clean(strings(defs.word?.noun)),
  adjective: () => clean(strings(defs.word?.adjective)),
  verb: () => clean(strings(defs.word?.verb)),
  firstName: () =>
    clean(strings((defs.person?.first_name as Record<string, unknown>)?.generic ?? defs.person?.first_name)),
  lastName: () =>
    clean(strings((defs.person?.last_name as Record<string, unknown>)?.generic ?? defs.person?.last_name)),
  city: () => clean(strings(defs.location?.city_name)),
  product: () => clean(strings((defs.commerce?.product_name as Record<string, unknown>)?.product)),
  material: () => clean(strings((defs.commerce?.product_name as Record<string, unknown>)?.material)),
  department: () => clean(strings(defs.commerce?.department)),
  companyNoun: () => clean(strings(defs.company?.buzz_noun)),
  animal: () => clean(strings(defs.animal?.type)),
  fruit: () =>
    clean([
      'apple',
      'banana',
      'cherry',
      'grape',
      'lemon',
      'mango',
      'melon',
      'orange',
      'peach',
      'pear',
      'plum',
      'kiwi',
      'lime',
      'fig',
      'apricot',
      'papaya',
      'guava',
      'coconut',
      'olive',
      'berry',
    ]),
};

const cache = new Map<string, string[]>();

export type PoolName = keyof typeof RAW;
export const POOL_NAMES = Object.keys(RAW) as PoolName[];

/** The words of a pool that belong to a split (held-out: a fixed 1/8 of the pool; train: the rest). */
export function pool(name: PoolName, split: Split): string[] {
  const k = `${name}|${split}`;
  let p = cache.get(k);
  if (!p) {
    const make = RAW[name];
    if (!make) throw new Error(`words: unknown pool "${name}"; expected one of ${POOL_NAMES.join(', ')}`);
    const all = make();
    // Pools too small to split (product and material names) are shared; their items still differ by key.
    p = all.length < 64 ? all : all.filter((w) => isHeldoutValue(name, w) === (split === 'heldout'));
    if (p.length === 0) throw new Error(`words: pool "${name}" has no ${split} words (faker data missing?)`);
    cache.set(k, p);
  }
  return p;
}

export function word(rng: Rng, name: PoolName, split: Split, maxLen = 14): string {
  const p = pool(name, split).filter((w) => w.length <= maxLen);
  if (p.length === 0) throw new Error(`words: pool "${name}" has no ${split} words of length <= ${maxLen}`);
  return rng.pick(p);
}

/** Distinct words from a pool. */
export function words(rng: Rng, name: PoolName, split: Split, n: number, maxLen = 14): string[] {
  const p = rng.shuffle(pool(name, split).filter((w) => w.length <= maxLen));
  if (p.length < n)
    throw new Error(`words: pool "${name}" has only ${p.length} ${split} words of length <= ${maxLen}, need ${n}`);
  return p.slice(0, n);
}

export function fullName(rng: Rng, split: Split): string {
  return `${word(rng, 'firstName', split, 9)} ${word(rng, 'lastName', split, 10)}`;
}

export function productName(rng: Rng, split: Split): string {
  return `${word(rng, 'material', split, 8)} ${word(rng, 'product', split, 8)}`;
}

export function titleCase(s: string): string {
  return s.replace(/\b[a-z]/g, (c) => c.toUpperCase());
}
