// Files a request shows the demo model (images, PDFs), read from any
// dialect's content parts, and described so a reply proves what arrived: the
// same bytes always get the same words.
import { createHash } from 'node:crypto';
import { imageSize } from 'image-size';
import { isRecord } from '../server/upstream/pieces.js';

export interface DemoFile {
  mediaType: string;
  name?: string;
  /** The bytes, for a file sent inline; a URL the model would have to fetch instead. */
  data?: Buffer;
  url?: string;
}

/** `data:<type>;base64,<data>` as a file; any other URL is only noted. */
function fromUrl(url: string, name?: string): DemoFile {
  const inline = /^data:([^;,]+);base64,(.*)$/s.exec(url);
  if (!inline) return { mediaType: 'unknown', url, ...(name ? { name } : {}) };
  return { mediaType: inline[1]!, data: Buffer.from(inline[2]!, 'base64'), ...(name ? { name } : {}) };
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** One content part as a file, in whichever dialect's form it comes; undefined for text and the rest. */
function fileOf(part: Record<string, unknown>): DemoFile | undefined {
  const source = isRecord(part.source) ? part.source : undefined;
  switch (part.type) {
    case 'image_url': // chat.completions
      return isRecord(part.image_url) && str(part.image_url.url) ? fromUrl(str(part.image_url.url)!) : undefined;
    case 'file': // chat.completions
      return isRecord(part.file) && str(part.file.file_data) ? fromUrl(str(part.file.file_data)!, str(part.file.filename)) : undefined;
    case 'input_image': // Responses
      return str(part.image_url) ? fromUrl(str(part.image_url)!) : undefined;
    case 'input_file': // Responses
      return str(part.file_data) ? fromUrl(str(part.file_data)!, str(part.filename)) : undefined;
    case 'image': // Anthropic
    case 'document':
      if (source?.type !== 'base64' || !str(source.data) || !str(source.media_type)) return undefined;
      return { mediaType: str(source.media_type)!, data: Buffer.from(str(source.data)!, 'base64'), ...(str(part.title) ? { name: str(part.title)! } : {}) };
    default:
      return undefined;
  }
}

/** The files among a message's content parts (none when the content is a string). */
export function filesIn(content: unknown): DemoFile[] {
  if (!Array.isArray(content)) return [];
  return content.flatMap((part) => {
    const file = isRecord(part) ? fileOf(part) : undefined;
    return file ? [file] : [];
  });
}

/** "a 64×48 PNG image", "a PDF document of 2 pages": what the bytes are, as far as the demo can tell. */
function describe(file: DemoFile): string {
  if (!file.data) return `an image at ${file.url ?? 'a URL'}, which the demo model does not fetch`;
  const digest = createHash('sha256').update(file.data).digest('hex').slice(0, 12);
  const size = `${file.data.length.toLocaleString('en-US')} bytes, sha256 ${digest}`;
  if (file.mediaType === 'application/pdf') {
    const pages = file.data.toString('latin1').match(/\/Type\s*\/Page(?![s\w])/g)?.length ?? 0;
    return `a PDF document of ${pages} page${pages === 1 ? '' : 's'} (${size})`;
  }
  try {
    const { width, height, type } = imageSize(file.data);
    return `a ${width}×${height} ${(type ?? 'image').toUpperCase()} image (${size})`;
  } catch {
    return `a ${file.mediaType} file the demo model cannot read (${size})`;
  }
}

/** The opening of a reply to a message with files: one line per file. */
export function describeFiles(files: readonly DemoFile[]): string {
  const lines = files.map((f, i) => `${i + 1}. ${f.name ? `${f.name}: ` : ''}${describe(f)}`);
  return `I received ${files.length} attachment${files.length === 1 ? '' : 's'}:\n\n${lines.join('\n')}`;
}
