// Short notices in the corner of the page: what went wrong with the
// connection, a send, or an action on a message. Each goes by itself after a
// while, or when clicked.
import { h } from './dom.js';

/** What a toast is about: a connection toast goes once the page is connected and signed in. */
export type ToastKind = 'connection' | 'other';

const SHOWN_MS = 5_000;
const MAX_SHOWN = 3;

export class Toasts {
  constructor(private readonly box: HTMLElement) {}

  show(message: string, kind: ToastKind = 'other'): void {
    // The same words again are not news: the older copy goes.
    for (const t of this.box.querySelectorAll<HTMLElement>('.toast')) if (t.textContent === message) t.remove();
    const el = h('div', { class: 'toast', role: 'status', 'data-kind': kind, title: 'Dismiss' }, message);
    el.addEventListener('click', () => el.remove());
    this.box.append(el);
    while (this.box.children.length > MAX_SHOWN) this.box.firstElementChild?.remove();
    setTimeout(() => el.remove(), SHOWN_MS);
  }

  clear(kind: ToastKind): void {
    for (const t of this.box.querySelectorAll<HTMLElement>(`.toast[data-kind="${kind}"]`)) t.remove();
  }
}
