// The files under a user message: images as thumbnails, other files as chips
// that download on click. Only members of the conversation may fetch the
// bytes, so they come through the client (with its credential), once per
// attachment for as long as the room view lives. File names are the
// uploader's words: they only ever go in as text.
import type { Attachment } from '../../shared/protocol.js';
import { h } from './dom.js';

/** What the view needs of the client: the bytes of an attachment. */
export interface AttachmentSource {
  fetchAttachment(id: string): Promise<Blob>;
}

/** The raster types a browser shows by itself; anything else is a file to download. */
const IMAGE_TYPES = new Set(['image/png', 'image/jpeg', 'image/webp', 'image/gif']);

export const isImage = (mediaType: string) => IMAGE_TYPES.has(mediaType.split(';')[0]!.trim().toLowerCase());

/** "73 B", "4.2 KB", "12 KB", "3.1 MB". */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const kb = bytes / 1024;
  if (kb < 1024) return `${kb < 10 ? kb.toFixed(1) : Math.round(kb)} KB`;
  return `${(kb / 1024).toFixed(1)} MB`;
}

/**
 * An image as a `data:` URL. The page's Content-Security-Policy lets images
 * load from `data:` but not from `blob:`, so an object URL would not show.
 */
export function dataUrl(blob: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error ?? new Error('the file could not be read'));
    reader.readAsDataURL(blob);
  });
}

/** The glyph of a file that is not shown as an image. */
export const fileIcon = () => h('span', { class: 'att-icon', 'aria-hidden': 'true' });

const expired = (err: unknown) => (err as { code?: unknown } | undefined)?.code === 'not_found';
const reason = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** Files a room view keeps fetched, per kind (images shown, files downloaded); older ones are fetched again when needed. */
const CACHED_FILES = 50;

export class AttachmentView {
  /** Images, by attachment id: a message re-rendered (a rejoin, a pending message confirmed) does not fetch again. */
  private readonly images = new Map<string, Promise<string>>();
  /** Object URLs of files downloaded, by attachment id: revoked when the view goes. */
  private readonly downloads = new Map<string, Promise<string>>();
  private readonly objectUrls = new Set<string>();
  private disposed = false;

  constructor(private readonly source: AttachmentSource) {}

  render(list: readonly Attachment[]): HTMLElement {
    return h('div', { class: 'msg-attachments' }, ...list.map((a) => (isImage(a.mediaType) ? this.image(a) : this.file(a))));
  }

  dispose(): void {
    this.disposed = true;
    for (const url of this.objectUrls) URL.revokeObjectURL(url);
    this.objectUrls.clear();
    this.downloads.clear();
    this.images.clear();
  }

  private image(a: Attachment): HTMLElement {
    const name = a.name ?? 'image';
    const img = h('img', { class: 'att-thumb', alt: name, decoding: 'async' });
    const box = h('span', { class: 'att-image', 'data-state': 'loading', title: `${name} · ${formatSize(a.bytes)}` }, img);
    img.addEventListener('load', () => (box.dataset.state = 'done'), { once: true });
    img.addEventListener('error', () => box.replaceWith(this.unavailable(a, new Error('the image does not decode'))), { once: true });
    this.cached(this.images, a.id, async () => dataUrl(await this.source.fetchAttachment(a.id))).then(
      (url) => (img.src = url),
      (err: unknown) => box.replaceWith(this.unavailable(a, err)),
    );
    return box;
  }

  /** A chip that fetches the file when clicked, then hands it to the browser as a download. */
  private file(a: Attachment): HTMLElement {
    const name = a.name ?? 'file';
    const chip = h(
      'button',
      { type: 'button', class: 'att-file', 'aria-label': `Download ${name} (${formatSize(a.bytes)})`, title: `Download ${name}` },
      fileIcon(),
      h('span', { class: 'att-name' }, name),
      h('span', { class: 'att-size' }, formatSize(a.bytes)),
    );
    chip.addEventListener('click', () => {
      chip.dataset.state = 'loading';
      this.cached(this.downloads, a.id, () => this.objectUrl(a.id)).then(
        (url) => {
          delete chip.dataset.state;
          h('a', { href: url, download: name }).click();
        },
        (err: unknown) => {
          // Gone for good says so; anything else may pass, and a click tries again.
          if (expired(err)) return chip.replaceWith(this.unavailable(a, err));
          chip.dataset.state = 'failed';
          chip.title = `${name}: ${reason(err)}`;
        },
      );
    });
    return chip;
  }

  private async objectUrl(id: string): Promise<string> {
    const url = URL.createObjectURL(await this.source.fetchAttachment(id));
    // A download that lands after the view went is handed over still, then let go.
    if (this.disposed) setTimeout(() => URL.revokeObjectURL(url), 60_000);
    else this.objectUrls.add(url);
    return url;
  }

  /** An attachment whose bytes did not come: gone for good (expired), or not now (the reason in its title). */
  private unavailable(a: Attachment, err: unknown): HTMLElement {
    const gone = expired(err);
    const name = a.name ?? (isImage(a.mediaType) ? 'image' : 'file');
    return h(
      'span',
      { class: 'att-file', 'data-state': gone ? 'expired' : 'failed', title: gone ? `${name} has expired` : `${name}: ${reason(err)}` },
      fileIcon(),
      h('span', { class: 'att-name' }, name),
      h('span', { class: 'att-size' }, gone ? 'expired' : 'unavailable'),
    );
  }

  /**
   * One fetch per id; a failure is forgotten, so the next render tries again.
   * Kept for the newest CACHED_FILES ids only: each holds a whole file (a data URL, or a blob behind an object URL).
   */
  private cached(map: Map<string, Promise<string>>, id: string, make: () => Promise<string>): Promise<string> {
    let p = map.get(id);
    if (!p) {
      p = make();
      map.set(id, p);
      p.catch(() => map.delete(id));
      if (map.size > CACHED_FILES) this.forget(map, map.keys().next().value!);
    }
    return p;
  }

  private forget(map: Map<string, Promise<string>>, id: string): void {
    const oldest = map.get(id);
    map.delete(id);
    // An object URL pins its blob until revoked; a data URL goes with its last image element.
    if (map === this.downloads) void oldest?.then((url) => this.revoke(url), () => undefined);
  }

  private revoke(url: string): void {
    URL.revokeObjectURL(url);
    this.objectUrls.delete(url);
  }
}
