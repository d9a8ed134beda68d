// Whether the user may write in the room on screen. A viewer may watch but
// not write: the server answers their send, edit, regenerate and cancel with
// `forbidden`. Rather than let every attempt fail in a toast, the page turns
// the composer off while the room says this user is a viewer (`joined.role`,
// then `role` events, which the owner may send at any time), with a note
// saying why, and turns it on again when the role changes back. Edit and
// Regenerate ask the role themselves (branch-controls.ts); they only need
// redrawing when it changes, which is what `changed` is for.
import type { Conversation } from '../index.js';

export interface AccessElements {
  composer: HTMLFormElement;
  input: HTMLTextAreaElement;
  /** "You can only watch this room". */
  note: HTMLElement;
  /** The keyboard hint under the composer: nothing to say while nothing can be sent. */
  hint: HTMLElement;
}

/** What the composer's file tray must do: take no files, and keep Send off. */
export interface Lockable {
  lock(locked: boolean): void;
}

export class ComposerAccess {
  private viewer = false;

  constructor(
    private readonly els: AccessElements,
    private readonly tray: Lockable,
  ) {}

  /** True while the room on screen allows this user only to watch. */
  get readOnly(): boolean {
    return this.viewer;
  }

  /**
   * Follow this user's role in `conv` (the room on screen): applied now, then
   * on every snapshot and role change. `changed` runs after the composer
   * turned off or on. Returns what stops following.
   */
  follow(conv: Conversation, changed: () => void): () => void {
    this.apply(conv.role === 'viewer');
    const update = () => {
      if ((conv.role === 'viewer') === this.viewer) return;
      this.apply(conv.role === 'viewer');
      changed();
    };
    // `role` events about other users leave conv.role as it was: update() sees no change.
    const offs = [conv.on('joined', update), conv.on('role', update)];
    return () => offs.forEach((off) => off());
  }

  /** No room on screen: no note (the page says why there is nothing to write in). */
  release(): void {
    this.apply(false);
  }

  private apply(viewer: boolean): void {
    this.viewer = viewer;
    this.els.input.disabled = viewer;
    this.tray.lock(viewer);
    this.els.composer.toggleAttribute('data-read-only', viewer);
    this.els.note.hidden = !viewer;
    this.els.hint.hidden = viewer;
  }
}
