// Where the Redis-backed tests find Redis, and whether it is there at all.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { LocalModel } from '../demo/localmodel.js';
import { startRelayProcess, type Node } from './process.js';

/** Short, so that a dead node is noticed quickly in tests. */
export const NODE_LEASE_MS = 1000;

/** Set by test/run.mjs (its own redis-server, or the caller's TEST_REDIS_URL); unset, Redis tests are skipped. */
export const REDIS_URL = process.env.TEST_REDIS_URL;

export async function redisAvailable(url = REDIS_URL): Promise<boolean> {
  if (!url) return false;
  const probe = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

export { stop, type Node } from './process.js';

/** A relay node (server/main.ts, as `npm start` runs it) on Redis, with `model` as its upstream. */
export function startNode(model: LocalModel, prefix: string, redisUrl: string = REDIS_URL ?? '', env: Record<string, string> = {}): Promise<Node> {
  return startRelayProcess(model, { REDIS_URL: redisUrl, REDIS_PREFIX: prefix, REDIS_LEASE_MS: String(NODE_LEASE_MS), ...env });
}

export const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0;

/** A free loopback port, as the kernel hands one out. */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const address = s.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** A redis-server of a test's own on a free port, to stop and start again: with an append-only file, or keeping nothing. */
export class OwnRedis {
  private server: ChildProcess | undefined;
  private port = 0;
  private readonly dir = mkdtempSync(join(tmpdir(), 'relay-redis-'));

  constructor(private readonly persistent: boolean) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.port ||= await freePort();
    const persistence = this.persistent ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
    this.server = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', ...persistence], { stdio: 'ignore' });
    for (let i = 0; i < 200 && !(await redisAvailable(this.url)); i++) await new Promise((r) => setTimeout(r, 50));
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server || server.exitCode !== null) return;
    const exited = new Promise((r) => server.once('exit', r));
    server.kill('SIGTERM');
    await exited;
  }
}
