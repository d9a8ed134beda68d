// The `presence` frame of one conversation: a burst of joins and leaves gives
// one frame, and a member list that changed behind this node's back (members
// lost with a dead node) is noticed and announced.
import type { User } from '../../shared/protocol.js';
import type { MemberRegistry } from '../backend/store.js';
import type { Logger } from '../log.js';
import type { Bus } from './bus.js';
import { serialize } from './fanout.js';

export class Presence {
  private timer: NodeJS.Timeout | undefined;
  /** The member list last announced. */
  private last = '';
  private disposed = false;

  constructor(
    private readonly conversationId: string,
    private readonly members: MemberRegistry,
    private readonly bus: Bus,
    private readonly coalesceMs: number,
    private readonly log: Logger,
  ) {}

  /** Announce the members once the current burst of changes is over. */
  schedule(): void {
    if (this.timer || this.disposed) return;
    this.timer = setTimeout(async () => {
      this.timer = undefined;
      try {
        const members = await this.members.list(this.conversationId);
        this.last = key(members);
        this.bus.publish(this.conversationId, { json: serialize({ type: 'presence', conversationId: this.conversationId, members }) });
      } catch (err) {
        this.log.warn({ err }, 'presence update failed');
      }
    }, this.coalesceMs);
  }

  /** Announce again if the members differ from the last announcement (a node died with its members). */
  async recheck(): Promise<void> {
    if (key(await this.members.list(this.conversationId)) !== this.last) this.schedule();
  }

  dispose(): void {
    this.disposed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

function key(members: User[]): string {
  return members.map((m) => m.id).sort().join('\n');
}
