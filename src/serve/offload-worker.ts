/**
 * Worker for the server's CPU-heavy request work (./offload.ts): parsing a large JSON body and tokenizing a prompt,
 * so a big request never stalls the event loop that answers `/health` and streams other requests.
 */
import { GlmTokenizer } from '../io/tokenizer.js';

export type OffloadTask =
  | { op: 'echo' }
  | { op: 'parse'; body: Uint8Array; maxTextChars: number }
  | { op: 'encode'; dir: string; text: string; addSpecialTokens: boolean };

export type ParseReply = { value: unknown } | { error: string } | { textChars: number };

const tokenizers = new Map<string, Promise<GlmTokenizer>>();

/** Characters of the strings a prompt is made of (media data URLs excluded), stopping past `limit`. */
export function textChars(v: unknown, limit: number): number {
  let n = 0;
  const stack: unknown[] = [v];
  while (stack.length && n <= limit) {
    const x = stack.pop();
    if (typeof x === 'string') {
      if (!x.startsWith('data:')) n += x.length;
    } else if (Array.isArray(x)) stack.push(...x);
    else if (x && typeof x === 'object') stack.push(...Object.values(x));
  }
  return n;
}

export default async function offload(t: OffloadTask): Promise<unknown> {
  if (t.op === 'echo') return { ok: true };
  if (t.op === 'parse') {
    let value: unknown;
    try {
      // Prototype-poisoning keys are refused, as fastify's own parser does.
      value = JSON.parse(Buffer.from(t.body.buffer, t.body.byteOffset, t.body.byteLength).toString('utf8'), (k, v) => {
        if (k === '__proto__') throw new SyntaxError('"__proto__" is not allowed as a key');
        return v;
      });
    } catch (e) {
      return { error: (e as Error).message } satisfies ParseReply;
    }
    // A prompt far past any context is refused here, so its text is never copied back to the event loop.
    const chars = textChars(value, t.maxTextChars);
    if (chars > t.maxTextChars) return { textChars: chars } satisfies ParseReply;
    return { value } satisfies ParseReply;
  }
  let tok = tokenizers.get(t.dir);
  if (!tok) {
    tok = GlmTokenizer.fromPretrained(t.dir);
    tokenizers.set(t.dir, tok);
  }
  return (await tok).encode(t.text, { addSpecialTokens: t.addSpecialTokens });
}
