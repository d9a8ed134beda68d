// What a member can do to a message besides reading it: step between its
// versions (‹ 2/3 ›), write a new version of a question (Edit), have a reply
// written again (Regenerate, or Retry for one that failed or was stopped).
// Each changes the conversation's tree on the server, and the page shows the
// outcome when the server's event comes back, the way every other member sees
// it; so a click only starts the request, and a refusal is reported.
// Who may: the room's owner anything; the author of a question may edit it
// and have it answered again; only the owner moves everyone's view to another
// version; a viewer nothing (not even to their own earlier messages). Controls
// the server would refuse are not offered.
import type { HistoryMessage, User } from '../../shared/protocol.js';
import type { Conversation, Reply } from '../index.js';
import { h } from './dom.js';
import { openEditor } from './message-editor.js';
import type { Me } from './room-view.js';
import { siblingIdsOf, type SiblingIds } from './sibling-ids.js';

/** Endings whose answer is worth asking for again as it was: the same action reads "Retry". */
const RETRY_FINISHES = new Set(['error', 'cancelled']);

export class BranchControls {
  private readonly siblings: SiblingIds;

  constructor(
    private readonly conv: Conversation,
    private readonly me: Me,
    /** Where a refused action is said (the page's toasts). */
    private readonly report: (message: string) => void,
    /** A reply this page asked for (an edit's, a regenerate's): its tool loop is this page's to answer, as a send's is. */
    private readonly own: (reply: Reply) => void = () => undefined,
  ) {
    this.siblings = siblingIdsOf(conv);
  }

  /**
   * (Re)draw the controls under a message from its history entry. A message
   * not in history yet (still sending, a queued reply) has none; a reply gets
   * Regenerate only once it has ended (the page marks it `data-state="done"`).
   */
  paint(el: HTMLElement, m: HistoryMessage | undefined): void {
    el.querySelector(':scope > .msg-main > .msg-actions')?.remove();
    if (!m) return;
    this.siblings.see(m);
    const parts: HTMLElement[] = [];
    if (m.siblings && m.siblings.count > 1) parts.push(this.arrows(m));
    if (m.role === 'user' && this.mayChange(m.author)) {
      parts.push(this.button('Edit', 'Write a new version of this message', 'edit', () => openEditor(el, m.text, (text) => this.edit(m.id, text))));
    }
    // A step of a tool loop that asked for calls is answered again from the loop's last reply, which names the same question.
    const answered = el.dataset.state === 'done' && el.dataset.finish !== 'tool_calls';
    if (m.role === 'assistant' && answered && this.mayChange(this.questionAuthor(m.id))) {
      const retry = RETRY_FINISHES.has(el.dataset.finish ?? '');
      const button = this.button(retry ? 'Retry' : 'Regenerate', retry ? 'Ask for this answer again' : 'Write another answer beside this one', 'regenerate', () =>
        this.settle(button, this.conv.regenerate(m.id).then(this.own), retry ? 'Retry failed' : 'Regenerate failed'),
      );
      parts.push(button);
    }
    if (parts.length) el.querySelector(':scope > .msg-main')?.append(h('div', { class: 'msg-actions' }, ...parts));
  }

  /** Redraw the controls of every message in `list` (the user's role changed, and with it what they may do). */
  repaint(list: HTMLElement): void {
    const entries = new Map(this.conv.history.map((m) => [m.id, m]));
    for (const el of list.querySelectorAll<HTMLElement>(':scope > .msg[data-id]')) {
      const m = entries.get(el.dataset.id!);
      if (m) this.paint(el, m);
    }
  }

  /** "‹ 2/3 ›": an arrow is live only where the page knows the version it leads to, and the user may move the room there. */
  private arrows(m: HistoryMessage): HTMLElement {
    const { index, count } = m.siblings!;
    const allowed = this.isOwner();
    const arrow = (step: -1 | 1, glyph: string, label: string) => {
      const target = this.siblings.neighbour(m, step);
      const why = !allowed ? "Only the room's owner can switch versions" : !target ? 'This page has not seen that version' : label;
      const b = h('button', { type: 'button', class: 'branch-step', 'data-step': step, 'aria-label': label, title: why, disabled: !allowed || !target }, glyph);
      if (target) b.addEventListener('click', () => this.settle(b, this.conv.switchTo(target), 'Switching versions failed'));
      return b;
    };
    return h(
      'span',
      { class: 'branches', role: 'group', 'aria-label': `Version ${index + 1} of ${count}` },
      arrow(-1, '‹', 'Previous version'),
      h('span', { class: 'branch-count' }, `${index + 1}/${count}`),
      arrow(1, '›', 'Next version'),
    );
  }

  private button(label: string, title: string, action: string, onClick: () => void): HTMLButtonElement {
    const b = h('button', { type: 'button', class: 'msg-action', 'data-action': action, title }, label);
    b.addEventListener('click', onClick);
    return b;
  }

  /** The new version shows when its `message` arrives; only a refusal needs saying here. */
  private edit(messageId: string, text: string): Promise<boolean> {
    return this.conv.edit(messageId, text).then(
      (m) => {
        if (m.replyId) this.own(this.conv.reply(m.replyId));
        return true;
      },
      (err: unknown) => {
        this.report(`Edit failed: ${reason(err)}`);
        return false;
      },
    );
  }

  /** One click, one request: the button waits for the answer, and a refusal is reported. */
  private settle(button: HTMLButtonElement, request: Promise<unknown>, failed: string): void {
    button.disabled = true;
    request.then(
      // Usually gone with the branch it was on by now.
      () => (button.disabled = false),
      (err: unknown) => {
        button.disabled = false;
        this.report(`${failed}: ${reason(err)}`);
      },
    );
  }

  /** A conversation that names no owner (written before owners existed) lets every member, but never a viewer. */
  private isOwner(): boolean {
    const owner = this.conv.owner;
    return !this.viewer() && (owner === undefined || this.me.isMe({ id: owner, name: '' }));
  }

  private mayChange(author: User | undefined): boolean {
    return !this.viewer() && (this.isOwner() || this.me.isMe(author));
  }

  /** Only watching: the server refuses a viewer's edit, regenerate and switch alike. */
  private viewer(): boolean {
    return this.conv.role === 'viewer';
  }

  /** Who asked the question a reply (or a step of its tool loop) answers: the nearest user message before it on the path. */
  private questionAuthor(replyId: string): User | undefined {
    const history = this.conv.history;
    let i = history.length - 1;
    while (i >= 0 && history[i]!.id !== replyId) i--;
    for (; i >= 0; i--) if (history[i]!.role === 'user') return history[i]!.author;
    return undefined;
  }
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
