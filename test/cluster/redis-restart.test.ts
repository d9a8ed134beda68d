// A Redis restart mid-conversation: nodes reconnect and no member sees a hole.
// Runs its own redis-server (with an append-only file, as a deployment that
// keeps history would) on a free port, so it can stop and start it.
import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LocalModel } from '../../demo/localmodel.js';
import { hasRedisServer, OwnRedis, startNode, stop, type Node } from '../redis.js';
import { replyText, TestClient } from '../helpers.js';

const redis = new OwnRedis(true);

const TEXT = Array.from({ length: 60 }, (_, i) => `w${i}`).join(' ');
let model: LocalModel;
let nodes: Node[] = [];
const clients: TestClient[] = [];

test.after(async () => {
  for (const c of clients) c.kill();
  await Promise.all(nodes.map(stop));
  await model?.close();
  await redis.stop();
});

{
  // Without redis-server the test is registered as skipped: the closing line says so.
  const it = hasRedisServer ? test : test.skip;
  it('a Redis restart mid-reply loses no event and doubles none', async () => {
    await redis.start();
    model = new LocalModel({ tokenDelayMs: 25, plan: () => ({ text: TEXT }) });
    await model.start();
    const prefix = `restart-${randomUUID()}:`;
    const url = redis.url;
    // A lease far longer than any outage here: what is tested is the reconnect, not a node presumed dead.
    const env = { REDIS_LEASE_MS: '600000' };
    nodes = [await startNode(model, prefix, url, env), await startNode(model, prefix, url, env)];
    const a = await TestClient.connect(nodes[0]!.url);
    const b = await TestClient.connect(nodes[1]!.url);
    clients.push(a, b);
    b.send({ type: 'join', conversationId: 'blip' });
    await b.next('joined');
    a.send({ type: 'send', conversationId: 'blip', text: 'talk through it' });
    const start = await b.next('reply.start');
    for (let i = 0; i < 10; i++) await b.next('reply.delta');

    await redis.stop();
    await redis.start();

    const end = await b.next('reply.end', (e) => e.replyId === start.replyId, 30_000);
    assert.is(end.finishReason, 'stop', JSON.stringify(end.error));
    for (const c of [a, b]) {
      await c.waitFor('reply.end', (e) => e.replyId === start.replyId, 30_000);
      const seqs = c.events('blip').map((f) => f.seq);
      assert.ok(seqs.every((s, i) => i === 0 || s === seqs[i - 1]! + 1), `no hole, no repeat: ${seqs.join(',')}`);
      assert.is(replyText(c.frames, start.replyId), TEXT);
    }
    // The history survived the restart: a newcomer on either node sees the whole exchange.
    const late = await TestClient.connect(nodes[1]!.url);
    clients.push(late);
    late.send({ type: 'join', conversationId: 'blip' });
    const joined = await late.next('joined');
    assert.equal(joined.history.map((m) => m.text), ['talk through it', TEXT]);
  });
}

test.run();
