import { request } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket } from 'ws';
import { startStack, type Stack } from '../helpers.js';

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

test('shutdown: stop accepting, let replies finish within the grace, cancel the rest, close with 1001', async () => {
  stack = await startStack({
    plan: (req) => (req.messages.at(-1)!.content === 'quick' ? { text: 'a quick one', tokenDelayMs: 20 } : { text: 'never ends', stallAfterTokens: 1 }),
  });
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'slow', text: 'slow' });
  c.send({ type: 'send', conversationId: 'slow', text: 'waits behind it' });
  c.send({ type: 'send', conversationId: 'fast', text: 'quick' });
  await c.next('reply.delta', (d) => d.conversationId === 'slow');
  await c.next('reply.delta', (d) => d.conversationId === 'fast');

  const closing = stack.relay.close(300);
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
  const ends = c.frames.filter((f) => f.type === 'reply.end');
  assert.is(ends.find((e) => e.conversationId === 'fast')?.finishReason, 'stop', 'finished within the grace');
  const slowEnds = ends.filter((e) => e.conversationId === 'slow');
  assert.equal(slowEnds.map((e) => e.finishReason), ['cancelled', 'cancelled'], 'the running one and the queued one both end');
  const slowReq = stack.model.requests.find((r) => r.messages.at(-1)!.content === 'slow')!;
  await slowReq.closed;
  assert.ok(slowReq.aborted);
});

test.run();
