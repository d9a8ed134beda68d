// The tool the page itself offers the model with every send: `user_timezone`,
// the time zone and locale of the person asking, as their browser knows them.
// Only the member who asked may answer the calls of a loop, so a page follows
// the loops of its own sends alone: when a step ends with calls of its tool,
// it answers each one once; other pages showing the room leave them be. The
// result shows in the call's card like any other.
import type { Conversation, Reply, ToolSpec } from '../index.js';

export const USER_TIMEZONE = 'user_timezone';

export const PAGE_TOOLS: readonly ToolSpec[] = [
  {
    name: USER_TIMEZONE,
    description: 'The IANA time zone and locale of the person asking, from their browser',
    parameters: { type: 'object', properties: {} },
  },
];

/** What the tool answers: `{"timeZone":"Europe/Paris","locale":"fr-FR"}`. */
export function userTimezone(): string {
  const { timeZone, locale } = Intl.DateTimeFormat().resolvedOptions();
  return JSON.stringify({ timeZone, locale });
}

/** Calls this page has answered (replyId + toolCallId), so that no step answers one twice. */
const answered = new Set<string>();

/**
 * Follow the loop that `reply` (the reply to one of this page's sends) begins:
 * each step that ends with tool calls gets its `user_timezone` calls answered,
 * and the reply the relay starts from the results is followed the same way.
 * The relay bounds the loop; a step that ends otherwise ends it. Resolves when
 * the loop has ended (never, if the relay starts no step after one with calls).
 */
export function followOwnLoop(conv: Conversation, reply: Reply, fail: (message: string) => void): Promise<void> {
  return reply.result.then((result) => {
    if (result.finishReason !== 'tool_calls') return;
    for (const call of reply.pendingToolCalls) {
      const key = `${reply.id}\n${call.id}`;
      if (call.name !== USER_TIMEZONE || answered.has(key)) continue;
      answered.add(key);
      conv.respond(reply.id, call.id, userTimezone()).catch((err: Error) => fail(`${USER_TIMEZONE}: ${err.message}`));
    }
    const next = reply.continuation;
    if (next) return followOwnLoop(conv, next, fail);
    return new Promise<void>((resolve) => reply.once('continuation', (step) => resolve(followOwnLoop(conv, step, fail))));
  });
}
