// What the Redis store is told at start: the store limits, and who this node is.
import type { StoreLimits } from '../store.js';

export interface RedisStoreOptions extends StoreLimits {
  nodeId: string;
  leaseMs: number;
  retentionMs: number;
}
