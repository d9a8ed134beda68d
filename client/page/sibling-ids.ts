// The ids of the versions of each point of a conversation. History entries
// with several versions name them all (`siblings.ids`); a version added live
// (an edit, a regenerate) says only its place, and the one it replaces was on
// screen just before: the page learns them as they pass through its view, so
// a branch arrow knows where to switch to, or that it cannot.
import type { HistoryMessage } from '../../shared/protocol.js';
import type { Conversation } from '../index.js';

/** Points of a conversation remembered; the oldest are forgotten first. */
const MAX_PARENTS = 2_000;

type Placed = Pick<HistoryMessage, 'id' | 'parentId' | 'siblings'>;

interface Family {
  /** How many versions there were when last seen. */
  count: number;
  /** Version index (from 0, oldest first) → message id. */
  ids: Map<number, string>;
}

export class SiblingIds {
  private readonly byParent = new Map<string, Family>();

  /** Remember where a message stands among its siblings. */
  see(m: Placed): void {
    if (!m.siblings) return;
    const key = m.parentId ?? '';
    let family = this.byParent.get(key);
    // Fewer versions than before: the server pruned old branches and the indexes moved.
    if (family && m.siblings.count < family.count) family = undefined;
    if (!family) {
      family = { count: m.siblings.count, ids: new Map() };
      this.byParent.set(key, family);
      if (this.byParent.size > MAX_PARENTS) this.byParent.delete(this.byParent.keys().next().value!);
    }
    family.count = m.siblings.count;
    for (const [index, id] of family.ids) if (id === m.id && index !== m.siblings.index) family.ids.delete(index);
    family.ids.set(m.siblings.index, m.id);
    m.siblings.ids?.forEach((id, index) => family.ids.set(index, id));
  }

  /** The id of the version `step` away from this one, if the page has seen it. */
  neighbour(m: Placed, step: -1 | 1): string | undefined {
    if (!m.siblings) return undefined;
    const index = m.siblings.index + step;
    if (index < 0 || index >= m.siblings.count) return undefined;
    return this.byParent.get(m.parentId ?? '')?.ids.get(index);
  }
}

/** One memory per conversation, kept while the page holds the conversation, across the views of its room. */
const memories = new WeakMap<Conversation, SiblingIds>();

export function siblingIdsOf(conv: Conversation): SiblingIds {
  let ids = memories.get(conv);
  if (!ids) memories.set(conv, (ids = new SiblingIds()));
  return ids;
}
