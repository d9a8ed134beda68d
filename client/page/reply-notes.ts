// What this browser saw of a reply while it ended, that history does not keep:
// why it failed (`reply.end.error`) and how many tokens it wrote
// (`reply.end.usage`). History keeps a reply's model and finish reason only, so
// a reply seen failing live still says why after a reload; one that failed
// before this browser was there says what history knows. Kept in localStorage,
// bounded, and checked on the way in (storage is user-editable).

const KEY = 'relay.replyNotes';
const MAX_NOTES = 300;

export interface ReplyNote {
  /** The reason a failed reply gave, as the server worded it. */
  error?: string;
  /** Tokens the reply wrote (`usage.completionTokens`). */
  tokens?: number;
}

function load(): Map<string, ReplyNote> {
  const notes = new Map<string, ReplyNote>();
  try {
    const raw: unknown = JSON.parse(localStorage.getItem(KEY) ?? '[]');
    if (!Array.isArray(raw)) return notes;
    for (const entry of raw.slice(-MAX_NOTES)) {
      if (!Array.isArray(entry) || typeof entry[0] !== 'string' || typeof entry[1] !== 'object' || entry[1] === null) continue;
      const { error, tokens } = entry[1] as Record<string, unknown>;
      const note: ReplyNote = {};
      if (typeof error === 'string') note.error = error.slice(0, 500);
      if (typeof tokens === 'number' && Number.isInteger(tokens) && tokens >= 0) note.tokens = tokens;
      notes.set(entry[0], note);
    }
  } catch {
    // Unreadable notes are no notes.
  }
  return notes;
}

let notes: Map<string, ReplyNote> | undefined;

export function replyNote(replyId: string): ReplyNote | undefined {
  notes ??= load();
  return notes.get(replyId);
}

export function keepReplyNote(replyId: string, note: ReplyNote): void {
  if (note.error === undefined && note.tokens === undefined) return;
  notes ??= load();
  notes.delete(replyId);
  notes.set(replyId, note);
  while (notes.size > MAX_NOTES) notes.delete(notes.keys().next().value!);
  try {
    localStorage.setItem(KEY, JSON.stringify([...notes]));
  } catch {
    // Storage full or refused: the note lasts as long as the page.
  }
}
