/**
 * Chat templates: render a checkpoint's Jinja `chat_template` the way Hugging Face does (trim_blocks and
 * lstrip_blocks, `messages`, `add_generation_prompt`, extra kwargs such as `enable_thinking`), with
 * `@huggingface/jinja`. Ships the GLM-4.1V-Thinking template verbatim and a GLM-4.5V-style one.
 *
 * Messages carry text, image and video parts. The template only writes placeholders
 * (`<|begin_of_image|><|image|><|end_of_image|>`, `<|begin_of_video|><|video|><|end_of_video|>`); the media
 * themselves are collected in prompt order by `collectMedia` for the processor, which expands the placeholders.
 */
import { Template } from '@huggingface/jinja';
import { type AnswerStyle, splitThinking } from './answer/think.js';
import type { ImageSource } from './image.js';
import type { VideoSource } from './video.js';

/** The official GLM-4.1V-9B-Thinking chat template, verbatim. */
export const GLM41V_CHAT_TEMPLATE = `[gMASK]<sop>
{%- for msg in messages %}
    {%- if msg.role == 'system' %}
<|system|>
{{ msg.content }}
    {%- elif msg.role == 'user' %}
<|user|>{{ '\\n' }}

        {%- if msg.content is string %}
{{ msg.content }}
        {%- else %}
            {%- for item in msg.content %}
                {%- if item.type == 'video' or 'video' in item %}
<|begin_of_video|><|video|><|end_of_video|>
                {%- elif item.type == 'image' or 'image' in item %}
<|begin_of_image|><|image|><|end_of_image|>
                {%- elif item.type == 'text' %}
{{ item.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
    {%- elif msg.role == 'assistant' %}
        {%- if msg.metadata %}
<|assistant|>{{ msg.metadata }}
{{ msg.content }}
        {%- else %}
<|assistant|>
{{ msg.content }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{% if add_generation_prompt %}<|assistant|>
{% endif %}`;

/**
 * A GLM-4.5V-style template, written from the GLM-4.5 family's documented behaviour (the verbatim GLM-4.5V file was
 * not available): thinking on by default; `enable_thinking=false` appends `/nothink` to each user turn and primes
 * `<think></think>` after `<|assistant|>`; assistant turns before the last user message keep only their answer
 * (`<think></think>` stands for the dropped reasoning), later ones keep `reasoning_content` or the `<think>` part of
 * their content; tool results use `<|observation|>`.
 */
export const GLM45V_CHAT_TEMPLATE = `[gMASK]<sop>
{%- set ns = namespace(last_user=-1) %}
{%- for m in messages %}
    {%- if m.role == 'user' %}
        {%- set ns.last_user = loop.index0 %}
    {%- endif %}
{%- endfor %}
{%- macro visible_text(content) %}
    {%- if content is string %}
        {{- content }}
    {%- elif content is iterable %}
        {%- for item in content %}
            {%- if item is string %}
                {{- item }}
            {%- elif item.type == 'video' or 'video' in item %}
                {{- '<|begin_of_video|><|video|><|end_of_video|>' }}
            {%- elif item.type == 'image' or 'image' in item %}
                {{- '<|begin_of_image|><|image|><|end_of_image|>' }}
            {%- elif item.type == 'text' %}
                {{- item.text }}
            {%- endif %}
        {%- endfor %}
    {%- elif content is not none %}
        {{- content }}
    {%- endif %}
{%- endmacro %}
{%- for m in messages %}
    {%- if m.role == 'system' %}
        {{- '<|system|>\\n' + visible_text(m.content) }}
    {%- elif m.role == 'user' %}
        {%- set text = visible_text(m.content) %}
        {{- '<|user|>\\n' + text }}
        {%- if enable_thinking is defined and not enable_thinking and not text.endswith('/nothink') %}
            {{- '/nothink' }}
        {%- endif %}
    {%- elif m.role == 'assistant' %}
        {%- set content = visible_text(m.content) %}
        {%- set reasoning = '' %}
        {%- if m.reasoning_content is string %}
            {%- set reasoning = m.reasoning_content %}
        {%- elif '</think>' in content %}
            {%- set reasoning = content.split('</think>')[0].split('<think>')[-1] %}
            {%- set content = content.split('</think>')[-1] %}
        {%- endif %}
        {%- if loop.index0 > ns.last_user and reasoning.strip() %}
            {{- '<|assistant|>\\n<think>' + reasoning.strip() + '</think>' }}
        {%- else %}
            {{- '<|assistant|>\\n<think></think>' }}
        {%- endif %}
        {%- if content.strip() %}
            {{- '\\n' + content.strip() }}
        {%- endif %}
    {%- elif m.role == 'observation' or m.role == 'tool' %}
        {{- '<|observation|>\\n' + visible_text(m.content) }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|assistant|>' }}
    {%- if enable_thinking is defined and not enable_thinking %}
        {{- '\\n<think></think>' }}
    {%- endif %}
{%- endif %}`;

/** The built-in chat templates, one per answer style. */
export type TemplateName = AnswerStyle;

/** Appended to a user turn, asks a GLM model to answer without thinking (paper §4.2; the 4.5V template writes it itself). */
export const NOTHINK = '/nothink';

export const CHAT_TEMPLATES: Readonly<Record<TemplateName, string>> = Object.freeze({
  glm41v: GLM41V_CHAT_TEMPLATE,
  glm45v: GLM45V_CHAT_TEMPLATE,
});

export interface TextPart {
  type: 'text';
  text: string;
}

/** An image part; the source may sit under `image`, `url` or `path` (the HF/OpenAI spellings). */
export interface ImagePart {
  type: 'image';
  image?: ImageSource;
  url?: string;
  path?: string;
}

export interface VideoPart {
  type: 'video';
  video?: VideoSource;
  url?: string;
  path?: string;
}

export type ContentPart = TextPart | ImagePart | VideoPart;

export type Role = 'system' | 'user' | 'assistant' | 'observation' | 'tool';

export interface ChatMessage {
  role: Role;
  content: string | ContentPart[];
  /** Assistant reasoning kept apart from the answer (GLM-4.5V style). */
  reasoning_content?: string;
  /** GLM-4.1V assistant metadata line. */
  metadata?: string;
}

export interface RenderOptions {
  /** End with the assistant prefix so the model writes the reply. Default true. */
  addGenerationPrompt?: boolean;
  /** GLM-4.5V thinking switch (`false` → `/nothink`). Passed to the template only when set. */
  enableThinking?: boolean;
  /**
   * Drop the `<think>…</think>` part of assistant turns that come before the last user message (the released models
   * expect history without reasoning). Default true.
   */
  stripHistoryThinking?: boolean;
  /** More template variables (e.g. `tools`). */
  variables?: Record<string, unknown>;
}

const ROLES: ReadonlySet<string> = new Set(['system', 'user', 'assistant', 'observation', 'tool']);

/** Checks the shape of a message list; throws naming the message and part at fault. */
export function validateMessages(messages: unknown): asserts messages is ChatMessage[] {
  if (!Array.isArray(messages)) throw new Error(`chat: expected an array of messages, found ${typeof messages}`);
  if (messages.length === 0) throw new Error('chat: expected at least one message, found none');
  messages.forEach((m, i) => {
    if (typeof m !== 'object' || m === null)
      throw new Error(`chat message ${i}: expected an object, found ${m === null ? 'null' : typeof m}`);
    const msg = m as Record<string, unknown>;
    if (typeof msg.role !== 'string' || !ROLES.has(msg.role)) {
      throw new Error(
        `chat message ${i}: expected role system, user, assistant, observation or tool, found ${JSON.stringify(msg.role)}`,
      );
    }
    const c = msg.content;
    if (typeof c === 'string') return;
    if (!Array.isArray(c)) {
      throw new Error(
        `chat message ${i} (${msg.role}): expected content to be a string or an array of parts, found ${c === null ? 'null' : typeof c}`,
      );
    }
    c.forEach((p, j) => {
      const part = p as Record<string, unknown>;
      if (typeof p !== 'object' || p === null)
        throw new Error(`chat message ${i} part ${j}: expected an object, found ${typeof p}`);
      if (part.type === 'text') {
        if (typeof part.text !== 'string')
          throw new Error(`chat message ${i} part ${j}: a text part needs a string "text"`);
      } else if (part.type !== 'image' && part.type !== 'video') {
        throw new Error(
          `chat message ${i} part ${j}: expected type text, image or video, found ${JSON.stringify(part.type)}`,
        );
      }
    });
    if (msg.role !== 'user' && c.some((p) => (p as ContentPart).type !== 'text')) {
      // The templates only place media in user turns; elsewhere it would be silently dropped.
      throw new Error(`chat message ${i} (${msg.role}): images and videos are only allowed in user messages`);
    }
  });
}

function withoutThinking(content: string | ContentPart[]): string | ContentPart[] {
  const strip = (text: string): string => {
    if (!text.includes('</think>') && !text.includes('<think>')) return text;
    const s = splitThinking(text);
    return s.hasAnswerTags ? `<answer>${s.content}</answer>` : s.content;
  };
  if (typeof content === 'string') return strip(content);
  return content.map((p) => (p.type === 'text' ? { ...p, text: strip(p.text) } : p));
}

/** A compiled chat template. */
export class ChatTemplate {
  private readonly template: Template;

  constructor(
    readonly source: string,
    readonly label = 'chat template',
  ) {
    if (typeof source !== 'string' || source.length === 0)
      throw new Error(`${label}: expected template text, found ${typeof source}`);
    try {
      this.template = new Template(source);
    } catch (e) {
      throw new Error(`${label}: cannot parse the Jinja template (${(e as Error).message})`);
    }
  }

  /** Renders `messages` to the prompt string. */
  render(messages: ChatMessage[], opts: RenderOptions = {}): string {
    validateMessages(messages);
    let msgs = messages;
    if (opts.stripHistoryThinking ?? true) {
      let lastUser = -1;
      msgs.forEach((m, i) => {
        if (m.role === 'user') lastUser = i;
      });
      msgs = msgs.map((m, i) =>
        m.role === 'assistant' && i < lastUser
          ? { ...m, content: withoutThinking(m.content), reasoning_content: undefined }
          : m,
      );
    }
    const vars: Record<string, unknown> = {
      ...(opts.variables ?? {}),
      messages: msgs.map(toTemplateValue),
      add_generation_prompt: opts.addGenerationPrompt ?? true,
    };
    if (opts.enableThinking !== undefined) vars.enable_thinking = opts.enableThinking;
    try {
      return this.template.render(vars);
    } catch (e) {
      throw new Error(`${this.label}: rendering failed (${(e as Error).message})`);
    }
  }
}

/**
 * Plain-object copy of a message for the template: media sources become `true` (only their presence matters) and
 * non-user part lists become their joined text (the templates print non-user content as a string).
 */
function toTemplateValue(m: ChatMessage): Record<string, unknown> {
  const out: Record<string, unknown> = { role: m.role };
  if (m.metadata !== undefined) out.metadata = m.metadata;
  if (m.reasoning_content !== undefined) out.reasoning_content = m.reasoning_content;
  if (typeof m.content === 'string') out.content = m.content;
  else if (m.role !== 'user') out.content = m.content.map((p) => (p.type === 'text' ? p.text : '')).join('');
  else
    out.content = m.content.map((p) =>
      p.type === 'text' ? { type: 'text', text: p.text } : { type: p.type, [p.type]: true },
    );
  return out;
}

/** Renders with a named built-in template or template text. */
export function renderChat(template: TemplateName | string, messages: ChatMessage[], opts: RenderOptions = {}): string {
  const source = template in CHAT_TEMPLATES ? CHAT_TEMPLATES[template as TemplateName] : template;
  return new ChatTemplate(source).render(messages, opts);
}

/** The images and videos of a conversation, in the order their placeholders appear in the rendered prompt. */
export function collectMedia(messages: ChatMessage[]): { images: ImageSource[]; videos: VideoSource[] } {
  validateMessages(messages);
  const images: ImageSource[] = [];
  const videos: VideoSource[] = [];
  messages.forEach((m, i) => {
    if (typeof m.content === 'string') return;
    m.content.forEach((p, j) => {
      if (p.type === 'text') return;
      const src = p.type === 'image' ? (p.image ?? p.url ?? p.path) : (p.video ?? p.url ?? p.path);
      if (src === undefined || src === null) {
        throw new Error(
          `chat message ${i} part ${j}: ${p.type} part has no source (give "${p.type}", "url" or "path")`,
        );
      }
      if (p.type === 'image') images.push(src as ImageSource);
      else videos.push(src as VideoSource);
    });
  });
  return { images, videos };
}
