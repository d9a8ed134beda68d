// The message list of one room: renders a conversation's history and keeps
// it current from its events, streaming each reply through a typewriter and
// its tool calls into cards, where their results show once they arrive. A
// reply the relay starts from tool results is simply the next assistant
// message.
import type { HistoryMessage, ServerFrameOf, User } from '../../shared/protocol.js';
import type { Conversation, MessageFrame, ToolResult } from '../index.js';
import { resultFromEntry, resultFromFrame } from '../tool-results.js';
import { avatar, clock, h } from './dom.js';
import { renderMarkdown } from './markdown.js';
import { paintToolCalls, paintToolResult } from './tool-cards.js';
import { Typewriter } from './typewriter.js';

export interface Me {
  /** True for this tab's user, including the identities it had before a reconnect. */
  isMe(user: User | undefined): boolean;
}

/** Consecutive messages of one author within this window share one header. */
const GROUP_MS = 5 * 60_000;
const MAX_RENDERED = 600;
const FINISH_BADGES: Record<string, string> = {
  cancelled: 'Stopped',
  length: 'Cut off at the length limit',
  content_filter: 'Stopped by the content filter',
  tool_calls: 'Asked to call tools',
  error: 'Failed',
};

export class RoomView {
  private readonly items = new Map<string, HTMLElement>();
  private readonly pending = new Map<string, { text: string; el: HTMLElement }>();
  private readonly writers = new Map<string, Typewriter>();
  private readonly offs: Array<() => void> = [];

  constructor(
    private readonly conv: Conversation,
    private readonly list: HTMLElement,
    private readonly me: Me,
  ) {}

  mount(): this {
    this.renderAll();
    const c = this.conv;
    this.offs.push(
      c.on('joined', () => this.renderAll()),
      c.on('message', (m) => this.keepScroll(() => this.message(m))),
      c.on('reply.start', (e) => this.keepScroll(() => this.started(e.replyId, e.model))),
      c.on('reply.delta', (e) => {
        if (e.text) this.writers.get(e.replyId)?.append(e.text);
        if (e.toolCall) this.toolCallGrew(e.replyId);
      }),
      c.on('reply.end', (e) => this.keepScroll(() => this.ended(e))),
      c.on('tool.result', (e) => this.keepScroll(() => this.toolResult(resultFromFrame(e)))),
    );
    return this;
  }

  dispose(): void {
    for (const off of this.offs.splice(0)) off();
    for (const w of this.writers.values()) w.dispose();
    this.writers.clear();
  }

  /** Show a message the moment it is sent; the server's `message` replaces it in place. */
  addPending(clientMessageId: string, text: string, author: User): void {
    const el = this.userElement({ id: '', role: 'user', author, text, createdAt: Date.now() }, true);
    this.pending.set(clientMessageId, { text, el });
    this.keepScroll(() => this.append(el));
  }

  failPending(clientMessageId: string, reason: string): void {
    const p = this.pending.get(clientMessageId);
    if (!p) return;
    p.el.dataset.state = 'failed';
    p.el.querySelector('.meta')?.replaceChildren(`Not sent: ${reason}`);
  }

  scrollToBottom(): void {
    this.list.scrollTop = this.list.scrollHeight;
  }

  // ------------------------------------------------------------ rendering

  private renderAll(): void {
    for (const w of this.writers.values()) w.dispose();
    this.writers.clear();
    this.items.clear();
    this.list.replaceChildren();
    const streaming = this.conv.streaming;
    for (const m of this.conv.history) {
      // A result is not a message of its own: it lives in the card of the call it answers.
      if (m.role === 'tool') this.historyResult(m);
      else if (m.role === 'user') this.append(this.userElement(m, false));
      else if (streaming && streaming.id === m.id) this.append(this.streamingElement(m));
      else this.append(this.finishedElement(m));
    }
    for (const p of this.pending.values()) this.append(p.el);
    if (this.list.children.length === 0) {
      this.list.append(h('div', { class: 'empty' }, h('p', { class: 'empty-title' }, 'No messages yet'), h('p', {}, 'Say hello — the assistant answers every message.')));
    }
    this.scrollToBottom();
  }

  private message(m: MessageFrame): void {
    const { message } = m;
    if (this.items.has(message.id)) return;
    const waiting = message.clientMessageId ? this.pending.get(message.clientMessageId) : undefined;
    if (waiting && message.clientMessageId) {
      this.pending.delete(message.clientMessageId);
      waiting.el.remove();
    }
    this.append(this.userElement(message, false));
    if (m.replyId && !this.items.has(m.replyId)) {
      const replyId = m.replyId;
      this.append(this.assistantElement(replyId, 'queued', ''));
      // A queued reply that is cancelled never starts: its placeholder goes.
      void this.conv.reply(replyId).result.then((r) => {
        const el = this.items.get(replyId);
        if (el?.dataset.state === 'queued' && r.finishReason === 'cancelled') {
          el.remove();
          this.items.delete(replyId);
        }
      });
    }
  }

  private started(replyId: string, model: string): void {
    const el = this.items.get(replyId);
    if (el) {
      el.dataset.state = 'streaming';
      this.writers.set(replyId, this.writer(el, ''));
    } else {
      this.append(this.assistantElement(replyId, 'streaming', ''));
    }
    this.items.get(replyId)?.querySelector('.meta')?.replaceChildren(model);
  }

  private ended(e: ServerFrameOf<'reply.end'>): void {
    let el = this.items.get(e.replyId);
    if (!el) this.append((el = this.assistantElement(e.replyId, 'streaming', '')));
    const text = this.conv.reply(e.replyId).text;
    const writer = this.writers.get(e.replyId) ?? this.writer(el, '');
    this.writers.delete(e.replyId);
    this.finish(el, e.finishReason, e.error?.message);
    writer.finish(text);
    paintToolCalls(el, e.toolCalls ?? [], true);
    const meta = el.querySelector('.meta');
    const model = meta?.textContent;
    if (meta && e.usage) meta.replaceChildren([model, `${e.usage.completionTokens} tokens`].filter(Boolean).join(' · '));
  }

  private historyResult(m: HistoryMessage): void {
    const result = resultFromEntry(m);
    if (result) this.toolResult(result);
  }

  /** A result whose reply is no longer rendered (the list is bounded) has nowhere to go. */
  private toolResult(result: ToolResult): void {
    const el = this.items.get(result.replyId);
    if (el) paintToolResult(el, result);
  }

  /** Cards follow the reply in flight as its calls grow; the text has its typewriter. */
  private toolCallGrew(replyId: string): void {
    const el = this.items.get(replyId);
    if (el?.dataset.state !== 'streaming') return;
    this.keepScroll(() => paintToolCalls(el, this.conv.reply(replyId).toolCalls, false));
  }

  /** The reply in flight as a snapshot (a late join, a reload) shows it: text and tool calls so far. */
  private streamingElement(m: HistoryMessage): HTMLElement {
    const el = this.assistantElement(m.id, 'streaming', m.text);
    paintToolCalls(el, m.toolCalls ?? [], false);
    return el;
  }

  private finishedElement(m: HistoryMessage): HTMLElement {
    const el = this.assistantElement(m.id, 'done', '');
    this.finish(el, m.finishReason ?? 'stop', undefined);
    this.paint(el, m.text, true);
    paintToolCalls(el, m.toolCalls ?? [], true);
    return el;
  }

  private finish(el: HTMLElement, finishReason: string, error: string | undefined): void {
    el.dataset.state = 'done';
    el.dataset.finish = finishReason;
    const badge = FINISH_BADGES[finishReason];
    if (badge) {
      const head = el.querySelector('.msg-head');
      head?.append(h('span', { class: `badge badge-${finishReason}`, title: error ?? badge }, error ? `${badge}: ${error}` : badge));
    }
  }

  private userElement(m: HistoryMessage, pending: boolean): HTMLElement {
    const author = m.author ?? { id: 'unknown', name: 'Someone' };
    const mine = this.me.isMe(author);
    const el = h(
      'article',
      { class: 'msg', 'data-role': 'user', 'data-id': m.id || undefined, 'data-mine': mine, 'data-state': pending ? 'pending' : 'done', 'data-author': author.id, 'data-at': m.createdAt },
      avatar(author.id, author.name),
      h(
        'div',
        { class: 'msg-main' },
        h('header', { class: 'msg-head' }, h('span', { class: 'author' }, mine ? `${author.name} (you)` : author.name), h('time', {}, clock(m.createdAt))),
        h('div', { class: 'body plain' }, m.text),
        h('div', { class: 'meta' }, pending ? 'Sending…' : ''),
      ),
    );
    if (m.id) this.items.set(m.id, el);
    return el;
  }

  private assistantElement(replyId: string, state: 'queued' | 'streaming' | 'done', text: string): HTMLElement {
    const body = h('div', { class: 'body markdown' });
    const el = h(
      'article',
      { class: 'msg', 'data-role': 'assistant', 'data-id': replyId, 'data-state': state },
      avatar('assistant', 'A I', 'assistant'),
      h(
        'div',
        { class: 'msg-main' },
        h('header', { class: 'msg-head' }, h('span', { class: 'author' }, 'Assistant')),
        body,
        h('div', { class: 'tool-calls' }),
        h('div', { class: 'meta' }),
      ),
    );
    this.items.set(replyId, el);
    if (state === 'streaming') this.writers.set(replyId, this.writer(el, text));
    return el;
  }

  private writer(el: HTMLElement, initial: string): Typewriter {
    return new Typewriter((text, final) => this.keepScroll(() => this.paint(el, text, final)), initial);
  }

  private paint(el: HTMLElement, text: string, final: boolean): void {
    const body = el.querySelector<HTMLElement>('.body');
    if (!body) return;
    body.innerHTML = renderMarkdown(text);
    body.classList.toggle('live', !final);
  }

  private append(el: HTMLElement): void {
    this.list.querySelector('.empty')?.remove();
    // Consecutive messages of one person read as one block.
    const prev = this.list.lastElementChild;
    if (
      el.dataset.role === 'user' &&
      prev instanceof HTMLElement &&
      prev.dataset.role === 'user' &&
      prev.dataset.author === el.dataset.author &&
      Number(el.dataset.at) - Number(prev.dataset.at) < GROUP_MS
    ) {
      el.classList.add('cont');
    }
    this.list.append(el);
    // The DOM is bounded like the history it mirrors: the oldest messages go first.
    while (this.list.childElementCount > MAX_RENDERED) {
      const first = this.list.firstElementChild;
      if (first instanceof HTMLElement && first.dataset.id) this.items.delete(first.dataset.id);
      first?.remove();
    }
  }

  /** Follow the bottom while the reader is there; leave them alone when they scrolled up to read. */
  private keepScroll(change: () => void): void {
    const l = this.list;
    const atBottom = l.scrollHeight - l.scrollTop - l.clientHeight < 48;
    change();
    if (atBottom) l.scrollTop = l.scrollHeight;
  }
}
