/**
 * GLM-style tool calling for `glmv serve`: the tools section of the prompt, past calls written back into the
 * conversation, and the parser that turns the model's calls into OpenAI `tool_calls` (what vLLM's `glm45` tool
 * parser returns).
 *
 * GLM-4.5 / 4.5V write a call as
 *
 *     <tool_call>get_weather
 *     <arg_key>city</arg_key>
 *     <arg_value>Paris</arg_value>
 *     </tool_call>
 *
 * and read the available functions from a `# Tools` system block that lists their JSON signatures inside
 * `<tools></tools>`. Tool results go back in `tool` messages (the template's `<|observation|>` turn) wrapped in
 * `<tool_response>`. Argument values are JSON when the function's schema says the parameter is not a string (and the
 * text parses), else the text itself.
 */
import { ApiError, badParam } from './errors.js';

export interface ToolDef {
  name: string;
  description?: string;
  parameters?: Record<string, unknown>;
}

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** Checks the request's `tools` (OpenAI's `{type: "function", function: {name, description?, parameters?}}`). */
export function parseTools(tools: readonly unknown[]): ToolDef[] {
  return tools.map((t, i) => {
    const o = (t ?? {}) as { type?: unknown; function?: Record<string, unknown> };
    const fn = o.function;
    if (o.type !== 'function' || !fn || typeof fn.name !== 'string' || !fn.name)
      throw badParam(`tools[${i}]`, 'a {"type": "function", "function": {"name", …}} object', t);
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(fn.name))
      throw badParam(`tools[${i}].function.name`, 'letters, digits, _ . - (at most 64)', fn.name);
    if (fn.parameters !== undefined && (typeof fn.parameters !== 'object' || fn.parameters === null))
      throw badParam(`tools[${i}].function.parameters`, 'a JSON schema object', fn.parameters);
    return {
      name: fn.name,
      ...(typeof fn.description === 'string' ? { description: fn.description } : {}),
      ...(fn.parameters ? { parameters: fn.parameters as Record<string, unknown> } : {}),
    };
  });
}

/** The `# Tools` system text GLM-4.5-family templates put before the conversation. */
export function toolsSystemText(tools: readonly ToolDef[]): string {
  const sigs = tools.map((t) => JSON.stringify({ type: 'function', function: t })).join('\n');
  return [
    '# Tools',
    '',
    'You may call one or more functions to assist with the user query.',
    '',
    'You are provided with function signatures within <tools></tools> XML tags:',
    '<tools>',
    sigs,
    '</tools>',
    '',
    'For each function call, output the function name and arguments within the following XML format:',
    '<tool_call>{function-name}',
    '<arg_key>{arg-key-1}</arg_key>',
    '<arg_value>{arg-value-1}</arg_value>',
    '<arg_key>{arg-key-2}</arg_key>',
    '<arg_value>{arg-value-2}</arg_value>',
    '...',
    '</tool_call>',
  ].join('\n');
}

/** Past calls of an assistant message (OpenAI `tool_calls`), checked, written the way the model writes them. */
export function renderToolCalls(calls: unknown, at: string): string {
  if (!Array.isArray(calls)) throw badParam(at, 'an array of tool calls', calls);
  return calls
    .map((c, i) => {
      const fn = (c as { function?: { name?: unknown; arguments?: unknown } } | null)?.function;
      if (!fn || typeof fn.name !== 'string') throw badParam(`${at}[${i}].function.name`, 'a string', fn?.name);
      let args: Record<string, unknown> = {};
      if (typeof fn.arguments === 'string' && fn.arguments.trim()) {
        try {
          args = JSON.parse(fn.arguments) as Record<string, unknown>;
        } catch {
          throw badParam(`${at}[${i}].function.arguments`, 'a JSON object string', fn.arguments);
        }
      } else if (fn.arguments && typeof fn.arguments === 'object') args = fn.arguments as Record<string, unknown>;
      if (typeof args !== 'object' || args === null || Array.isArray(args))
        throw badParam(`${at}[${i}].function.arguments`, 'a JSON object', fn.arguments);
      const kv = Object.entries(args)
        .map(
          ([k, v]) =>
            `<arg_key>${k}</arg_key>\n<arg_value>${typeof v === 'string' ? v : JSON.stringify(v)}</arg_value>\n`,
        )
        .join('');
      return `<tool_call>${fn.name}\n${kv}</tool_call>`;
    })
    .join('\n');
}

/** A tool result as the GLM template's observation turn reads it. */
export function toolResponseText(content: string): string {
  return `<tool_response>\n${content}\n</tool_response>`;
}

const CALL_OPEN = '<tool_call>';
const CALL_RE = /<tool_call>([\s\S]*?)(?:<\/tool_call>|$)/g;
const ARG_RE = /<arg_key>([\s\S]*?)<\/arg_key>\s*<arg_value>([\s\S]*?)<\/arg_value>/g;

/** Whether the schema of `tool` declares parameter `key` as a string (its value is then kept as text). */
function isStringParam(tool: ToolDef | undefined, key: string): boolean {
  const props = (tool?.parameters?.properties ?? {}) as Record<string, { type?: unknown }>;
  const t = props[key]?.type;
  return t === 'string' || (Array.isArray(t) && t.length === 1 && t[0] === 'string');
}

/**
 * Splits model output into the text outside calls and the calls. A call cut by the length limit (no
 * `</tool_call>`) is still returned when its name is complete; a call to a function not offered is kept as text.
 */
export function parseToolCalls(
  text: string,
  tools: readonly ToolDef[],
  idOf: (k: number) => string,
): { content: string; calls: ToolCall[] } {
  const byName = new Map(tools.map((t) => [t.name, t]));
  const calls: ToolCall[] = [];
  let content = '';
  let last = 0;
  for (const m of text.matchAll(CALL_RE)) {
    const body = m[1]!;
    const nl = body.search(/\n|<arg_key>/);
    const name = (nl < 0 ? body : body.slice(0, nl)).trim();
    const tool = byName.get(name);
    if (!tool) continue;
    const args: Record<string, unknown> = {};
    for (const a of body.matchAll(ARG_RE)) {
      const key = a[1]!.trim();
      const raw = a[2]!;
      let value: unknown = raw;
      if (!isStringParam(tool, key)) {
        try {
          value = JSON.parse(raw);
        } catch {
          value = raw;
        }
      }
      args[key] = value;
    }
    content += text.slice(last, m.index);
    last = m.index + m[0].length;
    calls.push({ id: idOf(calls.length), type: 'function', function: { name, arguments: JSON.stringify(args) } });
  }
  content += text.slice(last);
  return { content: calls.length ? content.trim() : content, calls };
}

/**
 * Streaming: passes content through until a `<tool_call>` may begin, then holds everything back for `parseToolCalls`
 * at the end (calls go out whole in the last chunk, as complete `tool_calls` deltas).
 */
export class ToolCallHoldback {
  private held = '';
  private calling = false;

  push(delta: string): string {
    if (this.calling) {
      this.held += delta;
      return '';
    }
    const buf = this.held + delta;
    const at = buf.indexOf(CALL_OPEN);
    if (at >= 0) {
      this.calling = true;
      this.held = buf.slice(at);
      return buf.slice(0, at);
    }
    let keep = 0;
    for (let k = Math.min(CALL_OPEN.length - 1, buf.length); k > 0; k--)
      if (buf.endsWith(CALL_OPEN.slice(0, k))) {
        keep = k;
        break;
      }
    this.held = buf.slice(buf.length - keep);
    return buf.slice(0, buf.length - keep);
  }

  /** What was held back (a call, or a partial `<tool_call` prefix that never completed). */
  end(): string {
    const out = this.held;
    this.held = '';
    return out;
  }
}

/** Only `none` and `auto` exist without guided decoding: a required or named call cannot be guaranteed. */
export function checkToolChoice(choice: unknown, hasTools: boolean): 'none' | 'auto' {
  const c = choice ?? (hasTools ? 'auto' : 'none');
  if (c === 'none' || c === 'auto') return c;
  throw new ApiError(
    400,
    `tool_choice: ${JSON.stringify(c)} is not supported by this server (no guided decoding to force a call); send "auto" or "none"`,
    'tool_choice',
    'unsupported_parameter',
  );
}
