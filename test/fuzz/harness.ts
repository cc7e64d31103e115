/**
 * The standing fuzz harness (issue #20): random and mutated input into the answer parser, every verifier, the math
 * checker and the safetensors loader — each call in a worker under a hard deadline, so a hang or a super-linear
 * regex fails with the input printed — and mutated request bodies into both servers (no 5xx, errors in the
 * server's own shape, an answer within the deadline). `test/fuzz/fuzz.test.ts` runs it with a fixed seed and a
 * small budget in CI; `npm run bench:fuzz` runs it long for nightly use.
 */
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import type { Sample, VerifierType } from '../../src/data/sample.js';
import { DeadlinePool } from '../../src/reward/deadline-pool.js';
import type { FuzzReply, FuzzTask } from './fuzz-worker.js';

export interface FuzzOptions {
  seed: number;
  /** Inputs per target. */
  numRuns: number;
  /** Hard limit of one call (ms). */
  deadlineMs: number;
  /** Called after each input with the target's name. */
  onRun?: (target: string) => void;
}

/** Fragments the parsers and checkers treat specially; repeated, they are where backtracking hides. */
const FRAGMENTS = [
  '<think>',
  '</think>',
  '<answer>',
  '</answer>',
  '<|begin_of_box|>',
  '<|end_of_box|>',
  '\\boxed{',
  '{',
  '}',
  '(',
  ')',
  '[',
  ']',
  '\\frac',
  '\\sqrt',
  '\\left(',
  '\\right)',
  '\\text{',
  '^',
  '_',
  '1',
  '0.5',
  '-3',
  '1e308',
  ' word',
  ' ',
  '\n',
  '!',
  ',',
  '.',
  '%',
  '$',
  '\\$',
  'x',
  'y=',
  ' or ',
  ' and ',
  'm/s^2',
  'km',
  'A',
  '(B)',
  'Answer:',
  'Final answer:',
  '\\pi',
  '\\infty',
  '\\cup',
  '=',
  '<',
  '\\le',
  'H2O',
  '<|box_start|>',
  '[[1,2,3,4]]',
  'click(',
  '\u0000',
  '\uffff',
  '😀',
];

const REFERENCE_ANSWERS = [
  '1',
  '1/2',
  '\\frac{\\sqrt{3}}{2}',
  '(1, 2)',
  'x^2+1',
  '9.8 m/s^2',
  '[1, 3)',
  '42%',
  'B',
  'cat',
];

/** Random strings, fragment soups and long repetitions of one fragment. */
export function answerText(): fc.Arbitrary<string> {
  const soup = fc.array(fc.oneof(fc.constantFrom(...FRAGMENTS), fc.string({ maxLength: 6 })), { maxLength: 60 });
  const repeated = fc
    .tuple(
      fc.constantFrom(...REFERENCE_ANSWERS, ''),
      fc.constantFrom(...FRAGMENTS),
      fc.integer({ min: 1, max: 400 }),
      fc.constantFrom('', '!', '?', 'x', '}'),
    )
    .map(([head, frag, n, tail]) => `${head}${frag.repeat(n)}${tail}`);
  return fc.oneof(
    fc.string({ maxLength: 200, unit: 'binary' }),
    soup.map((xs) => xs.join('')),
    repeated,
  );
}

/** A sample for each verifier, with a reference it can decide on. */
export function sampleFor(v: VerifierType, answer: string): Sample {
  const base: Sample = {
    id: `fuzz/${v}`,
    domain: 'stem',
    source: 'fuzz',
    split: 'test',
    images: [],
    question: 'q',
    answer,
    verifier: { type: v },
  };
  switch (v) {
    case 'multiple_choice':
    case 'video':
      return { ...base, domain: v === 'video' ? 'video' : 'stem', answer: 'B', options: ['red', 'blue', 'green'] };
    case 'grounding':
      return { ...base, domain: 'grounding', answer: '[100, 200, 300, 400]' };
    case 'gui':
      return { ...base, domain: 'gui', answer: "click(start_box='(100,200)')" };
    case 'counting':
      return { ...base, domain: 'vqa', answer: '3' };
    case 'ocr':
      return { ...base, domain: 'ocr', answer: 'Hello World' };
    case 'chart':
      return { ...base, domain: 'chart', answer: '2019' };
    case 'general':
    case 'long_doc':
      return { ...base, domain: 'text', answer: 'the cat sat' };
    case 'vqa':
      return { ...base, domain: 'vqa', answer: 'cat' };
    default:
      return base;
  }
}

/** A deadline pool over the fuzz worker. */
export function fuzzPool(deadlineMs: number): DeadlinePool {
  return new DeadlinePool({
    filename: fileURLToPath(new URL('./fuzz-worker.ts', import.meta.url)),
    threads: 1,
    timeoutMs: deadlineMs,
    maxHeapMb: 512,
    label: 'fuzz call',
  });
}

/** Runs one task; throws (failing the property) with the input printed when it overruns or misbehaves. */
export async function call(pool: DeadlinePool, task: FuzzTask): Promise<FuzzReply> {
  const r = await pool.run<FuzzReply>(task);
  const what = () => {
    const { op, ...rest } = task as FuzzTask & Record<string, unknown>;
    if ('bytes' in rest)
      return `${op} of ${(rest.bytes as Uint8Array).length} bytes: ${JSON.stringify(
        Buffer.from(rest.bytes as Uint8Array)
          .toString('latin1')
          .slice(0, 600),
      )}`;
    return `${op} ${JSON.stringify(rest).slice(0, 2000)}`;
  };
  if (r.status === 'timeout') throw new Error(`over the ${pool.timeoutMs} ms deadline: ${what()}`);
  if (r.status !== 'done') throw new Error(`${r.reason}: ${what()}`);
  if (!r.value.ok) throw new Error(`${r.value.why}: ${what()}`);
  return r.value;
}

export const VERIFIER_NAMES: VerifierType[] = [
  'math',
  'physics',
  'chemistry',
  'chart',
  'ocr',
  'vqa',
  'multiple_choice',
  'counting',
  'grounding',
  'spatial',
  'gui',
  'video',
  'long_doc',
  'general',
];

// ------------------------------------------------------------------------------------------------------------
// Safetensors
// ------------------------------------------------------------------------------------------------------------

/** A valid two-tensor file: 8-byte little-endian header length, JSON header, data. */
export function safetensorsFile(header: unknown, data: Uint8Array = new Uint8Array(24)): Uint8Array {
  const json = typeof header === 'string' ? header : JSON.stringify(header);
  const h = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  return new Uint8Array(Buffer.concat([len, h, data]));
}

const VALID_HEADER = {
  a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] },
  b: { dtype: 'F16', shape: [4], data_offsets: [16, 24] },
  __metadata__: { format: 'pt' },
};

/** Mutated headers: fields replaced with random JSON, offsets overlapping or huge, text corrupted, length lied. */
export function safetensorsBytes(): fc.Arbitrary<Uint8Array> {
  const num = fc.oneof(fc.integer({ min: -5, max: 64 }), fc.constantFrom(2 ** 31, 2 ** 53, 1e300, -0, 0.5));
  const tensor = fc.record({
    dtype: fc.oneof(
      fc.constantFrom('F32', 'F16', 'BF16', 'I64', 'U8', 'BOOL', 'F8_E4M3', 'X'),
      fc.jsonValue({ maxDepth: 1 }),
    ),
    shape: fc.oneof(fc.array(num, { maxLength: 4 }), fc.jsonValue({ maxDepth: 1 })),
    data_offsets: fc.oneof(fc.tuple(num, num), fc.array(num, { maxLength: 3 }), fc.jsonValue({ maxDepth: 1 })),
  });
  const header = fc.dictionary(
    fc.oneof(fc.constantFrom('a', 'b', '__metadata__', ''), fc.string({ maxLength: 8 })),
    fc.oneof(tensor, fc.jsonValue({ maxDepth: 2 })),
    { maxKeys: 5 },
  );
  const text = JSON.stringify(VALID_HEADER);
  const corrupted = fc
    .tuple(fc.nat({ max: text.length }), fc.nat({ max: 8 }), fc.string({ maxLength: 8, unit: 'binary' }))
    .map(([at, del, ins]) => text.slice(0, at) + ins + text.slice(at + del));
  const duplicateKey = fc.constant(text.replace('"b":', '"a":'));
  const lying = fc
    .tuple(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.uint8Array({ maxLength: 64 }))
    .map(([n, rest]) => {
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(n);
      return new Uint8Array(Buffer.concat([len, Buffer.from(rest)]));
    });
  return fc.oneof(
    header.map((h) => safetensorsFile(h)),
    corrupted.map((h) => safetensorsFile(h)),
    duplicateKey.map((h) => safetensorsFile(h)),
    lying,
    fc.uint8Array({ maxLength: 40 }),
  );
}

// ------------------------------------------------------------------------------------------------------------
// Request bodies
// ------------------------------------------------------------------------------------------------------------

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function setAt(base: Json, path: number[], value: Json): Json {
  if (path.length === 0 || base === null || typeof base !== 'object') return value;
  const copy: Json = Array.isArray(base) ? [...base] : { ...base };
  const keys = Object.keys(copy);
  if (keys.length === 0) return value;
  const k = keys[path[0]! % keys.length]!;
  (copy as Record<string, Json>)[k] = setAt((copy as Record<string, Json>)[k]!, path.slice(1), value);
  return copy;
}

function dropAt(base: Json, path: number[]): Json {
  if (base === null || typeof base !== 'object') return base;
  const keys = Object.keys(base);
  if (keys.length === 0) return base;
  const k = keys[path[0]! % keys.length]!;
  if (path.length === 1) {
    if (Array.isArray(base)) return base.filter((_, i) => String(i) !== k);
    const { [k]: _, ...rest } = base;
    return rest;
  }
  const copy: Json = Array.isArray(base) ? [...base] : { ...base };
  (copy as Record<string, Json>)[k] = dropAt((copy as Record<string, Json>)[k]!, path.slice(1));
  return copy;
}

/**
 * Request bodies derived from valid ones: a value replaced by random JSON, a key dropped, or the text cut and
 * spliced with random characters. `fix` runs on the parsed object (the serve harness pins max_tokens to 1 so
 * mutation cannot ask for a long generation).
 */
export function mutatedBody(valid: Json[], fix: (o: Json) => Json = (o) => o): fc.Arbitrary<string> {
  const path = fc.array(fc.nat({ max: 20 }), { minLength: 1, maxLength: 5 });
  const base = fc.constantFrom(...valid);
  return fc.oneof(
    fc
      .tuple(base, path, fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>)
      .map(([b, p, v]) => JSON.stringify(fix(setAt(b, p, v)))),
    fc.tuple(base, path).map(([b, p]) => JSON.stringify(fix(dropAt(b, p)))),
    fc
      .tuple(base, fc.nat(), fc.nat({ max: 10 }), fc.string({ maxLength: 10, unit: 'binary' }))
      .map(([b, at, del, ins]) => {
        const t = JSON.stringify(fix(b));
        const i = at % (t.length + 1);
        return t.slice(0, i) + ins + t.slice(i + del);
      }),
  );
}

/** Posts a body; fails on a 5xx, a hang past the deadline, or an error body not in the server's shape. */
export async function postChecked(
  url: string,
  body: string,
  deadlineMs: number,
  errorShape: (json: unknown) => boolean,
): Promise<number> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), deadlineMs);
  let status: number;
  let text: string;
  try {
    const r = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: ac.signal,
    });
    status = r.status;
    text = await r.text();
  } catch (e) {
    throw new Error(
      `no answer within ${deadlineMs} ms (${(e as Error).message}) for body ${JSON.stringify(body.slice(0, 2000))}`,
    );
  } finally {
    clearTimeout(timer);
  }
  if (status >= 500)
    throw new Error(`HTTP ${status} ${text.slice(0, 300)} for body ${JSON.stringify(body.slice(0, 2000))}`);
  if (status >= 400) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new Error(
        `HTTP ${status} with a non-JSON body ${JSON.stringify(text.slice(0, 200))} for body ${JSON.stringify(body.slice(0, 2000))}`,
      );
    }
    if (!errorShape(json))
      throw new Error(
        `HTTP ${status} error not in the server's shape: ${text.slice(0, 300)} for body ${JSON.stringify(body.slice(0, 2000))}`,
      );
  }
  return status;
}

export const openAiError = (j: unknown) => {
  const e = (j as { error?: { message?: unknown; type?: unknown } })?.error;
  return !!e && typeof e.message === 'string' && typeof e.type === 'string';
};
export const rewardError = (j: unknown) => typeof (j as { error?: unknown })?.error === 'string';

export { fc };

// ------------------------------------------------------------------------------------------------------------
// The suite: targets shared by the CI test and the long run
// ------------------------------------------------------------------------------------------------------------

export interface Servers {
  /** Base URL of a reward server. */
  reward: string;
  /** Base URL of a `glmv serve` server. */
  serve: string;
  close(): Promise<void>;
}

/** A reward server and a `glmv serve` on a tiny random model, both on loopback. */
export async function startServers(): Promise<Servers> {
  const { RewardRouter } = await import('../../src/reward/router.js');
  const { buildRewardServer } = await import('../../src/reward/server.js');
  const { ChatModel } = await import('../../src/io/chat.js');
  const { createServer } = await import('../../src/serve/server.js');
  const { tinyModelDir } = await import('../helpers/tinyModelDir.js');
  const router = new RewardRouter();
  const app = buildRewardServer(router);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address() as { port: number };
  const chat = await ChatModel.load(tinyModelDir());
  const glmv = await createServer({ chat, modelName: 'tiny', maxQueue: 4 });
  const serve = await glmv.listen(0, '127.0.0.1');
  // The first scored request loads the verifier workers (seconds under tsx): not part of any input's deadline.
  const [path, body] = REWARD_BODIES[2]!;
  await fetch(`http://127.0.0.1:${addr.port}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return {
    reward: `http://127.0.0.1:${addr.port}`,
    serve,
    async close() {
      await glmv.close(0);
      await app.close();
      await router.close();
    },
  };
}

const PNG_1x1 =
  'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC';

const SERVE_BODIES: Json[] = [
  { messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 },
  {
    messages: [
      { role: 'system', content: 's' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'what?' },
          { type: 'image_url', image_url: { url: PNG_1x1 } },
        ],
      },
    ],
    max_tokens: 1,
    temperature: 0.5,
    stream: true,
  },
  { messages: [{ role: 'user', content: 'x' }], max_tokens: 1, n: 2, stop: ['a'], logprobs: true, seed: 1 },
];

const REWARD_BODIES: Array<[string, Json]> = [
  [
    '/get_reward',
    {
      query: ['<|assistant|><think>t</think><answer><|begin_of_box|>1<|end_of_box|></answer>'],
      prompts: [''],
      labels: [
        '{"id":"a","domain":"stem","source":"s","split":"train","images":[],"question":"q","answer":"1","verifier":{"type":"math"}}',
      ],
    },
  ],
  [
    '/verl/compute_score',
    { data_source: 'gsm8k', solution_str: 'The answer is \\boxed{2}', ground_truth: '2', extra_info: { index: 1 } },
  ],
  [
    '/score',
    {
      sample: {
        id: 'a',
        domain: 'stem',
        source: 's',
        split: 'train',
        images: [],
        question: 'q',
        answer: '1/2',
        verifier: { type: 'math' },
      },
      response: '<think>t</think><answer><|begin_of_box|>0.5<|end_of_box|></answer>',
    },
  ],
  [
    '/score/batch',
    {
      items: [
        {
          sample: {
            id: 'b',
            domain: 'vqa',
            source: 's',
            split: 'train',
            images: [],
            question: 'q',
            answer: 'cat',
            verifier: { type: 'vqa' },
          },
          response: '<think>t</think><answer><|begin_of_box|>Cat<|end_of_box|></answer>',
        },
      ],
    },
  ],
];

/** Pins a mutated serve body to one generated token, so mutation cannot ask for a long generation. */
function oneToken(o: Json): Json {
  if (o && typeof o === 'object' && !Array.isArray(o)) {
    const c: { [k: string]: Json } = { ...o, max_tokens: 1 };
    if (typeof c.n === 'number' && c.n > 2) c.n = 2;
    return c;
  }
  return o;
}

export interface Target {
  name: string;
  // biome-ignore lint/suspicious/noExplicitAny: each target has its own input type
  arb: fc.Arbitrary<any>;
  // biome-ignore lint/suspicious/noExplicitAny: as above
  run: (input: any) => Promise<unknown>;
}

export function targets(pool: DeadlinePool, servers: Servers | null, deadlineMs: number): Target[] {
  const out: Target[] = [
    { name: 'answer parser', arb: answerText(), run: (input: string) => call(pool, { op: 'parse', input }) },
    {
      name: 'math checker',
      arb: fc.tuple(answerText(), fc.constantFrom(...REFERENCE_ANSWERS)),
      run: ([input, gold]: [string, string]) => call(pool, { op: 'math', input, gold }),
    },
    ...VERIFIER_NAMES.map(
      (v): Target => ({
        name: `verifier ${v}`,
        arb: fc.tuple(answerText(), fc.constantFrom(...REFERENCE_ANSWERS)),
        run: ([input, ref]: [string, string]) =>
          call(pool, { op: 'verify', verifier: v, sample: sampleFor(v, ref), input }),
      }),
    ),
    {
      name: 'safetensors loader',
      arb: safetensorsBytes(),
      run: (bytes: Uint8Array) => call(pool, { op: 'safetensors', bytes }),
    },
  ];
  if (servers) {
    out.push({
      name: 'glmv serve bodies',
      arb: fc.tuple(fc.constantFrom('/v1/chat/completions', '/v1/completions'), mutatedBody(SERVE_BODIES, oneToken)),
      run: ([path, body]: [string, string]) =>
        postChecked(`${servers.serve}${path}`, body, deadlineMs * 5, openAiError),
    });
    out.push({
      name: 'reward server bodies',
      arb: fc
        .integer({ min: 0, max: REWARD_BODIES.length - 1 })
        .chain((i) => fc.tuple(fc.constant(REWARD_BODIES[i]![0]), mutatedBody([REWARD_BODIES[i]![1]]))),
      run: ([path, body]: [string, string]) =>
        postChecked(`${servers.reward}${path}`, body, deadlineMs * 5, rewardError),
    });
  }
  return out;
}

/** Runs every target for `numRuns` inputs; throws the first failure (input printed, no shrinking). */
export async function runTarget(t: Target, o: FuzzOptions): Promise<void> {
  await fc.assert(
    fc.asyncProperty(t.arb, async (x) => {
      await t.run(x);
      o.onRun?.(t.name);
    }),
    { seed: o.seed, numRuns: o.numRuns, endOnFailure: true },
  );
}
