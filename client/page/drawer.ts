// On a narrow screen the room list is a drawer behind the Rooms button: it
// opens over the room with a scrim, and closes on a pick, the scrim, its ×,
// Escape, or a change of screen width. Focus goes into it when it opens and
// back to the Rooms button when it closes, so a keyboard never gets lost.
import { byId } from './dom.js';

export class Drawer {
  /** The width at which the sidebar becomes a drawer (as in style.css). */
  readonly narrow = window.matchMedia('(max-width: 720px)');
  private readonly els = {
    app: document.querySelector<HTMLElement>('.app')!,
    sidebar: byId('sidebar'),
    button: byId<HTMLButtonElement>('rooms-button'),
    close: byId<HTMLButtonElement>('close-rooms'),
    scrim: byId('scrim'),
    /** Where the focus goes in an open drawer when no room is current. */
    first: byId<HTMLInputElement>('join-input'),
  };

  constructor() {
    const { app, button, close, scrim } = this.els;
    button.addEventListener('click', () => this.set(!app.hasAttribute('data-rooms-open')));
    close.addEventListener('click', () => this.set(false));
    scrim.addEventListener('click', () => this.set(false));
    document.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape') this.set(false);
    });
    this.narrow.addEventListener('change', () => this.set(false));
  }

  set(open: boolean): void {
    const { app, sidebar, button, scrim, first } = this.els;
    const wasOpen = app.hasAttribute('data-rooms-open');
    if (open === wasOpen) return;
    app.toggleAttribute('data-rooms-open', open);
    button.setAttribute('aria-expanded', String(open));
    scrim.hidden = !open;
    if (open) (sidebar.querySelector<HTMLElement>('[aria-current="page"]') ?? first).focus();
    else if (this.narrow.matches && sidebar.contains(document.activeElement)) button.focus();
  }
}
