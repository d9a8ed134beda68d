// A call's attachments: what each is worth against the context budget, and
// the bytes the upstream call sends. A file that has expired, or that the
// answering model does not take (it was sent to another), is left out with a
// note in the message's text, so the model knows something was there.
import type { Attachment } from '../../shared/protocol.js';
import type { Turn, TurnFile } from '../upstream/dialect.js';
import { kindOf, type AttachmentKind } from './kinds.js';

/**
 * The budget's estimate of a file, before any provider has seen it (each
 * counts its own way): an image as a 1,092-pixel square at Anthropic's
 * w×h/750 (OpenAI's high detail comes to less), a PDF at a token per 30
 * bytes, plain text at a token per 4 bytes.
 */
export const TOKEN_ESTIMATE = { image: 1_600, pdfBytesPerToken: 30, textBytesPerToken: 4 } as const;

export function attachmentTokens(attachments: readonly Attachment[] | undefined): number {
  let tokens = 0;
  for (const a of attachments ?? []) {
    const kind = kindOf(a.mediaType);
    if (kind === 'image') tokens += TOKEN_ESTIMATE.image;
    else if (kind === 'pdf') tokens += Math.ceil(a.bytes / TOKEN_ESTIMATE.pdfBytesPerToken);
    else tokens += Math.ceil(a.bytes / TOKEN_ESTIMATE.textBytesPerToken);
  }
  return tokens;
}

export interface FileSource {
  read(id: string): Promise<Buffer | undefined>;
  accepts(kind: AttachmentKind): boolean;
}

/** The user turns of a built context with their files read: images and PDFs as `files`, text files in the text. */
export async function withFiles(turns: readonly Turn[], source: FileSource): Promise<Turn[]> {
  return Promise.all(turns.map((turn) => (turn.role === 'user' && turn.attachments?.length ? readFiles(turn, turn.attachments, source) : turn)));
}

async function readFiles(turn: Extract<Turn, { role: 'user' }>, attachments: readonly Attachment[], source: FileSource): Promise<Turn> {
  const files: TurnFile[] = [];
  const notes: string[] = [];
  for (const a of attachments) {
    const label = a.name ?? a.id;
    const kind = kindOf(a.mediaType);
    if (!kind || !source.accepts(kind)) {
      notes.push(`[attachment ${label} (${a.mediaType}) left out: this model does not take it]`);
      continue;
    }
    const data = await source.read(a.id);
    if (!data) notes.push(`[attachment ${label} is no longer available]`);
    else if (kind === 'text') notes.push(`[file ${label}]\n${data.toString('utf8')}\n[end of ${label}]`);
    else files.push({ kind, mediaType: a.mediaType, name: a.name, data });
  }
  const text = [turn.text, ...notes].join('\n\n');
  return { ...turn, text, ...(files.length ? { files } : {}) };
}
