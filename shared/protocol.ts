// Wire protocol v1: every frame in both directions, as zod schemas. The server
// and the browser client both import this file; types come from z.infer only.
// Written with zod/mini: the same validation as zod's chained API, but what a
// bundle does not use is left out, so the client stays small in browsers.
import * as z from 'zod/mini';
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
  /** Attachments one send may carry. */
  attachments: 8,
  /** Conversations one `list` answers with at most. */
  listLimit: 100,
  /** A conversation's title and its own system prompt. */
  titleChars: 200,
  systemPromptChars: 16_000,
} as const;

export const ConversationId = z
  .string()
  .check(z.regex(/^[A-Za-z0-9._:-]{1,128}$/, 'conversationId must be 1-128 chars of A-Z a-z 0-9 . _ : -'));
const Ref = z.optional(z.string().check(z.maxLength(frameCaps.refChars)));
const Id = z.string().check(z.minLength(1), z.maxLength(frameCaps.idChars));
const Seq = z.number().check(z.int(), z.nonnegative());
const Count = z.number().check(z.int(), z.nonnegative());

export const User = z.object({ id: z.string(), name: z.string() });
export type User = z.infer<typeof User>;

/** An uploaded file (`POST /attachments` answers with this), as a message that carries it shows it. */
export const Attachment = z.object({
  id: z.string(),
  /** Checked from the file's bytes, not taken from the upload's header. */
  mediaType: z.string(),
  bytes: Count,
  name: z.optional(z.string()),
});
export type Attachment = z.infer<typeof Attachment>;

// ---------------------------------------------------------------- client → server

export const SendOptions = z.object({
  model: z.optional(z.string().check(z.minLength(1), z.maxLength(frameCaps.modelChars))),
  temperature: z.optional(z.number().check(z.gte(0), z.lte(2))),
  maxTokens: z.optional(z.number().check(z.int(), z.gte(1), z.lte(frameCaps.maxTokens))),
});
export type SendOptions = z.infer<typeof SendOptions>;

/**
 * A conversation's own settings (`configure`): the next reply uses them. Its
 * `systemPrompt` replaces the server's; `model`, `temperature` and `maxTokens`
 * apply where a `send` names none of its own.
 */
export const ConversationSettings = z.object({
  title: z.optional(z.string().check(z.minLength(1), z.maxLength(frameCaps.titleChars))),
  /** `private`: only users given a role (by the owner, or by their token) may join. Absent: open. */
  visibility: z.optional(z.enum(['open', 'private'])),
  systemPrompt: z.optional(z.string().check(z.minLength(1), z.maxLength(frameCaps.systemPromptChars))),
  ...SendOptions.shape,
});
export type ConversationSettings = z.infer<typeof ConversationSettings>;

/** What a user may do in a conversation: `owner` everything, `member` write, `viewer` only watch. */
export const Role = z.enum(['owner', 'member', 'viewer']);
export type Role = z.infer<typeof Role>;

/**
 * A message's place among the answers to the same point of the conversation:
 * `index` (from 0, oldest first) of `count`; in history, with more than one,
 * the `ids` of all of them in that order (a `switch` to one goes there).
 */
export const Siblings = z.object({
  index: z.number().check(z.int(), z.nonnegative()),
  count: z.number().check(z.int(), z.gte(1)),
  ids: z.optional(z.array(z.string())),
});
export type Siblings = z.infer<typeof Siblings>;

/** A tool the model may call: `parameters` is a JSON Schema object for its arguments. */
export const ToolSpec = z.object({
  name: z.string().check(z.regex(/^[A-Za-z0-9_-]{1,64}$/, 'a tool name is 1-64 chars of A-Z a-z 0-9 _ -')),
  description: z.optional(z.string().check(z.maxLength(frameCaps.toolDescriptionChars, `a tool description is at most ${frameCaps.toolDescriptionChars} characters`))),
  parameters: z.record(z.string(), z.unknown()),
});
export type ToolSpec = z.infer<typeof ToolSpec>;

export const ToolList = z.array(ToolSpec).check(
  z.maxLength(frameCaps.tools, `at most ${frameCaps.tools} tools`),
  z.refine((tools) => new Set(tools.map((t) => t.name)).size === tools.length, 'tool names must be unique'),
  z.refine((tools) => JSON.stringify(tools).length <= frameCaps.toolsChars, `tools: at most ${frameCaps.toolsChars} characters of JSON`),
);

export const ClientFrame = z.discriminatedUnion('type', [
  z.object({ type: z.literal('hello'), ref: Ref, token: z.optional(z.string().check(z.maxLength(frameCaps.tokenChars))) }),
  z.object({
    type: z.literal('join'),
    ref: Ref,
    conversationId: ConversationId,
    since: z.optional(Seq),
    /** The `joined.epoch` the client's `since` belongs to: a log lost since then answers `reset`. */
    epoch: z.optional(z.string().check(z.maxLength(frameCaps.idChars))),
    /** An invite token (`invited.token`): joining with it gives its role, in a private conversation too. */
    invite: z.optional(z.string().check(z.maxLength(frameCaps.tokenChars))),
  }),
  z.object({ type: z.literal('leave'), ref: Ref, conversationId: ConversationId }),
  z.object({
    type: z.literal('send'),
    ref: Ref,
    conversationId: ConversationId,
    text: z.string().check(z.minLength(1), z.maxLength(frameCaps.textChars)),
    clientMessageId: z.optional(Id),
    reply: z.optional(z.boolean()),
    options: z.optional(SendOptions),
    /** Tools the model may call while answering; a call is answered with `tool.result`. */
    tools: z.optional(ToolList),
    /** Ids of files this user uploaded (`POST /attachments`), shown to the model with the text. */
    attachments: z.optional(z.array(Id).check(z.maxLength(frameCaps.attachments, `at most ${frameCaps.attachments} attachments`))),
  }),
  z.object({ type: z.literal('cancel'), ref: Ref, conversationId: ConversationId, replyId: z.optional(Id) }),
  /** The output of one tool call of a reply that ended with `tool_calls`. */
  z.object({
    type: z.literal('tool.result'),
    ref: Ref,
    conversationId: ConversationId,
    replyId: Id,
    toolCallId: Id,
    output: z.string().check(z.maxLength(frameCaps.textChars)),
    isError: z.optional(z.boolean()),
  }),
  /** Answer a user message again, beside its earlier answers: the one `messageId` names (a user message, or a reply to it), else the last. */
  z.object({ type: z.literal('regenerate'), ref: Ref, conversationId: ConversationId, messageId: z.optional(Id), options: z.optional(SendOptions) }),
  /** A new version of a user message, beside it (the old one and what followed stay reachable), and its answer. */
  z.object({
    type: z.literal('edit'),
    ref: Ref,
    conversationId: ConversationId,
    messageId: Id,
    text: z.string().check(z.minLength(1), z.maxLength(frameCaps.textChars)),
    clientMessageId: z.optional(Id),
    reply: z.optional(z.boolean()),
    options: z.optional(SendOptions),
  }),
  /** Make the branch through `messageId` the conversation's active path (for every member). */
  z.object({ type: z.literal('switch'), ref: Ref, conversationId: ConversationId, messageId: Id }),
  /** Change the conversation's own settings: a field set to null goes back to the server's default. */
  z.object({
    type: z.literal('configure'),
    ref: Ref,
    conversationId: ConversationId,
    title: z.optional(z.nullable(ConversationSettings.shape.title.def.innerType)),
    visibility: z.optional(z.nullable(ConversationSettings.shape.visibility.def.innerType)),
    systemPrompt: z.optional(z.nullable(ConversationSettings.shape.systemPrompt.def.innerType)),
    model: z.optional(z.nullable(SendOptions.shape.model.def.innerType)),
    temperature: z.optional(z.nullable(SendOptions.shape.temperature.def.innerType)),
    maxTokens: z.optional(z.nullable(SendOptions.shape.maxTokens.def.innerType)),
  }),
  /** Give a user a role in the conversation (the owner's to do); in a private one, that is the invitation. */
  z.object({ type: z.literal('role'), ref: Ref, conversationId: ConversationId, userId: Id, role: Role }),
  /** An invite token for the conversation (the owner's to do), answered with `invited`: whoever joins with it gets `role` (default member). */
  z.object({
    type: z.literal('invite'),
    ref: Ref,
    conversationId: ConversationId,
    role: z.optional(z.enum(['member', 'viewer'])),
    /** How long it can be used: 1 minute to 30 days, default 7 days. */
    ttlMs: z.optional(z.number().check(z.int(), z.gte(60_000), z.lte(30 * 24 * 3_600_000))),
  }),
  /** Take a user out of the conversation (the owner's to do): their sockets get `left` with reason "removed", and they may not join again. */
  z.object({ type: z.literal('remove'), ref: Ref, conversationId: ConversationId, userId: Id }),
  /** The user's conversations, newest activity first: those active before `before` (ms), at most `limit`; answered with `conversations`. */
  z.object({
    type: z.literal('list'),
    ref: Ref,
    before: z.optional(z.number().check(z.nonnegative())),
    limit: z.optional(z.number().check(z.int(), z.gte(1), z.lte(frameCaps.listLimit))),
  }),
  /** Delete a conversation for everyone (its owner's to do): members get `left` with reason "deleted". */
  z.object({ type: z.literal('delete'), ref: Ref, conversationId: ConversationId }),
  z.object({ type: z.literal('typing'), ref: Ref, conversationId: ConversationId }),
  z.object({ type: z.literal('ping'), ref: Ref }),
  /** The user's own usage: answered with `usage`. */
  z.object({ type: z.literal('usage'), ref: Ref }),
  /** A fresh token for the open session, before the current one expires. */
  z.object({ type: z.literal('auth'), ref: Ref, token: z.string().check(z.minLength(1), z.maxLength(frameCaps.tokenChars)) }),
]);
export type ClientFrame = z.infer<typeof ClientFrame>;
export type ClientFrameOf<T extends ClientFrame['type']> = Extract<ClientFrame, { type: T }>;

// ---------------------------------------------------------------- server → client

export const FinishReason = z.enum(['stop', 'length', 'tool_calls', 'content_filter', 'cancelled', 'error']);
export type FinishReason = z.infer<typeof FinishReason>;

export const ErrorCode = z.enum(ERROR_CODES);
export type ErrorCode = z.infer<typeof ErrorCode>;

export const Usage = z.object({
  promptTokens: Count,
  completionTokens: Count,
  totalTokens: Count,
  source: z.enum(['upstream', 'estimated']),
  /** Prompt tokens the upstream served from its cache (part of promptTokens), where it says so. */
  cachedTokens: z.optional(Count),
  /** Completion tokens spent on reasoning (part of completionTokens), where the upstream says so. */
  reasoningTokens: z.optional(Count),
});
export type Usage = z.infer<typeof Usage>;

/** Replies and what they spent, summed from the usage ledger; cost where the model table has prices. */
export const UsageTotals = z.object({
  replies: Count,
  promptTokens: Count,
  completionTokens: Count,
  costUsd: z.number(),
});
export type UsageTotals = z.infer<typeof UsageTotals>;

export const ToolCall = z.object({ id: z.string(), name: z.string(), arguments: z.string() });
export type ToolCall = z.infer<typeof ToolCall>;

/**
 * A piece of a tool call as the model writes it: `index` is the call's place in
 * the reply's final `toolCalls`; `id` and `name` come once, with its first
 * piece; `arguments` is the new fragment, so a call's fragments joined in order
 * are its final arguments.
 */
export const ToolCallDelta = z.object({
  index: Count,
  id: z.optional(z.string()),
  name: z.optional(z.string()),
  arguments: z.optional(z.string()),
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
  clientMessageId: z.optional(z.string()),
  /** The tools offered with it (the sender's, and the server's own): every step of the tool loop this message starts offers them. */
  tools: z.optional(z.array(ToolSpec)),
  attachments: z.optional(z.array(Attachment)),
  /** The message before it on its branch (none: it begins the conversation). An edit carries the edited message's. */
  parentId: z.optional(z.string()),
});
export type UserMessage = z.infer<typeof UserMessage>;

/** A complete message in `joined.history`: a user message, a finished assistant reply, or the result of one of its tool calls. */
export const HistoryMessage = z.object({
  id: z.string(),
  role: z.enum(['user', 'assistant', 'tool']),
  author: z.optional(User),
  text: z.string(),
  createdAt: z.number(),
  finishReason: z.optional(FinishReason),
  reasoning: z.optional(z.string()),
  refusal: z.optional(z.string()),
  toolCalls: z.optional(z.array(ToolCall)),
  clientMessageId: z.optional(z.string()),
  /** The model that wrote an assistant message. */
  model: z.optional(z.string()),
  /** How an assistant message's reply ended: its usage and, for a failure, why (as its reply.end said). */
  usage: z.optional(Usage),
  error: z.optional(ReplyError),
  /** Moderation removed this reply's text (its `text` is empty). */
  redacted: z.optional(z.boolean()),
  /** What an assistant message answers: a user message, or (a step of a tool loop) the reply whose calls were answered. */
  inReplyTo: z.optional(z.string()),
  /** The tools a user message offered. */
  tools: z.optional(z.array(ToolSpec)),
  /** The files a user message carried (`GET /attachments/:id` serves them to the conversation's members). */
  attachments: z.optional(z.array(Attachment)),
  /** A tool result: the reply whose call it answers, the call, and whether the tool failed. */
  replyId: z.optional(z.string()),
  toolCallId: z.optional(z.string()),
  isError: z.optional(z.boolean()),
  /** The message before it on its branch; none for the first message of the conversation (or of a branch at its start). */
  parentId: z.optional(z.string()),
  /** In `joined.history` and `switch.history`: its place among the messages with the same parent. */
  siblings: z.optional(Siblings),
});
export type HistoryMessage = z.infer<typeof HistoryMessage>;

/** A conversation on a user's list. */
export const ConversationSummary = z.object({
  conversationId: ConversationId,
  title: z.optional(z.string()),
  /** When its last message, reply or change was written (ms since the epoch). */
  lastActivity: z.number(),
  /** Its head seq, and whether it holds events this user has not seen (written since they last were in it). */
  seq: Seq,
  unread: z.boolean(),
  owner: z.optional(z.string()),
});
export type ConversationSummary = z.infer<typeof ConversationSummary>;

export const Limits = z.object({
  maxFrameBytes: z.number().check(z.int()),
  maxConversations: z.number().check(z.int()),
  maxActiveReplies: z.number().check(z.int()),
  maxQueuedReplies: z.number().check(z.int()),
  maxTextChars: z.number().check(z.int()),
  /** Frames a socket may send per second, and in a burst, before `rate_limited`. */
  frameRatePerSec: z.optional(z.number()),
  frameBurst: z.optional(z.number().check(z.int())),
  /** The largest file `POST /attachments` takes, and the types it takes (told from the bytes). */
  maxAttachmentBytes: z.optional(z.number().check(z.int())),
  attachmentTypes: z.optional(z.array(z.string())),
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
  replyId: z.optional(z.string()),
  /** An edit: its place beside the message it edits (the active path now ends with it). */
  siblings: z.optional(Siblings),
});
export const ReplyStartEvent = z.object({
  type: z.literal('reply.start'),
  ...Event,
  /** A regenerate's ref, on the copy its sender gets. */
  ref: Ref,
  replyId: z.string(),
  inReplyTo: z.string(),
  model: z.string(),
  /** The message before it on its branch: a regenerated reply's parent is its earlier sibling's. */
  parentId: z.optional(z.string()),
  /** A regenerated reply: its place beside the earlier answers (the active path now ends with it). */
  siblings: z.optional(Siblings),
});
export const ReplyDeltaEvent = z
  .object({
    type: z.literal('reply.delta'),
    ...Event,
    replyId: z.string(),
    text: z.optional(z.string()),
    reasoning: z.optional(z.string()),
    refusal: z.optional(z.string()),
    toolCall: z.optional(ToolCallDelta),
  })
  .check(z.refine((d) => Boolean(d.text || d.reasoning || d.refusal || d.toolCall), 'reply.delta needs text, reasoning, refusal or toolCall'));
export const ReplyEndEvent = z.object({
  type: z.literal('reply.end'),
  ...Event,
  replyId: z.string(),
  finishReason: FinishReason,
  usage: z.optional(Usage),
  toolCalls: z.optional(z.array(ToolCall)),
  error: z.optional(ReplyError),
  /**
   * Moderation flagged text of this reply that members already have: drop the
   * reply's text, reasoning and refusal. History, late joiners and resumes
   * never show it again.
   */
  redacted: z.optional(z.boolean()),
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
  /** The message before it on its branch. */
  parentId: z.optional(z.string()),
});

/** The active path moved (`switch`): `history` is the new path, as `joined.history` shows it. */
export const SwitchEvent = z.object({
  type: z.literal('switch'),
  ...Event,
  ref: Ref,
  messageId: z.string(),
  author: User,
  history: z.array(HistoryMessage),
});

/** The conversation's settings changed (`configure`): `settings` is all of them now. */
export const SettingsEvent = z.object({
  type: z.literal('settings'),
  ...Event,
  ref: Ref,
  settings: ConversationSettings,
  author: User,
  createdAt: z.number(),
});

/** A user's role changed (`role`), or they were taken out (`remove`: role "removed"). */
export const RoleEvent = z.object({
  type: z.literal('role'),
  ...Event,
  ref: Ref,
  userId: z.string(),
  role: z.enum([...Role.options, 'removed']),
  author: User,
});

/** The events of a conversation: each gets a `seq` and is retained for resume. */
export const ConversationEvent = z.discriminatedUnion('type', [
  MessageEvent,
  ReplyStartEvent,
  ReplyDeltaEvent,
  ReplyEndEvent,
  ToolResultEvent,
  SwitchEvent,
  SettingsEvent,
  RoleEvent,
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
    models: z.optional(z.array(z.object({ id: z.string(), default: z.optional(z.boolean()) }))),
    /**
     * What this server supports (shared/features.ts names them), so a client can
     * tell what it may use; a name a client does not know is ignored.
     */
    features: z.optional(z.array(z.string())),
    /**
     * Anonymous mode: a signed token for this anonymous user. Presented as
     * `hello.token` on the next connection it keeps the same user (and name);
     * as `Authorization: Bearer` it lets the HTTP endpoints (uploads) know them.
     */
    sessionToken: z.optional(z.string()),
  }),
  z.object({
    type: z.literal('joined'),
    ref: Ref,
    ...Conv,
    seq: Seq,
    members: z.array(User),
    history: z.array(HistoryMessage),
    streaming: z.optional(
      z.object({
        replyId: z.string(),
        /** The message it answers (a user message, or the reply whose tool calls were answered). */
        inReplyTo: z.optional(z.string()),
        text: z.string(),
        seq: Seq,
        model: z.optional(z.string()),
        reasoning: z.optional(z.string()),
        refusal: z.optional(z.string()),
        /** The tool calls written so far, the last one possibly still growing. */
        toolCalls: z.optional(z.array(ToolCall)),
      }),
    ),
    reset: z.optional(z.boolean()),
    /** The conversation's own settings (`configure`), where it has any. */
    settings: z.optional(ConversationSettings),
    /** The id of the user who created the conversation (its first message or configure): only they may configure it or switch its branch. */
    owner: z.optional(z.string()),
    /** What the joining user may do here. */
    role: z.optional(Role),
    /** Which life of the conversation's log `seq` counts in; a new one (the log was lost) starts again from 0. */
    epoch: z.optional(z.string()),
  }),
  /** `reason`: why the server ended the membership ("deleted": the conversation is gone). */
  z.object({ type: z.literal('left'), ref: Ref, ...Conv, reason: z.optional(z.string()) }),
  /** The answer to `invite`: the token to hand out (as `join.invite`), its role, and until when it works (ms). */
  z.object({ type: z.literal('invited'), ref: Ref, ...Conv, token: z.string(), role: Role, expiresAt: z.number() }),
  /** The answer to `list`: `next` is the `before` of the following page, when there is one. */
  z.object({ type: z.literal('conversations'), ref: Ref, conversations: z.array(ConversationSummary), next: z.optional(z.number()) }),
  MessageEvent,
  ReplyStartEvent,
  ReplyDeltaEvent,
  ReplyEndEvent,
  ToolResultEvent,
  SwitchEvent,
  SettingsEvent,
  RoleEvent,
  z.object({ type: z.literal('presence'), ...Conv, members: z.array(User) }),
  z.object({ type: z.literal('typing'), ...Conv, user: User }),
  z.object({ type: z.literal('pong'), ref: Ref, t: z.number() }),
  /** The user's totals from the usage ledger: since midnight UTC, and in the current quota window. */
  z.object({
    type: z.literal('usage'),
    ref: Ref,
    today: UsageTotals,
    window: z.object({
      ...UsageTotals.shape,
      /** When the window began and ends (ms since the epoch). */
      startsAt: z.number(),
      endsAt: z.number(),
      /** The quotas of a window, where the operator set them. */
      tokenQuota: z.optional(Count),
      costQuotaUsd: z.optional(z.number()),
    }),
  }),
  /** The answer to `auth`: the session now runs on the new token. */
  z.object({ type: z.literal('authed'), ref: Ref, expiresAt: z.optional(z.number()) }),
  z.object({
    type: z.literal('error'),
    ref: Ref,
    code: ErrorCode,
    message: z.string(),
    conversationId: z.optional(ConversationId),
  }),
]);
export type ServerFrame = z.infer<typeof ServerFrame>;
export type ServerFrameOf<T extends ServerFrame['type']> = Extract<ServerFrame, { type: T }>;

/** The `type` names a union of frames knows; a receiver ignores frames of any other type, which a newer peer may send. */
function typesOf(union: z.core.$ZodDiscriminatedUnion): ReadonlySet<string> {
  return new Set([...(union._zod.propValues.type ?? [])].filter((t) => typeof t === 'string'));
}
export const clientFrameTypes = /* @__PURE__ */ typesOf(ClientFrame);
export const serverFrameTypes = /* @__PURE__ */ typesOf(ServerFrame);

/** Describe a zod failure in one line that names the offending field. */
export function describeIssues(error: z.core.$ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => (i.path.length ? `${i.path.join('.')}: ${explain(i)}` : explain(i)))
    .join('; ');
}

/** zod/mini alone (a client bundle) has no English messages, only "Invalid input": the issue's code and bound say more. */
function explain(issue: z.core.$ZodIssue): string {
  if (issue.message !== 'Invalid input') return issue.message;
  if (issue.code === 'invalid_type') return `invalid_type (expected ${issue.expected})`;
  if (issue.code === 'too_big') return `too_big (at most ${String(issue.maximum)})`;
  if (issue.code === 'too_small') return `too_small (at least ${String(issue.minimum)})`;
  return issue.code;
}
