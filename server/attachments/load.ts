// A call's attachments: what each is worth against the context budget, and
// the bytes the upstream call sends. A file that has expired, that the
// answering model does not take (it was sent to another), that is attached
// again later in the context, or that would take the call past its byte bound
// is left out with a note in the message's text, so the model knows
// something was there.
import type { Attachment } from '../../shared/protocol.js';
import type { Turn, TurnFile } from '../upstream/dialect.js';
import { kindOf, type AttachmentKind } from './kinds.js';

/**
 * The budget's estimate of a file, before any provider has seen it (each
 * counts its own way): an image as a 1,092-pixel square at Anthropic's
 * w×h/750 (OpenAI's high detail comes to less), a PDF at a token per 30
 * bytes, plain text at a token per 4 bytes (of what is sent of it).
 */
export const TOKEN_ESTIMATE = { image: 1_600, pdfBytesPerToken: 30, textBytesPerToken: 4 } as const;

/** Characters of a text file a call (or a moderation check) takes; the rest is left out with a note. */
export const TEXT_FILE_CHARS = 100_000;
/** Bytes of images and PDFs one upstream call carries, newest messages first. */
export const CALL_FILE_BYTES = 32 * 1024 * 1024;

export function attachmentTokens(attachments: readonly Attachment[] | undefined): number {
  let tokens = 0;
  for (const a of attachments ?? []) {
    const kind = kindOf(a.mediaType);
    if (kind === 'image') tokens += TOKEN_ESTIMATE.image;
    else if (kind === 'pdf') tokens += Math.ceil(a.bytes / TOKEN_ESTIMATE.pdfBytesPerToken);
    else tokens += Math.ceil(Math.min(a.bytes, TEXT_FILE_CHARS) / TOKEN_ESTIMATE.textBytesPerToken);
  }
  return tokens;
}

/** A text file's content as a call or a check takes it: at most TEXT_FILE_CHARS characters. */
export function fileText(data: Buffer, label: string): string {
  const text = data.toString('utf8');
  return text.length <= TEXT_FILE_CHARS ? text : `${text.slice(0, TEXT_FILE_CHARS)}\n[the rest of ${label} is left out]`;
}

export interface FileSource {
  read(id: string): Promise<Buffer | undefined>;
  accepts(kind: AttachmentKind): boolean;
}

/** What one call has taken so far: the files it carries and their bytes. */
interface Carried {
  ids: Set<string>;
  bytes: number;
}

/** The user turns of a built context with their files read: images and PDFs as `files`, text files in the text. */
export async function withFiles(turns: readonly Turn[], source: FileSource): Promise<Turn[]> {
  const carried: Carried = { ids: new Set(), bytes: 0 };
  const out = [...turns];
  // Newest first: when the call's bound is reached, the files of the message being answered are in.
  for (let i = out.length - 1; i >= 0; i--) {
    const turn = out[i]!;
    if (turn.role === 'user' && turn.attachments?.length) out[i] = await readFiles(turn, turn.attachments, source, carried);
  }
  return out;
}

async function readFiles(turn: Extract<Turn, { role: 'user' }>, attachments: readonly Attachment[], source: FileSource, carried: Carried): Promise<Turn> {
  const files: TurnFile[] = [];
  const notes: string[] = [];
  for (const a of attachments) {
    const label = a.name ?? a.id;
    const kind = kindOf(a.mediaType);
    if (!kind || !source.accepts(kind)) notes.push(`[attachment ${label} (${a.mediaType}) left out: this model does not take it]`);
    else if (carried.ids.has(a.id)) notes.push(`[attachment ${label}: the same file is attached again later]`);
    else if (kind !== 'text' && carried.bytes + a.bytes > CALL_FILE_BYTES) notes.push(`[attachment ${label} left out: one call carries at most ${CALL_FILE_BYTES} bytes of files]`);
    else {
      const data = await source.read(a.id);
      if (!data) notes.push(`[attachment ${label} is no longer available]`);
      else if (kind === 'text') notes.push(`[file ${label}]\n${fileText(data, label)}\n[end of ${label}]`);
      else {
        files.push({ kind, mediaType: a.mediaType, name: a.name, data });
        carried.bytes += data.length;
      }
      carried.ids.add(a.id);
    }
  }
  const text = [turn.text, ...notes].join('\n\n');
  return { ...turn, text, ...(files.length ? { files } : {}) };
}
