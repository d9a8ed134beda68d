// One `POST /v1/chat/completions` exchange: a member of its conversation that
// follows the reply to its own message and turns it into OpenAI's shapes, SSE
// chunks while streaming, or one completion object at the end.
import type { ServerResponse } from 'node:http';
import type { ServerFrameOf, ToolCallDelta, Usage } from '../../../shared/protocol.js';
import type { Who } from '../../rooms/access.js';
import { ReplyFollower } from '../../rooms/reply-follower.js';
import { SseResponse } from '../sse-response.js';
import { openaiError } from './errors.js';

export interface ExchangeOptions {
  stream: boolean;
  includeUsage: boolean;
  /** The model name the client asked for, echoed in every object. */
  model: string;
  /** Bytes of chunks the response may hold unsent before the reader counts as gone. */
  sendBufferLimitBytes: number;
}

/** How an exchange ended: its reply's end, or the client going away first. */
export type Outcome = { kind: 'ended'; end: ServerFrameOf<'reply.end'> } | { kind: 'gone' };

const FINISH: Record<ServerFrameOf<'reply.end'>['finishReason'], string> = {
  stop: 'stop',
  length: 'length',
  tool_calls: 'tool_calls',
  content_filter: 'content_filter',
  cancelled: 'stop',
  error: 'stop',
};

export class Exchange {
  /** The conversation member this exchange is. */
  readonly member: ReplyFollower;
  readonly outcome: Promise<Outcome>;
  private settle!: (o: Outcome) => void;
  private text = '';
  private reasoning = '';
  private refusal = '';
  private readonly created = Math.floor(Date.now() / 1000);
  private readonly sse: SseResponse;

  constructor(
    who: Who,
    private readonly res: ServerResponse,
    private readonly opts: ExchangeOptions,
  ) {
    this.outcome = new Promise((resolve) => (this.settle = resolve));
    res.once('close', () => this.settle({ kind: 'gone' }));
    this.sse = new SseResponse(res, opts.sendBufferLimitBytes);
    this.member = new ReplyFollower(who, this.sse.output, { started: () => this.start(), delta: (d) => this.delta(d), ended: (e) => this.end(e), none: () => undefined }, 'own');
  }

  get replyId(): string | undefined {
    return this.member.replyId;
  }

  private get completionId(): string {
    return `chatcmpl-${this.replyId ?? this.member.id}`;
  }

  private chunk(delta: Record<string, unknown>, finishReason: string | null = null): void {
    this.sse.data({ id: this.completionId, object: 'chat.completion.chunk', created: this.created, model: this.opts.model, choices: [{ index: 0, delta, finish_reason: finishReason }] });
  }

  private start(): void {
    if (!this.opts.stream || this.sse.opened) return;
    this.chunk({ role: 'assistant', content: '' });
  }

  private delta({ text, reasoning, refusal, toolCall }: ServerFrameOf<'reply.delta'>): void {
    if (text) this.text += text;
    if (reasoning) this.reasoning += reasoning;
    if (refusal) this.refusal += refusal;
    if (!this.opts.stream) return;
    this.chunk({
      ...(text ? { content: text } : {}),
      ...(reasoning ? { reasoning_content: reasoning } : {}),
      ...(refusal ? { refusal } : {}),
      ...(toolCall ? { tool_calls: [toolCallChunk(toolCall)] } : {}),
    });
  }

  private end(end: ServerFrameOf<'reply.end'>): void {
    if (this.opts.stream) this.endStream(end);
    else this.endCompletion(end);
    this.settle({ kind: 'ended', end });
  }

  private endStream(end: ServerFrameOf<'reply.end'>): void {
    this.start();
    if (end.error) {
      this.sse.data(openaiError(end.error.code, end.error.message).body);
    } else {
      this.chunk({}, FINISH[end.finishReason]);
      if (this.opts.includeUsage && end.usage) {
        this.sse.data({ id: this.completionId, object: 'chat.completion.chunk', created: this.created, model: this.opts.model, choices: [], usage: usageOf(end.usage) });
      }
    }
    this.sse.end('data: [DONE]\n\n');
  }

  private endCompletion(end: ServerFrameOf<'reply.end'>): void {
    if (end.error) {
      const { status, body } = openaiError(end.error.code, end.error.message);
      this.res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      return;
    }
    const message = {
      role: 'assistant',
      content: this.text,
      ...(this.reasoning ? { reasoning_content: this.reasoning } : {}),
      ...(this.refusal ? { refusal: this.refusal } : {}),
      ...(end.toolCalls?.length ? { tool_calls: end.toolCalls.map((t) => ({ id: t.id, type: 'function', function: { name: t.name, arguments: t.arguments } })) } : {}),
    };
    const body = {
      id: this.completionId,
      object: 'chat.completion',
      created: this.created,
      model: this.opts.model,
      choices: [{ index: 0, message, finish_reason: FINISH[end.finishReason], logprobs: null }],
      ...(end.usage ? { usage: usageOf(end.usage) } : {}),
    };
    this.res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }
}

function usageOf(u: Usage): { prompt_tokens: number; completion_tokens: number; total_tokens: number } {
  return { prompt_tokens: u.promptTokens, completion_tokens: u.completionTokens, total_tokens: u.totalTokens };
}

/** A tool-call piece as chat.completions streams one: the call's id, type and name only with its first piece. */
function toolCallChunk({ index, id, name, arguments: args }: ToolCallDelta) {
  return { index, ...(id ? { id, type: 'function' } : {}), function: { ...(name ? { name } : {}), arguments: args ?? '' } };
}
