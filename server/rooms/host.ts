// What the modules that change a conversation (sending, branches, settings)
// need of the conversation object on this node: its dependencies, whether a
// reply runs here, and the two ways their writes reach members and upstream.
import type { ReplyJob, StoredEvent } from '../backend/store.js';
import type { ConversationDeps } from './conversation.js';
import type { MemberSocket } from './conversation.js';
import type { Origin } from './tool-loop.js';

export interface RoomHost {
  readonly id: string;
  readonly deps: Omit<ConversationDeps, 'onIdle'>;
  /** A reply runs here right now. */
  readonly busy: boolean;
  /** Resolves once a reply that has ended here has let go of the conversation (a branch change right after an end is not refused). */
  settled(): Promise<void>;
  /** Run a reply here; `origin` gets its reply.start with the request's ref. */
  start(job: ReplyJob, origin?: Origin): void;
  /** A written event goes to every node (`origin`'s copy with its ref); resolves once the members here have it. */
  announce(stored: StoredEvent, origin: Origin): Promise<void>;
}

/** The member a frame came from, as the origin of what it writes. */
export function originOf(socket: MemberSocket, ref: string | undefined): Origin {
  return { connectionId: socket.id, ref };
}
