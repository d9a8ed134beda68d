// Where state lives: in SQLite under DATA_DIR (the default: one process, kept
// across restarts), in this process only (STORE=memory), or in Redis when
// REDIS_URL is set, so that any number of relay nodes serve one consistent
// set of conversations. A backend is a store, a bus and the per-user limits.
import type { Config } from '../config.js';
import { MemoryUserLimits, type UserLimits } from '../session/limits.js';
import type { Logger } from '../log.js';
import { LocalBus, type Bus } from '../rooms/bus.js';
import { MemoryAttachments } from './memory/attachments.js';
import { MemoryStore } from './memory/store.js';
import { SqliteStore } from './sqlite/store.js';
import type { AttachmentLimits, AttachmentStore, Store } from './store.js';

const DAY_MS = 24 * 3_600_000;
/** Files one user may hold at once, whatever their size. */
const ATTACHMENTS_PER_USER = 1_000;

/** Lets a test put a wrapper with injected faults around the real store, on any backend. */
export type StoreWrapper = (store: Store) => Store;

export interface Backend {
  store: Store;
  /** Uploaded files, kept where the store keeps conversations. */
  attachments: AttachmentStore;
  bus: Bus;
  userLimits: UserLimits;
  /** Reply lease time in a shared store; 0 when there is no one to share with. */
  leaseMs: number;
  /** Connected to what it depends on (always, in memory). */
  ready(): boolean;
  /** Conversations a stopped process left with replies running or queued (the embedded store, after a restart). */
  recoverable(): string[];
  /** What the store keeps on this machine's disk, for a store that keeps anything there. */
  disk: (() => { bytes: number; conversations: number }) | undefined;
  close(): Promise<void>;
}

export async function createBackend(config: Config, log: Logger, wrapStore: StoreWrapper = (s) => s): Promise<Backend> {
  const userLimitSettings = {
    messagesPerMinute: config.MESSAGES_PER_MINUTE,
    maxActiveReplies: config.MAX_ACTIVE_REPLIES,
    repliesPerMinute: config.REPLIES_PER_MINUTE,
    tokenQuota: config.TOKEN_QUOTA,
    tokenQuotaWindowMs: config.TOKEN_QUOTA_WINDOW_MS,
  };
  const storeLimits = {
    historyLimit: config.HISTORY_LIMIT,
    eventLogMax: config.EVENT_LOG_MAX,
    eventLogMaxAgeMs: config.EVENT_LOG_MAX_AGE_MS,
    maxQueuedReplies: config.MAX_QUEUED_REPLIES,
    eventLogMaxBytes: config.EVENT_LOG_MAX_BYTES,
    conversationIdleMs: config.CONVERSATION_IDLE_MS,
    ledgerRetentionMs: config.USAGE_RETENTION_DAYS * DAY_MS,
    ledgerMaxEntries: config.USAGE_MAX_ENTRIES,
  };
  const attachmentLimits: AttachmentLimits = {
    userBytes: config.ATTACHMENT_USER_QUOTA_BYTES,
    userCount: ATTACHMENTS_PER_USER,
    totalBytes: config.ATTACHMENT_STORE_BYTES,
  };
  if (config.REDIS_URL) {
    const { createRedisBackend } = await import('./redis/index.js');
    const backend = await createRedisBackend(config, log, storeLimits, userLimitSettings, attachmentLimits);
    return { ...backend, store: wrapStore(backend.store) };
  }
  if (config.STORE === 'sqlite' && config.ATTACHMENT_STORE_BYTES > config.DATA_MAX_BYTES / 2) {
    // Attachments share the database with conversations: past their share, the retention sweep drops idle conversations to make room.
    log.warn({ attachmentStoreBytes: config.ATTACHMENT_STORE_BYTES, dataMaxBytes: config.DATA_MAX_BYTES }, 'ATTACHMENT_STORE_BYTES is more than half of DATA_MAX_BYTES: uploads may push conversations out of the data directory');
  }
  const bus = new LocalBus();
  const userLimits = new MemoryUserLimits(userLimitSettings);
  const durable =
    config.STORE === 'sqlite'
      ? new SqliteStore(
          storeLimits,
          { dataDir: config.DATA_DIR, maxBytes: config.DATA_MAX_BYTES, retentionMs: config.DATA_RETENTION_DAYS * DAY_MS, sweepEveryMs: config.DATA_SWEEP_MS, attachments: attachmentLimits },
          log,
        )
      : undefined;
  const store = wrapStore(durable ?? new MemoryStore(storeLimits));
  return {
    store,
    attachments: durable?.attachments ?? new MemoryAttachments(attachmentLimits),
    bus,
    userLimits,
    leaseMs: 0,
    ready: () => true,
    recoverable: () => durable?.recoverable() ?? [],
    disk: durable ? () => durable.disk() : undefined,
    close: async () => {
      await Promise.all([bus.close(), userLimits.close(), store.close()]);
    },
  };
}
