// Room names as people type them, and the conversation ids the relay accepts
// (1-128 of A-Z a-z 0-9 . _ : -). A name that is already an id is used as
// typed; any other becomes one the way a URL slug is made: lower case, accents
// dropped ("Café crème" → "cafe-creme"), spaces and other signs as dashes, and
// letters of other scripts as their code points ("東京" → "6771-4eac"), so that
// two different names rarely meet in one room. The page shows the mapping
// before joining, so nobody lands somewhere they did not expect.
import { ConversationId } from '../../shared/protocol.js';

/** How long a typed name may be (the join box's maxlength) and how long its id may get. */
export const MAX_ROOM_NAME = 64;
const MAX_ID = 96;

/** Letters that do not decompose into a base letter and an accent. */
const FOLDS: Record<string, string> = { ß: 'ss', æ: 'ae', ø: 'o', œ: 'oe', ł: 'l', đ: 'd', ð: 'd', þ: 'th', ı: 'i', ħ: 'h' };

export const isRoomId = (id: string): boolean => ConversationId.safeParse(id).success;

/** The room id for what someone typed; '' when it holds nothing to name a room by (only signs or emoji). */
export function roomIdFor(typed: string): string {
  const name = typed.trim();
  if (name.length <= MAX_ROOM_NAME && isRoomId(name)) return name;
  const folded = name
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toLowerCase()
    .replace(/[ßæøœłđðþıħ]/g, (c) => FOLDS[c]!);
  const parts: string[] = [];
  for (const ch of folded) {
    if (/[a-z0-9._:-]/.test(ch)) parts.push(ch);
    else if (/[\p{L}\p{N}]/u.test(ch)) parts.push(`-${ch.codePointAt(0)!.toString(16)}-`);
    else parts.push('-');
  }
  let id = parts
    .join('')
    .replace(/-{2,}/g, '-')
    .replace(/^[-.:]+|[-.:]+$/g, '');
  if (id.length > MAX_ID) id = id.slice(0, MAX_ID).replace(/[-.:]+$/, '');
  return isRoomId(id) ? id : '';
}
