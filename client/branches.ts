// Where a new entry goes in the history the client shows (the active path):
// after the last one, or (an edit, a regenerated reply: the event carries
// `siblings`) in place of the branch it replaces, after its parent.
import type { HistoryMessage, Siblings } from '../shared/protocol.js';

const ONLY_CHILD: Siblings = { index: 0, count: 1 };

/** The entry is placed in `history` (changed in place): the path after its parent goes when it opens a new branch. */
export function placeEntry(history: HistoryMessage[], entry: HistoryMessage, parentId: string | undefined, siblings: Siblings | undefined): void {
  if (siblings) {
    const parentAt = parentId === undefined ? -1 : history.findIndex((m) => m.id === parentId);
    // A parent this client no longer holds (beyond its history limit): the whole view is the new branch.
    history.splice(parentAt + 1);
  }
  entry.siblings = siblings ?? ONLY_CHILD;
  history.push(entry);
}
