// What the model sees: the system prompt and as much of the conversation's
// history as fits the context budget, counted in real tokens (o200k_base).
import { setImmediate as nextTurn } from 'node:timers/promises';
import { countTokens as tokenizerCount } from 'gpt-tokenizer';
import type { HistoryMessage } from '../../shared/protocol.js';
import type { Turn } from '../upstream/dialect.js';
import { attachmentTokens } from '../attachments/load.js';

/** OpenAI's chat format spends a few tokens per message on role and separators. */
const PER_MESSAGE_OVERHEAD = 4;

/** User text may contain special-token strings like <|endoftext|>: count them as plain text, never throw. */
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

/**
 * The tokenizer's byte-pair merge takes time quadratic in the length of one
 * pre-token (a run of letters, of punctuation or of spaces), and one run can
 * be a whole message: 16,000 CJK characters without a space took half a
 * second. So no stretch longer than this reaches the tokenizer in one piece;
 * a longer run is sliced, and its count may be off by about a token per
 * slice. Words of ordinary text are shorter and are counted exactly.
 */
export const MAX_RUN_CHARS = 64;

/**
 * Where an o200k pre-token always starts, whatever comes before or after: at
 * a space or tab (not a line break, which the tokenizer may join to what
 * precedes it) that follows or precedes a non-space, and at punctuation that
 * follows a letter (not an apostrophe, which may start a contraction like
 * 's). Text cut there is tokenized exactly as the whole is.
 */
const WORD_BOUNDARY = /(?<=\S)[^\S\r\n]|[^\S\r\n](?=\S)|(?<=\p{L})[^\s\p{L}\p{N}\p{M}']/gu;

interface Cut {
  at: number;
  /** False for a slice inside a longer stretch, where the tokenizer might not have split. */
  exact: boolean;
}

/** Where `text` may be cut: every word boundary, and every `run` characters inside a longer stretch. */
function* cuts(text: string, run: number): Generator<Cut> {
  let from = 0;
  for (const match of text.matchAll(WORD_BOUNDARY)) {
    yield* slices(text, from, match.index, run);
    yield { at: match.index, exact: true };
    from = match.index;
  }
  yield* slices(text, from, text.length, run);
}

/** Slices text[from, to) into runs of at most `run` characters, never between the halves of a surrogate pair. */
function* slices(text: string, from: number, to: number, run: number): Generator<Cut> {
  for (let at = from + run; at < to; at += run) {
    const code = text.charCodeAt(at - 1);
    if (code >= 0xd800 && code <= 0xdbff) at -= 1;
    yield { at, exact: false };
  }
}

const tokenize = (text: string): number => (text ? tokenizerCount(text, PLAIN_TEXT) : 0);

/** Tokens of `text`: time linear in its length, whatever the text. */
export function countTokens(text: string): number {
  let tokens = 0;
  let from = 0;
  // The tokenizer splits at word boundaries by itself; only the slices of long runs need calls of their own.
  for (const { at, exact } of cuts(text, MAX_RUN_CHARS)) {
    if (exact) continue;
    tokens += tokenize(text.slice(from, at));
    from = at;
  }
  return tokens + tokenize(text.slice(from));
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

/** One history entry as an upstream message. */
export class ContextMessage {
  private counted: number | undefined;

  constructor(
    /** The history message it was made from. */
    readonly id: string,
    readonly turn: Turn,
  ) {}

  get role(): Turn['role'] {
    return this.turn.role;
  }

  get text(): string {
    return this.turn.text;
  }

  /** With the per-message overhead; counted on first use, since a reply reads back only as far as its budget reaches. */
  get tokens(): number {
    this.counted ??= countTokens(this.text + callsText(this.turn)) + PER_MESSAGE_OVERHEAD + (this.turn.role === 'user' ? attachmentTokens(this.turn.attachments) : 0);
    return this.counted;
  }

  get isCounted(): boolean {
    return this.counted !== undefined;
  }

  /** Its turn, with its text cut to fit where it has to be. */
  toTurn(text = this.text): Turn {
    return text === this.text ? this.turn : { ...this.turn, text };
  }
}

/** The tool calls of an assistant turn as the model wrote them: they count against the budget too. */
function callsText(turn: Turn): string {
  return turn.role === 'assistant' && turn.toolCalls ? turn.toolCalls.map((c) => c.name + c.arguments).join('') : '';
}

export function toContextMessage(entry: HistoryMessage): ContextMessage {
  const { id, text } = entry;
  switch (entry.role) {
    case 'user':
      return new ContextMessage(id, { role: 'user', text, name: entry.author?.name, ...(entry.attachments?.length ? { attachments: entry.attachments } : {}) });
    case 'assistant':
      return new ContextMessage(id, { role: 'assistant', text, ...(entry.toolCalls?.length ? { toolCalls: entry.toolCalls } : {}) });
    case 'tool':
      return new ContextMessage(id, { role: 'tool', text, toolCallId: entry.toolCallId ?? '', isError: entry.isError ?? false });
  }
}

/** A context the client sent along (the OpenAI HTTP API), under the same budget as a conversation's history. */
export function clientContext(messages: ReadonlyArray<{ role: 'system' | 'user' | 'assistant'; content: string }>): ContextMessage[] {
  return messages.map((m, i) => new ContextMessage(`client-${i}`, { role: m.role, text: m.content }));
}

export interface BuiltContext {
  messages: Turn[];
  promptTokens: number;
}

/** Characters counted in one turn of the event loop before building a context lets other work in. */
const COUNT_CHARS_PER_TURN = 8_192;

/** What a message being answered keeps, however little room the system prompt leaves it. */
const MIN_NEWEST_TOKENS = 32;

/**
 * The newest messages that fit `budget` tokens together with the system
 * prompt. The newest message (the one being answered) is always sent: if it
 * does not fit on its own, it is sent alone with its middle cut out
 * (`trimMiddle`). So the prompt stays within the budget, unless the system
 * prompt leaves less than MIN_NEWEST_TOKENS for the newest message: then that
 * is what it gets.
 */
export async function buildContext(systemPrompt: string, history: readonly ContextMessage[], budget: number): Promise<BuiltContext> {
  const system = systemPrompt ? systemTokens(systemPrompt) : 0;
  const messages: Turn[] = systemPrompt ? [{ role: 'system', text: systemPrompt }] : [];
  const newest = history.at(-1);
  if (!newest) return { messages, promptTokens: system };
  // A long history is counted over several turns of the event loop, so other sockets are served meanwhile.
  let countedThisTurn = 0;
  const tokensOf = async (m: ContextMessage): Promise<number> => {
    if (m.isCounted) return m.tokens;
    if (countedThisTurn >= COUNT_CHARS_PER_TURN) {
      await nextTurn();
      countedThisTurn = 0;
    }
    countedThisTurn += m.text.length;
    return m.tokens;
  };
  let used = system + (await tokensOf(newest));
  if (used > budget) {
    const text = trimMiddle(newest.text, Math.max(budget - system, MIN_NEWEST_TOKENS) - PER_MESSAGE_OVERHEAD);
    messages.push(newest.toTurn(text));
    return { messages, promptTokens: system + countTokens(text) + PER_MESSAGE_OVERHEAD };
  }
  let first = history.length - 1;
  while (first > 0) {
    const tokens = await tokensOf(history[first - 1]!);
    if (used + tokens > budget) break;
    used += tokens;
    first -= 1;
  }
  // A context that opens with an assistant turn confuses some chat templates, and a tool result without its call is refused.
  while (first < history.length - 1 && (history[first]!.role === 'assistant' || history[first]!.role === 'tool')) {
    used -= history[first]!.tokens;
    first += 1;
  }
  messages.push(...pairToolTurns(history.slice(first).map((m) => m.toTurn())));
  return { messages, promptTokens: used };
}

/**
 * Every provider wants each tool call followed by its result, and each result
 * preceded by its call: a call never answered (its loop was cancelled) and a
 * result whose call fell outside the budget are left out of the context.
 */
function pairToolTurns(turns: Turn[]): Turn[] {
  const called = new Set<string>();
  const answered = new Set<string>();
  for (const t of turns) {
    if (t.role === 'assistant') for (const c of t.toolCalls ?? []) called.add(c.id);
    else if (t.role === 'tool' && called.has(t.toolCallId)) answered.add(t.toolCallId);
  }
  const paired: Turn[] = [];
  for (const t of turns) {
    if (t.role === 'tool' && !answered.has(t.toolCallId)) continue;
    if (t.role !== 'assistant' || !t.toolCalls) {
      paired.push(t);
      continue;
    }
    const toolCalls = t.toolCalls.filter((c) => answered.has(c.id));
    if (toolCalls.length || t.text) paired.push({ role: 'assistant', text: t.text, ...(toolCalls.length ? { toolCalls } : {}) });
  }
  return paired;
}

/** What stands in for the middle of a message cut to fit the budget. */
const CUT_MARKER = ' […] ';

/** Trimming walks a message in steps this short inside words, so that even a small budget is filled. */
const TRIM_STEP_CHARS = 8;

/**
 * `text` in at most `maxTokens` tokens, its middle replaced by CUT_MARKER. A
 * long paste usually carries its question at the start ("Summarize this: …")
 * or at the end ("… what does this mean?"), so both ends are kept, about half
 * the tokens each, cut at word boundaries where there are any.
 */
function trimMiddle(text: string, maxTokens: number): string {
  const ends = [...cuts(text, TRIM_STEP_CHARS)].map((c) => c.at).filter((at, i, all) => at > 0 && at !== all[i - 1]);
  const pieces = [0, ...ends].map((start, i) => text.slice(start, ends[i] ?? text.length));
  let keep = maxTokens - countTokens(CUT_MARKER);
  for (;;) {
    const trimmed = keepEnds(pieces, keep);
    const over = countTokens(trimmed) - maxTokens;
    // Pieces counted one by one can tokenize a little differently where they are joined.
    if (over <= 0 || keep <= 0) return trimmed;
    keep -= over;
  }
}

/** The first and last pieces that fit `keep` tokens between them, about half each, joined by CUT_MARKER. */
function keepEnds(pieces: string[], keep: number): string {
  let head = 0;
  let headTokens = 0;
  for (; head < pieces.length; head++) {
    const tokens = countTokens(pieces[head]!);
    if (headTokens + tokens > Math.ceil(keep / 2)) break;
    headTokens += tokens;
  }
  let tail = pieces.length;
  let tailTokens = 0;
  for (; tail > head; tail--) {
    const tokens = countTokens(pieces[tail - 1]!);
    if (headTokens + tailTokens + tokens > keep) break;
    tailTokens += tokens;
  }
  return pieces.slice(0, head).join('') + CUT_MARKER + pieces.slice(tail).join('');
}
