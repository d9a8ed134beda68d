// Wire protocol v1: every frame in both directions, as zod schemas. The server
// and the browser client both import this file; types come from z.infer only.
import { z } from 'zod';
import { ERROR_CODES } from './codes.js';

export const PROTOCOL_VERSION = 1;

/** Caps on what a client may put in a frame, beyond the frame-size limit. */
export const frameCaps = {
  refChars: 64,
  tokenChars: 8192,
  idChars: 128,
  textChars: 32_000,
  modelChars: 128,
  maxTokens: 131_072,
  /** Tools one send may offer the model, and the characters of their JSON together. */
  tools: 32,
  toolsChars: 32_768,
  toolDescriptionChars: 1024,
} as const;

export const ConversationId = z
  .string()
  .regex(/^[A-Za-z0-9._:-]{1,128}$/, 'conversationId must be 1-128 chars of A-Z a-z 0-9 . _ : -');
const Ref = z.string().max(frameCaps.refChars).optional();
const Id = z.string().min(1).max(frameCaps.idChars);
const Seq = z.number().int().nonnegative();

export const User = z.object({ id: z.string(), name: z.string() });
export type User = z.infer<typeof User>;

// ---------------------------------------------------------------- client → server

export const SendOptions = z.object({
  model: z.string().min(1).max(frameCaps.modelChars).optional(),
  temperature: z.number().min(0).max(2).optional(),
  maxTokens: z.number().int().min(1).max(frameCaps.maxTokens).optional(),
});
export type SendOptions = z.infer<typeof SendOptions>;

/** A tool the model may call: `parameters` is a JSON Schema object for its arguments. */
export const ToolSpec = z.object({
  name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a tool name is 1-64 chars of A-Z a-z 0-9 _ -'),
  description: z.string().max(frameCaps.toolDescriptionChars).optional(),
  parameters: z.record(z.string(), z.unknown()),
});
export type ToolSpec = z.infer<typeof ToolSpec>;

export const ToolList = z
  .array(ToolSpec)
  .max(frameCaps.tools)
  .refine((tools) => new Set(tools.map((t) => t.name)).size === tools.length, 'tool names must be unique')
  .refine((tools) => JSON.stringify(tools).length <= frameCaps.toolsChars, `tools: at most ${frameCaps.toolsChars} characters of JSON`);

export const ClientFrame = z.discriminatedUnion('type', [
  z.object({ type: z.literal('hello'), ref: Ref, token: z.string().max(frameCaps.tokenChars).optional() }),
  z.object({
    type: z.literal('join'),
    ref: Ref,
    conversationId: ConversationId,
    since: Seq.optional(),
    /** The `joined.epoch` the client's `since` belongs to: a log lost since then answers `reset`. */
    epoch: z.string().max(frameCaps.idChars).optional(),
  }),
  z.object({ type: z.literal('leave'), ref: Ref, conversationId: ConversationId }),
  z.object({
    type: z.literal('send'),
    ref: Ref,
    conversationId: ConversationId,
    text: z.string().min(1).max(frameCaps.textChars),
    clientMessageId: Id.optional(),
    reply: z.boolean().optional(),
    options: SendOptions.optional(),
    /** Tools the model may call while answering; a call is answered with `tool.result`. */
    tools: ToolList.optional(),
  }),
  z.object({ type: z.literal('cancel'), ref: Ref, conversationId: ConversationId, replyId: Id.optional() }),
  /** The output of one tool call of a reply that ended with `tool_calls`. */
  z.object({
    type: z.literal('tool.result'),
    ref: Ref,
    conversationId: ConversationId,
    replyId: Id,
    toolCallId: Id,
    output: z.string().max(frameCaps.textChars),
    isError: z.boolean().optional(),
  }),
  z.object({ type: z.literal('typing'), ref: Ref, conversationId: ConversationId }),
  z.object({ type: z.literal('ping'), ref: Ref }),
  /** A fresh token for the open session, before the current one expires. */
  z.object({ type: z.literal('auth'), ref: Ref, token: z.string().min(1).max(frameCaps.tokenChars) }),
]);
export type ClientFrame = z.infer<typeof ClientFrame>;
export type ClientFrameOf<T extends ClientFrame['type']> = Extract<ClientFrame, { type: T }>;

// ---------------------------------------------------------------- server → client

export const FinishReason = z.enum(['stop', 'length', 'tool_calls', 'content_filter', 'cancelled', 'error']);
export type FinishReason = z.infer<typeof FinishReason>;

export const ErrorCode = z.enum(ERROR_CODES);

export const Usage = z.object({
  promptTokens: z.number().int().nonnegative(),
  completionTokens: z.number().int().nonnegative(),
  totalTokens: z.number().int().nonnegative(),
  source: z.enum(['upstream', 'estimated']),
  /** Prompt tokens the upstream served from its cache (part of promptTokens), where it says so. */
  cachedTokens: z.number().int().nonnegative().optional(),
  /** Completion tokens spent on reasoning (part of completionTokens), where the upstream says so. */
  reasoningTokens: z.number().int().nonnegative().optional(),
});
export type Usage = z.infer<typeof Usage>;

export const ToolCall = z.object({ id: z.string(), name: z.string(), arguments: z.string() });
export type ToolCall = z.infer<typeof ToolCall>;

/**
 * A piece of a tool call as the model writes it: `index` is the call's place in
 * the reply's final `toolCalls`; `id` and `name` come once, with its first
 * piece; `arguments` is the new fragment, so a call's fragments joined in order
 * are its final arguments.
 */
export const ToolCallDelta = z.object({
  index: z.number().int().nonnegative(),
  id: z.string().optional(),
  name: z.string().optional(),
  arguments: z.string().optional(),
});
export type ToolCallDelta = z.infer<typeof ToolCallDelta>;

export const ReplyError = z.object({ code: ErrorCode, message: z.string() });
export type ReplyError = z.infer<typeof ReplyError>;

export const UserMessage = z.object({
  id: z.string(),
  role: z.literal('user'),
  author: User,
  text: z.string(),
  createdAt: z.number(),
  clientMessageId: z.string().optional(),
  /** The tools offered with it (the sender's, and the server's own): every step of the tool loop this message starts offers them. */
  tools: z.array(ToolSpec).optional(),
});
export type UserMessage = z.infer<typeof UserMessage>;

/** A complete message in `joined.history`: a user message, a finished assistant reply, or the result of one of its tool calls. */
export const HistoryMessage = z.object({
  id: z.string(),
  role: z.enum(['user', 'assistant', 'tool']),
  author: User.optional(),
  text: z.string(),
  createdAt: z.number(),
  finishReason: FinishReason.optional(),
  reasoning: z.string().optional(),
  refusal: z.string().optional(),
  toolCalls: z.array(ToolCall).optional(),
  clientMessageId: z.string().optional(),
  /** The model that wrote an assistant message. */
  model: z.string().optional(),
  /** What an assistant message answers: a user message, or (a step of a tool loop) the reply whose calls were answered. */
  inReplyTo: z.string().optional(),
  /** The tools a user message offered. */
  tools: z.array(ToolSpec).optional(),
  /** A tool result: the reply whose call it answers, the call, and whether the tool failed. */
  replyId: z.string().optional(),
  toolCallId: z.string().optional(),
  isError: z.boolean().optional(),
});
export type HistoryMessage = z.infer<typeof HistoryMessage>;

export const Limits = z.object({
  maxFrameBytes: z.number().int(),
  maxConversations: z.number().int(),
  maxActiveReplies: z.number().int(),
  maxQueuedReplies: z.number().int(),
  maxTextChars: z.number().int(),
  /** Frames a socket may send per second, and in a burst, before `rate_limited`. */
  frameRatePerSec: z.number().optional(),
  frameBurst: z.number().int().optional(),
});
export type Limits = z.infer<typeof Limits>;

const Conv = { conversationId: ConversationId };
const Event = { conversationId: ConversationId, seq: Seq };

export const MessageEvent = z.object({
  type: z.literal('message'),
  ...Event,
  ref: Ref,
  message: UserMessage,
  /** The reply that will answer this message (running or queued), so a client can cancel it by id. */
  replyId: z.string().optional(),
});
export const ReplyStartEvent = z.object({
  type: z.literal('reply.start'),
  ...Event,
  replyId: z.string(),
  inReplyTo: z.string(),
  model: z.string(),
});
export const ReplyDeltaEvent = z
  .object({
    type: z.literal('reply.delta'),
    ...Event,
    replyId: z.string(),
    text: z.string().optional(),
    reasoning: z.string().optional(),
    refusal: z.string().optional(),
    toolCall: ToolCallDelta.optional(),
  })
  .refine((d) => d.text || d.reasoning || d.refusal || d.toolCall, 'reply.delta needs text, reasoning, refusal or toolCall');
export const ReplyEndEvent = z.object({
  type: z.literal('reply.end'),
  ...Event,
  replyId: z.string(),
  finishReason: FinishReason,
  usage: Usage.optional(),
  toolCalls: z.array(ToolCall).optional(),
  error: ReplyError.optional(),
});

/** The output of one tool call, from the member who asked (a client tool) or from the relay (an operator tool). */
export const ToolResultEvent = z.object({
  type: z.literal('tool.result'),
  ...Event,
  ref: Ref,
  replyId: z.string(),
  toolCallId: z.string(),
  output: z.string(),
  isError: z.boolean(),
  author: User,
  createdAt: z.number(),
});

/** The events of a conversation: each gets a `seq` and is retained for resume. */
export const ConversationEvent = z.discriminatedUnion('type', [
  MessageEvent,
  ReplyStartEvent,
  ReplyDeltaEvent,
  ReplyEndEvent,
  ToolResultEvent,
]);
export type ConversationEvent = z.infer<typeof ConversationEvent>;
export type ConversationEventOf<T extends ConversationEvent['type']> = Extract<ConversationEvent, { type: T }>;

export const ServerFrame = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('welcome'),
    ref: Ref,
    sessionId: z.string(),
    user: User,
    protocol: z.literal(PROTOCOL_VERSION),
    limits: Limits,
    /** The models a `send` may ask for (`options.model`); the one marked default answers when it names none. */
    models: z.array(z.object({ id: z.string(), default: z.boolean().optional() })).optional(),
  }),
  z.object({
    type: z.literal('joined'),
    ref: Ref,
    ...Conv,
    seq: Seq,
    members: z.array(User),
    history: z.array(HistoryMessage),
    streaming: z
      .object({
        replyId: z.string(),
        text: z.string(),
        seq: Seq,
        model: z.string().optional(),
        reasoning: z.string().optional(),
        refusal: z.string().optional(),
        /** The tool calls written so far, the last one possibly still growing. */
        toolCalls: z.array(ToolCall).optional(),
      })
      .optional(),
    reset: z.boolean().optional(),
    /** Which life of the conversation's log `seq` counts in; a new one (the log was lost) starts again from 0. */
    epoch: z.string().optional(),
  }),
  z.object({ type: z.literal('left'), ref: Ref, ...Conv }),
  MessageEvent,
  ReplyStartEvent,
  ReplyDeltaEvent,
  ReplyEndEvent,
  ToolResultEvent,
  z.object({ type: z.literal('presence'), ...Conv, members: z.array(User) }),
  z.object({ type: z.literal('typing'), ...Conv, user: User }),
  z.object({ type: z.literal('pong'), ref: Ref, t: z.number() }),
  /** The answer to `auth`: the session now runs on the new token. */
  z.object({ type: z.literal('authed'), ref: Ref, expiresAt: z.number().optional() }),
  z.object({
    type: z.literal('error'),
    ref: Ref,
    code: ErrorCode,
    message: z.string(),
    conversationId: ConversationId.optional(),
  }),
]);
export type ServerFrame = z.infer<typeof ServerFrame>;
export type ServerFrameOf<T extends ServerFrame['type']> = Extract<ServerFrame, { type: T }>;

/** Describe a zod failure in one line that names the offending field. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
    .join('; ');
}
