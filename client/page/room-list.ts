// The room list of the sidebar (a drawer on a phone): the user's
// conversations as the server keeps them, so a reload, a second tab and
// another device all show the same list. Newest activity first, each room by
// its title where it has one, unread ones marked, a page at a time ("More").
// The server lists only rooms something was written in: a room opened on this
// page that is still empty is shown after them, for as long as the page is
// open, so the room on screen is always on the list. Nothing is kept in the
// browser: the server's list is the one list. Rooms the user owns get Rename
// and Delete (room-actions.ts); the page does the requests.
import type { ConversationSummary } from '../../shared/protocol.js';
import type { RelayClient } from '../index.js';
import { h } from './dom.js';
import { deleteRow, renameRow } from './room-actions.js';

/** The server's default page, and its largest. */
const PAGE = 20;
const MAX_PAGE = 100;
/** Asks for a fresh list within this long become one request: a burst of messages is one change of order. */
const COALESCE_MS = 100;
/** Empty rooms opened on this page that stay listed. */
const MAX_OPENED = 12;

export interface RoomListHooks {
  /** The link of a room was followed (on a phone the drawer closes). */
  picked(): void;
  /** Give the room this title (null: none); rejects with the server's refusal. */
  rename(room: string, title: string | null): Promise<void>;
  /** Delete the room for everyone; rejects with the server's refusal. */
  remove(room: string): Promise<void>;
  /** Where a refusal is said (the page's toasts). */
  report(message: string): void;
}

export class RoomList {
  /** The server's list as far as it was loaded, newest activity first. */
  private rooms: ConversationSummary[] = [];
  /** The `before` of the next page, if the server has more. */
  private next: number | undefined;
  /** Rooms opened on this page, oldest first: those the server does not list (still empty) are shown after its own. */
  private opened: string[] = [];
  private current = '';
  /** A row turned into a rename field or a delete question: kept as it is when the list is drawn again. */
  private editing: { room: string; row: HTMLLIElement } | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private loading = false;
  private again = false;
  /** Bumped by every fresh first page: a "More" page asked for before it is stale. */
  private generation = 0;

  constructor(
    private readonly client: RelayClient,
    private readonly els: { list: HTMLUListElement; more: HTMLButtonElement },
    private readonly hooks: RoomListHooks,
  ) {
    els.more.addEventListener('click', () => void this.loadMore());
  }

  /** The page shows this room now ('' for none). */
  show(room: string): void {
    this.current = room;
    if (room && !this.opened.includes(room)) this.opened = [...this.opened, room].slice(-MAX_OPENED);
    this.render();
  }

  /** Ask the server for the list again, soon (several asks in a row make one request). */
  refresh(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.load(), COALESCE_MS);
  }

  /** The room is gone (deleted): off the list now, before the server's next list says so. */
  forget(room: string): void {
    this.rooms = this.rooms.filter((r) => r.conversationId !== room);
    this.opened = this.opened.filter((r) => r !== room);
    if (this.editing?.room === room) this.editing = undefined;
    this.render();
  }

  /** The room to show instead of `room`: the newest other one, or '' when there is none. */
  another(room: string): string {
    return this.ids().find((id) => id !== room) ?? '';
  }

  // ------------------------------------------------------------ loading

  private async load(): Promise<void> {
    // Not connected: the next welcome asks again.
    if (this.client.state !== 'open') return;
    if (this.loading) {
      this.again = true;
      return;
    }
    this.loading = true;
    const generation = ++this.generation;
    try {
      // As many rows as are shown, so a fresh list does not take back what "More" brought.
      const page = await this.client.listConversations({ limit: Math.min(MAX_PAGE, Math.max(PAGE, this.rooms.length)) });
      if (generation !== this.generation) return;
      this.rooms = page.conversations;
      this.next = page.next;
      this.render();
    } catch (err) {
      this.failed(err);
    } finally {
      this.loading = false;
      if (this.again) {
        this.again = false;
        void this.load();
      }
    }
  }

  private async loadMore(): Promise<void> {
    const before = this.next;
    if (before === undefined || this.client.state !== 'open') return;
    const generation = this.generation;
    this.els.more.disabled = true;
    try {
      const page = await this.client.listConversations({ before, limit: PAGE });
      if (generation !== this.generation) return;
      // A room whose activity moved it since the first page is there already.
      const known = new Set(this.rooms.map((r) => r.conversationId));
      this.rooms = [...this.rooms, ...page.conversations.filter((r) => !known.has(r.conversationId))];
      this.next = page.next;
      this.render();
    } catch (err) {
      this.failed(err);
    } finally {
      this.els.more.disabled = false;
    }
  }

  private failed(err: unknown): void {
    // A lost connection is said by the connection state, and the welcome after it brings a fresh list.
    if (err instanceof Error && 'code' in err && err.code === 'disconnected') return;
    this.hooks.report(`Room list not updated: ${reason(err)}`);
  }

  // ------------------------------------------------------------ drawing

  /** Every room shown, in order: the server's, then the empty ones opened here. */
  private ids(): string[] {
    const listed = this.rooms.map((r) => r.conversationId);
    return [...listed, ...this.opened.filter((id) => !listed.includes(id))];
  }

  private render(): void {
    const byId = new Map(this.rooms.map((r) => [r.conversationId, r]));
    const editing = this.editing;
    const rows = this.ids().map((id) => (editing?.room === id ? editing.row : this.row(id, byId.get(id))));
    if (editing && !rows.includes(editing.row)) this.editing = undefined;
    const focus = this.focusNow();
    this.els.list.replaceChildren(...rows);
    focus();
    this.els.more.hidden = this.next === undefined;
  }

  /**
   * The list is drawn again whenever the server's changes (a message in the
   * room on screen is enough): whoever was in it with the keyboard, or typing
   * a title, stays where they were. The returned function puts the focus back.
   */
  private focusNow(): () => void {
    const el = document.activeElement;
    if (!(el instanceof HTMLElement) || !this.els.list.contains(el)) return () => undefined;
    const room = el.closest('li')?.dataset.room;
    const action = el.dataset.action;
    return () => {
      // The same element (a row being edited is kept), or the same control in the row drawn anew.
      if (el.isConnected) return el.focus();
      const row = room === undefined ? undefined : this.els.list.querySelector(`li[data-room="${CSS.escape(room)}"]`);
      row?.querySelector<HTMLElement>(action ? `[data-action="${CSS.escape(action)}"]` : '.room-link')?.focus();
    };
  }

  private row(room: string, summary: ConversationSummary | undefined): HTMLLIElement {
    const label = summary?.title ?? room;
    // The room on screen is being read as it is written: never shown as unread.
    const unread = Boolean(summary?.unread) && room !== this.current;
    const link = h(
      'a',
      { href: `#${encodeURIComponent(room)}`, class: 'room-link', title: summary?.title ? `${summary.title} · #${room}` : `#${room}`, 'aria-current': room === this.current ? 'page' : undefined },
      h('span', { class: 'hash', 'aria-hidden': 'true' }, '#'),
      h('span', { class: 'room-name' }, label),
      ...(unread ? [h('span', { class: 'unread-dot', title: 'New messages' }, h('span', { class: 'visually-hidden' }, ', new messages'))] : []),
    );
    link.addEventListener('click', () => this.hooks.picked());
    const row = h('li', { class: 'room-row', 'data-room': room, 'data-unread': unread || undefined, 'data-titled': summary?.title !== undefined || undefined }, link);
    const me = this.client.user?.id;
    if (summary?.owner !== undefined && summary.owner === me) {
      row.append(
        this.action('rename', '✎', `Rename ${label}`, () => this.edit(room, renameRow(room, summary.title, (title) => this.rename(room, title), () => this.closeEdit(room, 'rename')))),
        this.action('delete', '×', `Delete ${label}`, () => this.edit(room, deleteRow(room, label, () => this.remove(room), () => this.closeEdit(room, 'delete')))),
      );
    }
    return row;
  }

  private action(name: string, glyph: string, label: string, onClick: () => void): HTMLButtonElement {
    const b = h('button', { type: 'button', class: 'room-action', 'data-action': name, title: label, 'aria-label': label }, glyph);
    b.addEventListener('click', onClick);
    return b;
  }

  private edit(room: string, row: HTMLLIElement): void {
    this.editing = { room, row };
    this.render();
    row.querySelector<HTMLElement>('input, .room-edit-cancel')?.focus();
  }

  /** Back to the ordinary row, with the focus on the button that opened the field. */
  private closeEdit(room: string, action: string): void {
    if (this.editing?.room === room) this.editing = undefined;
    this.render();
    this.els.list.querySelector<HTMLElement>(`li[data-room="${CSS.escape(room)}"] [data-action="${action}"]`)?.focus();
  }

  private async rename(room: string, title: string | null): Promise<boolean> {
    try {
      await this.hooks.rename(room, title);
    } catch (err) {
      this.hooks.report(`Not renamed: ${reason(err)}`);
      return false;
    }
    // Accepted: show it now; the fresh list brings its new place too.
    this.rooms = this.rooms.map((r) => (r.conversationId !== room ? r : withTitle(r, title)));
    this.refresh();
    return true;
  }

  private async remove(room: string): Promise<boolean> {
    const hadFocus = this.els.list.contains(document.activeElement);
    try {
      await this.hooks.remove(room);
    } catch (err) {
      this.hooks.report(`Not deleted: ${reason(err)}`);
      return false;
    }
    this.forget(room);
    // Its row went with the focus in it: on to the room on top, so a keyboard stays in the list.
    if (hadFocus) this.els.list.querySelector<HTMLElement>('.room-link')?.focus();
    this.refresh();
    return true;
  }
}

function withTitle(summary: ConversationSummary, title: string | null): ConversationSummary {
  const { title: _old, ...rest } = summary;
  return title ? { ...rest, title } : rest;
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
