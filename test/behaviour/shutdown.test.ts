import { request } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket } from 'ws';
import { backend, startStack, type Stack } from '../helpers.js';

let stack: Stack;
test.after.each(async () => {
  await stack.close();
});

function status(path: string): Promise<number> {
  return new Promise((resolve) => {
    request({ host: '127.0.0.1', port: stack.relay.port, path }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    })
      .on('error', () => resolve(-1))
      .end();
  });
}

/** Redis and the embedded store keep a queue through a shutdown. */
const keepsQueue = backend() !== 'memory';

test('shutdown: stop accepting, and a reply that finishes within the grace ends normally', async () => {
  stack = await startStack({ plan: () => ({ text: 'a quick one', tokenDelayMs: 20 }) });
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'fast', text: 'quick' });
  await c.next('reply.delta');
  // A grace far longer than the reply: close() goes on as soon as no reply runs.
  const closing = stack.relay.close(60_000);
  assert.is(await status('/healthz'), 503, 'health says so while draining');
  const refused = await new Promise<number>((resolve) => {
    const ws = new WebSocket(stack.url);
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('error', () => resolve(-1));
  });
  assert.is(refused, 503, 'new sockets are refused');
  const closed = await c.closed;
  await closing;
  assert.is(closed.code, 1001);
  assert.is(c.frames.find((f) => f.type === 'reply.end')?.finishReason, 'stop', 'finished within the grace');
});

test(`shutdown: a reply still running when the grace ends is cancelled and its upstream aborted; ${keepsQueue ? 'a queued one waits (another node, or the restart)' : 'a queued one ends too'}`, async () => {
  stack = await startStack({ plan: () => ({ text: 'never ends', stallAfterTokens: 1 }) });
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'slow', text: 'slow' });
  c.send({ type: 'send', conversationId: 'slow', text: 'waits behind it' });
  await c.next('reply.delta');
  await c.waitFor('message', (m) => m.message.text === 'waits behind it');
  const closed = c.closed;
  await stack.relay.close(0);
  assert.is((await closed).code, 1001);
  const ends = c.frames.filter((f) => f.type === 'reply.end');
  // In memory nobody else will ever run the queue; in a cluster it waits for a live node, on disk for the restart (README: shutdown).
  assert.equal(
    ends.map((e) => e.finishReason),
    keepsQueue ? ['cancelled'] : ['cancelled', 'cancelled'],
  );
  const slowReq = stack.model.requests.find((r) => r.messages.at(-1)!.content === 'slow')!;
  await slowReq.closed;
  assert.ok(slowReq.aborted);
});

test.run();
