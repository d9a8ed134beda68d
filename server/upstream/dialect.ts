// What an upstream dialect is: a way to send one call (the context in the
// provider's own shape) and a reader that turns the provider's SSE events into
// pieces. The three dialects (chat.completions, Responses, Anthropic Messages)
// each implement it in dialects/; everything else is shared.
import type { Attachment, ToolCall, ToolSpec } from '../../shared/protocol.js';
import type { SseEvent } from './sse.js';
import type { Completion, Piece, UpstreamCursor } from './pieces.js';
import type { DONE } from './read-events.js';

export const DIALECTS = ['chat', 'responses', 'anthropic'] as const;
export type DialectName = (typeof DIALECTS)[number];

/** One message of the context, in no provider's shape yet. */
export type Turn =
  | { role: 'system'; text: string }
  /**
   * `name`: the author as people see it; each dialect says it its own way.
   * `attachments`: what the message carried (counted against the budget);
   * `files`: the images and PDFs among them, read for the call (text files
   * are in `text` by then), which each dialect sends as its own parts.
   */
  | { role: 'user'; text: string; name?: string | undefined; attachments?: Attachment[] | undefined; files?: TurnFile[] | undefined }
  /** `toolCalls`: the calls the reply made, each answered by a tool turn after it. */
  | { role: 'assistant'; text: string; toolCalls?: ToolCall[] | undefined }
  | { role: 'tool'; text: string; toolCallId: string; isError: boolean };

/** An image or a PDF as a call sends it. */
export interface TurnFile {
  kind: 'image' | 'pdf';
  mediaType: string;
  name: string | undefined;
  data: Buffer;
}

/** A file as a `data:` URL, the form both OpenAI APIs (and their moderation endpoint) take inline files in. */
export function dataUrl(file: Pick<TurnFile, 'mediaType' | 'data'>): string {
  return `data:${file.mediaType};base64,${file.data.toString('base64')}`;
}

export interface UpstreamCall {
  /** The model name the provider knows. */
  model: string;
  turns: Turn[];
  temperature?: number | undefined;
  maxTokens?: number | undefined;
  /** Tools the model may call. */
  tools?: ToolSpec[] | undefined;
  /** The route's extra request fields (reasoning effort, …), sent as they are. */
  extra?: Record<string, unknown> | undefined;
  /** Run it as a background response the provider keeps (`store`), which another node can re-attach to. */
  background?: boolean | undefined;
}

export interface EventReader {
  /** The pieces one event adds (none, one, or several), or DONE when the stream said it is over. Throws a RelayError on an error event. */
  read(event: SseEvent): Piece | readonly Piece[] | undefined | typeof DONE;
  /** The stream has said how it finished: silence after this is a stream that forgot to close, not a failure. */
  readonly finished: boolean;
  completion(): Completion;
  /** A background response: where the stream stands after the last event read. */
  readonly cursor?: UpstreamCursor | undefined;
}

export interface Dialect {
  /** The HTTP response of the call, once it begins; the SDK's typed error when it fails first. */
  request(call: UpstreamCall, signal: AbortSignal): Promise<Response>;
  /** `from`: the background response a re-attached stream continues. */
  reader(from?: UpstreamCursor): EventReader;
  /** Dialects whose provider keeps background responses (Responses): re-attach to one after a cursor, or stop it. */
  background?: {
    reattach(cursor: UpstreamCursor, signal: AbortSignal): Promise<Response>;
    cancel(responseId: string): Promise<void>;
  };
}

/**
 * Who wrote each user turn, for dialects without a `name` field: only when
 * several people speak in the context does a turn start with its author's
 * name ("Ann: …"), so a one-person chat reads exactly as the user typed it.
 */
export function labelSpeakers(turns: readonly Turn[]): (turn: Turn) => string {
  const names = new Set<string>();
  for (const t of turns) if (t.role === 'user' && t.name) names.add(t.name);
  if (names.size < 2) return (turn) => turn.text;
  return (turn) => (turn.role === 'user' && turn.name ? `${turn.name}: ${turn.text}` : turn.text);
}

/** A tool's output for dialects without an error flag (OpenAI's): a failure says so in its text. */
export function toolOutput(turn: Extract<Turn, { role: 'tool' }>): string {
  return turn.isError ? `Error: ${turn.text}` : turn.text;
}

/** The system turns as one prompt, for dialects that take it apart from the messages. */
export function systemPrompt(turns: readonly Turn[]): string | undefined {
  const parts = turns.filter((t) => t.role === 'system' && t.text).map((t) => t.text);
  return parts.length ? parts.join('\n\n') : undefined;
}
