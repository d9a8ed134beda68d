// What every upstream dialect provides to the local model, and the pieces they share.
import { z } from 'zod';
import type { FaultPlan, OfferedTool, ToolCall, Turn } from '../faultplan.js';
import type { Part, Reply } from '../script.js';
import { isRecord } from '../../server/upstream/pieces.js';
import { filesIn } from '../files.js';

/** A reply rendered in one dialect. */
export interface Encoded {
  body: Array<{ sse: string; counts: boolean }>; // paced; fault checkpoints sit before counted events
  tail: string[]; // finish, usage and end marker as the plan leaves them, written back to back
  error: (sent: number) => string; // the in-stream error once `sent` body events are out
  malformed: string; // an event whose JSON is cut short
  json: object; // the non-streaming answer
}

/** A request as the model reads it, still able to answer in its own dialect. */
export interface Parsed {
  messages: Turn[];
  tools: OfferedTool[];
  stream: boolean;
  budget: number; // reasoning/text pieces allowed; Infinity without a limit
  encode: (reply: Reply, plan: FaultPlan) => Encoded;
}

export interface Dialect {
  /** The request read leniently, as a real server does, or why it is rejected with a 400. */
  parse(body: unknown): Parsed | { message: string; code: string };
  /** The HTTP error body in this dialect's shape; `code` is for dialects that carry one. */
  errorBody(status: number, message: string, code?: string): object;
}

/** One SSE event with a name, as the Responses and Anthropic APIs write them. */
export const named = (type: string, data: object): string => `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;

export interface PartEvents {
  open(part: Part, index: number): string[];
  piece(part: Part, index: number, piece: string): string;
  close(part: Part, index: number): string[];
}

/** The reply's parts as paced events; only reasoning/text pieces count as tokens. */
export function paced(parts: Part[], events: PartEvents): Encoded['body'] {
  const body: Encoded['body'] = [];
  parts.forEach((part, index) => {
    for (const sse of events.open(part, index)) body.push({ sse, counts: false });
    for (const p of part.pieces) body.push({ sse: events.piece(part, index, p), counts: part.kind !== 'tool' });
    for (const sse of events.close(part, index)) body.push({ sse, counts: false });
  });
  return body;
}

/** A recorded SSE body, event by event; everything but [DONE] counts, so faults can cut it. */
export function replayBody(raw: string): Encoded['body'] {
  const events = raw.split('\n\n').filter((e) => e.trim() !== '');
  return events.map((e) => ({ sse: `${e}\n\n`, counts: e.trim() !== 'data: [DONE]' }));
}

export const lenientNumber = z.number().nullish().catch(null);
export const lenientFlag = z.boolean().nullish().catch(false);

/** The first positive limit among `limits`, or Infinity. */
export const budgetOf = (...limits: Array<number | null | undefined>): number =>
  limits.find((v): v is number => typeof v === 'number' && v > 0) ?? Infinity;

/** Content given as a string or as parts, flattened to the text of the parts `accept` keeps. */
export function textContent(accept: (type: unknown) => boolean) {
  const part = z.object({ type: z.unknown(), text: z.unknown() }).catch({ type: undefined, text: undefined });
  return z.union([
    z.string(),
    z.array(part).transform((parts) => parts.map((p) => (accept(p.type) && typeof p.text === 'string' ? p.text : '')).join('')),
  ]);
}

/** OpenAI's error body, which both OpenAI dialects answer with. */
export function openaiError(status: number, message: string, code?: string): object {
  const type = status === 429 ? 'requests' : status >= 500 ? 'server_error' : 'invalid_request_error';
  return { error: { message, type, param: null, code: code ?? (status === 429 ? 'rate_limit_exceeded' : 'injected') } };
}

const ToolShape = z.object({ name: z.string().min(1), description: z.string().nullish().catch(null), parameters: z.unknown().optional() });

/**
 * The offered tools, read leniently: `shape` picks name, description and parameters out of one
 * entry as the dialect wraps it. Entries that name no function (built-in tools, junk) are skipped
 * rather than failing the request, as a real server would serve the rest.
 */
export function offeredTools(shape: (entry: Record<string, unknown>) => unknown) {
  return z
    .array(z.unknown())
    .nullish()
    .catch(null)
    .transform((entries): OfferedTool[] =>
      (entries ?? []).flatMap((entry) => {
        const tool = isRecord(entry) ? ToolShape.safeParse(shape(entry)) : undefined;
        if (!tool?.success) return [];
        const { name, description, parameters } = tool.data;
        return [{ name, ...(typeof description === 'string' ? { description } : {}), ...(isRecord(parameters) ? { parameters } : {}) }];
      }),
    );
}

/** Call arguments as JSON text: the OpenAI dialects send text already, Anthropic an object. */
export const argumentsText = (args: unknown): string => (typeof args === 'string' ? args : JSON.stringify(args ?? {}));

/** A turn that may carry tool calls; `toolCalls` is left out when there are none, so plain turns compare as before. */
export const turnWithCalls = (role: string, content: string, calls: ToolCall[]): Turn => ({ role, content, ...(calls.length ? { toolCalls: calls } : {}) });

/** A tool's result as a turn of its own. */
export const toolResultTurn = (toolCallId: string, content: string, isError?: boolean | null): Turn => ({
  role: 'tool',
  content,
  toolCallId,
  ...(isError === true ? { isError: true } : {}),
});

/** A turn with the files its content parts carry, if any. */
export function withFiles(turn: Turn, content: unknown): Turn {
  const files = filesIn(content);
  return files.length ? { ...turn, files } : turn;
}
