// Client frames whose outcome a caller awaits. The protocol answers a cancel
// or leave only when it fails, so success is inferred from order: the server
// handles a socket's frames one at a time, and a pong to a ping sent right
// after the frame means the frame was handled without an error. An auth is
// answered by `authed`, a usage request by `usage`, a tool result by its
// `tool.result` event, a regenerate by its reply's `reply.start`, each carrying
// the request's ref.
import type { ServerFrameOf } from '../shared/protocol.js';
import { SendError } from './errors.js';

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (error: Error) => void;
}

/** Requests one socket may have outstanding. */
const MAX_OUTSTANDING = 128;

export class Requests {
  /** By the ref of the frame; `pingRef` is the ping sent after it. */
  private readonly confirms = new Map<string, Waiter<void> & { pingRef: string }>();
  private readonly auths = new Map<string, Waiter<number | undefined>>();
  private readonly results = new Map<string, Waiter<ServerFrameOf<'tool.result'>>>();
  private readonly usages = new Map<string, Waiter<ServerFrameOf<'usage'>>>();
  private readonly starts = new Map<string, Waiter<ServerFrameOf<'reply.start'>>>();
  private readonly lists = new Map<string, Waiter<ServerFrameOf<'conversations'>>>();
  private readonly invites = new Map<string, Waiter<ServerFrameOf<'invited'>>>();

  get full(): boolean {
    return this.confirms.size + this.auths.size + this.results.size + this.usages.size + this.starts.size + this.lists.size + this.invites.size >= MAX_OUTSTANDING;
  }

  list(ref: string): Promise<ServerFrameOf<'conversations'>> {
    return new Promise((resolve, reject) => this.lists.set(ref, { resolve, reject }));
  }

  invite(ref: string): Promise<ServerFrameOf<'invited'>> {
    return new Promise((resolve, reject) => this.invites.set(ref, { resolve, reject }));
  }

  invited(frame: ServerFrameOf<'invited'>): void {
    const waiter = frame.ref === undefined ? undefined : this.invites.get(frame.ref);
    if (!waiter) return;
    this.invites.delete(frame.ref!);
    waiter.resolve(frame);
  }

  listAnswer(frame: ServerFrameOf<'conversations'>): void {
    const waiter = frame.ref === undefined ? undefined : this.lists.get(frame.ref);
    if (!waiter) return;
    this.lists.delete(frame.ref!);
    waiter.resolve(frame);
  }

  /** A regenerate is answered by the start of its reply, carrying the request's ref. */
  replyStart(ref: string): Promise<ServerFrameOf<'reply.start'>> {
    return new Promise((resolve, reject) => this.starts.set(ref, { resolve, reject }));
  }

  replyStartEvent(frame: ServerFrameOf<'reply.start'>): void {
    const waiter = frame.ref === undefined ? undefined : this.starts.get(frame.ref);
    if (!waiter) return;
    this.starts.delete(frame.ref!);
    waiter.resolve(frame);
  }

  confirm(ref: string, pingRef: string): Promise<void> {
    return new Promise((resolve, reject) => this.confirms.set(ref, { pingRef, resolve, reject }));
  }

  auth(ref: string): Promise<number | undefined> {
    return new Promise((resolve, reject) => this.auths.set(ref, { resolve, reject }));
  }

  usage(ref: string): Promise<ServerFrameOf<'usage'>> {
    return new Promise((resolve, reject) => this.usages.set(ref, { resolve, reject }));
  }

  toolResult(ref: string): Promise<ServerFrameOf<'tool.result'>> {
    return new Promise((resolve, reject) => this.results.set(ref, { resolve, reject }));
  }

  pong(ref: string | undefined): void {
    if (ref === undefined) return;
    for (const [key, c] of this.confirms) {
      if (c.pingRef !== ref) continue;
      this.confirms.delete(key);
      return c.resolve();
    }
  }

  authed(frame: ServerFrameOf<'authed'>): void {
    const waiter = frame.ref === undefined ? undefined : this.auths.get(frame.ref);
    if (!waiter) return;
    this.auths.delete(frame.ref!);
    waiter.resolve(frame.expiresAt);
  }

  usageAnswer(frame: ServerFrameOf<'usage'>): void {
    const waiter = frame.ref === undefined ? undefined : this.usages.get(frame.ref);
    if (!waiter) return;
    this.usages.delete(frame.ref!);
    waiter.resolve(frame);
  }

  /** A tool.result event: the answer to ours when it carries our ref (every other member sees it without one). */
  toolResultEvent(frame: ServerFrameOf<'tool.result'>): void {
    if (frame.ref === undefined) return;
    const waiter = this.results.get(frame.ref);
    if (!waiter) return;
    this.results.delete(frame.ref);
    waiter.resolve(frame);
  }

  /** An error answering one of ours: true if it was (the caller's promise reports it). */
  error(frame: ServerFrameOf<'error'>): boolean {
    const ref = frame.ref;
    if (ref === undefined) return false;
    const waiter = this.confirms.get(ref) ?? this.auths.get(ref) ?? this.results.get(ref) ?? this.usages.get(ref) ?? this.starts.get(ref) ?? this.lists.get(ref) ?? this.invites.get(ref);
    if (!waiter) return false;
    this.confirms.delete(ref);
    this.auths.delete(ref);
    this.results.delete(ref);
    this.usages.delete(ref);
    this.starts.delete(ref);
    this.lists.delete(ref);
    this.invites.delete(ref);
    waiter.reject(new SendError(frame.message, frame.code));
    return true;
  }

  failAll(error: Error): void {
    const waiting = [...this.confirms.values(), ...this.auths.values(), ...this.results.values(), ...this.usages.values(), ...this.starts.values(), ...this.lists.values(), ...this.invites.values()];
    this.confirms.clear();
    this.auths.clear();
    this.results.clear();
    this.usages.clear();
    this.starts.clear();
    this.lists.clear();
    this.invites.clear();
    for (const w of waiting) w.reject(error);
  }
}
