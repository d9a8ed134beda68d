// How much Redis memory one conversation costs: drives the real RedisStore
// through whole exchanges and sums MEMORY USAGE over the keys it wrote.
// Usage: npx tsx bench/redis-memory.ts [redis-url]   (loopback only)
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Keys } from '../server/backend/redis/keys.js';
import { RedisStore } from '../server/backend/redis/store.js';

const url = process.argv[2] ?? 'redis://127.0.0.1:6379';
const CONVERSATIONS = 100;
const TURNS = 10;
const TOKENS_PER_REPLY = 200;
const redis = new Redis(url);
const prefix = `bench-mem-${randomUUID()}:`;
const store = new RedisStore(
  redis,
  new Keys(prefix),
  { nodeId: 'bench', leaseMs: 60_000, retentionMs: 3_600_000, historyLimit: 200, eventLogMax: 20_000, eventLogMaxAgeMs: 900_000, eventLogMaxBytes: 16 << 20, maxQueuedReplies: 4, conversationIdleMs: 600_000, ledgerRetentionMs: 3_600_000, ledgerMaxEntries: 100_000 },
  pino({ level: 'silent' }),
);
const user = { id: 'u-1', name: 'Bench User' };
const words = ['the', ' relay', ' streams', ' tokens', ' quickly', ',', ' and', ' résumé', ' works', '.'];

for (let c = 0; c < CONVERSATIONS; c++) {
  const conversationId = `conv-${c}`;
  for (let t = 0; t < TURNS; t++) {
    const messageId = randomUUID();
    const replyId = randomUUID();
    const message = { id: messageId, role: 'user' as const, author: user, text: `Question ${t}: how does the relay keep a reply when the socket drops?`, createdAt: Date.now(), clientMessageId: randomUUID() };
    await store.submit(conversationId, { type: 'message', conversationId, message, replyId }, { replyId, inReplyTo: messageId, user });
    let ordinal = 0;
    await store.log.append(conversationId, { type: 'reply.start', conversationId, replyId, inReplyTo: messageId, model: 'bench' }, { ordinal: ordinal++ });
    for (let i = 0; i < TOKENS_PER_REPLY; i++) {
      await store.log.append(conversationId, { type: 'reply.delta', conversationId, replyId, text: words[i % words.length]! }, { ordinal: ordinal++ });
    }
    await store.log.append(conversationId, { type: 'reply.end', conversationId, replyId, finishReason: 'stop', usage: { promptTokens: 50, completionTokens: TOKENS_PER_REPLY, totalTokens: 250, source: 'upstream' } }, { ordinal: ordinal++ });
    await store.replies.next(conversationId, replyId);
  }
}

let bytes = 0;
let keys = 0;
let cursor = '0';
do {
  const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
  cursor = next;
  for (const key of batch) {
    bytes += (await redis.memory('USAGE', key)) ?? 0;
    keys++;
  }
} while (cursor !== '0');
const perConversation = bytes / CONVERSATIONS;
const events = TURNS * (TOKENS_PER_REPLY + 3);
console.log(
  JSON.stringify({ conversations: CONVERSATIONS, turnsEach: TURNS, tokensPerReply: TOKENS_PER_REPLY, keys, bytesPerConversation: Math.round(perConversation), bytesPerRetainedEvent: Math.round(perConversation / events) }),
);
const del = [];
cursor = '0';
do {
  const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
  cursor = next;
  del.push(...batch);
} while (cursor !== '0');
for (let i = 0; i < del.length; i += 500) await redis.del(...del.slice(i, i + 500));
redis.disconnect();
