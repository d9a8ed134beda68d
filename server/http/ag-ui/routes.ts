// AG-UI on the relay: `POST /ag-ui` takes a `RunAgentInput` and answers with
// the run's events over SSE, for `@ag-ui/client`'s HttpAgent and the front
// ends built on it. A thin adapter: the thread is a conversation (its id is
// the conversation id, so `/ws` members watch the run live), and a run is one
// of two things the conversation already does: send the user message that
// ends the input, or answer the tool calls the last run left open, with the
// tool messages that end it (the loop's continuation is the run's reply).
// The relay keeps the thread: earlier messages of the input are not re-read.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorCode } from '../../../shared/codes.js';
import { ClientFrame, ConversationId, describeIssues, type ClientFrameOf, type ToolSpec } from '../../../shared/protocol.js';
import { RelayError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Conversation } from '../../rooms/conversation.js';
import type { Conversations } from '../../rooms/conversations.js';
import { readJson, refuseBody, sendJson } from '../body.js';
import { identify, type Caller, type CallerDeps } from '../caller.js';
import { answerPreflight, corsHeaders } from '../cors.js';
import { HTTP_STATUS } from '../status.js';
import { AgUiRun } from './run.js';
import { RunAgentInput, type AgUiMessage } from './schema.js';

export interface AgUiDeps extends CallerDeps {
  conversations: Conversations;
  maxTextChars: number;
  maxBodyBytes: number;
  sendBufferLimitBytes: number;
  allowedOrigins: ReadonlySet<string> | undefined;
  /** False while the server shuts down. */
  accepting(): boolean;
  log: Logger;
}

/** What a run does, read from the end of its input. */
type Plan =
  | { kind: 'send'; frame: ClientFrameOf<'send'> }
  | { kind: 'results'; replyId: string; frames: Array<ClientFrameOf<'tool.result'>>; open: string[] };

function refuse(res: ServerResponse, code: ErrorCode | 'unauthorized', message: string, headers: Record<string, string> = {}): void {
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  sendJson(res, HTTP_STATUS[code], { error: { code, message } });
}

/** Handles the request if its path is `/ag-ui`; false otherwise. */
export function handleAgUi(req: IncomingMessage, res: ServerResponse, deps: AgUiDeps): boolean {
  if ((req.url ?? '').split('?')[0] !== '/ag-ui') return false;
  const cors = corsHeaders(req, deps.allowedOrigins);
  if (!cors) return (refuse(res, 'forbidden', 'this origin may not use the relay'), true);
  if (req.method === 'OPTIONS') return (answerPreflight(res, cors), true);
  if (req.method !== 'POST') {
    res.setHeader('allow', 'POST, OPTIONS');
    return (sendJson(res, 405, { error: { code: 'bad_frame', message: 'POST a RunAgentInput' } }), true);
  }
  if (!deps.accepting()) return (refuse(res, 'overloaded', 'the server is shutting down; try another', cors), true);
  void (async () => {
    const caller = await identify(req, deps);
    if (!caller) return refuse(res, 'unauthorized', 'a valid token or API key is required', cors);
    const body = await readJson(req, deps.maxBodyBytes);
    if (!body.ok) {
      for (const [name, value] of Object.entries(cors)) res.setHeader(name, value);
      return refuseBody(req, res, body, { error: { code: 'bad_frame', message: body.message } });
    }
    const parsed = RunAgentInput.safeParse(body.value);
    if (!parsed.success) return refuse(res, 'bad_frame', describeIssues(parsed.error), cors);
    const input = parsed.data;
    if (!ConversationId.safeParse(input.threadId).success) return refuse(res, 'bad_frame', 'threadId: 1-128 chars of A-Z a-z 0-9 . _ : -', cors);
    if (!caller.mayBind(input.threadId)) return refuse(res, 'forbidden', 'this token may not use that thread', cors);
    const plan = planOf(input, caller, deps.maxTextChars);
    if (typeof plan === 'string') return refuse(res, 'bad_frame', plan, cors);
    await run(res, caller, input, plan, cors, deps);
  })().catch((err: unknown) => {
    deps.log.error({ err }, 'ag-ui endpoint failed');
    if (res.headersSent) res.destroy();
    else refuse(res, 'internal', 'unexpected server error', cors);
  });
  return true;
}

/** The frame(s) the run sends, or why the input cannot be run. */
function planOf(input: RunAgentInput, caller: Caller, maxTextChars: number): Plan | string {
  const last = input.messages.at(-1)!;
  const conversationId = input.threadId;
  if (last.role === 'user') {
    if (!last.content) return 'messages: the last user message has no text';
    if (last.content.length > maxTextChars) return `messages: the last message is longer than ${maxTextChars} characters`;
    const tools = input.tools?.map((t): ToolSpec => ({ name: t.name, ...(t.description ? { description: t.description } : {}), parameters: t.parameters ?? { type: 'object', properties: {} } }));
    const frame = ClientFrame.safeParse({ type: 'send', conversationId, text: last.content, ...(tools?.length ? { tools } : {}) });
    if (!frame.success) return describeIssues(frame.error);
    return frame.data.type === 'send' ? { kind: 'send', frame: frame.data } : 'not a send';
  }
  if (last.role !== 'tool') return 'messages: the last message must be a user message or the results of tool calls';
  return resultsOf(input.messages, conversationId);
}

/** The tool messages that end the input, as results for the calls of the assistant message before them. */
function resultsOf(messages: AgUiMessage[], conversationId: string): Plan | string {
  const at = messages.findLastIndex((m) => m.role === 'assistant');
  const reply = messages[at];
  if (reply?.role !== 'assistant' || !reply.toolCalls?.length) return 'messages: tool results must follow the assistant message whose calls they answer';
  const frames: Array<ClientFrameOf<'tool.result'>> = [];
  for (const m of messages.slice(at + 1)) {
    if (m.role !== 'tool') return 'messages: only tool results may follow the assistant message whose calls they answer';
    if (!reply.toolCalls.some((c) => c.id === m.toolCallId)) return `messages: ${m.toolCallId} is not a call of message ${reply.id}`;
    const frame = ClientFrame.safeParse({ type: 'tool.result', conversationId, replyId: reply.id, toolCallId: m.toolCallId, output: m.content, ...(m.error ? { isError: true } : {}) });
    if (!frame.success) return describeIssues(frame.error);
    if (frame.data.type === 'tool.result') frames.push(frame.data);
  }
  const answered = new Set(frames.map((f) => f.toolCallId));
  return { kind: 'results', replyId: reply.id, frames, open: reply.toolCalls.map((c) => c.id).filter((id) => !answered.has(id)) };
}

async function run(res: ServerResponse, caller: Caller, input: RunAgentInput, plan: Plan, cors: Record<string, string>, deps: AgUiDeps): Promise<void> {
  const conversation = deps.conversations.get(input.threadId);
  const agui = new AgUiRun(caller, res, { threadId: input.threadId, runId: input.runId, sendBufferLimitBytes: deps.sendBufferLimitBytes, headers: cors });
  try {
    await conversation.join(agui.member, undefined, undefined);
    agui.start();
    const replyId = await begin(conversation, agui, plan, caller);
    if (replyId === undefined) return agui.finishWaiting(plan.kind === 'results' ? plan.open : []);
    agui.member.follow(replyId);
    const outcome = await agui.outcome;
    // The client went away (AbortController, a closed tab): its reply stops, and the upstream request with it.
    // A reader dropped for falling too far behind stops only its own run: the room's reply goes on.
    if (outcome.kind === 'gone' && !agui.overflowed) await conversation.cancel({ type: 'cancel', conversationId: input.threadId, replyId }).catch(() => undefined);
  } catch (err) {
    if (!(err instanceof RelayError)) throw err;
    agui.fail(err.code, err.message);
  } finally {
    conversation.leave(agui.member);
  }
}

/** Send what the plan says; the id of the reply the run follows, if one runs. */
async function begin(conversation: Conversation, agui: AgUiRun, plan: Plan, caller: Caller): Promise<string | undefined> {
  if (plan.kind === 'send') {
    const frame = { ...plan.frame, ref: agui.member.ref };
    return conversation.send(agui.member, frame, caller.keyId ? { keyId: caller.keyId } : {});
  }
  // A front end sends every result again with each run: only the calls still open are answered now.
  const open = await conversation.openToolCalls(plan.replyId);
  if (!open) throw new RelayError('not_found', `message ${plan.replyId} has no tool calls waiting for results`);
  // Set before the results go in: the continuation may start before the last of them returns.
  agui.member.followAnswerTo(plan.replyId);
  let continuation: string | undefined;
  for (const frame of plan.frames.filter((f) => open.has(f.toolCallId))) continuation = (await conversation.toolResult(agui.member, frame)) ?? continuation;
  return continuation;
}
