// A Redis that comes back empty (no persistence) mid-reply: the log is lost.
// Every member, on three nodes, ends the reply once and is told to start over
// (joined with reset and a new epoch); nobody sees a seq go back within an
// epoch; the next message reaches everyone; a resume from the old log resets.
import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ServerFrame } from '../../shared/protocol.js';
import { LocalModel } from '../../demo/localmodel.js';
import { hasRedisServer, OwnRedis, startNode, stop, type Node } from '../redis.js';
import { TestClient } from '../helpers.js';

const redis = new OwnRedis(false);
const TEXT = Array.from({ length: 400 }, (_, i) => `w${i}`).join(' ');
let model: LocalModel | undefined;
let nodes: Node[] = [];
const clients: TestClient[] = [];

test.after(async () => {
  for (const c of clients) c.kill();
  await Promise.all(nodes.map(stop));
  await model?.close();
  await redis.stop();
});

/** Within each life of the log (from one joined to the next), seqs only go up. */
function seqsRise(frames: ServerFrame[], room: string): void {
  let last = -1;
  for (const f of frames) {
    if (!('conversationId' in f) || f.conversationId !== room) continue;
    if (f.type === 'joined') last = f.seq;
    else if ('seq' in f) {
      assert.ok(f.seq > last, `seq ${f.seq} after ${last}`);
      last = f.seq;
    }
  }
}

// Without redis-server the test is registered as skipped: the closing line says so.
const it = hasRedisServer ? test : test.skip;

it('a Redis restarted empty mid-reply: one reply.end for everyone, a reset with a new epoch, no seq going back', async () => {
  await redis.start();
  model = new LocalModel({ plan: (req) => (req.messages.at(-1)!.content === 'long' ? { text: TEXT, tokenDelayMs: 20 } : { text: 'after' }) });
  await model.start();
  const prefix = `epoch-${randomUUID()}:`;
  nodes = await Promise.all([0, 1, 2].map(() => startNode(model!, prefix, redis.url)));
  const members = await Promise.all(nodes.map((n) => TestClient.connect(n.url)));
  clients.push(...members);
  for (const m of members) {
    m.send({ type: 'join', conversationId: 'lost' });
    await m.next('joined');
  }
  members[0]!.send({ type: 'send', conversationId: 'lost', text: 'long' });
  const starts = await Promise.all(members.map((m) => m.next('reply.start')));
  const replyId = starts[0]!.replyId;
  for (const m of members) for (let i = 0; i < 5; i++) await m.next('reply.delta');
  const highest = Math.max(...members.map((m) => m.events('lost').at(-1)!.seq));
  const probe = await TestClient.connect(nodes[1]!.url);
  clients.push(probe);
  probe.send({ type: 'join', conversationId: 'lost' });
  const oldEpoch = (await probe.next('joined')).epoch;
  assert.ok(oldEpoch, 'a log that exists has an epoch');

  await redis.stop();
  await redis.start();

  for (const m of members) {
    const reset = await m.next('joined', (j) => j.reset === true, 30_000);
    assert.ok(reset.epoch === undefined || reset.epoch !== oldEpoch, 'a new life of the log');
    await m.waitFor('reply.end', (e) => e.replyId === replyId, 30_000);
  }
  // The log is usable again: a message reaches every member, on every node.
  members[1]!.send({ type: 'send', conversationId: 'lost', text: 'hello again', reply: false });
  for (const m of members) await m.waitFor('message', (e) => e.message.text === 'hello again', 30_000);
  for (const m of members) {
    assert.is(m.frames.filter((f) => f.type === 'reply.end' && f.replyId === replyId).length, 1, 'one reply.end');
    seqsRise(m.frames, 'lost');
  }
  // A client that was away, resuming from the old log, is told to reset; so is one naming the old epoch.
  const late = await TestClient.connect(nodes[2]!.url);
  clients.push(late);
  late.send({ type: 'join', conversationId: 'lost', since: 2, epoch: oldEpoch });
  const joined = await late.next('joined');
  assert.is(joined.reset, true);
  assert.ok(joined.seq < highest, 'the new log is shorter: only a reset can say so');
  assert.ok(joined.epoch !== undefined && joined.epoch !== oldEpoch);
});

test.run();
