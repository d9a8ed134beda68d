// The files of the message being written: picked with the paperclip, pasted
// into the text box, or dropped on the room. Each one uploads the moment it
// is added, so the bytes are on their way while the words are written, and
// shows as a chip above the text box (a thumbnail or a file icon, its name
// and size, a progress bar, then done or the server's reason for refusing
// it) until the message is sent or the chip removed. Send waits for the
// uploads, and a message needs words: the protocol has no message of files
// alone.
import { frameCaps, type Attachment, type Limits } from '../../shared/protocol.js';
import type { UploadOptions } from '../index.js';
import { dataUrl, fileIcon, formatSize, isImage } from './attachment-view.js';
import { h } from './dom.js';

/** What the tray needs of the client. */
export interface Uploader {
  uploadAttachment(file: Blob, opts: UploadOptions): Promise<Attachment>;
  /** What the server said it takes (`welcome.limits`), once it has. */
  readonly limits: Pick<Limits, 'maxAttachmentBytes' | 'attachmentTypes'> | undefined;
}

export interface TrayElements {
  /** Where the chips go, with a line saying why Send waits. */
  tray: HTMLElement;
  /** The paperclip, and the file input it stands for. */
  button: HTMLButtonElement;
  picker: HTMLInputElement;
  input: HTMLTextAreaElement;
  send: HTMLButtonElement;
  /** Where files may be dropped. */
  dropZone: HTMLElement;
}

type ChipState = 'uploading' | 'done' | 'failed';

interface Chip {
  el: HTMLElement;
  state: ChipState;
  attachment?: Attachment;
  abort: AbortController;
}

const MAX_FILES = frameCaps.attachments;

export class AttachmentTray {
  private chips: Chip[] = [];
  /** Set while the user may not write in the room (a viewer): see lock(). */
  private locked = false;
  /** Live, so that a file done or refused is heard as well as seen. */
  private readonly list = h('ul', { class: 'att-chips', 'aria-label': 'Files to send', 'aria-live': 'polite' });
  private readonly status = h('p', { class: 'att-status', role: 'status' });

  constructor(
    private readonly uploader: Uploader,
    private readonly els: TrayElements,
    /** Tell the person something that is not about one file (too many files). */
    private readonly say: (message: string) => void,
  ) {}

  mount(): this {
    const { button, picker, input, dropZone } = this.els;
    this.els.tray.replaceChildren(this.list, this.status);
    button.addEventListener('click', () => {
      // Offer only what the server takes; it still checks the bytes.
      picker.accept = this.uploader.limits?.attachmentTypes?.join(',') ?? '';
      picker.click();
    });
    picker.addEventListener('change', () => {
      this.add([...(picker.files ?? [])]);
      // The same file picked again is a change too.
      picker.value = '';
    });
    input.addEventListener('paste', (ev) => this.pasted(ev));
    input.addEventListener('input', () => this.sync());
    this.acceptDrops(dropZone);
    this.sync();
    return this;
  }

  /** Can a message with `text` go now, with the files that are up? */
  canSend(text: string): boolean {
    return !this.uploading && (this.ready().length === 0 || text.trim().length > 0);
  }

  /** The files that are up, for the message being sent; the tray is emptied. */
  take(): Attachment[] {
    const ready = this.ready();
    this.clear();
    return ready;
  }

  clear(): void {
    for (const chip of this.chips) chip.abort.abort();
    this.chips = [];
    this.list.replaceChildren();
    this.sync();
  }

  /**
   * While locked, no file is taken (the paperclip is off, drops are ignored)
   * and Send stays off, even when an upload started before finishes: the
   * server would refuse the message. Chips already there stay for later.
   */
  lock(locked: boolean): void {
    this.locked = locked;
    this.els.button.disabled = locked;
    this.sync();
  }

  add(files: readonly File[]): void {
    if (this.locked) return;
    const room = MAX_FILES - this.chips.filter((c) => c.state !== 'failed').length;
    if (files.length > room) this.say(`At most ${MAX_FILES} files go with one message`);
    for (const file of files.slice(0, Math.max(0, room))) this.upload(file);
    this.sync();
  }

  private get uploading(): boolean {
    return this.chips.some((c) => c.state === 'uploading');
  }

  private ready(): Attachment[] {
    return this.chips.flatMap((c) => (c.state === 'done' && c.attachment ? [c.attachment] : []));
  }

  private upload(file: File): void {
    const chip: Chip = { el: chipElement(file), state: 'uploading', abort: new AbortController() };
    chip.el.querySelector('.att-remove')?.addEventListener('click', () => this.remove(chip));
    this.chips.push(chip);
    this.list.append(chip.el);
    const max = this.uploader.limits?.maxAttachmentBytes;
    // Refused here rather than after sending megabytes the server would not read.
    if (max !== undefined && file.size > max) return this.settle(chip, 'failed', `larger than the ${formatSize(max)} this server takes`);
    const onProgress = (sent: number, total: number) => showProgress(chip.el, total > 0 ? sent / total : 0);
    this.uploader.uploadAttachment(file, { name: file.name, onProgress, signal: chip.abort.signal }).then(
      (attachment) => {
        chip.attachment = attachment;
        this.settle(chip, 'done', formatSize(attachment.bytes));
      },
      (err: Error) => this.settle(chip, 'failed', err.message),
    );
  }

  private settle(chip: Chip, state: ChipState, detail: string): void {
    if (!this.chips.includes(chip)) return;
    chip.state = state;
    chip.el.dataset.state = state;
    chip.el.querySelector('.att-progress')?.remove();
    setDetail(chip.el, detail);
    if (state === 'failed') chip.el.setAttribute('title', detail);
    this.sync();
  }

  private remove(chip: Chip): void {
    chip.abort.abort();
    this.chips = this.chips.filter((c) => c !== chip);
    chip.el.remove();
    this.sync();
    this.els.input.focus();
  }

  /** Send waits for the uploads and for words; the line under the chips says which. */
  private sync(): void {
    const text = this.els.input.value;
    this.els.tray.hidden = this.chips.length === 0;
    this.els.send.disabled = this.locked || !this.canSend(text);
    this.status.textContent = this.uploading ? 'Uploading… Send waits until the files are up.' : this.canSend(text) ? '' : 'Write a message to send with the files.';
  }

  /** Files pasted (a screenshot, files copied in a file manager) become chips; text pastes as text. */
  private pasted(ev: ClipboardEvent): void {
    const data = ev.clipboardData;
    const files = [...(data?.files ?? [])];
    if (files.length === 0 || data?.types.includes('text/plain')) return;
    ev.preventDefault();
    this.add(files);
  }

  private acceptDrops(zone: HTMLElement): void {
    const carriesFiles = (ev: DragEvent) => ev.dataTransfer?.types.includes('Files') ?? false;
    zone.addEventListener('dragover', (ev) => {
      if (!carriesFiles(ev)) return;
      ev.preventDefault();
      if (ev.dataTransfer) ev.dataTransfer.dropEffect = 'copy';
      zone.toggleAttribute('data-dropping', true);
    });
    zone.addEventListener('dragleave', (ev) => {
      // Leaving for one of its own children is not leaving.
      if (!(ev.relatedTarget instanceof Node && zone.contains(ev.relatedTarget))) zone.removeAttribute('data-dropping');
    });
    zone.addEventListener('drop', (ev) => {
      zone.removeAttribute('data-dropping');
      if (!carriesFiles(ev)) return;
      ev.preventDefault();
      this.add([...(ev.dataTransfer?.files ?? [])]);
      this.els.input.focus();
    });
  }
}

/** A file's chip while it uploads: thumbnail or icon, name, progress, and its remove button. */
function chipElement(file: File): HTMLElement {
  const name = file.name || 'file';
  const thumb = h('span', { class: 'att-chip-thumb' }, fileIcon());
  if (isImage(file.type)) {
    // The local file, not the uploaded one: it shows before a byte is sent.
    void dataUrl(file).then(
      (url) => {
        const img = h('img', { src: url, alt: '' });
        // Bytes that do not decode as the image they claim to be keep the file icon.
        img.addEventListener('error', () => thumb.replaceChildren(fileIcon()), { once: true });
        thumb.replaceChildren(img);
      },
      () => undefined,
    );
  }
  const bar = h('span', { class: 'att-progress', role: 'progressbar', 'aria-label': `Uploading ${name}`, 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': 0 }, h('span', { class: 'att-progress-bar' }));
  return h(
    'li',
    { class: 'att-chip', 'data-state': 'uploading', title: name },
    thumb,
    h('span', { class: 'att-chip-text' }, h('span', { class: 'att-name' }, name), h('span', { class: 'att-detail' }, `${formatSize(file.size)} · uploading`)),
    bar,
    h('button', { type: 'button', class: 'att-remove', 'aria-label': `Remove ${name}`, title: 'Remove' }, '×'),
  );
}

function showProgress(el: HTMLElement, fraction: number): void {
  const bar = el.querySelector<HTMLElement>('.att-progress');
  if (!bar) return;
  const percent = Math.round(Math.min(1, Math.max(0, fraction)) * 100);
  bar.setAttribute('aria-valuenow', String(percent));
  bar.style.setProperty('--progress', String(percent / 100));
}

function setDetail(el: HTMLElement, detail: string): void {
  const slot = el.querySelector('.att-detail');
  if (slot) slot.textContent = detail;
}
