// OpenAI's HTTP API on the relay: `POST /v1/chat/completions` (streaming and
// not) and `GET /v1/models`, for every client written against it. A thin
// adapter: each request is a member of a conversation (its own, or the one
// `X-Conversation-Id` names) and sends one message, under the same limits,
// quotas and upstream as a socket; a client that goes away cancels its reply.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ConversationId, describeIssues } from '../../../shared/protocol.js';
import type { ClientMessage } from '../../backend/store.js';
import { RelayError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Conversations } from '../../rooms/conversations.js';
import { readJson, refuseBody, sendJson } from '../body.js';
import { identify, type Caller, type CallerDeps } from '../caller.js';
import { openaiError, sendOpenAIError } from './errors.js';
import { Exchange } from './exchange.js';
import { ChatRequest } from './schema.js';
import type { Upstreams } from '../../upstream/router.js';

export interface OpenAIDeps extends CallerDeps {
  conversations: Conversations;
  upstreams: Upstreams;
  maxTextChars: number;
  maxBodyBytes: number;
  /** Bytes an SSE response may hold unsent before the reader counts as gone. */
  sendBufferLimitBytes: number;
  /** False while the server shuts down. */
  accepting(): boolean;
  log: Logger;
}

/** Handles the request if its path is OpenAI's; false otherwise. */
export function handleOpenAI(req: IncomingMessage, res: ServerResponse, deps: OpenAIDeps): boolean {
  const path = (req.url ?? '').split('?')[0];
  const route = path === '/v1/chat/completions' && req.method === 'POST' ? completions : path === '/v1/models' && req.method === 'GET' ? models : undefined;
  if (!route) return false;
  if (!deps.accepting()) {
    sendOpenAIError(res, 'overloaded', 'the server is shutting down; try another');
    return true;
  }
  void (async () => {
    const caller = await identify(req, deps);
    if (!caller) return sendOpenAIError(res, 'unauthorized', 'Incorrect API key provided.');
    await route(req, res, caller, deps);
  })().catch((err: unknown) => {
    if (err instanceof RelayError) return res.headersSent ? res.destroy() : sendOpenAIError(res, err.code, err.message);
    deps.log.error({ err, path }, 'openai endpoint failed');
    if (res.headersSent) res.destroy();
    else sendOpenAIError(res, 'internal', 'unexpected server error');
  });
  return true;
}

async function models(_req: IncomingMessage, res: ServerResponse, _caller: Caller, deps: OpenAIDeps): Promise<void> {
  const data = deps.upstreams.list().map(({ id }) => ({ id, object: 'model', created: 0, owned_by: 'chat-relay' }));
  sendJson(res, 200, { object: 'list', data });
}

async function completions(req: IncomingMessage, res: ServerResponse, caller: Caller, deps: OpenAIDeps): Promise<void> {
  const body = await readJson(req, deps.maxBodyBytes);
  if (!body.ok) return refuseBody(req, res, body, openaiError('bad_frame', body.message).body);
  const parsed = ChatRequest.safeParse(body.value);
  if (!parsed.success) return sendOpenAIError(res, 'bad_frame', describeIssues(parsed.error));
  const request = parsed.data;
  const last = request.messages.at(-1)!;
  const text = last.role === 'user' ? last.content : '';
  if (!text) return sendOpenAIError(res, 'bad_frame', 'messages: the last message must be a user message with text');
  if (text.length > deps.maxTextChars) return sendOpenAIError(res, 'bad_frame', `messages: the last message is longer than ${deps.maxTextChars} characters`);

  const bound = req.headers['x-conversation-id'];
  const conversationId = typeof bound === 'string' ? bound : `openai-${randomUUID()}`;
  if (typeof bound === 'string' && !ConversationId.safeParse(bound).success) return sendOpenAIError(res, 'bad_frame', 'X-Conversation-Id is not a conversation id');
  if (typeof bound === 'string' && !caller.mayBind(bound)) return sendOpenAIError(res, 'forbidden', 'this key may not use that conversation');

  const exchange = new Exchange(caller, res, {
    stream: request.stream ?? false,
    includeUsage: request.stream_options?.include_usage ?? false,
    model: request.model,
    sendBufferLimitBytes: deps.sendBufferLimitBytes,
  });
  const conversation = deps.conversations.get(conversationId);
  try {
    await conversation.join(exchange.member, undefined, undefined);
    const maxTokens = request.max_completion_tokens ?? request.max_tokens ?? undefined;
    const options = { model: request.model, ...(request.temperature != null ? { temperature: request.temperature } : {}), ...(maxTokens ? { maxTokens } : {}) };
    // A bound exchange answers from the conversation's history; an unbound one from the messages it brought.
    const context = typeof bound === 'string' ? undefined : request.messages.map(toClientMessage);
    const extra = { ...(context ? { context } : {}), ...(caller.keyId ? { keyId: caller.keyId } : {}) };
    const replyId = await conversation.send(exchange.member, { type: 'send', conversationId, text, ref: exchange.member.ref, options }, extra);
    if (replyId) exchange.member.follow(replyId);
    const outcome = await exchange.outcome;
    if (outcome.kind === 'gone' && exchange.replyId) {
      // The client went away: its reply stops, and the upstream request with it.
      await conversation.cancel({ type: 'cancel', conversationId, replyId: exchange.replyId }).catch(() => undefined);
    }
  } finally {
    conversation.leave(exchange.member);
  }
}

function toClientMessage(m: ChatRequest['messages'][number]): ClientMessage {
  return { role: m.role === 'developer' ? 'system' : m.role, content: m.content ?? '' };
}
