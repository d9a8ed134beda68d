// A Lua script whose keys and arguments are named: the script reads `K.log`
// and `A.replyId` rather than KEYS[2] and ARGV[11], and the caller passes
// records, so the order lives in one list. Run by SHA, loaded again when
// Redis forgot it (a restart).
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

export class Script<K extends string, A extends string> {
  private readonly lua: string;
  private readonly sha: string;

  constructor(
    private readonly keys: readonly K[],
    private readonly args: readonly A[],
    body: string,
  ) {
    const table = (names: readonly string[], array: string) => `{ ${names.map((n, i) => `[${JSON.stringify(n)}] = ${array}[${i + 1}]`).join(', ')} }`;
    this.lua = `local K = ${table(keys, 'KEYS')}\nlocal A = ${table(args, 'ARGV')}\n${body}`;
    this.sha = createHash('sha1').update(this.lua).digest('hex');
  }

  async run(redis: Redis, keys: Record<K, string>, args: Record<A, string | number | Buffer>): Promise<unknown> {
    const k = this.keys.map((name) => keys[name]);
    const a = this.args.map((name) => args[name]);
    try {
      return await redis.evalsha(this.sha, k.length, ...k, ...a);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.includes('NOSCRIPT')) throw err;
      return redis.eval(this.lua, k.length, ...k, ...a);
    }
  }
}
