// Which files the relay takes, told from their bytes (a header or a file name
// can say anything), and what each kind is to a model.
import { fileTypeFromBuffer } from 'file-type';
import { ConfigError } from '../config.js';

export const ATTACHMENT_KINDS = ['image', 'pdf', 'text'] as const;
export type AttachmentKind = (typeof ATTACHMENT_KINDS)[number];

/** Every type the relay can recognise from bytes; ATTACHMENT_TYPES picks among these. */
const KIND_OF: Readonly<Record<string, AttachmentKind>> = {
  'image/png': 'image',
  'image/jpeg': 'image',
  'image/webp': 'image',
  'image/gif': 'image',
  'application/pdf': 'pdf',
  'text/plain': 'text',
};

export function kindOf(mediaType: string): AttachmentKind | undefined {
  return KIND_OF[mediaType];
}

/** ATTACHMENT_TYPES, checked at start: a type the relay cannot recognise from bytes cannot be allowed. */
export function allowedTypes(types: readonly string[]): ReadonlySet<string> {
  const unknown = types.find((t) => !KIND_OF[t]);
  if (unknown) throw new ConfigError(`invalid configuration: ATTACHMENT_TYPES: ${unknown} is not one of ${Object.keys(KIND_OF).join(', ')}`);
  return new Set(types);
}

export type Sniffed = { ok: true; mediaType: string } | { ok: false; message: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** Control characters plain text does not have (tab, line feed, form feed and carriage return it may). */
const BINARY = /[\u0000-\u0008\u000B\u000E-\u001F\u007F]/;

/** Text is what no signature matches and decodes as UTF-8 without control characters. */
function isPlainText(data: Buffer): boolean {
  try {
    return !BINARY.test(utf8.decode(data));
  } catch {
    return false;
  }
}

/** Types browsers give text files (Markdown, CSV, JSON, code): plain text to the relay when the bytes are. */
function isTextual(mediaType: string): boolean {
  return mediaType.startsWith('text/') || mediaType === 'application/json' || mediaType === 'application/xml';
}

/**
 * The file's type from its bytes, if it is one `allowed` takes and it is what
 * the upload said it was (`declared`, its Content-Type; none or
 * application/octet-stream leaves it to the bytes).
 */
export async function sniff(data: Buffer, declared: string | undefined, allowed: ReadonlySet<string>): Promise<Sniffed> {
  const found = (await fileTypeFromBuffer(data))?.mime ?? (isPlainText(data) ? 'text/plain' : undefined);
  const said = declared?.split(';')[0]?.trim().toLowerCase();
  if (!found) return { ok: false, message: 'the file is of no type this server takes' };
  if (said && said !== 'application/octet-stream' && said !== found && !(found === 'text/plain' && isTextual(said))) {
    return { ok: false, message: `the file says it is ${said}, but its bytes are ${found}` };
  }
  if (!allowed.has(found)) return { ok: false, message: `${found} is not a type this server takes (${[...allowed].join(', ')})` };
  return { ok: true, mediaType: found };
}
