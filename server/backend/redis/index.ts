// Wires the Redis store, bus and limits together for one node, with the
// heartbeat that tells other nodes this one is alive.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Config } from '../../config.js';
import type { UserLimitSettings } from '../../session/limits.js';
import type { Logger } from '../../log.js';
import type { Backend } from '../index.js';
import type { AttachmentLimits, StoreLimits } from '../store.js';
import { RedisAttachments } from './attachments.js';
import { RedisBus } from './bus.js';
import { checkLayout, Keys } from './keys.js';
import { RedisUserLimits } from './limits.js';
import { RedisStore } from './store.js';

export async function createRedisBackend(
  config: Config,
  log: Logger,
  storeLimits: StoreLimits,
  userLimitSettings: UserLimitSettings,
  attachmentLimits: AttachmentLimits,
): Promise<Backend> {
  const url = config.REDIS_URL!;
  const nodeId = randomUUID();
  const redisLog = log.child({ nodeId });
  const onError = (err: Error) => redisLog.warn({ err: err.message }, 'redis connection error (reconnecting)');
  const redis = new Redis(url, { lazyConnect: true });
  const sub = new Redis(url, { lazyConnect: true });
  redis.on('error', onError);
  sub.on('error', onError);
  await Promise.all([redis.connect(), sub.connect()]);
  const keys = new Keys(config.REDIS_PREFIX);
  try {
    await checkLayout(redis, keys);
  } catch (err) {
    sub.disconnect();
    redis.disconnect();
    throw err;
  }

  const leaseMs = config.REDIS_LEASE_MS;
  const store = new RedisStore(redis, keys, { ...storeLimits, nodeId, leaseMs, retentionMs: config.REDIS_RETENTION_MS }, redisLog);
  const bus = new RedisBus(redis, sub, keys, store.log, redisLog);
  const userLimits = new RedisUserLimits(redis, userLimitSettings, keys, 2 * config.REPLY_MAX_MS);

  // A node is alive while its key exists; members it listed vanish with it.
  const beat = () => redis.set(keys.node(nodeId), '1', 'PX', leaseMs).catch(onError);
  await beat();
  const heartbeat = setInterval(() => void beat(), Math.floor(leaseMs / 3));
  redisLog.info({ prefix: config.REDIS_PREFIX }, 'conversation state in redis');

  return {
    store,
    attachments: new RedisAttachments(redis, keys, attachmentLimits),
    bus,
    userLimits,
    leaseMs,
    ready: () => redis.status === 'ready' && sub.status === 'ready',
    // A lost node's replies are adopted when its lease lapses; Redis keeps the state.
    recoverable: () => [],
    disk: undefined,
    close: async () => {
      clearInterval(heartbeat);
      await bus.close();
      await redis.del(keys.node(nodeId)).catch(() => undefined);
      sub.disconnect();
      redis.disconnect();
    },
  };
}
