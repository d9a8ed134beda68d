// The message list of one room: renders a conversation's history and keeps
// it current from its events, streaming each reply through a typewriter and
// its tool calls into cards, where their results show once they arrive. A
// reply the relay starts from tool results is simply the next assistant
// message. A streaming reply's Markdown is rendered block by block (only the
// block still growing is redrawn); under each reply, its model and, where this
// browser saw them, its tokens and the reason it failed. A user message shows
// its attachments under its text. The list is the conversation's active path:
// an edit or a regenerated reply takes the place of what followed its parent,
// and a switch to another branch redraws it whole; the controls for those live
// in branch-controls.ts.
import type { Attachment, HistoryMessage, ServerFrameOf, User } from '../../shared/protocol.js';
import type { Conversation, MessageFrame, ToolResult } from '../index.js';
import { resultFromEntry, resultFromFrame } from '../tool-results.js';
import type { AttachmentView } from './attachment-view.js';
import type { BranchControls } from './branch-controls.js';
import { avatar, clock, h } from './dom.js';
import type { Follow } from './follow.js';
import { IncrementalMarkdown, renderMarkdown } from './markdown.js';
import { keepReplyNote, replyNote } from './reply-notes.js';
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

/** Markdown that is still streaming into a reply's body: the renderer, and how many of the body's nodes are finished blocks. */
interface LiveBody {
  markdown: IncrementalMarkdown;
  stableNodes: number;
}

/** Parse HTML made by the Markdown renderer (escaped by construction) into nodes, without the line breaks between its blocks. */
function fragment(html: string): DocumentFragment {
  const t = document.createElement('template');
  t.innerHTML = html;
  for (const node of [...t.content.childNodes]) if (node.nodeType === Node.TEXT_NODE && !node.textContent?.trim()) node.remove();
  return t.content;
}

export class RoomView {
  private readonly items = new Map<string, HTMLElement>();
  private readonly pending = new Map<string, { text: string; el: HTMLElement }>();
  private readonly writers = new Map<string, Typewriter>();
  private readonly live = new WeakMap<HTMLElement, LiveBody>();
  private readonly offs: Array<() => void> = [];

  constructor(
    private readonly conv: Conversation,
    private readonly list: HTMLElement,
    private readonly me: Me,
    /** Keeps the view at the newest message while the reader is there (it follows every change of size). */
    private readonly follow: Follow,
    /** Renders the files of user messages; disposed with the view. */
    private readonly attachments: AttachmentView,
    /** Edit, Regenerate and the version arrows under each message. */
    private readonly controls: BranchControls,
  ) {}

  mount(): this {
    this.renderAll();
    const c = this.conv;
    this.offs.push(
      c.on('joined', () => this.renderAll()),
      c.on('switch', () => this.renderAll()),
      c.on('message', (m) => this.message(m)),
      c.on('reply.start', (e) => this.started(e)),
      c.on('reply.delta', (e) => {
        if (e.text) this.writers.get(e.replyId)?.append(e.text);
        if (e.toolCall) this.toolCallGrew(e.replyId);
      }),
      c.on('reply.end', (e) => this.ended(e)),
      c.on('tool.result', (e) => this.toolResult(resultFromFrame(e))),
    );
    return this;
  }

  dispose(): void {
    for (const off of this.offs.splice(0)) off();
    for (const w of this.writers.values()) w.dispose();
    this.writers.clear();
    this.attachments.dispose();
  }

  /** Show a message the moment it is sent; the server's `message` replaces it in place. */
  addPending(clientMessageId: string, text: string, author: User, attachments: Attachment[] = []): void {
    const el = this.userElement({ id: '', role: 'user', author, text, createdAt: Date.now(), attachments }, true);
    this.pending.set(clientMessageId, { text, el });
    this.append(el);
    // Whoever sends wants to see their message and its answer.
    this.follow.jump();
  }

  failPending(clientMessageId: string, reason: string): void {
    const p = this.pending.get(clientMessageId);
    if (!p) return;
    p.el.dataset.state = 'failed';
    p.el.querySelector('.meta')?.replaceChildren(`Not sent: ${reason}`);
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
      if (m.role === 'tool') {
        this.historyResult(m);
        continue;
      }
      const el = m.role === 'user' ? this.userElement(m, false) : streaming && streaming.id === m.id ? this.streamingElement(m) : this.finishedElement(m);
      this.append(el);
      this.controls.paint(el, m);
    }
    for (const p of this.pending.values()) this.append(p.el);
    if (this.list.children.length === 0) {
      this.list.append(h('div', { class: 'empty' }, h('p', { class: 'empty-title' }, 'No messages yet'), h('p', {}, 'Say hello — the assistant answers every message.')));
    }
    this.follow.jump();
  }

  private message(m: MessageFrame): void {
    const { message } = m;
    if (this.items.has(message.id)) return;
    const waiting = message.clientMessageId ? this.pending.get(message.clientMessageId) : undefined;
    if (waiting && message.clientMessageId) {
      this.pending.delete(message.clientMessageId);
      waiting.el.remove();
    }
    if (m.siblings) this.prune(message.parentId);
    const el = this.userElement(message, false);
    this.append(el);
    this.controls.paint(el, this.entry(message.id));
    if (!waiting) this.follow.arrived();
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

  private started(e: ServerFrameOf<'reply.start'>): void {
    const { replyId, model } = e;
    if (e.siblings) this.prune(e.parentId);
    let el = this.items.get(replyId);
    if (el) {
      el.dataset.state = 'streaming';
      this.writers.set(replyId, this.writer(el, ''));
    } else {
      this.append((el = this.assistantElement(replyId, 'streaming', '')));
      // A step of a tool loop: a new message nobody sent.
      this.follow.arrived();
    }
    this.setMeta(el, model, undefined);
    this.controls.paint(el, this.entry(replyId));
  }

  private ended(e: ServerFrameOf<'reply.end'>): void {
    let el = this.items.get(e.replyId);
    if (!el) this.append((el = this.assistantElement(e.replyId, 'streaming', '')));
    const text = this.conv.reply(e.replyId).text;
    const writer = this.writers.get(e.replyId) ?? this.writer(el, '');
    this.writers.delete(e.replyId);
    const tokens = tokensOf(e.finishReason, e.usage);
    // Older servers' history keeps neither: remembered here, they still show after a reload.
    keepReplyNote(e.replyId, { ...(e.error ? { error: e.error.message } : {}), ...(tokens !== undefined ? { tokens } : {}) });
    this.finish(el, e.finishReason, e.error?.message);
    writer.finish(text);
    paintToolCalls(el, e.toolCalls ?? [], true);
    this.setMeta(el, el.dataset.model, tokens);
    this.controls.paint(el, this.entry(e.replyId));
  }

  /** The history entry of a message (the newest are the likeliest asked for). */
  private entry(id: string): HistoryMessage | undefined {
    const history = this.conv.history;
    for (let i = history.length - 1; i >= 0; i--) if (history[i]!.id === id) return history[i];
    return undefined;
  }

  /**
   * A new version (an edit, a regenerated reply) replaces the path after its
   * parent: what the page showed after the parent goes. Sends still on their
   * way stay. A parent shown inside another message (a tool result in its
   * call's card) counts as that message; one no longer in history means the
   * whole list was the path replaced.
   */
  private prune(parentId: string | undefined): void {
    const history = this.conv.history;
    let at = parentId === undefined ? -1 : history.length - 1;
    while (at >= 0 && history[at]!.id !== parentId) at--;
    while (at >= 0 && !this.items.has(history[at]!.id)) at--;
    const parent = at >= 0 ? this.items.get(history[at]!.id) : undefined;
    let next = parent ? parent.nextElementSibling : this.list.firstElementChild;
    while (next) {
      const el = next;
      next = el.nextElementSibling;
      const id = el instanceof HTMLElement ? el.dataset.id : undefined;
      if (!id) continue;
      this.writers.get(id)?.dispose();
      this.writers.delete(id);
      this.items.delete(id);
      el.remove();
    }
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
    paintToolCalls(el, this.conv.reply(replyId).toolCalls, false);
  }

  /** The reply in flight as a snapshot (a late join, a reload) shows it: text and tool calls so far. */
  private streamingElement(m: HistoryMessage): HTMLElement {
    const el = this.assistantElement(m.id, 'streaming', m.text);
    paintToolCalls(el, m.toolCalls ?? [], false);
    this.setMeta(el, m.model, undefined);
    return el;
  }

  private finishedElement(m: HistoryMessage): HTMLElement {
    const el = this.assistantElement(m.id, 'done', '');
    const note = replyNote(m.id);
    this.finish(el, m.finishReason ?? 'stop', note?.error ?? m.error?.message);
    this.paint(el, m.text, true);
    paintToolCalls(el, m.toolCalls ?? [], true);
    this.setMeta(el, m.model, note?.tokens ?? tokensOf(m.finishReason, m.usage));
    return el;
  }

  /**
   * The badge of how a reply ended, and for a failure, why: the reason the
   * server gave (live, or kept in history), or only that it failed (history
   * of a server that kept no reason).
   */
  private finish(el: HTMLElement, finishReason: string, error: string | undefined): void {
    el.dataset.state = 'done';
    el.dataset.finish = finishReason;
    const badge = FINISH_BADGES[finishReason];
    if (badge && !el.querySelector('.msg-head .badge')) {
      el.querySelector('.msg-head')?.append(h('span', { class: `badge badge-${finishReason}`, title: error ?? badge }, badge));
    }
    if (finishReason === 'error') {
      const why = error ? `Failed: ${error}` : 'This reply failed before it finished; the reason was not kept.';
      const note = el.querySelector('.reply-error') ?? el.querySelector('.tool-calls')?.insertAdjacentElement('beforebegin', h('p', { class: 'reply-error', role: 'note' }));
      note?.replaceChildren(why);
    }
  }

  /** "model · N tokens" under a reply: the model when known, the tokens when this browser saw them. */
  private setMeta(el: HTMLElement, model: string | undefined, tokens: number | undefined): void {
    if (model) el.dataset.model = model;
    const text = [model, tokens !== undefined ? `${tokens} ${tokens === 1 ? 'token' : 'tokens'}` : undefined].filter(Boolean).join(' · ');
    const meta = el.querySelector('.meta');
    if (meta && meta.textContent !== text) meta.textContent = text;
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
        ...(m.attachments?.length ? [this.attachments.render(m.attachments)] : []),
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
    return new Typewriter((text, final) => this.paint(el, text, final), initial);
  }

  /** Show `text` in a reply's body: while it streams, only its last block is redrawn; once final, all of it once. */
  private paint(el: HTMLElement, text: string, final: boolean): void {
    const body = el.querySelector<HTMLElement>('.body');
    if (!body) return;
    body.classList.toggle('live', !final);
    if (final) {
      this.live.delete(body);
      body.replaceChildren(fragment(renderMarkdown(text)));
      return;
    }
    let live = this.live.get(body);
    if (!live) this.live.set(body, (live = { markdown: new IncrementalMarkdown(), stableNodes: 0 }));
    const update = live.markdown.update(text);
    if (update.reset) live.stableNodes = 0;
    // The previous tail goes; finished blocks stay as they are.
    while (body.childNodes.length > live.stableNodes) body.lastChild!.remove();
    if (update.stable) {
      const blocks = fragment(update.stable);
      live.stableNodes += blocks.childNodes.length;
      body.append(blocks);
    }
    body.append(fragment(update.tail));
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
}

/** The tokens worth a mention under a reply: none for one that failed before writing anything. */
function tokensOf(finishReason: string | undefined, usage: { completionTokens: number } | undefined): number | undefined {
  return finishReason === 'error' && !usage?.completionTokens ? undefined : usage?.completionTokens;
}
