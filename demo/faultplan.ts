// What a test may ask of the local model for one request, and what the model
// records about it. The same plan steers every upstream dialect the model speaks:
// chat (POST /v1/chat/completions), responses (POST /v1/responses) and anthropic
// (POST /v1/messages), so one fault test can run against each of them.

import type { DemoFile } from './files.js';

export type DialectName = 'chat' | 'responses' | 'anthropic';

/** One conversation turn as the model read it, whatever the dialect. */
export interface Turn {
  role: string; // 'tool' for a tool's result, whatever the dialect calls it
  content: string; // text parts joined; images contribute nothing; on a tool turn, the tool's output
  name?: string;
  toolCalls?: ToolCall[]; // assistant turns that called tools, ids as the client sent them
  toolCallId?: string; // tool turns: the call this result answers
  isError?: boolean; // tool turns the client marked as failed (anthropic `is_error`)
  files?: DemoFile[]; // user turns: the images and documents among the content parts
}

export interface ToolCall {
  id: string;
  name: string;
  arguments: string; // JSON text, streamed in pieces; anthropic's `input` object as JSON
}

/** A function the request offers the model, whatever the dialect's wrapping. */
export interface OfferedTool {
  name: string;
  description?: string;
  parameters?: Record<string, unknown>; // JSON Schema (anthropic `input_schema`)
}

/**
 * Per-request behaviour. "After N tokens" means once N reasoning/text pieces have
 * been written; tool-call argument pieces never count. Where a dialect has no exact
 * counterpart of a fault, its comment says what stands in for it.
 */
export interface FaultPlan {
  /**
   * Reply to stream instead of the generated demo text (no text by default when `toolCalls` is set).
   * Without `text`, `toolCalls` and `replay` the model uses the request's tools itself (demo/tooluse.ts).
   */
  text?: string;
  /**
   * Streamed before the text. chat: `delta.reasoning_content`; responses: a `reasoning`
   * item's summary text; anthropic: a `thinking` block closed by an opaque `signature_delta`.
   */
  reasoning?: string;
  /**
   * Streamed after the text, arguments in pieces. chat: `delta.tool_calls`, finish "tool_calls";
   * responses: `function_call` items whose `call_id` is `id`; anthropic: `tool_use` blocks whose id
   * is `id` with a `toolu_` prefix added unless present, stop_reason "tool_use". Dropped when the
   * token budget cuts the reply, as a model that runs out of tokens never gets to call.
   */
  toolCalls?: ToolCall[];
  /** Pause between events, every dialect; overrides the server default. */
  tokenDelayMs?: number;
  /** Pause after the headers, before the first event. */
  firstTokenDelayMs?: number;
  /**
   * Answer with this status and the dialect's error body: OpenAI's `{error:{message,type,param,code}}`
   * on chat and responses, Anthropic's `{type:'error', error:{type,message}}` on anthropic (429
   * rate_limit_error, 529 overloaded_error, other 5xx api_error). 429 adds `retry-after: 0` and
   * `x-should-retry: false` so that neither SDK retries.
   */
  httpStatus?: number;
  /** Then write nothing more until the client goes away. */
  stallAfterTokens?: number;
  /** While stalled, write `: keep-alive` SSE comment lines this often (every dialect). */
  keepAliveMs?: number;
  /**
   * Then an in-stream error and end, with no finish and no end marker. chat: `data: {"error":{…}}`
   * (type server_error); responses: `event: error` `{type:'error', code, message, param, sequence_number}`
   * followed by `response.failed` whose `response.error` is `{code, message}`; anthropic: `event: error`
   * `{type:'error', error:{type, message}}`.
   */
  errorAfterTokens?: number;
  /** The in-stream error's code: chat `error.code` (default 'injected'), responses `code` (default 'server_error'), anthropic `error.type` (default 'api_error'). */
  errorCode?: string;
  /** Then a data line of truncated JSON and end; responses and anthropic name its event so that the SDK tries to parse it. */
  malformedAfterTokens?: number;
  /**
   * Then destroy the socket; recorded as neither finished nor aborted. A background response
   * (responses, `background: true`) loses every connection attached to it then, but runs on, as
   * the provider's would after a network failure, so that the client can re-attach.
   */
  dropAfterTokens?: number;
  /**
   * End normally but without the end marker. chat: no `data: [DONE]`; responses: no terminal
   * `response.completed`/`response.incomplete` (the API sends no [DONE]); anthropic: no `message_stop`,
   * though `message_delta` with the stop reason and usage still comes.
   */
  omitDone?: boolean;
  /**
   * Nothing reports how the reply ended. chat: no chunk carries finish_reason; responses: no terminal
   * `response.*` event (there the terminal event is the finish, so this equals omitDone); anthropic:
   * neither `message_delta` nor `message_stop`.
   */
  omitFinishReason?: boolean;
  /** After the last event, keep the response open this long before ending it. */
  holdAfterDoneMs?: number;
  /**
   * Report the finish, withhold the end marker, then write nothing more until the client goes away.
   * chat: finish chunk (and usage) without [DONE]; responses: the terminal `response.completed` is
   * written, as it is both finish and end there, and the connection just stays open; anthropic:
   * `message_delta` without `message_stop`.
   */
  stallAfterFinish?: boolean;
  /** Split each event into socket writes of at most this many bytes, even mid-character. */
  writeChunkBytes?: number;
  /**
   * A raw recorded SSE body sent as-is, event by event, on any of the three paths and whether or not
   * the request asked to stream; each event other than `data: [DONE]` counts as a token.
   */
  replay?: string;
  /**
   * Background responses only: every GET /v1/responses/{id} of this response answers 404 as for an
   * unknown id, so nothing can re-attach to it or poll it (it still runs, and cancel still works).
   */
  refuseReattach?: boolean;
}

export interface RecordedRequest {
  id: number; // 1, 2, 3… in arrival order
  connection: number; // the TCP connection that carried it: 1, 2, 3… in the order they were opened
  dialect: DialectName;
  body: unknown;
  // The same shape in every dialect, so tests assert what the model saw one way: the system
  // prompt (anthropic `system`, responses `instructions`) comes first as a system turn.
  messages: Turn[];
  tools: OfferedTool[]; // empty when the request offers none
  headers: Record<string, string | string[] | undefined>;
  tokensSent: number; // reasoning/text pieces written so far
  finished: boolean; // the server completed the response itself
  aborted: boolean; // the client closed the connection first
  // Resolves once the response is finished or its connection closed; a background response's
  // once its generation is over (finished, cancelled, or the server closing), whatever its connection does.
  closed: Promise<void>;
  // Background responses (responses, `background: true`): the id that GET /v1/responses/{id} and
  // POST /v1/responses/{id}/cancel take. Their `tokensSent` counts pieces generated, listened to or not.
  responseId?: string;
}
