// Which conversations the page is joined to, and when it leaves them: the
// room on screen, always; a room it stopped showing while its own tool loop
// still runs there (the page answers that loop's tool calls), until the loop
// ends or a grace period passes; a room renamed from the list, for as long as
// that takes. Every other room is left, so presence counts who is looking at
// a room.
import type { Conversation, RelayClient } from '../index.js';

/** A room left while this page's own tool loop still runs there stays joined until the loop ends, or this long. */
const LOOP_GRACE_MS = 120_000;
/** How long an action on a room not on screen waits for it to be joined. */
const JOIN_WAIT_MS = 10_000;

export interface JoinHooks {
  /** The room on screen ('' for none): never left. */
  current(): string;
  /** A new handle was joined: what the page hears of it beyond the room view (called once per handle). */
  wire(room: string, conv: Conversation): void;
}

export class RoomJoins {
  private readonly watched = new Map<string, Conversation>();
  /** Rooms the page no longer shows but has not left: its own tool loop still runs there. */
  private readonly lingering = new Set<string>();
  /** This page's own tool loops still running, per room. */
  private readonly ownLoops = new Map<string, number>();

  constructor(
    private readonly client: RelayClient,
    private readonly hooks: JoinHooks,
  ) {}

  /** The conversation of a room, joined (or being joined). */
  watch(room: string): Conversation {
    this.lingering.delete(room);
    const conv = this.client.conversation(room);
    if (this.watched.get(room) === conv) return conv;
    this.watched.set(room, conv);
    this.hooks.wire(room, conv);
    return conv;
  }

  /** Stop being counted in a room once the page no longer shows it (after its own tool loops there have ended). */
  unwatch(room: string): void {
    const conv = this.watched.get(room);
    if (room === this.hooks.current() || !conv) return;
    if (this.ownLoops.get(room)) {
      this.lingering.add(room);
      return;
    }
    this.lingering.delete(room);
    this.watched.delete(room);
    void conv.leave();
  }

  /** A tool loop this page answers started in `room`: the room stays joined until it ends. */
  loopStarted(room: string, loop: Promise<void>): void {
    this.ownLoops.set(room, (this.ownLoops.get(room) ?? 0) + 1);
    const grace = new Promise<void>((resolve) => setTimeout(resolve, LOOP_GRACE_MS));
    void Promise.race([loop, grace]).then(() => {
      const left = (this.ownLoops.get(room) ?? 1) - 1;
      if (left > 0) this.ownLoops.set(room, left);
      else this.ownLoops.delete(room);
      if (this.lingering.has(room)) this.unwatch(room);
    });
  }

  /** The room is gone (deleted): nothing more to hear from it, whether or not its `left` has come yet. */
  drop(room: string): void {
    const conv = this.watched.get(room);
    this.watched.delete(room);
    this.lingering.delete(room);
    if (conv && !conv.left) void conv.leave();
  }

  /** Do something only a member can (configure): the room is joined for the while if the page does not show it. */
  async asMember<T>(room: string, action: (conv: Conversation) => Promise<T>): Promise<T> {
    const conv = this.watch(room);
    try {
      await joined(conv);
      return await action(conv);
    } finally {
      this.unwatch(room);
    }
  }
}

/** Resolves once the conversation has its snapshot; rejects if the server refuses it or it goes. */
function joined(conv: Conversation): Promise<void> {
  // A snapshot came already (a resume after a reconnect is sent before anything else).
  if (conv.lastSeq !== undefined) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const offs: Array<() => void> = [];
    const done = (err?: Error) => {
      clearTimeout(timer);
      for (const off of offs) off();
      if (err) reject(err);
      else resolve();
    };
    const timer = setTimeout(() => done(new Error('the room did not answer')), JOIN_WAIT_MS);
    offs.push(
      conv.on('joined', () => done()),
      conv.on('error', (e) => done(new Error(e.message))),
      conv.on('left', () => done(new Error('the room was deleted'))),
    );
  });
}
