// What the model sees: the system prompt and as much of the conversation's
// history as fits the context budget, counted in real tokens (o200k_base).
import { encode } from 'gpt-tokenizer';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import type { HistoryMessage } from '../../shared/protocol.js';

/** OpenAI's chat format spends a few tokens per message on role and separators. */
const PER_MESSAGE_OVERHEAD = 4;

/** User text may contain special-token strings like <|endoftext|>: count them as plain text, never throw. */
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

export function countTokens(text: string): number {
  return text ? encode(text, PLAIN_TEXT).length : 0;
}

/** The tokenizer loads its rank tables on first use (hundreds of ms): pay that at start-up, not in a first reply. */
export function warmTokenizer(): void {
  countTokens('warm up');
}

/** Every reply counts the same system prompt: remember the last one. */
let systemCount = { text: '', tokens: 0 };
function systemTokens(text: string): number {
  if (systemCount.text !== text) systemCount = { text, tokens: countTokens(text) + PER_MESSAGE_OVERHEAD };
  return systemCount.tokens;
}

export interface ContextMessage {
  /** The history message it was made from. */
  id: string;
  message: ChatCompletionMessageParam;
  tokens: number;
}

/** The OpenAI `name` field allows only [A-Za-z0-9_-]{1,64}. */
function speakerName(name: string): string | undefined {
  const cleaned = name.replace(/[^A-Za-z0-9_-]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 64);
  return cleaned || undefined;
}

/** One history entry as an upstream message, with its token count. */
export function toContextMessage(entry: HistoryMessage): ContextMessage {
  const tokens = countTokens(entry.text) + PER_MESSAGE_OVERHEAD;
  if (entry.role === 'assistant') return { id: entry.id, message: { role: 'assistant', content: entry.text }, tokens };
  const name = entry.author ? speakerName(entry.author.name) : undefined;
  return { id: entry.id, message: { role: 'user', content: entry.text, ...(name ? { name } : {}) }, tokens };
}

export interface BuiltContext {
  messages: ChatCompletionMessageParam[];
  promptTokens: number;
}

/**
 * The newest messages that fit `budget` tokens together with the system
 * prompt. The newest message is always kept, even alone over budget: a
 * request without the question would be useless.
 */
export function buildContext(systemPrompt: string, history: readonly ContextMessage[], budget: number): BuiltContext {
  const system = systemPrompt ? systemTokens(systemPrompt) : 0;
  let used = system;
  let first = history.length;
  while (first > 0) {
    const next = history[first - 1]!;
    if (first < history.length && used + next.tokens > budget) break;
    used += next.tokens;
    first -= 1;
  }
  // A context that opens with an assistant turn confuses some chat templates.
  while (first < history.length - 1 && history[first]!.message.role === 'assistant') {
    used -= history[first]!.tokens;
    first += 1;
  }
  const messages: ChatCompletionMessageParam[] = systemPrompt ? [{ role: 'system', content: systemPrompt }] : [];
  for (let i = first; i < history.length; i++) messages.push(history[i]!.message);
  return { messages, promptTokens: used };
}
