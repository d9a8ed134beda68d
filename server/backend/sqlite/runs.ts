// How the embedded store writes a run of consecutive events of one
// conversation as one row. Most of a reply's events are deltas whose JSON is
// the same envelope around a few characters: those lines keep only what
// differs ("~" and the piece's fields), and are rebuilt byte for byte from
// the row's reply id and their seq. Bytes written are what a busy store
// spends its time on, so this is most of its cost per token.
import type { LogEntry } from '../memory/log.js';

/** A run as stored: the lines (one per event) and the reply its short lines belong to. */
export interface PackedRun {
  replyId: string | null;
  text: string;
}

const envelope = (conversationId: string, replyId: string) =>
  `{"type":"reply.delta","conversationId":${JSON.stringify(conversationId)},"replyId":${JSON.stringify(replyId)},`;
const tail = (seq: number) => `,"seq":${seq}}`;

/** One row's text for events written in order; a delta of `replyId` shortened when its JSON is the usual shape. */
export function packRun(conversationId: string, replyId: string | undefined, entries: readonly LogEntry[]): PackedRun {
  if (entries.length === 1 || replyId === undefined) return { replyId: null, text: entries.map((e) => e.json).join('\n') };
  const head = envelope(conversationId, replyId);
  const lines = entries.map(({ json, seq }) => {
    const end = tail(seq);
    return json.startsWith(head) && json.endsWith(end) ? `~${json.slice(head.length, json.length - end.length)}` : json;
  });
  return { replyId, text: lines.join('\n') };
}

/** The events of a row, each with its seq and offset (the row's time for all of them). */
export function unpackRun(conversationId: string, row: { seq: number; at: number; offset: number; replyId: string | null; json: string }): LogEntry[] {
  const head = row.replyId === null ? '' : envelope(conversationId, row.replyId);
  let offset = row.offset;
  return row.json.split('\n').map((line, i) => {
    const seq = row.seq + i;
    const json = line.startsWith('~') ? `${head}${line.slice(1)}${tail(seq)}` : line;
    const entry = { seq, at: row.at, offset, json };
    offset += Buffer.byteLength(json);
    return entry;
  });
}
