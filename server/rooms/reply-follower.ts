// A conversation member that follows one reply for a protocol adapter (the
// OpenAI HTTP API, the AI SDK transport): the conversation sends it frames as
// it would a socket; it picks out the reply it follows and reports that
// reply's start, pieces and end. Which reply: the one answering the message
// it sent itself (its ref), the one continuing a tool loop it answered, or the
// one streaming when it joined (resume).
import { randomUUID } from 'node:crypto';
import { ServerFrame, type ConversationEvent, type Role, type ServerFrameOf, type User } from '../../shared/protocol.js';
import type { Who } from './access.js';
import type { MemberSocket } from './conversation.js';

export interface FollowedReply {
  /** The reply began; on a resume, `soFar` is the text it had streamed before this member joined. */
  started(replyId: string, soFar?: string): void;
  delta(delta: ServerFrameOf<'reply.delta'>): void;
  ended(end: ServerFrameOf<'reply.end'>): void;
  /** Following the current reply, but none streams. */
  none(): void;
}

/** What the follower needs of the connection it writes to. */
export interface FollowerOutput {
  readonly backlogged: boolean;
  drained(): Promise<void>;
  /** Too far behind to keep: close. */
  overflow(): void;
}

export class ReplyFollower implements MemberSocket {
  readonly id = randomUUID();
  /** The member's own `message` comes back with this ref: it names the reply that answers it. */
  readonly ref = `follow-${this.id}`;
  replyId: string | undefined;
  private answering: string | undefined;

  readonly user: User;

  constructor(
    /** Who it follows for: the user, and the role their token grants (a JWT `roles` claim). */
    private readonly who: Who,
    private readonly output: FollowerOutput,
    private readonly on: FollowedReply,
    /** 'own': the reply to this member's message; 'current': the one streaming at join. */
    private readonly which: 'own' | 'current',
  ) {
    this.user = who.user;
  }

  roleFor(conversationId: string): Role | undefined {
    return this.who.roleFor?.(conversationId);
  }

  get backlogged(): boolean {
    return this.output.backlogged;
  }

  drained(): Promise<void> {
    return this.output.drained();
  }

  overflow(): void {
    this.output.overflow();
  }

  /** The conversation was deleted under it: whatever it follows will not go on, so its output closes. */
  dropped(): void {
    this.output.overflow();
  }

  /** The reply to follow, when the caller learns it before its own message comes back (it may come back without its ref). */
  follow(replyId: string): void {
    this.replyId ??= replyId;
  }

  /**
   * Follow the reply that answers `replyId` (a tool loop's continuation), set
   * before the results that queue it are sent, so that its start cannot pass
   * unseen.
   */
  followAnswerTo(replyId: string): void {
    this.answering = replyId;
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
    if (frame.type === 'joined' && this.which === 'current' && this.replyId === undefined) {
      if (!frame.streaming) return this.on.none();
      this.replyId = frame.streaming.replyId;
      return this.on.started(this.replyId, frame.streaming.text);
    }
    if (frame.type === 'message' && frame.ref === this.ref) this.replyId = frame.replyId;
    if (frame.type === 'reply.start' && this.replyId === undefined && this.answering !== undefined && frame.inReplyTo === this.answering) this.replyId = frame.replyId;
    if (!('replyId' in frame) || this.replyId === undefined || frame.replyId !== this.replyId) return;
    if (frame.type === 'reply.start') this.on.started(frame.replyId);
    else if (frame.type === 'reply.delta') this.on.delta(frame);
    else if (frame.type === 'reply.end') this.on.ended(frame);
  }
}
