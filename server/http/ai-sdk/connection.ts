// One socket of the `ai` SDK's WebSocketChatTransport on `/ai-sdk`. A thin
// adapter: each request (`send`, `resume`) is a member of the conversation its
// chat id names, following one reply and answering with UIMessageChunks;
// `abort` cancels that reply. The conversation does the rest, as for `/ws`.
import type { RawData, WebSocket } from 'ws';
import { z } from 'zod';
import { AiSdkClientFrame, type AiSdkClientFrameOf, type AiSdkServerFrame } from '../../../shared/ai-sdk.js';
import { closeCodes } from '../../../shared/codes.js';
import { describeIssues } from '../../../shared/protocol.js';
import { RelayError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Conversation } from '../../rooms/conversation.js';
import type { Conversations } from '../../rooms/conversations.js';
import { ReplyFollower } from '../../rooms/reply-follower.js';
import type { Identity } from '../../session/auth.js';
import { TokenBucket } from '../../session/limits.js';
import { ChunkStream } from './chunks.js';

export interface AiSdkSettings {
  /** Requests open at once on one socket (as MAX_CONVERSATIONS for /ws). */
  maxRequests: number;
  maxTextChars: number;
  sendBufferLimitBytes: number;
  frameRatePerSec: number;
  frameBurst: number;
}

interface Request {
  conversation: Conversation;
  follower: ReplyFollower;
}

/** Just enough of a broken frame to answer it. */
const Envelope = z.object({ requestId: z.string().min(1).max(128) });

export class AiSdkConnection {
  private readonly requests = new Map<string, Request>();
  private readonly frames: TokenBucket;
  private readonly expiry: NodeJS.Timeout | undefined;
  private missedPongs = 0;

  constructor(
    private readonly ws: WebSocket,
    private readonly identity: Identity,
    private readonly conversations: Conversations,
    private readonly settings: AiSdkSettings,
    private readonly log: Logger,
    onClose: () => void,
  ) {
    this.frames = new TokenBucket(settings.frameBurst, settings.frameRatePerSec);
    const left = identity.expiresAt === undefined ? undefined : identity.expiresAt - Date.now();
    // The transport has no way to refresh a token: the socket ends with it.
    if (left !== undefined) this.expiry = setTimeout(() => ws.close(closeCodes.unauthorized, 'the token has expired'), Math.max(0, Math.min(left, 2 ** 31 - 1)));
    ws.on('message', (data, isBinary) => this.receive(data, isBinary));
    ws.on('error', () => undefined);
    ws.on('pong', () => (this.missedPongs = 0));
    ws.once('close', () => {
      clearTimeout(this.expiry);
      for (const id of [...this.requests.keys()]) this.finish(id);
      onClose();
    });
  }

  /** Called by the server's heartbeat, as for /ws: a socket that misses two pings in a row is dead. */
  heartbeat(): void {
    if (this.missedPongs >= 2) return this.ws.terminate();
    this.missedPongs++;
    this.ws.ping();
  }

  close(code: number, reason: string): void {
    this.ws.close(code, reason);
  }

  private write(frame: AiSdkServerFrame): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    if (this.ws.bufferedAmount > this.settings.sendBufferLimitBytes) return this.ws.close(closeCodes.slowConsumer, 'slow consumer; reconnect and resume');
    this.ws.send(JSON.stringify(frame));
  }

  private receive(data: RawData, isBinary: boolean): void {
    if (isBinary) return this.ws.close(closeCodes.unsupportedData, 'binary frames are not accepted');
    if (!this.frames.take()) return this.ws.close(closeCodes.rateLimitAbuse, 'frame rate abuse');
    let json: unknown;
    try {
      json = JSON.parse(data.toString());
    } catch {
      return this.ws.close(closeCodes.policyViolation, 'frame is not valid JSON');
    }
    const parsed = AiSdkClientFrame.safeParse(json);
    if (!parsed.success) {
      // The transport closes on a frame without a requestId, so a frame that names none is closed on too.
      const envelope = Envelope.safeParse(json);
      if (!envelope.success) return this.ws.close(closeCodes.policyViolation, 'frame without a requestId');
      return this.write({ type: 'error', requestId: envelope.data.requestId, errorText: describeIssues(parsed.error) });
    }
    this.dispatch(parsed.data).catch((err: unknown) => {
      const errorText = err instanceof RelayError ? err.message : 'unexpected server error';
      if (!(err instanceof RelayError)) this.log.error({ err }, 'ai-sdk request failed');
      this.write({ type: 'error', requestId: parsed.data.requestId, errorText });
      this.finish(parsed.data.requestId);
    });
  }

  private async dispatch(frame: AiSdkClientFrame): Promise<void> {
    if (frame.type === 'abort') return this.abort(frame.requestId);
    if (this.requests.has(frame.requestId)) throw new RelayError('bad_frame', 'requestId is already in use');
    if (this.requests.size >= this.settings.maxRequests) throw new RelayError('rate_limited', `at most ${this.settings.maxRequests} requests at once per socket`);
    if (!this.identity.allows(frame.id)) throw new RelayError('forbidden', 'the token does not allow this chat');
    if (frame.type === 'send') return this.send(frame);
    return this.resume(frame);
  }

  /** A request's member, answering its requestId with chunks and, at the end, `end` (or `no-active`). */
  private open(requestId: string, conversationId: string, which: 'own' | 'current', skipThrough?: number): Request {
    const stream = new ChunkStream(
      {
        chunk: (sequence, chunk) => this.write({ type: 'chunk', requestId, sequence, chunk }),
        done: (how) => {
          this.write({ type: how, requestId });
          this.finish(requestId);
        },
      },
      skipThrough,
    );
    const output = { backlogged: false, drained: () => Promise.resolve(), overflow: () => this.ws.close(closeCodes.slowConsumer, 'slow consumer') };
    const request = { conversation: this.conversations.get(conversationId), follower: new ReplyFollower(this.identity, output, stream, which) };
    this.requests.set(requestId, request);
    return request;
  }

  /** The relay keeps the history: the newest user message is appended, the rest of `messages` is the client's view. */
  private async send(frame: AiSdkClientFrameOf<'send'>): Promise<void> {
    if (frame.trigger === 'regenerate-message') throw new RelayError('bad_frame', 'regenerate is not supported yet');
    const last = frame.messages.at(-1);
    const text = last?.role === 'user' ? last.parts.map((p) => (p.type === 'text' ? (p.text ?? '') : '')).join('') : '';
    if (!text) throw new RelayError('bad_frame', 'messages: the last message must be a user message with text');
    if (text.length > this.settings.maxTextChars) throw new RelayError('bad_frame', `the message is longer than ${this.settings.maxTextChars} characters`);
    const { conversation, follower } = this.open(frame.requestId, frame.id, 'own');
    await conversation.join(follower, undefined, undefined);
    const replyId = await conversation.send(follower, { type: 'send', conversationId: frame.id, text, ref: follower.ref });
    if (replyId) follower.follow(replyId);
  }

  /** The reply streaming in that chat, from its start (or after lastSequence), then live; `no-active` when none. */
  private async resume(frame: AiSdkClientFrameOf<'resume'>): Promise<void> {
    const { conversation, follower } = this.open(frame.requestId, frame.id, 'current', frame.lastSequence);
    await conversation.join(follower, undefined, undefined);
  }

  private async abort(requestId: string): Promise<void> {
    const request = this.requests.get(requestId);
    if (!request) return;
    const replyId = request.follower.replyId;
    this.finish(requestId);
    // The reply stops for everyone, as a /ws cancel does: the upstream request is aborted.
    if (replyId) await request.conversation.cancelBy(request.follower, { type: 'cancel', conversationId: request.conversation.id, replyId }).catch(() => undefined);
  }

  /** The request is over here: its member leaves (a reply it asked for runs on for the grace period). */
  private finish(requestId: string): void {
    const request = this.requests.get(requestId);
    if (!request) return;
    this.requests.delete(requestId);
    request.conversation.leave(request.follower);
  }
}
