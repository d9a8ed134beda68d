// One `POST /v1/chat/completions` exchange as a member of its conversation:
// the conversation sends it frames as it would a socket, and it turns the
// frames of its own reply into OpenAI's shapes — SSE chunks while streaming,
// or one completion object at the end.
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { ServerFrame, type ConversationEvent, type ServerFrameOf, type User, type Usage } from '../../../shared/protocol.js';
import type { MemberSocket } from '../../rooms/conversation.js';
import { openaiError } from './errors.js';

export interface ExchangeOptions {
  stream: boolean;
  includeUsage: boolean;
  /** The model name the client asked for, echoed in every object. */
  model: string;
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

export class Exchange implements MemberSocket {
  readonly id = randomUUID();
  /** The sender's own `message` comes back with this ref: it names the reply this exchange waits for. */
  readonly ref = `openai-${this.id}`;
  replyId: string | undefined;
  readonly outcome: Promise<Outcome>;
  private settle!: (o: Outcome) => void;
  private text = '';
  private reasoning = '';
  private refusal = '';
  private readonly created = Math.floor(Date.now() / 1000);

  constructor(
    readonly user: User,
    private readonly res: ServerResponse,
    private readonly opts: ExchangeOptions,
  ) {
    this.outcome = new Promise((resolve) => (this.settle = resolve));
    res.once('close', () => this.settle({ kind: 'gone' }));
  }

  get backlogged(): boolean {
    return this.res.writableNeedDrain;
  }

  drained(): Promise<void> {
    return this.backlogged ? new Promise((resolve) => this.res.once('drain', () => resolve())) : Promise.resolve();
  }

  overflow(): void {
    this.res.destroy();
  }

  send(frame: ServerFrame): void {
    this.handle(frame);
  }

  sendRaw(json: string, _conversationId?: string, delta?: ConversationEvent): void {
    if (delta) return this.handle(delta);
    // Only this relay's own frames come here; the rare non-delta ones are read back.
    const parsed = ServerFrame.safeParse(JSON.parse(json));
    if (parsed.success) this.handle(parsed.data);
  }

  private handle(frame: ServerFrame): void {
    if (frame.type === 'message' && frame.ref === this.ref) this.replyId = frame.replyId;
    if (!('replyId' in frame) || frame.replyId !== this.replyId) return;
    if (frame.type === 'reply.start') this.start();
    else if (frame.type === 'reply.delta') this.delta(frame);
    else if (frame.type === 'reply.end') this.end(frame);
  }

  private get completionId(): string {
    return `chatcmpl-${this.replyId ?? this.id}`;
  }

  private chunk(delta: Record<string, string>, finishReason: string | null = null): void {
    const body = { id: this.completionId, object: 'chat.completion.chunk', created: this.created, model: this.opts.model, choices: [{ index: 0, delta, finish_reason: finishReason }] };
    this.res.write(`data: ${JSON.stringify(body)}\n\n`);
  }

  private start(): void {
    if (!this.opts.stream || this.res.headersSent) return;
    this.res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    this.chunk({ role: 'assistant', content: '' });
  }

  private delta({ text, reasoning, refusal }: ServerFrameOf<'reply.delta'>): void {
    if (text) this.text += text;
    if (reasoning) this.reasoning += reasoning;
    if (refusal) this.refusal += refusal;
    if (!this.opts.stream) return;
    this.chunk({ ...(text ? { content: text } : {}), ...(reasoning ? { reasoning_content: reasoning } : {}), ...(refusal ? { refusal } : {}) });
  }

  private end(end: ServerFrameOf<'reply.end'>): void {
    if (this.opts.stream) this.endStream(end);
    else this.endCompletion(end);
    this.settle({ kind: 'ended', end });
  }

  private endStream(end: ServerFrameOf<'reply.end'>): void {
    this.start();
    if (end.error) {
      this.res.write(`data: ${JSON.stringify(openaiError(end.error.code, end.error.message).body)}\n\n`);
    } else {
      this.chunk({}, FINISH[end.finishReason]);
      if (this.opts.includeUsage && end.usage) {
        const body = { id: this.completionId, object: 'chat.completion.chunk', created: this.created, model: this.opts.model, choices: [], usage: usageOf(end.usage) };
        this.res.write(`data: ${JSON.stringify(body)}\n\n`);
      }
    }
    this.res.end('data: [DONE]\n\n');
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
