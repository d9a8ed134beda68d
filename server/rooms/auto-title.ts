// AUTO_TITLE: after a conversation's first exchange, a short call to the model
// names it, once. The title is written as a configure would write it (a
// `settings` event, by the relay), unless someone named the conversation first.
import { frameCaps } from '../../shared/protocol.js';
import type { Store, StoredEvent } from '../backend/store.js';
import type { Logger } from '../log.js';
import type { Upstreams } from '../upstream/router.js';
import { RELAY_AUTHOR } from './tool-loop.js';

export const TITLE_PROMPT = 'Write a title of at most six words for the conversation below. Answer with the title alone.';
/** What of the exchange the title call is shown: enough to name it, and cheap. */
const EXCHANGE_CHARS = 4_000;
const TITLE_TOKENS = 24;
const TITLE_TIMEOUT_MS = 15_000;

export interface TitleDeps {
  store: Store;
  upstreams: Upstreams;
  log: Logger;
}

/** The settings event that names the conversation, or undefined when it needs no title (or the model gave none). */
export async function autoTitle({ store, upstreams, log }: TitleDeps, conversationId: string, model: string): Promise<StoredEvent | undefined> {
  if ((await store.log.meta(conversationId)).settings.title) return undefined;
  const { history } = await store.log.snapshot(conversationId);
  const questions = history.filter((m) => m.role === 'user');
  const answer = history.find((m) => m.role === 'assistant' && m.text !== '');
  if (questions.length !== 1 || !answer) return undefined;
  let text = '';
  const exchange = `${questions[0]!.text}\n\n${answer.text}`.slice(0, EXCHANGE_CHARS);
  const turns = [
    { role: 'system' as const, text: TITLE_PROMPT },
    { role: 'user' as const, text: exchange },
  ];
  await upstreams.stream(model, { turns, maxTokens: TITLE_TOKENS, temperature: 0.2 }, AbortSignal.timeout(TITLE_TIMEOUT_MS), (piece) => void (text += piece.text ?? ''), log);
  const title = cleanTitle(text);
  // Someone may have named it while the model thought.
  if (!title || (await store.log.meta(conversationId)).settings.title) return undefined;
  return store.log.change(conversationId, { type: 'settings', patch: { title }, author: RELAY_AUTHOR });
}

/** The first line, without the quotes and the full stop models like to add. */
export function cleanTitle(text: string): string {
  const line = text.trim().split('\n')[0] ?? '';
  return line
    .replace(/^["'“”‘’*#\s]+|["'“”‘’*.\s]+$/g, '')
    .trim()
    .slice(0, Math.min(80, frameCaps.titleChars));
}
