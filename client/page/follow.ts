// Keeps the message list at its newest message while the reader is there, and
// leaves them alone once they scroll up to read, with a "Jump to latest" button
// to come back. Whether to follow is the reader's choice, not a measurement
// taken before each change: the list also changes size (the composer growing
// with a long message, a phone's keyboard, a rotation), and a change of size
// is not the reader scrolling away. Any change of size of the list or of what
// it holds brings a following view back to the bottom.

/** Closer to the bottom than this counts as at the bottom. */
const NEAR_PX = 32;

export class Follow {
  private following = true;
  private lastTop = 0;
  private unseen = 0;

  constructor(
    /** The scrolling box. */
    private readonly scroller: HTMLElement,
    /** What it holds: its growth is what there is to follow. */
    content: HTMLElement,
    private readonly button: HTMLButtonElement,
  ) {
    scroller.addEventListener('scroll', this.scrolled, { passive: true });
    button.addEventListener('click', () => this.jump());
    const sizes = new ResizeObserver(() => this.settle());
    sizes.observe(scroller);
    sizes.observe(content);
  }

  /** Is the view following the newest message? */
  get isFollowing(): boolean {
    return this.following;
  }

  /** Back to the bottom, and follow from now on (a room opened, a message sent, the button). */
  jump(): void {
    this.following = true;
    this.unseen = 0;
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.lastTop = this.scroller.scrollTop;
    this.render();
  }

  /** After a change to the list: stay at the bottom when following. */
  settle(): void {
    if (!this.following) return;
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.lastTop = this.scroller.scrollTop;
  }

  /** A new message arrived: counted on the button while the reader is elsewhere. */
  arrived(): void {
    if (this.following) return;
    this.unseen++;
    this.render();
  }

  private readonly scrolled = (): void => {
    const s = this.scroller;
    const top = s.scrollTop;
    const gap = s.scrollHeight - top - s.clientHeight;
    if (gap <= NEAR_PX) {
      // Back at the bottom, by scrolling or because the list shrank.
      if (!this.following || this.unseen) {
        this.following = true;
        this.unseen = 0;
        this.render();
      }
    } else if (top < this.lastTop - 1) {
      // Only the reader moves the view up: growth and resizes never do.
      if (this.following) {
        this.following = false;
        this.render();
      }
    }
    this.lastTop = top;
  };

  private render(): void {
    this.button.hidden = this.following;
    const label = this.unseen ? `${this.unseen > 99 ? '99+' : this.unseen} new · Jump to latest` : 'Jump to latest';
    if (this.button.dataset.label !== label) {
      this.button.dataset.label = label;
      this.button.lastChild?.replaceWith(label);
    }
  }
}
