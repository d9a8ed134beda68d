// The member sets of every conversation on this node: socket id → user.
import type { User } from '../../../shared/protocol.js';
import type { MemberRegistry } from '../store.js';

export class MemoryMembers implements MemberRegistry {
  /** Only conversations with members: an empty set is dropped. */
  private readonly byConversation = new Map<string, Map<string, User>>();

  async add(conversationId: string, memberId: string, user: User): Promise<void> {
    let members = this.byConversation.get(conversationId);
    if (!members) this.byConversation.set(conversationId, (members = new Map()));
    members.set(memberId, user);
  }

  async remove(conversationId: string, memberId: string): Promise<void> {
    const members = this.byConversation.get(conversationId);
    if (!members) return;
    members.delete(memberId);
    if (members.size === 0) this.byConversation.delete(conversationId);
  }

  forget(conversationId: string): void {
    this.byConversation.delete(conversationId);
  }

  async list(conversationId: string): Promise<User[]> {
    const users = new Map<string, User>();
    for (const user of this.byConversation.get(conversationId)?.values() ?? []) users.set(user.id, user);
    return [...users.values()];
  }
}
