// A node paused past its lease (SIGSTOP) and woken up (SIGCONT) must not
// disturb the node that took its conversation over: its writes are refused,
// and it starts no reply of the queue the other node now runs.
import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ServerFrameOf } from '../../shared/protocol.js';
import { LocalModel } from '../../demo/localmodel.js';
import { NODE_LEASE_MS, redisAvailable, startNode, stop, type Node } from '../redis.js';
import { TestClient } from '../helpers.js';

const words = (n: number, w: string) => Array.from({ length: n }, (_, i) => `${w}${i}`).join(' ');
const available = await redisAvailable();
// Without Redis the test is registered as skipped: the closing line says so.
const it = available ? test : test.skip;

let model: LocalModel | undefined;
let nodes: Node[] = [];
const clients: TestClient[] = [];
test.after(async () => {
  for (const c of clients) c.kill();
  for (const n of nodes) n.child.kill('SIGCONT');
  await Promise.all(nodes.map(stop));
  await model?.close();
});

it('a node paused past its lease and resumed: one reply.end per reply.start, no two replies at once', async () => {
  // p1 streams for longer than the pause; p2 streams on the other node while the paused one wakes up.
  model = new LocalModel({
    plan: (req) => {
      const text = req.messages.at(-1)!.content;
      if (text === 'p1') return { text: words(400, 'one'), tokenDelayMs: 25 };
      if (text === 'p2') return { text: words(150, 'two'), tokenDelayMs: 20 };
      return { text: 'three' };
    },
  });
  await model.start();
  const prefix = `pause-${randomUUID()}:`;
  nodes = [await startNode(model, prefix), await startNode(model, prefix)];
  const [sleeper, survivor] = nodes as [Node, Node];
  const asker = await TestClient.connect(sleeper.url);
  const watcher = await TestClient.connect(survivor.url);
  clients.push(asker, watcher);
  watcher.send({ type: 'join', conversationId: 'nap' });
  await watcher.next('joined');
  for (const text of ['p1', 'p2', 'p3']) {
    asker.send({ type: 'send', conversationId: 'nap', text });
    await watcher.next('message', (m) => m.message.text === text);
  }
  await watcher.next('reply.delta');

  sleeper.child.kill('SIGSTOP');
  // The survivor ends p1 for everyone and starts p2.
  const p1End = await watcher.next('reply.end', () => true, 20 * NODE_LEASE_MS);
  assert.is(p1End.error?.code, 'internal');
  await watcher.next('reply.start', () => true, 20 * NODE_LEASE_MS);
  sleeper.child.kill('SIGCONT');

  // Wait for all three ends, then check the whole sequence as the watcher saw it.
  const ends = () => watcher.frames.filter((f) => f.type === 'reply.end').length;
  while (ends() < 3) await watcher.next('reply.end', () => true, 30_000);
  const replyFrames = watcher.events('nap').filter(
    (f): f is ServerFrameOf<'reply.start'> | ServerFrameOf<'reply.end'> => f.type === 'reply.start' || f.type === 'reply.end',
  );
  let open: string | undefined;
  const ended = new Map<string, number>();
  for (const f of replyFrames) {
    if (f.type === 'reply.start') {
      assert.is(open, undefined, `reply ${f.replyId} started while ${open} was still streaming`);
      open = f.replyId;
    } else {
      ended.set(f.replyId, (ended.get(f.replyId) ?? 0) + 1);
      if (open === f.replyId) open = undefined;
    }
  }
  const starts = replyFrames.filter((f) => f.type === 'reply.start').map((f) => f.replyId);
  assert.is(starts.length, 3);
  for (const id of starts) assert.is(ended.get(id), 1, `one reply.end for ${id}`);
});

test.run();
