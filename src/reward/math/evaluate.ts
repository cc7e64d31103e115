/**
 * A small complex-number evaluator over the whitelisted mathjs AST (value.ts validates the tree first). mathjs
 * `compile` costs about 100 µs per expression; walking our closures costs about a microsecond, and the rule path
 * evaluates every expression at several points, so this is what keeps math checks in the tens of microseconds.
 * Semantics follow mathjs for the supported functions (principal branches, `log(x, b)`, real `nthRoot`).
 */
import type { MathNode } from 'mathjs';

export interface C {
  re: number;
  im: number;
}

const c = (re: number, im = 0): C => ({ re, im });
const add = (a: C, b: C): C => c(a.re + b.re, a.im + b.im);
const sub = (a: C, b: C): C => c(a.re - b.re, a.im - b.im);
const mul = (a: C, b: C): C =>
  a.im === 0 && b.im === 0 ? c(a.re * b.re) : c(a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re);
function div(a: C, b: C): C {
  if (a.im === 0 && b.im === 0) return c(a.re / b.re);
  const d = b.re * b.re + b.im * b.im;
  return c((a.re * b.re + a.im * b.im) / d, (a.im * b.re - a.re * b.im) / d);
}
const abs = (a: C): number => (a.im === 0 ? Math.abs(a.re) : Math.hypot(a.re, a.im));
function exp(a: C): C {
  if (a.im === 0) return c(Math.exp(a.re));
  const m = Math.exp(a.re);
  return c(m * Math.cos(a.im), m * Math.sin(a.im));
}
function log(a: C): C {
  if (a.im === 0 && a.re >= 0) return c(Math.log(a.re));
  // +0 for a real negative argument: the principal branch (mathjs), whatever the sign of a zero imaginary part.
  return c(Math.log(abs(a)), Math.atan2(a.im === 0 ? 0 : a.im, a.re));
}
function sqrt(a: C): C {
  if (a.im === 0) return a.re >= 0 ? c(Math.sqrt(a.re)) : c(0, Math.sqrt(-a.re));
  const r = abs(a);
  const re = Math.sqrt((r + a.re) / 2);
  const im = Math.sign(a.im) * Math.sqrt((r - a.re) / 2);
  return c(re, im);
}
function pow(a: C, b: C): C {
  if (a.im === 0 && b.im === 0) {
    if (a.re >= 0 || Number.isInteger(b.re)) return c(a.re ** b.re);
  }
  if (a.re === 0 && a.im === 0) return b.re > 0 ? c(0) : c(Number.NaN);
  return exp(mul(b, log(a)));
}
function sin(a: C): C {
  return a.im === 0 ? c(Math.sin(a.re)) : c(Math.sin(a.re) * Math.cosh(a.im), Math.cos(a.re) * Math.sinh(a.im));
}
function cos(a: C): C {
  return a.im === 0 ? c(Math.cos(a.re)) : c(Math.cos(a.re) * Math.cosh(a.im), -Math.sin(a.re) * Math.sinh(a.im));
}
const tan = (a: C): C => div(sin(a), cos(a));
const one = c(1);
const realOnly =
  (f: (x: number) => number) =>
  (a: C): C =>
    a.im === 0 ? c(f(a.re)) : c(Number.NaN);

function factorial(n: number): number {
  if (!Number.isInteger(n) || n < 0) return Number.NaN;
  let r = 1;
  for (let i = 2; i <= n && r < Number.POSITIVE_INFINITY; i++) r *= i;
  return r;
}

function binom(n: number, k: number): number {
  if (!Number.isInteger(n) || !Number.isInteger(k) || k < 0 || n < 0 || k > n) return Number.NaN;
  let r = 1;
  for (let i = 1; i <= Math.min(k, n - k); i++) r = (r * (n - i + 1)) / i;
  return Math.round(r);
}

const FUNCS: Record<string, (args: C[]) => C> = {
  sqrt: ([a]) => sqrt(a!),
  nthRoot: ([a, n]) => {
    if (a!.im !== 0 || n!.im !== 0) return c(Number.NaN);
    const x = a!.re;
    const k = n!.re;
    if (x < 0) return Number.isInteger(k) && k % 2 !== 0 ? c(-((-x) ** (1 / k))) : c(Number.NaN);
    return c(x ** (1 / k));
  },
  sin: ([a]) => sin(a!),
  cos: ([a]) => cos(a!),
  tan: ([a]) => tan(a!),
  sec: ([a]) => div(one, cos(a!)),
  csc: ([a]) => div(one, sin(a!)),
  cot: ([a]) => div(cos(a!), sin(a!)),
  asin: ([a]) => realOnly(Math.asin)(a!),
  acos: ([a]) => realOnly(Math.acos)(a!),
  atan: ([a]) => realOnly(Math.atan)(a!),
  sinh: ([a]) => realOnly(Math.sinh)(a!),
  cosh: ([a]) => realOnly(Math.cosh)(a!),
  tanh: ([a]) => realOnly(Math.tanh)(a!),
  log: ([a, b]) => (b ? div(log(a!), log(b)) : log(a!)),
  log10: ([a]) => div(log(a!), c(Math.LN10)),
  log2: ([a]) => div(log(a!), c(Math.LN2)),
  exp: ([a]) => exp(a!),
  abs: ([a]) => c(abs(a!)),
  floor: ([a]) => realOnly(Math.floor)(a!),
  ceil: ([a]) => realOnly(Math.ceil)(a!),
  factorial: ([a]) => (a!.im === 0 ? c(factorial(a!.re)) : c(Number.NaN)),
  combinations: ([n, k]) => (n!.im === 0 && k!.im === 0 ? c(binom(n!.re, k!.re)) : c(Number.NaN)),
};

const CONSTANTS: Record<string, C> = {
  pi: c(Math.PI),
  e: c(Math.E),
  i: c(0, 1),
  Infinity: c(Number.POSITIVE_INFINITY),
};

export type Scope = Record<string, number>;
type Fn = (scope: Scope) => C;

interface N {
  type: string;
  value?: unknown;
  name?: string;
  fn?: string | { name?: string };
  op?: string;
  args?: MathNode[];
  content?: MathNode;
}

/** Compiles a validated AST into a closure. Throws on node kinds the validator should have rejected. */
export function compileNode(node: MathNode): Fn {
  const n = node as unknown as N;
  switch (n.type) {
    case 'ConstantNode': {
      const v = c(Number(n.value));
      return () => v;
    }
    case 'ParenthesisNode':
      return compileNode(n.content!);
    case 'SymbolNode': {
      const name = n.name!;
      const k = CONSTANTS[name];
      if (k) return () => k;
      return (scope) => {
        const v = scope[name];
        return v === undefined ? c(Number.NaN) : c(v);
      };
    }
    case 'OperatorNode': {
      const args = n.args!.map(compileNode);
      const a = args[0]!;
      const b = args[1];
      switch (n.fn as string) {
        case 'add':
          return (s) => add(a(s), b!(s));
        case 'subtract':
          return (s) => sub(a(s), b!(s));
        case 'multiply':
          return (s) => mul(a(s), b!(s));
        case 'divide':
          return (s) => div(a(s), b!(s));
        case 'pow':
          return (s) => pow(a(s), b!(s));
        case 'unaryMinus':
          return (s) => {
            const x = a(s);
            return c(-x.re, x.im === 0 ? 0 : -x.im);
          };
        case 'unaryPlus':
          return a;
        case 'factorial':
          return (s) => FUNCS.factorial!([a(s)]);
      }
      throw new Error(`unsupported operator ${String(n.fn)}`);
    }
    case 'FunctionNode': {
      const name = typeof n.fn === 'object' ? (n.fn?.name ?? '') : String(n.fn);
      const f = FUNCS[name];
      if (!f) throw new Error(`unsupported function ${name}`);
      const args = n.args!.map(compileNode);
      if (args.length === 1) {
        const a = args[0]!;
        return (s) => f([a(s)]);
      }
      return (s) => f(args.map((g) => g(s)));
    }
  }
  throw new Error(`unsupported node ${n.type}`);
}
