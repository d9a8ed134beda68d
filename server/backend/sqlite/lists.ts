// Each user's conversation list in the embedded store: one row per user and
// conversation, read with the conversations' own rows (last activity, head
// seq, title and owner) in one query.
import { z } from 'zod';
import { ConversationSettings, type ConversationSummary } from '../../../shared/protocol.js';
import { LISTED_PER_USER } from '../store.js';
import type { ListsPart } from '../memory/store.js';
import type { Db } from './db.js';

const Row = z.object({ id: z.string(), seq: z.number(), lastActive: z.number(), seen: z.number(), settings: z.string().nullable(), owner: z.string().nullable() });

export class SqliteLists implements ListsPart {
  private readonly sql;

  constructor(db: Db) {
    this.sql = {
      visit: db.prepare('INSERT OR REPLACE INTO user_conversations (user_id, conversation, seen_seq, visited_at) VALUES (?, ?, ?, ?)'),
      cap: db.prepare(
        'DELETE FROM user_conversations WHERE user_id = ? AND conversation IN (SELECT conversation FROM user_conversations WHERE user_id = ? ORDER BY visited_at DESC LIMIT -1 OFFSET ?)',
      ),
      page: db.prepare(
        `SELECT c.id, c.seq, c.last_active AS lastActive, u.seen_seq AS seen, s.settings, s.owner
         FROM user_conversations u JOIN conversations c ON c.id = u.conversation LEFT JOIN conversation_state s ON s.conversation = c.id
         WHERE u.user_id = ? AND c.last_active < ? ORDER BY c.last_active DESC, c.id`,
      ),
      forget: db.prepare('DELETE FROM user_conversations WHERE conversation = ?'),
      forgetUser: db.prepare('DELETE FROM user_conversations WHERE user_id = ?'),
    };
  }

  async visit(userId: string, conversationId: string, seenSeq: number): Promise<void> {
    this.sql.visit.run(userId, conversationId, seenSeq, Date.now());
    this.sql.cap.run(userId, userId, LISTED_PER_USER);
  }

  async page(userId: string, before: number | undefined): Promise<ConversationSummary[]> {
    return z
      .array(Row)
      .parse(this.sql.page.all(userId, before ?? Number.MAX_SAFE_INTEGER))
      .map((r) => {
        const { title } = r.settings ? ConversationSettings.parse(JSON.parse(r.settings)) : {};
        return { conversationId: r.id, seq: r.seq, lastActivity: r.lastActive, unread: r.seq > r.seen, ...(title ? { title } : {}), ...(r.owner ? { owner: r.owner } : {}) };
      });
  }

  async forgetUser(userId: string): Promise<void> {
    this.sql.forgetUser.run(userId);
  }

  forget(conversationId: string): void {
    this.sql.forget.run(conversationId);
  }
}
